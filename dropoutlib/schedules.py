"""Dropout rates that change over training and over depth, and a scheduler that applies them.

Over training, a schedule is a small frozen dataclass called as ``schedule(step, total_steps)``:

- ``step`` counts finished optimisation steps (or epochs): an int in ``[0, total_steps]``;
- ``total_steps`` is the length of training: an int ``> 0``;
- the result is the drop rate for the next step, a float in [0, 1].

``step == total_steps`` is allowed (the rate at the end of training); ``step > total_steps`` is an
error, never clamped. The same schedule object works for any length of training because the
length is an argument of the call, not of the schedule.

Schedules:

- :class:`ConstantRate`: ``p`` throughout.
- :class:`LinearDecay`: ``p * (1 - t/T)`` (to a floor ``final``): the "adaptive" fine-tuning rule of
  the course's seed 000, which starts high and lowers the rate every epoch. This is not Standout,
  the "adaptive dropout" of Ba and Frey (2013), which :class:`dropoutlib.Standout` implements.
- :class:`CosineDecay`: half a cosine from ``p`` down to ``final``.
- :class:`EarlyDropout` and :class:`LateDropout`: Liu et al., "Dropout Reduces Underfitting",
  ICML 2023 (their ``drop_scheduler`` in facebookresearch/dropout).
- :class:`CurriculumDropout`: Morerio et al., "Curriculum Dropout", ICCV 2017: the rate rises from 0
  towards ``p`` as ``p * (1 - exp(-gamma t))``.

Over depth: :func:`layerwise_rates` (``base + i * step`` for layer ``i``, seed 000) and
:func:`interpolate_rates` (linear from the first layer's rate to the last's, as timm's
stochastic-depth rule ``torch.linspace(0, drop_path_rate, depth)``); :func:`set_layerwise_p`
gives each block of any model (babyGPT, a transformers GPT-2 or Llama) its own rate, what seed
000's layer-wise wrapper meant to do.

Applying rates: :func:`set_dropout_p` (from :mod:`dropoutlib.sites`) sets the rate of every
dropout site of a model, and :class:`DropoutScheduler` does so from a schedule once per step (seed
000's loop over ``nn.Dropout`` modules, generalised to ``torch.nn``'s dropout family, this
library's modules and the float rates of transformers models). :func:`dropout_modules` lists the
modules only.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from torch import nn

from dropoutlib._base import check_p
from dropoutlib.sites import _is_dropout_module, _set_sites, dropout_sites, set_dropout_p

__all__ = [
    "Schedule",
    "ConstantRate",
    "LinearDecay",
    "CosineDecay",
    "EarlyDropout",
    "LateDropout",
    "CurriculumDropout",
    "layerwise_rates",
    "interpolate_rates",
    "dropout_modules",
    "find_blocks",
    "set_dropout_p",
    "set_layerwise_p",
    "DropoutScheduler",
]


def _check_int(value, name: str, *, minimum: int) -> int:
    """Return ``value`` as an int after checking it is an integer (not a bool) >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {value!r} of type {type(value).__name__}")
    value = int(value)
    if value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value}")
    return value


def _check_step(step, total_steps) -> tuple[int, int]:
    total_steps = _check_int(total_steps, "total_steps", minimum=1)
    step = _check_int(step, "step", minimum=0)
    if step > total_steps:
        raise ValueError(f"step must be in [0, total_steps] = [0, {total_steps}], got {step}")
    return step, total_steps


