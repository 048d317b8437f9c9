"""Training babyGPT: the loop, evaluation, checkpoints, the run cache and data parallelism.

The loop is babyGPT v10's (and Karpathy's gpt.py's): AdamW with PyTorch's defaults, a constant
learning rate, no gradient clipping, random windows of the corpus as batches, and an estimate of
the train and validation loss every ``eval_interval`` steps averaged over ``eval_iters`` batches
per split, with the model in eval mode so that every dropout site is off. Around it:

* **Reproducible randomness.** Three independent streams: the weights are initialised from
  ``seed``; dropout masks come from the global torch RNG, reseeded after initialisation; training
  batches come from their own ``torch.Generator``. Evaluation batches come from a generator that
  is reseeded identically at every evaluation, so it never perturbs training and every run with
  the same seed (dropout 0.2 or 0.0) is scored on the same batches.
* **Checkpoints** every ``checkpoint_interval`` steps, written atomically (temporary file +
  ``os.replace``): weights, optimizer, grad scaler, every RNG state, step and history. A killed
  run started again resumes and ends with exactly the losses of an uninterrupted run.
* **A run cache.** A finished run is stored under a key, the sha256 of everything that determines
  it (model config, train config, corpus and its checksum, device type, library version). Asking
  again returns the stored :class:`RunResult` without training; the Russian and Chinese editions
  of the book reuse the English runs this way. Entries carry a checksum; a damaged one is
  reported with a :class:`CacheWarning` and the run is redone.
* **Devices.** ``device="auto"`` picks CUDA, then MPS, then the CPU. On CUDA the forward pass runs
  under bf16 autocast where the GPU supports bf16, otherwise fp16 with a gradient scaler (Colab's
  T4); ``compile=True`` wraps the model in ``torch.compile``.
* **Data parallel.** Under ``torchrun --nproc_per_node=N`` each process is one rank of a DDP run
  (gloo on the CPU, nccl on GPUs): identical initial weights, different dropout masks and batches
  (their seeds are offset by the rank), gradients averaged by DDP, losses averaged over ranks,
  and only rank 0 writes checkpoints, cache entries and results.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import functools
import hashlib
import json
import math
import numbers
import os
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from dropoutlib._base import check_known_fields
from dropoutlib._io import atomic_write

__all__ = [
    "CacheWarning",
    "RunResult",
    "TrainConfig",
    "amp_settings",
    "optimizer_param_groups",
    "cache_dir",
    "estimate_loss",
    "load_run",
    "resolve_device",
    "run_key",
    "stream_seed",
    "train",
    "vocab_size",
]

CACHE_FORMAT = 1
_DTYPES = ("auto", "float32", "bfloat16", "float16")
# TrainConfig fields that do not change what a run computes, left out of the run key.
_NOT_IN_KEY = ("checkpoint_interval", "device", "dtype")
# Which parameters AdamW decays: "all" (babyGPT: AdamW over model.parameters()) or "nanogpt"
# (only tensors with >= 2 dims: nanoGPT's and the Learned Dropout code's rule).
DECAY_RULES = ("all", "nanogpt")


class CacheWarning(UserWarning):
    """A cache entry or checkpoint was damaged or did not belong to the run; it was not used."""


# --- configuration ---------------------------------------------------------------------------


def _check_int(value, name: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


def _check_positive_float(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return float(value)


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
    published Learned Dropout code); see :func:`optimizer_param_groups`.
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

    def __post_init__(self):
        self.max_iters = _check_int(self.max_iters, "max_iters", 0)
        self.eval_interval = _check_int(self.eval_interval, "eval_interval", 1)
        self.eval_iters = _check_int(self.eval_iters, "eval_iters", 1)
        self.batch_size = _check_int(self.batch_size, "batch_size", 1)
        self.learning_rate = _check_positive_float(self.learning_rate, "learning_rate")
        if isinstance(self.weight_decay, bool) or not isinstance(self.weight_decay, numbers.Real):
            raise ValueError(f"weight_decay must be a number >= 0, got {self.weight_decay!r}")
        if not math.isfinite(self.weight_decay) or self.weight_decay < 0:
            raise ValueError(f"weight_decay must be a number >= 0, got {self.weight_decay!r}")
        self.weight_decay = float(self.weight_decay)
        if self.weight_decay_rule not in DECAY_RULES:
            raise ValueError(
                f"weight_decay_rule must be one of {DECAY_RULES}, got {self.weight_decay_rule!r}"
            )
        self.seed = _check_int(self.seed, "seed", 0)
        if not isinstance(self.device, str):
            raise ValueError(
                f"device must be a string such as 'auto' or 'cpu', got {self.device!r}"
            )
        if self.dtype not in _DTYPES:
            raise ValueError(f"dtype must be one of {_DTYPES}, got {self.dtype!r}")
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
        if isinstance(self.penalty_coeff, bool) or not isinstance(self.penalty_coeff, numbers.Real):
            raise ValueError(f"penalty_coeff must be a number >= 0, got {self.penalty_coeff!r}")
        if not math.isfinite(self.penalty_coeff) or self.penalty_coeff < 0:
            raise ValueError(f"penalty_coeff must be a number >= 0, got {self.penalty_coeff!r}")
        self.penalty_coeff = float(self.penalty_coeff)
        if self.penalty_schedule is not None and not isinstance(self.penalty_schedule, dict):
            raise ValueError(
                f"penalty_schedule must be a dict or None, got {self.penalty_schedule!r}"
            )

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
        return d

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        check_known_fields(cls, d)
        d = dict(d)
        if "prompts" in d:
            d["prompts"] = tuple(d["prompts"])
        return cls(**d)


def _model_config_dict(model_config) -> dict:
    if not dataclasses.is_dataclass(model_config) or isinstance(model_config, type):
        raise ValueError(
            f"model_config must be a GPTConfig instance, got {type(model_config).__name__}"
        )
    return dataclasses.asdict(model_config)


def _model_config_from_dict(d: dict):
    from dropoutlib.model import GPTConfig

    return GPTConfig.from_dict(d)


# --- devices and precision -------------------------------------------------------------------


def resolve_device(device: str = "auto", local_rank: int = 0) -> torch.device:
    """``"auto"`` -> ``cuda`` if available, else ``mps`` if available, else ``cpu``; any other
    string is parsed by ``torch.device`` and must be available here. Under DDP on CUDA each rank
    takes GPU ``local_rank``."""
    if device == "auto":
        if torch.cuda.is_available():
            device = "cuda"
        elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            device = "mps"
        else:
            device = "cpu"
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(
            f"device must be 'auto', 'cpu', 'cuda[:i]' or 'mps', got {device!r}"
        ) from err
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"device={device!r} but CUDA is not available here; use 'auto' or 'cpu'"
            )
        if dev.index is None:
            dev = torch.device("cuda", local_rank)
    elif dev.type == "mps":
        if getattr(torch.backends, "mps", None) is None or not torch.backends.mps.is_available():
            raise ValueError(
                f"device={device!r} but MPS is not available here; use 'auto' or 'cpu'"
            )
    elif dev.type != "cpu":
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda[:i]' or 'mps', got {device!r}")
    return dev


def amp_settings(device_type: str, dtype: str = "auto") -> tuple[torch.dtype | None, bool]:
    """Mixed precision for a device: ``(autocast dtype or None, use a GradScaler)``.

    On CUDA ``"auto"`` is bf16 where ``torch.cuda.is_bf16_supported()`` (Ampere and later), else
    fp16, which needs loss scaling because its 5-bit exponent underflows small gradients. On the
    CPU and MPS ``"auto"`` is plain float32; ``"bfloat16"`` is allowed there (CPU autocast),
    ``"float16"`` is not.
    """
    if dtype not in _DTYPES:
        raise ValueError(f"dtype must be one of {_DTYPES}, got {dtype!r}")
    if dtype == "float32":
        return None, False
    if device_type == "cuda":
        if dtype == "auto":
            dtype = "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
        if dtype == "bfloat16":
            if not torch.cuda.is_bf16_supported():
                raise ValueError(
                    "dtype='bfloat16' but this GPU has no bf16; use 'auto' or 'float16'"
                )
            return torch.bfloat16, False
        return torch.float16, True
    if dtype == "auto":
        return None, False
    if dtype == "bfloat16" and device_type == "cpu":
        return torch.bfloat16, False
    raise ValueError(
        f"dtype={dtype!r} is not supported on {device_type!r}; use 'auto' or 'float32'"
    )


def _autocast(device: torch.device, amp_dtype: torch.dtype | None):
    if amp_dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=amp_dtype)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    if device.type == "cpu":
        import platform

        name = platform.processor() or platform.machine()
        with contextlib.suppress(OSError):
            for line in Path("/proc/cpuinfo").read_text().splitlines():
                if line.startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                    break
        return f"cpu ({name}, {os.cpu_count()} cores, {torch.get_num_threads()} threads)"
    return device.type


# --- seeds -----------------------------------------------------------------------------------


def stream_seed(seed: int, stream: str, rank: int = 0) -> int:
    """The seed of one random stream (``"dropout"``, ``"batch"``, ``"eval"``, ``"sample"``) of
    rank ``rank`` in a run seeded with ``seed``: 63 bits of sha256, so streams are unrelated."""
    digest = hashlib.sha256(f"dropoutlib/{seed}/{stream}/{rank}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


# --- the cache -------------------------------------------------------------------------------


def cache_dir() -> Path:
    """Where finished runs are kept: ``$DROPOUTLIB_CACHE``, else
    ``$XDG_CACHE_HOME/dropoutlib/runs``, else ``~/.cache/dropoutlib/runs``."""
    env = os.environ.get("DROPOUTLIB_CACHE")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "dropoutlib" / "runs"


def _canonical(obj) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def run_key(
    model_config,
    train_config: TrainConfig,
    corpus: str,
    *,
    device_type: str = "cpu",
    amp_dtype: torch.dtype | None = None,
    world_size: int = 1,
) -> str:
    """The sha256 naming a run: model config, train config (less checkpointing), corpus name and
    checksum, device type, autocast dtype, number of ranks and dropoutlib's version."""
    from dropoutlib import __version__
    from dropoutlib.data import corpus_sha256

    train = {k: v for k, v in train_config.to_dict().items() if k not in _NOT_IN_KEY}
    if train.get("weight_decay_rule") == "all":
        del train["weight_decay_rule"]  # the default: keys of runs made before the field stay valid
    payload = {
        "model": _model_config_dict(model_config),
        "train": train,
        "corpus": corpus,
        "corpus_sha256": corpus_sha256(corpus),
        "device_type": device_type,
        "amp_dtype": None if amp_dtype is None else str(amp_dtype),
        "world_size": world_size,
        "dropoutlib": __version__,
    }
    return _sha256(_canonical(payload))


