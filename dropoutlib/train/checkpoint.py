"""Checkpoints: everything a killed run needs to continue as if it had never stopped.

Written every ``checkpoint_interval`` steps, atomically (temporary file + ``os.replace``):
weights, optimizer, grad scaler, dropout scheduler, every RNG state (per rank), step, history and
timers. A run started again resumes from it and ends with exactly the losses and weights of an
uninterrupted run.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch

from dropoutlib._io import atomic_write
from dropoutlib.train.store import CacheWarning

__all__ = ["rng_state", "set_rng_state", "read_checkpoint", "write_checkpoint"]


def rng_state(device: torch.device, generators: dict[str, torch.Generator]) -> dict:
    """The global torch RNG (dropout masks), the device's RNG and the run's own generators."""
    state = {"torch": torch.get_rng_state(), **{k: g.get_state() for k, g in generators.items()}}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    elif device.type == "mps":
        state["mps"] = torch.mps.get_rng_state()
    return state


def set_rng_state(state: dict, device: torch.device, generators: dict[str, torch.Generator]):
    torch.set_rng_state(state["torch"])
    for name, gen in generators.items():
        gen.set_state(state[name])
    if device.type == "cuda":
        torch.cuda.set_rng_state(state["cuda"], device)
    elif device.type == "mps":
        torch.mps.set_rng_state(state["mps"])


def read_checkpoint(path: Path, key: str) -> dict | None:
    """The checkpoint at ``path`` if it is intact and belongs to run ``key``; else None (with a
    :class:`CacheWarning` when a file was there but unusable)."""
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


def write_checkpoint(path: Path, ckpt: dict) -> None:
    atomic_write(path, lambda f: torch.save(ckpt, f))
