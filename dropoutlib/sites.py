"""Where a model drops: find every dropout site of any model, and set its rate.

Real models keep their drop rates in two forms.

1. **Dropout modules**: GPT-2, BERT and T5 build ``nn.Dropout(config.resid_pdrop)`` and call it;
   the rate is the module's ``p``, read at every forward (GPT-2 even passes
   ``self.attn_dropout.p`` to SDPA as its ``dropout_p``).
2. **Float rates**: a layer copies the rate into a plain attribute at ``__init__`` and passes
   it to a functional call at forward time. Llama, Mistral, Qwen, Gemma and GPT-NeoX keep
   ``self.attention_dropout = config.attention_dropout`` and call the attention kernel with
   ``dropout=0.0 if not self.training else self.attention_dropout``; OPT's layers keep
   ``self.dropout`` for ``F.dropout(..., p=self.dropout)``; T5's attention keeps the float
   ``self.dropout``; nanoGPT's ``CausalSelfAttention`` keeps ``self.dropout`` for SDPA's
   ``dropout_p``; ``torch.nn.MultiheadAttention`` and the RNNs keep ``self.dropout`` too.
   There is no module to find: a tool that looks only for ``nn.Dropout`` (TRL's
   ``disable_dropout_in_model``, this library's :func:`dropoutlib.schedules.dropout_modules`)
   leaves a Llama-style model exactly as it was.

A few transformers models also read a rate from their config at forward time
(``self.config.attention_dropout`` in Falcon's decoder layer and Persimmon's attention,
``self.config.layerdrop`` in wav2vec2-style encoders, ``self.config.dropout`` in BLT), so
changing the layers is not enough there. The config is therefore a third kind of site.

:func:`dropout_sites` lists the sites as :class:`DropoutSite` records of three kinds:

- ``"module"``: a dropout module whose rate can be set: ``torch.nn``'s dropout family
  (subclasses of ``_DropoutNd``) and dropoutlib's :class:`~dropoutlib.DropoutModule`
  subclasses with a settable ``p``. Modules that learn their rate (ConcreteDropout's read-only
  ``p``, Standout and LearnedDropout with no scalar ``p``) are not sites.
- ``"float"``: a number attribute of a module (any module other than a dropout module) that is
  recognised by **the rule** below.
- ``"config"``: a field of a transformers config (``PreTrainedConfig``) held as ``.config`` by
  the model or any of its submodules, and of its sub-configs (``text_config``, ...), recognised
  by the same rule. Most models copy these fields at ``__init__``, where changing them does
  nothing by itself; setting them keeps ``model.config`` (and ``save_pretrained``) truthful and
  reaches the models that read them at forward. Other config objects, such as babyGPT's
  :class:`~dropoutlib.GPTConfig`, are read only when the model is built and are not sites.

The rule (no list of model names): an attribute is a drop rate when

- its name, split at ``_``, ends with a drop word, optionally followed by ``p``, ``prob``,
  ``rate`` or ``ratio``. The drop words are ``dropout``, ``pdrop``, ``layerdrop``, ``droppath``,
  ``drop``, ``drop_path`` and ``drop_connect``. So ``dropout``, ``attention_dropout``,
  ``attn_pdrop``, ``dropout_p``, ``hidden_dropout_prob``, ``layerdrop``, ``drop_path_rate`` and
  ``drop_prob`` match; ``dropout_regularizer``, ``dropout_positions``, ``keep_prob`` (the
  complement of a rate) and ``dropout1`` (a module) do not;
- its value is a real number, not a bool (ESM's ``token_dropout`` and EfficientNet's
  ``apply_dropout`` are flags) and not a tensor, and lies in [0, 1]. Ints count because
  ``LlamaConfig(attention_dropout=0)`` keeps the int 0 and the layer copies it;
- it is a plain instance attribute (``vars(module)``): properties, parameters, buffers and
  submodules are not looked at, nor are the attributes of dropout modules themselves.

A ``None`` (``classifier_dropout=None``) or a list is not a rate and is skipped.

:func:`set_dropout_p` sets every site, or those selected by name (glob patterns on the
qualified name, :func:`fnmatch.fnmatchcase`) and by kind. It checks ``p`` against every selected
site before changing any, so a refusal leaves the model as it was.

Changing a rate of a ``torch.compile``-d model recompiles it (compile specialises on float
attributes); a model whose layer skips its dropout code when built with rate 0 (an
``if self.dropout_ratio > 0:`` in ``__init__``) cannot be given dropout later by any setter.
"""

from __future__ import annotations

import fnmatch
import math
import numbers
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field

from torch import nn
from torch.nn.modules.dropout import _DropoutNd

from dropoutlib._base import DropoutModule, check_p

__all__ = [
    "DropoutSite",
    "KINDS",
    "config_rates",
    "config_rates_table",
    "dropout_sites",
    "is_rate_name",
    "set_dropout_p",
]

KINDS = ("module", "float", "config")