# --- results ---------------------------------------------------------------------------------


@dataclass
class RunResult:
    """What a training run produced; JSON round-trips exactly (:meth:`to_json`, :meth:`from_json`).

    ``history`` holds one dict per evaluation: ``step`` (optimizer updates done; 0 is the
    initial model), ``train_loss`` and ``val_loss`` (pure cross-entropy in nats, eval mode), and
    ``mask_stats`` when the model has LearnedDropout. ``tokens_per_sec`` counts training tokens
    over training time (evaluation excluded), summed over ranks.
    """

    key: str
    corpus: str
    corpus_sha256: str
    model_config: dict
    train_config: dict
    history: list[dict]
    num_params: int
    tokens_per_sec: float
    wall_time_s: float
    device: str
    world_size: int
    amp_dtype: str | None
    torch_version: str
    dropoutlib_version: str
    date: str
    samples: dict[str, str] = field(default_factory=dict)
    resumed_at: list[int] = field(default_factory=list)
    weights_sha256: str | None = None
    note: str = field(default="", compare=False)

    @property
    def steps(self) -> list[int]:
        return [h["step"] for h in self.history]

    @property
    def train_losses(self) -> list[float]:
        return [h["train_loss"] for h in self.history]

    @property
    def val_losses(self) -> list[float]:
        return [h["val_loss"] for h in self.history]

    @property
    def final(self) -> dict:
        """The last evaluation (after the last step)."""
        return self.history[-1]

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        del d["note"]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> RunResult:
        names = {f.name for f in dataclasses.fields(cls)} - {"note"}
        missing = sorted(names - set(d))
        if missing:
            raise ValueError(f"not a RunResult: missing fields {missing}")
        return cls(**{k: d[k] for k in names})

    def to_json(self, **kwargs) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, **kwargs)

    @classmethod
    def from_json(cls, text: str) -> RunResult:
        return cls.from_dict(json.loads(text))

    @property
    def run_dir(self) -> Path:
        """The directory of this run in the cache (result.json, model.pt)."""
        return getattr(self, "_run_dir", None) or cache_dir() / self.key

    def load_model(self, device: str | torch.device = "cpu") -> nn.Module:
        """The trained model, in eval mode: the one trained in this process if there is one,
        otherwise rebuilt from the stored weights (checked against ``weights_sha256``)."""
        model = getattr(self, "_model", None)
        if model is not None:
            return model.eval()
        from dropoutlib.model import BabyGPT

        path = self.run_dir / "model.pt"
        if not path.is_file():
            raise FileNotFoundError(f"the weights of run {self.key[:12]} are not at {path}")
        data = path.read_bytes()
        if _sha256(data) != self.weights_sha256:
            raise ValueError(f"{path} does not have the sha256 recorded in the run; not used")
        import io

        state = torch.load(io.BytesIO(data), map_location=device, weights_only=True)
        model = BabyGPT(_model_config_from_dict(self.model_config)).to(device)
        model.load_state_dict(state)
        return model.eval()


