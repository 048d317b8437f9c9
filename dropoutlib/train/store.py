"""The run store: where finished runs live, what names them, and how they are read back.

A finished run is stored under a key, the sha256 of everything that determines what it computes:
model config, train config (less the fields that do not change results), corpus and its
checksum, device type, autocast dtype, number of ranks, dropoutlib's version and
:data:`RESULTS_VERSION`. Asking again returns the stored :class:`RunResult` without training; the
Russian and Chinese editions of the book reuse the English runs this way. Entries carry a
checksum; a damaged one is reported with a :class:`CacheWarning` and the run is redone.

**Code changes.** The key cannot hash the code, so :data:`RESULTS_VERSION` stands for it: bump it
whenever a change to the library alters what a run computes (the model, the loop, the data, the
evaluation). ``tests/test_golden.py`` trains fixed smoke runs and compares them with
``tests/golden_runs.json``; when the code changes their results it fails and says to bump the
version and re-record (``python -m dropoutlib.train.golden --write``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from dropoutlib._io import atomic_write
from dropoutlib.train.config import TrainConfig, model_config_dict, model_config_from_dict

__all__ = [
    "CACHE_FORMAT",
    "RESULTS_VERSION",
    "CacheWarning",
    "RunResult",
    "cache_dir",
    "find_run",
    "load_run",
    "run_key",
]

CACHE_FORMAT = 1
# What the code computes, as a number: bump it when a change alters any run's results (see the
# module docstring). 1 was the version before this constant existed; 2 added epochs to the
# history, the training features and the thread count.
RESULTS_VERSION = 2
# TrainConfig fields that do not change what a run computes, left out of the run key.
NOT_IN_KEY = ("checkpoint_interval", "device", "dtype")
# Fields left out of the key while they hold their default ("off"): adding such a field never
# renames the runs made before it existed.
OMITTED_AT_DEFAULT = (
    "weight_decay_rule",
    "train_tokens",
    "label_smoothing",
    "grad_clip",
    "dropout_schedule",
    "r_drop_alpha",
    "token_mask_rate",
    "init_from",
    "lora",
)


class CacheWarning(UserWarning):
    """A cache entry or checkpoint was damaged or did not belong to the run; it was not used."""


def cache_dir() -> Path:
    """Where finished runs are kept: ``$DROPOUTLIB_CACHE``, else
    ``$XDG_CACHE_HOME/dropoutlib/runs``, else ``~/.cache/dropoutlib/runs``."""
    env = os.environ.get("DROPOUTLIB_CACHE")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "dropoutlib" / "runs"


def canonical(obj) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sha256(data: bytes) -> str:
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
    """The sha256 naming a run: model config, train config (less checkpointing, device and
    dtype, and less the feature fields at their defaults), corpus name and checksum, device
    type, autocast dtype, number of ranks, dropoutlib's version and :data:`RESULTS_VERSION`.
    A fine-tuning run's ``init_from`` is its parent's key, so the parent is part of it."""
    from dropoutlib import __version__
    from dropoutlib.data import corpus_sha256

    defaults = TrainConfig().to_dict()
    train = {
        k: v
        for k, v in train_config.to_dict().items()
        if k not in NOT_IN_KEY and not (k in OMITTED_AT_DEFAULT and v == defaults[k])
    }
    payload = {
        "model": model_config_dict(model_config),
        "train": train,
        "corpus": corpus,
        "corpus_sha256": corpus_sha256(corpus),
        "device_type": device_type,
        "amp_dtype": None if amp_dtype is None else str(amp_dtype),
        "world_size": world_size,
        "dropoutlib": __version__,
        "results": RESULTS_VERSION,
    }
    return sha256(canonical(payload))


@dataclass
class RunResult:
    """What a training run produced; JSON round-trips exactly (:meth:`to_json`, :meth:`from_json`).

    ``history`` holds one dict per evaluation: ``step`` (optimizer updates done; 0 is the
    initial model), ``epoch`` (passes over the training tokens so far), ``train_loss`` and
    ``val_loss`` (pure cross-entropy in nats, eval mode), ``dropout_p`` (the scheduled rate in
    force, with a ``dropout_schedule``) and ``mask_stats`` (with LearnedDropout).
    ``tokens_per_sec`` counts training tokens over training time (evaluation excluded), summed
    over ranks. ``trainable_params`` is less than ``num_params`` for LoRA runs. ``num_threads``
    is torch's intra-op thread count, which changes the last digits of a CPU run.
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
    trainable_params: int | None = None
    num_threads: int | None = None
    results_version: int = 1
    train_tokens: int | None = None  # tokens in the training data actually used
    note: str = field(default="", compare=False)

    @property
    def steps(self) -> list[int]:
        return [h["step"] for h in self.history]

    @property
    def epochs(self) -> list[float]:
        return [h.get("epoch", float("nan")) for h in self.history]

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

    @property
    def best(self) -> dict:
        """The evaluation with the lowest validation loss (the first, on a tie)."""
        return min(self.history, key=lambda h: h["val_loss"])

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        del d["note"]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> RunResult:
        """Inverse of :meth:`to_dict`; fields added after a result was written take their
        defaults, fields it must have are checked."""
        fields = {f.name: f for f in dataclasses.fields(cls) if f.name != "note"}
        required = {
            name
            for name, f in fields.items()
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        }
        missing = sorted(required - set(d))
        if missing:
            raise ValueError(f"not a RunResult: missing fields {missing}")
        return cls(**{k: d[k] for k in fields if k in d})

    def to_json(self, **kwargs) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, **kwargs)

    @classmethod
    def from_json(cls, text: str) -> RunResult:
        return cls.from_dict(json.loads(text))

    @property
    def run_dir(self) -> Path:
        """The directory of this run in the cache (result.json, model.pt)."""
        return getattr(self, "_run_dir", None) or cache_dir() / self.key

    def load_state_dict(self, device: str | torch.device = "cpu") -> dict:
        """The stored weights (checked against ``weights_sha256``)."""
        path = self.run_dir / "model.pt"
        if not path.is_file():
            raise FileNotFoundError(f"the weights of run {self.key[:12]} are not at {path}")
        data = path.read_bytes()
        if sha256(data) != self.weights_sha256:
            raise ValueError(f"{path} does not have the sha256 recorded in the run; not used")
        return torch.load(io.BytesIO(data), map_location=device, weights_only=True)

    def load_model(self, device: str | torch.device = "cpu") -> nn.Module:
        """The trained model, in eval mode: the one trained in this process if there is one,
        otherwise rebuilt from the stored weights (checked against ``weights_sha256``); a LoRA
        run comes back with its adapters (:func:`dropoutlib.train.finetune.build_model`)."""
        model = getattr(self, "_model", None)
        if model is not None:
            return model.eval()
        from dropoutlib.train.finetune import build_model

        config = model_config_from_dict(self.model_config)
        model = build_model(config, self.train_config.get("lora")).to(device)
        model.load_state_dict(self.load_state_dict(device))
        return model.eval()