# The rule on names: prefix words, a drop word, an optional suffix (see the module docstring).
_RATE_NAME = re.compile(
    r"^(?:[a-z0-9]+_)*"  # attention_, hidden_, resid_, encoder_, ...
    r"(?:dropout|pdrop|layerdrop|droppath|drop(?:_path|_connect)?)"
    r"(?:_(?:p|prob|rate|ratio))?$"
)


def is_rate_name(name: str) -> bool:
    """Whether an attribute called ``name`` holds a drop rate, by the name half of the rule."""
    return isinstance(name, str) and _RATE_NAME.match(name) is not None


def _is_rate_value(value) -> bool:
    return (
        isinstance(value, numbers.Real)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and 0.0 <= value <= 1.0
    )


@dataclass(frozen=True)
class DropoutSite:
    """One place where a model drops: its qualified name, kind and rate when it was listed.

    ``name`` is the qualified name: the module's for a module
    (``transformer.h.0.attn.attn_dropout``), the module's and the attribute for a float
    (``model.layers.0.self_attn.attention_dropout``), the holder's, ``config`` and the field for a
    config (``config.attention_dropout``, ``encoder.config.dropout_rate``). ``owner.attr`` is where
    the rate lives (``attr`` is ``"p"`` for a module); ``allow_one`` is False where a module
    refuses ``p = 1``. ``p`` is not updated when the rate changes: list the sites again.
    """

    name: str
    kind: str
    p: float
    owner: object = field(repr=False, compare=False)
    attr: str = field(default="p", repr=False)
    allow_one: bool = field(default=True, repr=False)


def _has_settable_p(module: nn.Module) -> bool:
    attr = getattr(type(module), "p", None)
    if isinstance(attr, property):
        return attr.fset is not None
    return True  # a plain attribute


def _is_dropout_module(module: nn.Module) -> bool:
    """A ``torch.nn`` dropout module, or a dropoutlib :class:`DropoutModule` with a settable p."""
    return isinstance(module, _DropoutNd) or (
        isinstance(module, DropoutModule) and _has_settable_p(module)
    )


def _config_class():
    # Only a model built by transformers can hold a transformers config, and then transformers is
    # imported: dropoutlib itself never imports it.
    module = sys.modules.get("transformers.configuration_utils")
    if module is None:
        return None
    return getattr(module, "PreTrainedConfig", None) or getattr(module, "PretrainedConfig", None)


def _config_sites(config, prefix: str, config_class, seen: set) -> Iterator[DropoutSite]:
    if id(config) in seen:
        return
    seen.add(id(config))
    for attr, value in vars(config).items():
        if isinstance(value, config_class):
            yield from _config_sites(value, f"{prefix}.{attr}", config_class, seen)
        elif is_rate_name(attr) and _is_rate_value(value):
            yield DropoutSite(f"{prefix}.{attr}", "config", float(value), config, attr)


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _all_sites(model: nn.Module) -> list[DropoutSite]:
    config_class = _config_class()
    seen_configs: set[int] = set()
    sites = []
    for name, module in model.named_modules():
        if _is_dropout_module(module):
            allow_one = getattr(module, "allow_p_one", True)
            sites.append(DropoutSite(name, "module", float(module.p), module, "p", allow_one))
            continue
        for attr, value in vars(module).items():
            if is_rate_name(attr) and _is_rate_value(value):
                sites.append(DropoutSite(_join(name, attr), "float", float(value), module, attr))
        config = vars(module).get("config")
        if config_class is not None and isinstance(config, config_class):
            sites.extend(_config_sites(config, _join(name, "config"), config_class, seen_configs))
    return sites