def _write_entry(path: Path, result: RunResult) -> None:
    body = result.to_dict()
    entry = {"format": CACHE_FORMAT, "sha256": _sha256(_canonical(body)), "result": body}
    text = json.dumps(entry, ensure_ascii=False, indent=1).encode()
    atomic_write(path, lambda f: f.write(text))


def _read_entry(path: Path, key: str | None = None) -> RunResult | None:
    """The verified result at ``path``; None (with a :class:`CacheWarning`) if it is damaged."""
    if not path.is_file():
        return None
    try:
        entry = json.loads(path.read_text(encoding="utf-8"))
        body = entry["result"]
        if entry.get("format") != CACHE_FORMAT:
            raise ValueError(f"format {entry.get('format')!r}, expected {CACHE_FORMAT}")
        if entry["sha256"] != _sha256(_canonical(body)):
            raise ValueError("checksum mismatch")
        if key is not None and body.get("key") != key:
            raise ValueError(f"it belongs to run {str(body.get('key'))[:12]}")
        result = RunResult.from_dict(body)
    except (OSError, ValueError, KeyError, TypeError, UnicodeDecodeError) as err:
        warnings.warn(
            f"ignoring damaged run cache entry {path} ({err}); the run is redone",
            CacheWarning,
            stacklevel=3,
        )
        return None
    result._run_dir = path.parent
    return result


