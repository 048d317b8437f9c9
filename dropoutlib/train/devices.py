"""Devices and precision: which device a run uses, and its autocast dtype.

``device="auto"`` picks CUDA, then MPS, then the CPU. On CUDA the forward pass runs under bf16
autocast where the GPU supports bf16, otherwise fp16 with a gradient scaler (Colab's T4).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import torch

from dropoutlib.train.config import DTYPES

__all__ = ["resolve_device", "amp_settings", "autocast", "synchronize", "device_name"]


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
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {DTYPES}, got {dtype!r}")
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


def autocast(device: torch.device, amp_dtype: torch.dtype | None):
    """``torch.autocast`` for ``amp_dtype``, or a no-op context when it is None."""
    if amp_dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=amp_dtype)


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (so wall-clock timings are honest)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def device_name(device: torch.device) -> str:
    """A readable name: ``cuda (NVIDIA H100 ...)``, ``cpu (AMD EPYC, 2 cores, 1 threads)``."""
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
