"""What a training run is: :class:`TrainConfig`, everything about a run except the model.

The defaults are babyGPT v10's loop (``babygpt_v10_dropout.py``). The fields after
``penalty_schedule`` are the training features of the later chapters; each is off at its default
and is then left out of the run key, so adding a feature never renames existing runs:

* ``train_tokens``: train on the first N tokens of the training split only (the data-constrained
  regime where a model repeats its data for many epochs; validation always uses the whole
  validation split);
* ``label_smoothing``: as in ``F.cross_entropy`` (training loss only);
* ``grad_clip``: clip the global gradient norm to this value (0 = off);
* ``dropout_schedule``: a rate schedule of :mod:`dropoutlib.schedules`, by name and arguments,
  applied to every dropout site each step (or each epoch);
* ``r_drop_alpha``: R-Drop (Liang et al., 2021): two dropout passes, their mean cross-entropy
  plus ``alpha`` times their symmetric KL (:func:`dropoutlib.r_drop_loss`);
* ``token_mask_rate``: each input token (never a target) is replaced by a uniformly random token
  with this probability (word-dropout-style input noise as data augmentation);
* ``init_from``: the key of a finished run whose weights this run starts from (fine-tuning);
* ``lora``: LoRA adapters through PEFT (``r``, ``alpha``, ``dropout``, ``target_modules``); only
  the adapters train.

Whatever the training loss adds, the losses a run reports are plain cross-entropy in eval mode.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass

from dropoutlib._base import check_known_fields, check_p

__all__ = ["TrainConfig", "DECAY_RULES", "SCHEDULES", "LORA_DEFAULTS", "make_schedule"]

DTYPES = ("auto", "float32", "bfloat16", "float16")
# Which parameters AdamW decays: "all" (babyGPT: AdamW over model.parameters()) or "nanogpt"
# (only tensors with >= 2 dims: nanoGPT's and the Learned Dropout code's rule).
DECAY_RULES = ("all", "nanogpt")
# dropout_schedule["name"] -> the class of dropoutlib.schedules it builds.
SCHEDULES = ("constant", "linear", "cosine", "early", "late", "curriculum")
SCHEDULE_EVERY = ("step", "epoch")
# LoRA options and their defaults (PEFT's LoraConfig names in the comments).
LORA_DEFAULTS = {
    "r": 8,  # r, the rank of the update B A
    "alpha": 16.0,  # lora_alpha; the update is scaled by alpha / r
    "dropout": 0.0,  # lora_dropout, on the adapter's input only
    "target_modules": ("query", "value", "qkv"),  # babyGPT's attention projections
}


def _check_int(value, name: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


def _check_real(value, name: str, *, low: float = 0.0, positive: bool = False) -> float:
    what = "a positive finite number" if positive else f"a finite number >= {low:g}"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be {what}, got {value!r}")
    if not math.isfinite(value) or value < low or (positive and value <= 0):
        raise ValueError(f"{name} must be {what}, got {value!r}")
    return float(value)


def make_schedule(spec: dict):
    """The schedule object of a ``dropout_schedule`` spec, and whether it runs per "step" or
    per "epoch": ``{"name": "linear", "p": 0.1, "every": "epoch"}`` is seed 000's adaptive
    decay ``p * (1 - epoch / epochs)``. Names: constant, linear, cosine, early, late,
    curriculum; ``"sites"`` (optional) is a glob pattern or a list of them selecting the sites
    by qualified name (:func:`dropoutlib.dropout_sites`; default: every site); the other keys
    are the class's arguments (:mod:`dropoutlib.schedules`)."""
    from dropoutlib import schedules

    classes = {
        "constant": schedules.ConstantRate,
        "linear": schedules.LinearDecay,
        "cosine": schedules.CosineDecay,
        "early": schedules.EarlyDropout,
        "late": schedules.LateDropout,
        "curriculum": schedules.CurriculumDropout,
    }
    if not isinstance(spec, dict) or "name" not in spec:
        raise ValueError(
            f'dropout_schedule must be a dict with a "name" (one of {SCHEDULES}), got {spec!r}'
        )
    args = {k: v for k, v in spec.items() if k not in ("name", "every", "sites")}
    if spec["name"] not in classes:
        raise ValueError(f"dropout_schedule name must be one of {SCHEDULES}, got {spec['name']!r}")
    every = spec.get("every", "step")
    if every not in SCHEDULE_EVERY:
        raise ValueError(f'dropout_schedule "every" must be one of {SCHEDULE_EVERY}, got {every!r}')
    sites = spec.get("sites")
    if sites is not None and not (
        isinstance(sites, str)
        or (isinstance(sites, list) and all(isinstance(s, str) for s in sites))
    ):
        raise ValueError(
            f'dropout_schedule "sites" must be a glob pattern or a list, got {sites!r}'
        )
    cls = classes[spec["name"]]
    try:
        return cls(**args), every
    except TypeError as err:
        fields = [f.name for f in dataclasses.fields(cls)]
        raise ValueError(
            f"dropout_schedule {spec['name']!r} takes {fields} (and 'every', 'sites'), "
            f"got {sorted(args)}"
        ) from err
    except ValueError as err:
        raise ValueError(f"dropout_schedule: {err}") from None