def load_run(path: str | os.PathLike) -> RunResult:
    """Read a stored run (a ``result.json`` or its directory), verifying its checksum."""
    path = Path(path)
    if path.is_dir():
        path = path / "result.json"
    if not path.is_file():
        raise FileNotFoundError(f"no run result at {path}")
    with warnings.catch_warnings():
        warnings.simplefilter("error", CacheWarning)
        try:
            result = _read_entry(path)
        except CacheWarning as err:
            raise ValueError(str(err)) from None
    return result


# --- data --------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=2)
def _corpus(name: str, data_dir: str):
    from dropoutlib.data import CharTokenizer, load_corpus, train_val_split

    text = load_corpus(name)
    tokenizer = CharTokenizer(text)
    data = torch.tensor(tokenizer.encode(text), dtype=torch.long)
    train_data, val_data = train_val_split(data, 0.9)
    return tokenizer, train_data, val_data


def _load_corpus(name: str):
    from dropoutlib.data import data_dir

    return _corpus(name, str(data_dir()))


def vocab_size(corpus: str) -> int:
    """The size of the character vocabulary of ``corpus`` (65 for shakespeare, 6045 for song_ci)."""
    return _load_corpus(corpus)[0].vocab_size


# --- evaluation --------------------------------------------------------------------------------