def _check_finite(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(
            f"{name} must be a real number, got {value!r} of type {type(value).__name__}"
        )
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return value


# ------------------------------------------------------------------------------------------------
# Schedules over training


class Schedule:
    """Base of the rate schedules: ``schedule(step, total_steps) -> float``.

    Subclasses are frozen dataclasses that validate their arguments in ``__post_init__`` and
    implement ``_rate(step, total_steps)``; the call checks ``step`` and ``total_steps`` first.
    """

    def __call__(self, step: int, total_steps: int) -> float:
        step, total_steps = _check_step(step, total_steps)
        return self._rate(step, total_steps)

    def _rate(self, step: int, total_steps: int) -> float:
        raise NotImplementedError

    def rates(self, total_steps: int) -> list[float]:
        """The rate at every step ``0, 1, ..., total_steps`` (``total_steps + 1`` values)."""
        total_steps = _check_int(total_steps, "total_steps", minimum=1)
        return [self._rate(t, total_steps) for t in range(total_steps + 1)]


@dataclass(frozen=True)
class ConstantRate(Schedule):
    """The same rate ``p`` at every step: standard dropout, as a schedule."""

    p: float

    def __post_init__(self):
        object.__setattr__(self, "p", check_p(self.p, "p"))

    def _rate(self, step: int, total_steps: int) -> float:
        return self.p


@dataclass(frozen=True)
class _Decay(Schedule):
    """A decay from ``p`` at step 0 to ``final`` at ``total_steps`` (``final`` <= ``p``)."""

    p: float
    final: float = 0.0

    def __post_init__(self):
        object.__setattr__(self, "p", check_p(self.p, "p"))
        object.__setattr__(self, "final", check_p(self.final, "final"))
        if self.final > self.p:
            raise ValueError(
                f"final must be <= p for a decay, got final={self.final!r} > p={self.p!r}"
            )


@dataclass(frozen=True)
class LinearDecay(_Decay):
    """Linear decay from ``p`` at step 0 to ``final`` at ``total_steps``.

    ``p_t = final + (p - final) * (1 - t / T)``; with ``final = 0`` this is the adaptive
    fine-tuning rule of seed 000, ``initial * (1 - epoch / epochs)`` (one step per epoch).
    ``final`` must not exceed ``p`` (a decay never rises).
    """

    def _rate(self, step: int, total_steps: int) -> float:
        return self.final + (self.p - self.final) * (1.0 - step / total_steps)


@dataclass(frozen=True)
class CosineDecay(_Decay):
    """Half a cosine from ``p`` at step 0 down to ``final`` at ``total_steps``.

    ``p_t = final + (p - final) * (1 + cos(pi * t / T)) / 2``. ``final`` must not exceed ``p``.
    """

    def _rate(self, step: int, total_steps: int) -> float:
        return self.final + (self.p - self.final) * 0.5 * (
            1.0 + math.cos(math.pi * step / total_steps)
        )


def _cutoff_step(cutoff: float, total_steps: int) -> int:
    # The switching step is cutoff * T rounded half up to a whole step, so that a fraction such
    # as 0.1 of 10 steps switches at step 1 whatever the float error of 0.1 * 10.
    return math.floor(cutoff * total_steps + 0.5)


@dataclass(frozen=True)
class EarlyDropout(Schedule):
    """Early dropout (Liu et al., "Dropout Reduces Underfitting", ICML 2023): dropout only at first.

    With ``c = round(cutoff * T)`` (the switching step, ``cutoff`` a fraction of training):

    - ``schedule="constant"``: ``p_t = p`` for ``t < c`` and ``0`` from step ``c`` on;
    - ``schedule="linear"``: ``p_t = p * (1 - t / c)`` for ``t < c`` and ``0`` from step ``c`` on.

    This follows ``drop_scheduler(mode="early")`` of facebookresearch/dropout, which lists one rate
    per iteration; its linear branch is ``np.linspace(p, 0, c)``, reaching 0 one iteration before
    ``c``, where this one reaches 0 at ``c``. The repository's example recipe is
    ``--drop_mode early --drop_schedule linear --cutoff_epoch 50``.
    """

    p: float
    cutoff: float
    schedule: str = "constant"

    def __post_init__(self):
        object.__setattr__(self, "p", check_p(self.p, "p"))
        object.__setattr__(self, "cutoff", check_p(self.cutoff, "cutoff"))
        if self.schedule not in ("constant", "linear"):
            raise ValueError(f"schedule must be 'constant' or 'linear', got {self.schedule!r}")

    def _rate(self, step: int, total_steps: int) -> float:
        c = _cutoff_step(self.cutoff, total_steps)
        if step >= c:
            return 0.0
        if self.schedule == "constant":
            return self.p
        return self.p * (1.0 - step / c)


@dataclass(frozen=True)
class LateDropout(Schedule):
    """Late dropout (Liu et al., ICML 2023): no dropout at first, then ``p`` from the cutoff on.

    With ``c = round(cutoff * T)``: ``p_t = 0`` for ``t < c`` and ``p`` from step ``c`` on, as
    ``drop_scheduler(mode="late")`` of facebookresearch/dropout (which only has a constant form).
    The paper proposes it for models that overfit rather than underfit.
    """

    p: float
    cutoff: float

    def __post_init__(self):
        object.__setattr__(self, "p", check_p(self.p, "p"))
        object.__setattr__(self, "cutoff", check_p(self.cutoff, "cutoff"))

    def _rate(self, step: int, total_steps: int) -> float:
        return 0.0 if step < _cutoff_step(self.cutoff, total_steps) else self.p


@dataclass(frozen=True)
class CurriculumDropout(Schedule):
    """Curriculum dropout (Morerio et al., ICCV 2017): the rate rises from 0 towards ``p``.

    The paper schedules the retain probability
    ``theta(t) = (1 - theta_bar) exp(-gamma t) + theta_bar`` from 1 down to ``theta_bar``
    (confirmed in the authors' code, pmorerio/curriculum-dropout); in drop-rate terms, with
    ``p = 1 - theta_bar``:
    ``p_t = p * (1 - exp(-gamma * t))``, ``t`` counted in steps (the authors count iterations).

    ``gamma`` is the rise per step. By default (``gamma=None``) it is ``10 / T``, so the rate is
    within ``exp(-10)`` (5e-5) of ``p`` at the end whatever the length of training: our choice, to
    make the schedule independent of ``T``. The authors' MNIST configuration
    (pmorerio/curriculum-dropout, ``experiments/sdo``) uses ``gamma = 1e-3`` per iteration.
    """

    p: float
    gamma: float | None = None

    def __post_init__(self):
        object.__setattr__(self, "p", check_p(self.p, "p"))
        if self.gamma is not None:
            gamma = _check_finite(self.gamma, "gamma")
            if gamma <= 0.0:
                raise ValueError(f"gamma must be > 0 (or None for 10 / total_steps), got {gamma!r}")
            object.__setattr__(self, "gamma", gamma)

    def _rate(self, step: int, total_steps: int) -> float:
        gamma = 10.0 / total_steps if self.gamma is None else self.gamma
        return self.p * -math.expm1(-gamma * step)


# ------------------------------------------------------------------------------------------------
# Rates over depth


def layerwise_rates(n_layers: int, base: float, step: float) -> list[float]:
    """Rate ``base + i * step`` for layer ``i = 0 .. n_layers - 1`` (seed 000's layer-wise rule).

    ``step`` may be negative (rates falling with depth). Every rate must lie in [0, 1]; the error
    names the first layer that does not.
    """
    n_layers = _check_int(n_layers, "n_layers", minimum=1)
    base = check_p(base, "base")
    step = _check_finite(step, "step")
    rates = []
    for i in range(n_layers):
        rate = base + i * step
        if not 0.0 <= rate <= 1.0:
            raise ValueError(
                f"layer {i} gets rate base + {i} * step = {base!r} + {i} * {step!r} = {rate!r}, "
                f"outside [0, 1]"
            )
        rates.append(rate)
    return rates


def interpolate_rates(n_layers: int, p_first: float, p_last: float) -> list[float]:
    """Rates linear in depth from ``p_first`` at layer 0 to ``p_last`` at layer ``n_layers - 1``.

    ``p_i = (1 - i/(L-1)) * p_first + i/(L-1) * p_last``, as ``torch.linspace(p_first, p_last, L)``:
    with ``p_first = 0`` this is stochastic depth's linear rule used by timm. Either direction is
    allowed (rising or falling with depth). A single layer gets ``p_first`` (linspace's convention).
    """
    n_layers = _check_int(n_layers, "n_layers", minimum=1)
    p_first = check_p(p_first, "p_first")
    p_last = check_p(p_last, "p_last")
    if n_layers == 1:
        return [p_first]
    lo, hi = min(p_first, p_last), max(p_first, p_last)
    rates = []
    for i in range(n_layers):
        t = i / (n_layers - 1)
        # (1 - t) a + t b is exact at both ends; min/max only removes a last-bit rounding excess.
        rates.append(min(hi, max(lo, (1.0 - t) * p_first + t * p_last)))
    return rates


# ------------------------------------------------------------------------------------------------
# Applying rates to a model


def find_blocks(model: nn.Module, blocks: str | None = None) -> tuple[str, nn.ModuleList]:
    """The qualified name and the ``nn.ModuleList`` of ``model``'s stack of blocks.

    ``blocks`` names it (``"transformer.h"`` for GPT-2, ``"model.layers"`` for Llama,
    ``"blocks"`` for babyGPT); by default it is found: the first ``nn.ModuleList`` in module order
    (so the outermost one: the blocks before babyGPT's per-head lists inside them) whose every
    entry holds at least one dropout site (:func:`dropoutlib.sites.dropout_sites`). An
    encoder-decoder has two stacks: name the one you mean.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if blocks is not None:
        if not isinstance(blocks, str):
            raise TypeError(f"blocks must be a qualified module name (str), got {blocks!r}")
        try:
            found = model.get_submodule(blocks)
        except AttributeError:
            found = None
        if not isinstance(found, nn.ModuleList):
            lists = [n for n, m in model.named_modules() if isinstance(m, nn.ModuleList)]
            raise ValueError(
                f"blocks={blocks!r} is not an nn.ModuleList of {type(model).__name__}; its "
                f"ModuleLists are {lists}"
            )
        return blocks, found
    for name, module in model.named_modules():
        if isinstance(module, nn.ModuleList) and len(module) > 0:
            if all(dropout_sites(block) for block in module):
                return name, module
    raise ValueError(
        f"{type(model).__name__} has no nn.ModuleList of blocks that all hold a dropout site; "
        "pass blocks= the qualified name of its stack of blocks"
    )


def set_layerwise_p(
    model: nn.Module,
    rates,
    *,
    blocks: str | None = None,
    kind: str | list[str] | tuple[str, ...] | None = None,
) -> list[int]:
    """Set the rate ``rates[i]`` on every dropout site inside block ``i``; return how many sites
    each block had.

    ``rates`` holds one rate per block, e.g. :func:`layerwise_rates` (seed 000's
    ``base + i * step``) or :func:`interpolate_rates`. The blocks are found by
    :func:`find_blocks` (or named by ``blocks``), the sites inside block ``i`` by
    :func:`dropoutlib.sites.dropout_sites` with ``name="<blocks>.<i>.*"``, so modules and float
    rates alike are set: GPT-2's ``attn_dropout``, ``resid_dropout`` and ``mlp.dropout``, a
    Llama attention's float ``attention_dropout``, babyGPT's three sites. Sites outside the
    blocks (embedding dropout, config fields) are left alone. ``kind`` selects site kinds as in
    :func:`dropoutlib.sites.dropout_sites`. Every rate is checked before any site changes.
    """
    name, layers = find_blocks(model, blocks)
    if isinstance(rates, (str, bytes)) or not hasattr(rates, "__len__"):
        raise TypeError(f"rates must be a sequence of one rate per block, got {rates!r}")
    if len(rates) != len(layers):
        raise ValueError(
            f"rates must have one rate per block: {name!r} has {len(layers)} blocks, "
            f"got {len(rates)} rates"
        )
    rates = [check_p(r, f"rates[{i}]") for i, r in enumerate(rates)]
    per_block = [dropout_sites(model, name=f"{name}.{i}.*", kind=kind) for i in range(len(layers))]
    for i, (sites, p) in enumerate(zip(per_block, rates)):
        for site in sites:
            if p == 1.0 and not site.allow_one:
                raise ValueError(
                    f"rates[{i}] = 1.0 cannot be set on module {site.name!r} "
                    f"({type(site.owner).__name__}): its p must be in [0, 1)"
                )
    for sites, p in zip(per_block, rates):
        _set_sites(sites, p)
    return [len(sites) for sites in per_block]


def dropout_modules(model: nn.Module) -> Iterator[tuple[str, nn.Module]]:
    """Yield ``(name, module)`` for every dropout module of ``model`` whose rate can be set.

    These are ``torch.nn``'s dropout modules (subclasses of ``_DropoutNd``: Dropout,
    Dropout1d/2d/3d, AlphaDropout, FeatureAlphaDropout) and dropoutlib's :class:`DropoutModule`
    subclasses whose ``p`` is settable. Modules that learn their rate (a read-only ``p``, as
    ConcreteDropout's, or no scalar ``p`` at all, as Standout and LearnedDropout) are left out.
    Rates stored as plain floats (``nn.MultiheadAttention(dropout=...)``, the
    ``attention_dropout`` of Llama-style models) are not modules and are not found here:
    :func:`dropoutlib.sites.dropout_sites` finds them.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    for name, module in model.named_modules():
        if _is_dropout_module(module):
            yield name, module


class DropoutScheduler:
    """Set the rate of every dropout site of a model from a schedule, once per step.

    Like a learning-rate scheduler: build it before training (it applies ``schedule(0, T)`` at
    once), call :meth:`step` after each optimisation step (or epoch), and save :meth:`state_dict`
    with the checkpoint so that a resumed run continues the schedule::

        scheduler = DropoutScheduler(model, LinearDecay(0.1), total_steps=epochs)
        for epoch in range(epochs):
            train_one_epoch(model)
            scheduler.step()

    ``schedule`` is any callable ``(step, total_steps) -> float`` (the classes of this module, or
    a function). After ``total_steps`` calls to :meth:`step` the schedule is finished and another
    call is an error. The sites are found once, at construction, by
    :func:`dropoutlib.sites.dropout_sites` (dropout modules, float rates such as a Llama
    attention's ``attention_dropout``, transformers config fields), optionally selected by
    ``name`` and ``kind`` as there; ``sites`` lists them and ``modules`` the dropout modules among
    them. A model with no site is an error, since the scheduler would silently do nothing.

    Changing ``p`` of a ``torch.compile``-d model recompiles it (compile specialises on float
    attributes), so prefer schedules that change rarely (per epoch) for compiled models.
    """

    def __init__(
        self,
        model: nn.Module,
        schedule: Callable[[int, int], float],
        total_steps: int,
        *,
        name: str | list[str] | tuple[str, ...] | None = None,
        kind: str | list[str] | tuple[str, ...] | None = None,
    ):
        if not callable(schedule):
            raise TypeError(
                f"schedule must be callable as schedule(step, total_steps), got {schedule!r}"
            )
        self.total_steps = _check_int(total_steps, "total_steps", minimum=1)
        self.schedule = schedule
        self.sites = dropout_sites(model, name=name, kind=kind)
        self.modules = [site.owner for site in self.sites if site.kind == "module"]
        if not self.sites:
            raise ValueError(
                f"model has no dropout site ({type(model).__name__} has no dropout module whose "
                "rate can be set and no float rate); see dropoutlib.sites.dropout_sites"
            )
        self.last_step = 0
        self.p = self._apply(0)

    def _apply(self, step: int) -> float:
        p = check_p(self.schedule(step, self.total_steps), "schedule(step, total_steps)")
        _set_sites(self.sites, p)
        return p

    def step(self) -> float:
        """Advance one step, set the new rate on every site, and return it."""
        if self.last_step >= self.total_steps:
            raise ValueError(
                f"DropoutScheduler is finished: it made all total_steps={self.total_steps} steps"
            )
        self.p = self._apply(self.last_step + 1)
        self.last_step += 1
        return self.p

    def state_dict(self) -> dict:
        """The position in the schedule: ``{"last_step", "total_steps", "p"}`` (plain numbers)."""
        return {"last_step": self.last_step, "total_steps": self.total_steps, "p": self.p}

    def load_state_dict(self, state: dict) -> None:
        """Continue from a saved position; ``total_steps`` must match this scheduler's."""
        total_steps = _check_int(state["total_steps"], "state['total_steps']", minimum=1)
        if total_steps != self.total_steps:
            raise ValueError(
                f"state['total_steps']={total_steps} does not match this scheduler's "
                f"total_steps={self.total_steps}"
            )
        last_step = _check_int(state["last_step"], "state['last_step']", minimum=0)
        if last_step > self.total_steps:
            raise ValueError(
                f"state['last_step'] must be in [0, {self.total_steps}], got {last_step}"
            )
        self.p = self._apply(last_step)
        self.last_step = last_step

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(schedule={self.schedule!r}, step={self.last_step}/"
            f"{self.total_steps}, p={self.p}, sites={len(self.sites)})"
        )