def _as_tuple(value, argument: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise TypeError(
        f"{argument} must be a str or a non-empty list of str, got {value!r} "
        f"of type {type(value).__name__}"
    )


def dropout_sites(
    model: nn.Module,
    *,
    name: str | list[str] | tuple[str, ...] | None = None,
    kind: str | list[str] | tuple[str, ...] | None = None,
) -> list[DropoutSite]:
    """Every dropout site of ``model``, in ``named_modules`` order (see the module docstring).

    ``name`` (a glob pattern or a list of them, matched against the qualified name with
    :func:`fnmatch.fnmatchcase`, e.g. ``"*attn*"`` or ``"*.attention_dropout"``) and ``kind``
    (``"module"``, ``"float"``, ``"config"``, or a list of them) select sites; a site is kept when
    its kind is one of ``kind`` and its name matches one of the patterns. A filter that selects
    nothing is an error (a mistyped pattern must not silently do nothing); without filters, a
    model with no site gives an empty list.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    sites = _all_sites(model)
    if kind is not None:
        kinds = _as_tuple(kind, "kind")
        for k in kinds:
            if k not in KINDS:
                raise ValueError(f"kind must be one of {KINDS} (or a list of them), got {k!r}")
        sites = [s for s in sites if s.kind in kinds]
        if not sites:
            raise ValueError(
                f"kind={kind!r} matches no dropout site of {type(model).__name__}; its sites "
                f"are of kinds {sorted({s.kind for s in _all_sites(model)})}"
            )
    if name is not None:
        patterns = _as_tuple(name, "name")
        for pattern in patterns:
            if not any(fnmatch.fnmatchcase(s.name, pattern) for s in sites):
                raise ValueError(
                    f"name pattern {pattern!r} matches no dropout site"
                    f"{'' if kind is None else f' of kind {kind!r}'} of {type(model).__name__} "
                    f"({len(sites)} sites, e.g. {[s.name for s in sites[:3]]})"
                )
        sites = [s for s in sites if any(fnmatch.fnmatchcase(s.name, p) for p in patterns)]
    return sites


def _set_sites(sites: list[DropoutSite], p: float) -> None:
    # Every site is checked before any is changed, so a refusal leaves the model as it was. A
    # setter that still fails (a config field's own type check) puts back what was changed.
    for site in sites:
        if p == 1.0 and not site.allow_one:
            raise ValueError(
                f"cannot set p=1.0 on module {site.name!r} ({type(site.owner).__name__}): "
                "its p must be in [0, 1)"
            )
    done = []
    try:
        for site in sites:
            old = getattr(site.owner, site.attr)
            setattr(site.owner, site.attr, p)
            done.append((site, old))
    except Exception:
        for site, old in reversed(done):
            setattr(site.owner, site.attr, old)
        raise


def set_dropout_p(
    model: nn.Module,
    p: float,
    *,
    name: str | list[str] | tuple[str, ...] | None = None,
    kind: str | list[str] | tuple[str, ...] | None = None,
) -> int:
    """Set the drop rate of every dropout site of ``model`` to ``p``; return how many were set.

    The sites are those of :func:`dropout_sites`: dropout modules, float rates of layers (the
    attention dropout of Llama-style models) and the rates of a transformers config, so that
    ``set_dropout_p(model, 0.0)`` makes a training-mode forward free of dropout. ``name`` and
    ``kind`` select sites as in :func:`dropout_sites`: ``set_dropout_p(model, 0.0, name="*attn*")``.

    Every site includes the structured ones: LayerDrop (OPT's ``layerdrop``, dropoutlib's
    LayerDrop) and DropPath rates, so ``set_dropout_p(opt, 0.1)`` also starts skipping layers;
    select with ``name`` to leave them alone.

    ``p`` is checked against [0, 1]; if a module forbids ``p = 1`` (``allow_p_one = False``, e.g.
    GaussianDropout, DropHead) the error names it and nothing is changed. A model with no site
    returns 0; a filter that selects nothing is an error.
    """
    p = check_p(p, "p")
    sites = dropout_sites(model, name=name, kind=kind)
    _set_sites(sites, p)
    return len(sites)


# ------------------------------------------------------------------------------------------------
# What a config ships: the rates of transformers config classes, read live


def config_rates(config) -> dict[str, float]:
    """The drop rates a transformers config holds, by the rule of this module: ``{field: rate}``.

    ``config`` is a config instance (``PreTrainedConfig``) or a config class, which is built with
    its defaults (``LlamaConfig()``: no weights, nothing downloaded). Sub-configs are included
    with their path (``text_config.attention_dropout``), each once. The fields are those that
    :func:`dropout_sites` lists as ``"config"`` sites: ``classifier_dropout=None`` or a flag such
    as ``token_dropout=False`` is not a rate and is left out, while a rate of 0 (or the int 0) is
    kept, since a field at 0 is still a place where a model can drop. Fields keep the order the
    config set them in.

    These are the *defaults of the config class* of the installed transformers version; a
    published checkpoint brings its own ``config.json``, which may differ.
    """
    if isinstance(config, type):
        try:
            config = config()
        except Exception as err:
            raise ValueError(
                f"config class {config.__name__} cannot be built with its defaults: {err}"
            ) from err
    config_class = _config_class()
    if config_class is None or not isinstance(config, config_class):
        raise TypeError(
            "config must be a transformers config (PreTrainedConfig) or its class, got "
            f"{type(config).__name__}"
        )
    sites = _config_sites(config, "config", config_class, set())
    return {site.name.removeprefix("config."): site.p for site in sites}


def config_rates_table(configs) -> list[tuple[str, dict[str, float]]]:
    """``[(model_type, config_rates(config)), ...]`` for a list of configs or config classes, in
    the order given: the dropout fields that real model families ship, read from the installed
    transformers (:func:`config_rates`). A family with no rate field at all gets ``{}``."""
    if isinstance(configs, (str, bytes)) or not hasattr(configs, "__iter__"):
        raise TypeError(
            f"configs must be a list of transformers configs or config classes, got {configs!r}"
        )
    rows = []
    for config in configs:
        rates = config_rates(config)
        model_type = getattr(config, "model_type", None) or type(config).__name__
        rows.append((model_type, rates))
    return rows