@torch.no_grad()
def estimate_loss(
    model: nn.Module,
    splits: dict[str, torch.Tensor],
    *,
    block_size: int,
    batch_size: int,
    eval_iters: int,
    generator: torch.Generator,
    device: str | torch.device = "cpu",
    amp_dtype: torch.dtype | None = None,
) -> dict[str, float]:
    """Mean cross-entropy over ``eval_iters`` random batches of each split, babyGPT's
    ``estimate_loss``, with the model in eval mode (every dropout off) and batches drawn from
    ``generator`` (splits in the order given). The model's train/eval mode is restored."""
    from dropoutlib.data import get_batch

    device = torch.device(device)
    was_training = model.training
    model.eval()
    try:
        out = {}
        for name, data in splits.items():
            losses = torch.empty(eval_iters, device=device)
            for k in range(eval_iters):
                x, y = get_batch(data, block_size, batch_size, generator, device)
                with _autocast(device, amp_dtype):
                    _, loss = model(x, y)
                losses[k] = loss.float()
            out[name] = losses.mean().item()
    finally:
        model.train(was_training)
    return out


# --- distributed -------------------------------------------------------------------------------


@dataclass
class _Dist:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    owns_group: bool = False

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def broadcast(self, obj):
        """rank 0's ``obj`` on every rank."""
        if not self.enabled:
            return obj
        box = [obj if self.is_main else None]
        torch.distributed.broadcast_object_list(box, src=0)
        return box[0]

    def gather(self, obj) -> list:
        if not self.enabled:
            return [obj]
        out = [None] * self.world_size
        torch.distributed.all_gather_object(out, obj)
        return out

    def mean(self, values: list[float], device) -> list[float]:
        if not self.enabled:
            return values
        t = torch.tensor(values, dtype=torch.float64, device=device)
        torch.distributed.all_reduce(t)
        return (t / self.world_size).tolist()