def _check_lora(lora) -> dict:
    if not isinstance(lora, dict):
        raise ValueError(f"lora must be a dict of {sorted(LORA_DEFAULTS)} or None, got {lora!r}")
    unknown = sorted(set(lora) - set(LORA_DEFAULTS))
    if unknown:
        raise ValueError(f"lora has unknown option(s) {unknown}; allowed: {sorted(LORA_DEFAULTS)}")
    out = {**LORA_DEFAULTS, **lora}
    out["r"] = _check_int(out["r"], "lora['r']", 1)
    out["alpha"] = _check_real(out["alpha"], "lora['alpha']", positive=True)
    out["dropout"] = check_p(out["dropout"], "lora['dropout']", allow_one=False)
    targets = out["target_modules"]
    if isinstance(targets, str) or not targets or not all(isinstance(t, str) for t in targets):
        raise ValueError(
            f"lora['target_modules'] must be a non-empty list of module names, got {targets!r}"
        )
    out["target_modules"] = sorted(set(targets))
    return out


@dataclass
class TrainConfig:
    """Everything about a training run except the model (see :class:`dropoutlib.model.GPTConfig`).

    Defaults are babyGPT v10's (``babygpt_v10_dropout.py``): 5000 steps of AdamW at a constant
    learning rate of 1e-2, batches of 32, an evaluation every 200 steps over 100 batches per
    split, seed 42. :meth:`v10`, :meth:`v11` and :meth:`gpt` are named presets.

    ``penalty``, ``penalty_coeff`` and ``penalty_schedule`` configure the LearnedDropout mask
    penalty (:func:`dropoutlib.learned.penalty_loss`); they are used only when the model has
    LearnedDropout modules, and ``penalty=None`` switches the penalty off.

    ``weight_decay_rule`` says which parameters ``weight_decay`` applies to: ``"all"`` (default,
    babyGPT's ``AdamW(model.parameters())``) or ``"nanogpt"`` (only tensors with >= 2 dims;
    biases, LayerNorms and LearnedDropout's shift B are not decayed, as in nanoGPT and the
    published Learned Dropout code); see :func:`dropoutlib.train.optimizer_param_groups`.

    The training features (``train_tokens`` ... ``lora``) are described in the module docstring
    of :mod:`dropoutlib.train.config`.
    """

    max_iters: int = 5000
    eval_interval: int = 200
    eval_iters: int = 100
    batch_size: int = 32
    learning_rate: float = 1e-2
    weight_decay: float = 0.01  # torch.optim.AdamW's default, as babyGPT uses it
    weight_decay_rule: str = "all"  # "all" (babyGPT) | "nanogpt" (only tensors with >= 2 dims)
    seed: int = 42
    device: str = "auto"  # "auto" (cuda, then mps, then cpu) or a torch device string
    dtype: str = "auto"  # "auto" | "float32" | "bfloat16" | "float16" (autocast on CUDA)
    compile: bool = False
    checkpoint_interval: int = 500  # steps between checkpoints; 0 = none
    prompts: tuple[str, ...] = ()
    max_new_tokens: int = 100
    penalty: str | None = "squared"
    penalty_coeff: float = 0.1
    penalty_schedule: dict | None = None
    # --- training features (each off at its default) ---
    train_tokens: int | None = None  # the first N tokens of the training split only
    label_smoothing: float = 0.0  # F.cross_entropy's, in the training loss
    grad_clip: float = 0.0  # max global gradient norm; 0 = no clipping
    dropout_schedule: dict | None = None  # {"name": "linear", "p": 0.1, "every": "epoch"}
    r_drop_alpha: float = 0.0  # R-Drop's weight of the symmetric KL of two dropout passes
    token_mask_rate: float = 0.0  # probability of replacing an input token by a random one
    init_from: str | None = None  # key of a finished run to start from (fine-tuning)
    lora: dict | None = None  # {"r", "alpha", "dropout", "target_modules"} (PEFT LoRA)

    def __post_init__(self):
        self.max_iters = _check_int(self.max_iters, "max_iters", 0)
        self.eval_interval = _check_int(self.eval_interval, "eval_interval", 1)
        self.eval_iters = _check_int(self.eval_iters, "eval_iters", 1)
        self.batch_size = _check_int(self.batch_size, "batch_size", 1)
        self.learning_rate = _check_real(self.learning_rate, "learning_rate", positive=True)
        self.weight_decay = _check_real(self.weight_decay, "weight_decay")
        if self.weight_decay_rule not in DECAY_RULES:
            raise ValueError(
                f"weight_decay_rule must be one of {DECAY_RULES}, got {self.weight_decay_rule!r}"
            )
        self.seed = _check_int(self.seed, "seed", 0)
        if not isinstance(self.device, str):
            raise ValueError(
                f"device must be a string such as 'auto' or 'cpu', got {self.device!r}"
            )
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {DTYPES}, got {self.dtype!r}")
        if not isinstance(self.compile, bool):
            raise ValueError(f"compile must be True or False, got {self.compile!r}")
        self.checkpoint_interval = _check_int(self.checkpoint_interval, "checkpoint_interval", 0)
        if isinstance(self.prompts, str) or not all(isinstance(p, str) for p in self.prompts):
            raise ValueError(f"prompts must be a sequence of strings, got {self.prompts!r}")
        if any(p == "" for p in self.prompts):
            raise ValueError("prompts must be non-empty strings (generation needs a context)")
        self.prompts = tuple(self.prompts)
        self.max_new_tokens = _check_int(self.max_new_tokens, "max_new_tokens", 0)
        if self.penalty is not None and not isinstance(self.penalty, str):
            raise ValueError(f"penalty must be a penalty name or None, got {self.penalty!r}")
        self.penalty_coeff = _check_real(self.penalty_coeff, "penalty_coeff")
        if self.penalty_schedule is not None and not isinstance(self.penalty_schedule, dict):
            raise ValueError(
                f"penalty_schedule must be a dict or None, got {self.penalty_schedule!r}"
            )
        self._check_features()

    def _check_features(self) -> None:
        if self.train_tokens is not None:
            self.train_tokens = _check_int(self.train_tokens, "train_tokens", 2)
        self.label_smoothing = check_p(self.label_smoothing, "label_smoothing", allow_one=False)
        self.grad_clip = _check_real(self.grad_clip, "grad_clip")
        if self.dropout_schedule is not None:
            make_schedule(self.dropout_schedule)  # raises on a bad spec
            self.dropout_schedule = dict(self.dropout_schedule)
        self.r_drop_alpha = _check_real(self.r_drop_alpha, "r_drop_alpha")
        self.token_mask_rate = check_p(self.token_mask_rate, "token_mask_rate", allow_one=False)
        if self.init_from is not None:
            key = self.init_from
            if (
                not isinstance(key, str)
                or len(key) < 8
                or any(c not in "0123456789abcdef" for c in key)
            ):
                raise ValueError(
                    "init_from must be the key of a finished run (its hex sha256, or at least "
                    f"its first 8 characters), got {key!r}"
                )
        if self.lora is not None:
            self.lora = _check_lora(self.lora)

    @classmethod
    def v10(cls, **overrides) -> TrainConfig:
        """babyGPT v10: lr 1e-2, batch 32, 5000 steps, eval every 200 over 100 batches, seed 42,
        the prompts 春江 and 往事 with 100 new tokens each."""
        return cls(**{"prompts": ("春江", "往事"), "max_new_tokens": 100, **overrides})

    @classmethod
    def v11(cls, **overrides) -> TrainConfig:
        """babyGPT v11 (the scale-up): as :meth:`v10` with lr 3e-4 and batch 64."""
        return cls.v10(**{"learning_rate": 3e-4, "batch_size": 64, **overrides})

    @classmethod
    def gpt(cls, **overrides) -> TrainConfig:
        """Karpathy's gpt.py: lr 3e-4, batch 64, 5000 steps, eval every 500 over 200 batches,
        seed 1337; samples start from a newline (gpt.py starts from token 0, which is "\\n")."""
        base = dict(
            learning_rate=3e-4,
            batch_size=64,
            eval_interval=500,
            eval_iters=200,
            seed=1337,
            prompts=("\n",),
            max_new_tokens=500,
        )
        return cls(**{**base, **overrides})

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["prompts"] = list(self.prompts)
        if d["lora"] is not None:
            d["lora"] = dict(d["lora"], target_modules=list(d["lora"]["target_modules"]))
        return d

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        check_known_fields(cls, d)
        d = dict(d)
        if "prompts" in d:
            d["prompts"] = tuple(d["prompts"])
        return cls(**d)


def model_config_dict(model_config) -> dict:
    """A GPTConfig as a plain dict (what run keys and results hold)."""
    if not dataclasses.is_dataclass(model_config) or isinstance(model_config, type):
        raise ValueError(
            f"model_config must be a GPTConfig instance, got {type(model_config).__name__}"
        )
    return dataclasses.asdict(model_config)


def model_config_from_dict(d: dict):
    from dropoutlib.model import GPTConfig

    return GPTConfig.from_dict(d)