def write_entry(path: Path, result: RunResult) -> None:
    body = result.to_dict()
    entry = {"format": CACHE_FORMAT, "sha256": sha256(canonical(body)), "result": body}
    text = json.dumps(entry, ensure_ascii=False, indent=1).encode()
    atomic_write(path, lambda f: f.write(text))


def read_entry(path: Path, key: str | None = None) -> RunResult | None:
    """The verified result at ``path``; None (with a :class:`CacheWarning`) if it is damaged."""
    if not path.is_file():
        return None
    try:
        entry = json.loads(path.read_text(encoding="utf-8"))
        body = entry["result"]
        if entry.get("format") != CACHE_FORMAT:
            raise ValueError(f"format {entry.get('format')!r}, expected {CACHE_FORMAT}")
        if entry["sha256"] != sha256(canonical(body)):
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
            result = read_entry(path)
        except CacheWarning as err:
            raise ValueError(str(err)) from None
    return result


def find_run(key: str) -> RunResult:
    """The finished run in the cache whose key is ``key`` or starts with it (a unique prefix of
    at least 8 characters); a clear error when there is none or the prefix is ambiguous."""
    root = cache_dir()
    matches = sorted(p.parent for p in root.glob(f"{key}*/result.json")) if root.is_dir() else []
    if not matches:
        raise ValueError(
            f"init_from: no finished run with key {key!r} in the run cache {root}. Train the "
            "parent run first (the same train() call or `python -m dropoutlib train ...` that "
            "made it, or the experiment that lists it); its key is printed when it finishes"
        )
    if len(matches) > 1:
        names = ", ".join(p.name[:16] for p in matches)
        raise ValueError(f"init_from: key prefix {key!r} matches several runs ({names}); give more")
    return load_run(matches[0])