def _setup_distributed(device_spec: str) -> _Dist:
    """Join the process group that torchrun describes in the environment (if any)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return _Dist()
    import torch.distributed as dist

    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", rank))
    owns = False
    if not dist.is_initialized():
        use_cuda = device_spec.startswith("cuda") or (
            device_spec == "auto" and torch.cuda.is_available()
        )
        if use_cuda:
            torch.cuda.set_device(local_rank)
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
        owns = True
    return _Dist(rank, dist.get_world_size(), local_rank, owns)


# --- checkpoints -------------------------------------------------------------------------------


def _rng_state(device: torch.device, batch_gen: torch.Generator) -> dict:
    state = {"torch": torch.get_rng_state(), "batch": batch_gen.get_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    elif device.type == "mps":
        state["mps"] = torch.mps.get_rng_state()
    return state


def _set_rng_state(state: dict, device: torch.device, batch_gen: torch.Generator) -> None:
    torch.set_rng_state(state["torch"])
    batch_gen.set_state(state["batch"])
    if device.type == "cuda":
        torch.cuda.set_rng_state(state["cuda"], device)
    elif device.type == "mps":
        torch.mps.set_rng_state(state["mps"])


def _read_checkpoint(path: Path, key: str) -> dict | None:
    if not path.is_file():
        return None
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(ckpt, dict) or ckpt.get("key") != key:
            raise ValueError("it belongs to another run")
    except Exception as err:  # a truncated or foreign file: start again rather than crash
        warnings.warn(
            f"ignoring checkpoint {path} ({err}); training starts from step 0",
            CacheWarning,
            stacklevel=3,
        )
        return None
    return ckpt


# --- training ----------------------------------------------------------------------------------


def _learned_module():
    """dropoutlib.learned, or None while it does not exist (then no model can use it)."""
    try:
        import dropoutlib.learned as learned
    except ModuleNotFoundError as err:
        if err.name != "dropoutlib.learned":
            raise
        return None
    return learned


def _may_skip_parameters(model: nn.Module) -> bool:
    # LayerDrop skips whole blocks in a step: their parameters get no gradient, which DDP must know.
    return any(type(m).__name__ == "LayerDrop" for m in model.modules())


def optimizer_param_groups(model: nn.Module, weight_decay: float, rule: str = "all") -> list[dict]:
    """AdamW parameter groups for ``rule`` (see :attr:`TrainConfig.weight_decay_rule`).

    ``"all"``: one group, every parameter decayed by ``weight_decay`` (what
    ``AdamW(model.parameters(), weight_decay=...)`` does, babyGPT's optimizer). ``"nanogpt"``:
    two groups, ``weight_decay`` for tensors with >= 2 dims (Linear weights, embeddings) and 0
    for the rest (biases, LayerNorm weights, LearnedDropout's shift B), the rule of nanoGPT's
    ``configure_optimizers`` and of the Learned Dropout code. Parameters keep
    ``model.parameters()`` order within a group.
    """
    if rule not in DECAY_RULES:
        raise ValueError(f"rule must be one of {DECAY_RULES}, got {rule!r}")
    params = list(model.parameters())
    if rule == "all":
        return [{"params": params, "weight_decay": weight_decay}]
    return [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]


def train(
    model_config,
    train_config: TrainConfig | None = None,
    corpus: str = "song_ci",
    *,
    cache: bool = True,
    progress: bool = True,
    out_dir: str | os.PathLike | None = None,
    resume: bool = True,
    callback: Callable[[int, nn.Module], None] | None = None,
) -> RunResult:
    """Train a :class:`~dropoutlib.model.BabyGPT` built from ``model_config`` on ``corpus``.

    ``model_config.vocab_size`` must be the corpus's (:func:`vocab_size`). The run lives in
    ``out_dir`` (default: ``cache_dir() / key``): ``checkpoint.pt`` while it trains, then
    ``result.json`` and ``model.pt``. With ``cache=True`` a finished, intact ``result.json`` for
    the same key is returned without training (``cache=False`` trains anyway and overwrites it);
    with ``resume=True`` a checkpoint of the same run is continued. ``progress`` shows a tqdm
    bar (terminal or notebook). ``callback(step, model)``, if given, is called after every
    optimizer step (it must not consume the global RNG if the run is to stay reproducible).
    Run under ``torchrun`` for data parallelism; every rank returns rank 0's result.
    """
    from dropoutlib import __version__
    from dropoutlib.data import CORPORA, corpus_sha256, get_batch
    from dropoutlib.model import BabyGPT

    tc = TrainConfig() if train_config is None else train_config
    if not isinstance(tc, TrainConfig):
        raise ValueError(f"train_config must be a TrainConfig, got {type(tc).__name__}")
    mc_dict = _model_config_dict(model_config)
    if corpus not in CORPORA:
        raise ValueError(f"corpus must be one of {CORPORA}, got {corpus!r}")

    dist_ = _setup_distributed(tc.device)
    restore = contextlib.ExitStack()
    try:
        device = resolve_device(tc.device, dist_.local_rank)
        amp_dtype, use_scaler = amp_settings(device.type, tc.dtype)
        tokenizer, train_data, val_data = _load_corpus(corpus)
        if model_config.vocab_size != tokenizer.vocab_size:
            raise ValueError(
                f"model_config.vocab_size must be the vocabulary size of corpus {corpus!r}, "
                f"{tokenizer.vocab_size}; got {model_config.vocab_size}"
            )
        for prompt in tc.prompts:
            tokenizer.encode(prompt)  # fail now, not after training, on characters it lacks
        key = run_key(
            model_config,
            tc,
            corpus,
            device_type=device.type,
            amp_dtype=amp_dtype,
            world_size=dist_.world_size,
        )
        run_dir = Path(out_dir) if out_dir is not None else cache_dir() / key
        result_path, ckpt_path = run_dir / "result.json", run_dir / "checkpoint.pt"

        # 1. A finished run? (rank 0 looks; everyone gets its answer)
        cached = None
        if cache and dist_.is_main:
            found = _read_entry(result_path, key)
            cached = None if found is None else found.to_dict()
        cached = dist_.broadcast(cached)
        if cached is not None:
            found = RunResult.from_dict(cached)
            found._run_dir = run_dir
            return found

        # 2. Build: identical initial weights on every rank, then per-rank random streams. The
        # caller's global RNG state is given back afterwards (fork_rng).
        cuda_devices = [device.index] if device.type == "cuda" else []
        restore.enter_context(torch.random.fork_rng(devices=cuda_devices))
        torch.manual_seed(tc.seed)
        raw_model = BabyGPT(model_config)
        num_params = sum(p.numel() for p in raw_model.parameters())
        raw_model.to(device)
        optimizer = torch.optim.AdamW(
            optimizer_param_groups(raw_model, tc.weight_decay, tc.weight_decay_rule),
            lr=tc.learning_rate,
        )
        scaler = torch.amp.GradScaler(device.type, enabled=use_scaler)
        torch.manual_seed(stream_seed(tc.seed, "dropout", dist_.rank))
        batch_gen = torch.Generator().manual_seed(stream_seed(tc.seed, "batch", dist_.rank))
        learned = _learned_module()
        if learned is None or not learned.has_learned_dropout(raw_model):
            learned = None

        start, history, resumed_at = 0, [], []
        wall_before, train_time, train_tokens = 0.0, 0.0, 0

        # 3. Resume from a checkpoint of this run (rank 0 checks it; every rank reads it).
        ckpt_ok = False
        if resume and dist_.is_main:
            ckpt_ok = _read_checkpoint(ckpt_path, key) is not None
        if dist_.broadcast(ckpt_ok):
            ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True)
            raw_model.load_state_dict(ckpt["model"])
            optimizer.load_state_dict(ckpt["optimizer"])
            scaler.load_state_dict(ckpt["scaler"])
            _set_rng_state(ckpt["rng"][dist_.rank], device, batch_gen)
            start, history = ckpt["step"], ckpt["history"]
            resumed_at = ckpt["resumed_at"] + [start]
            wall_before, train_time = ckpt["wall_time_s"], ckpt["train_time_s"]
            train_tokens = ckpt["train_tokens"]
            del ckpt

        model: nn.Module = raw_model
        if dist_.enabled:
            from torch.nn.parallel import DistributedDataParallel as DDP

            model = DDP(
                raw_model,
                device_ids=[device.index] if device.type == "cuda" else None,
                broadcast_buffers=False,
                find_unused_parameters=_may_skip_parameters(raw_model),
            )
        eval_model: nn.Module = raw_model
        if tc.compile:
            model = torch.compile(model)
            eval_model = model if not dist_.enabled else torch.compile(raw_model)

        block_size = model_config.block_size
        tokens_per_step = tc.batch_size * block_size * dist_.world_size

        def evaluate(step: int, stats: dict | None) -> None:
            gen = torch.Generator().manual_seed(stream_seed(tc.seed, "eval", dist_.rank))
            losses = estimate_loss(
                eval_model,
                {"train": train_data, "val": val_data},
                block_size=block_size,
                batch_size=tc.batch_size,
                eval_iters=tc.eval_iters,
                generator=gen,
                device=device,
                amp_dtype=amp_dtype,
            )
            tr, va = dist_.mean([losses["train"], losses["val"]], device)
            entry = {"step": step, "train_loss": tr, "val_loss": va}
            if stats:
                entry["mask_stats"] = stats
            history.append(entry)

        def save_checkpoint(step: int, wall: float) -> None:
            states = dist_.gather(_rng_state(device, batch_gen))
            if not dist_.is_main:
                return
            ckpt = {
                "key": key,
                "step": step,
                "model": raw_model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scaler": scaler.state_dict(),
                "rng": states,
                "history": history,
                "resumed_at": resumed_at,
                "wall_time_s": wall,
                "train_time_s": train_time,
                "train_tokens": train_tokens,
            }
            atomic_write(ckpt_path, lambda f: torch.save(ckpt, f))

        # 4. The loop. Step s = optimizer updates done; evaluations at 0, every eval_interval, end.
        bar = None
        if progress and dist_.is_main:
            from tqdm.auto import tqdm

            bar = tqdm(total=tc.max_iters, initial=start, desc=f"{corpus} {key[:8]}", unit="step")
        t_start = time.perf_counter()
        raw_model.train()
        if start == 0:
            evaluate(0, None)
        t_train = time.perf_counter()
        for step in range(start + 1, tc.max_iters + 1):
            x, y = get_batch(train_data, block_size, tc.batch_size, batch_gen, device)
            with _autocast(device, amp_dtype):
                _, loss = model(x, y)
                if learned is not None and tc.penalty is not None:
                    loss = loss + learned.penalty_loss(
                        raw_model,
                        step - 1,
                        kind=tc.penalty,
                        coeff=tc.penalty_coeff,
                        schedule=tc.penalty_schedule,
                    )
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            train_tokens += tokens_per_step
            if callback is not None:
                callback(step, raw_model)

            do_eval = step % tc.eval_interval == 0 or step == tc.max_iters
            do_ckpt = (
                tc.checkpoint_interval > 0
                and step % tc.checkpoint_interval == 0
                and step < tc.max_iters
            )
            if do_eval or do_ckpt:
                _sync(device)
                train_time += time.perf_counter() - t_train
            if do_eval:
                stats = learned.mask_stats(raw_model) if learned is not None else None
                evaluate(step, stats)
                if bar is not None:
                    bar.set_postfix(
                        train=f"{history[-1]['train_loss']:.4f}",
                        val=f"{history[-1]['val_loss']:.4f}",
                    )
            if do_ckpt:
                save_checkpoint(step, wall_before + time.perf_counter() - t_start)
            if do_eval or do_ckpt:
                t_train = time.perf_counter()
            if bar is not None:
                bar.update(1)
        if bar is not None:
            bar.close()
        wall = wall_before + time.perf_counter() - t_start

        # 5. Samples, then the result (rank 0 writes, everyone returns rank 0's).
        samples = {}
        if dist_.is_main and tc.prompts and tc.max_new_tokens > 0:
            samples = _generate_samples(raw_model, tokenizer, tc, device)
        result = None
        if dist_.is_main:
            state = {k: v.detach().cpu() for k, v in raw_model.state_dict().items()}
            import io

            buf = io.BytesIO()
            torch.save(state, buf)
            weights = buf.getvalue()
            result = RunResult(
                key=key,
                corpus=corpus,
                corpus_sha256=corpus_sha256(corpus),
                model_config=mc_dict,
                train_config=tc.to_dict(),
                history=history,
                num_params=num_params,
                tokens_per_sec=train_tokens / train_time if train_time > 0 else 0.0,
                wall_time_s=wall,
                device=_device_name(device),
                world_size=dist_.world_size,
                amp_dtype=None if amp_dtype is None else str(amp_dtype).replace("torch.", ""),
                torch_version=torch.__version__,
                dropoutlib_version=__version__,
                date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                samples=samples,
                resumed_at=resumed_at,
                weights_sha256=_sha256(weights),
            )
            atomic_write(run_dir / "model.pt", lambda f: f.write(weights))
            _write_entry(result_path, result)
            ckpt_path.unlink(missing_ok=True)
        result = RunResult.from_dict(dist_.broadcast(None if result is None else result.to_dict()))
        result._run_dir = run_dir
        result._model = raw_model
        return result
    finally:
        restore.close()
        if dist_.owns_group:
            torch.distributed.destroy_process_group()


def _generate_samples(model: nn.Module, tokenizer, tc: TrainConfig, device) -> dict[str, str]:
    """Text continuing each prompt, in eval mode, from a sampling generator of its own (the
    training RNG is untouched)."""
    generator = torch.Generator(device=device).manual_seed(stream_seed(tc.seed, "sample"))
    samples = {}
    for prompt in tc.prompts:
        idx = torch.tensor([tokenizer.encode(prompt)], dtype=torch.long, device=device)
        out = model.generate(idx, tc.max_new_tokens, generator=generator)
        samples[prompt] = tokenizer.decode(out[0].tolist())
    return samples
