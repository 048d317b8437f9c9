"""Seeded, low-memory dropout: keep a seed for backward instead of the mask.

Ordinary dropout keeps its mask (or its scaled noise) alive until backward, because the gradient
of y = x * m / (1 - p) is dy * m / (1 - p). PyTorch's fused CUDA kernel stores it as one byte per
element; on the CPU the composite path keeps a float noise tensor, four bytes per float32 element.
The Triton tutorial "Low-Memory Dropout" and FlashAttention (Dao et al., 2022, arXiv:2205.14135)
keep only the random generator's seed and draw the same mask again in backward:

    forward:   m = Bernoulli(1 - p) drawn from seed,   y  = x * m / (1 - p)
    backward:  m = the same draw from the same seed,   dx = dy * m / (1 - p)

That trades a second pass of the random number generator for the memory of the mask. The output
has the distribution of inverted dropout (Srivastava et al., 2014): each element is kept with
probability 1 - p (to 2**-31 on the PyTorch path, 2**-24 on the Triton path) and E[y] = x.

On the CPU (and on CUDA without Triton) the mask comes from PyTorch ops with a
``torch.Generator`` seeded for each call; on CUDA with Triton installed a Triton kernel draws it
with Philox (``tl.randint4x``), fusing mask, multiply and scale into one pass. The two paths draw
different masks for the same seed; each is reproducible on its own.
"""

from __future__ import annotations

import contextlib
import numbers

import torch

from dropoutlib._base import DropoutModule, check_p

try:  # Triton is optional: only the CUDA fast path needs it.
    import triton
    import triton.language as tl
except (ImportError, OSError):  # not installed, or installed without a usable runtime
    triton = None
    tl = None

__all__ = ["seeded_dropout", "SeededDropout"]

SEED_MAX = 2**63 - 1
_INT31 = 2**31  # random_() on int32 draws uniformly from [0, 2**31)


def _check_seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise ValueError(
            f"seed must be an int in [0, {SEED_MAX}] or None, "
            f"got {seed!r} of type {type(seed).__name__}"
        )
    seed = int(seed)
    if not 0 <= seed <= SEED_MAX:
        raise ValueError(f"seed must be an int in [0, {SEED_MAX}] or None, got {seed}")
    return seed


def _fresh_seed() -> int:
    # One draw from torch's default CPU generator, so torch.manual_seed makes runs repeatable.
    return int(torch.randint(0, SEED_MAX, (), dtype=torch.int64))


def _use_triton(x: torch.Tensor) -> bool:
    return triton is not None and x.is_cuda


def _uniform_int31(shape, seed: int, device) -> torch.Tensor:
    """int32 numbers uniform on [0, 2**31) from a ``torch.Generator`` seeded with ``seed``."""
    generator = torch.Generator(device=device)
    generator.manual_seed(seed)
    return torch.empty(shape, dtype=torch.int32, device=device).random_(generator=generator)


def _last_kept(p: float) -> int:
    # Keep r <= t - 1 with t = round((1 - p) * 2**31): probability t / 2**31 = 1 - p to 2**-32.
    # Written as r <= t - 1, not r < t, because t - 1 lies in [-1, 2**31 - 1] and so fits the
    # int32 comparison, while t itself reaches 2**31 for tiny p (and would wrap around).
    return round((1.0 - p) * _INT31) - 1


def keep_mask(shape, p: float, seed: int, device="cpu") -> torch.Tensor:
    """The boolean keep-mask that the PyTorch-ops path draws for ``(shape, p, seed)``.

    Uniform 31-bit integers r from a ``torch.Generator`` seeded with ``seed``; keep where
    r < round((1 - p) * 2**31). The mask depends on the shape and seed only, not on the dtype.
    """
    return _uniform_int31(shape, seed, device) <= _last_kept(p)


def _torch_seeded(x: torch.Tensor, p: float, seed: int) -> torch.Tensor:
    # Written into one buffer to save passes over memory: y = keep (0/1 in x's dtype), y *= x,
    # y *= 1/(1-p). Since keep is 0 or 1, y rounds exactly as x * keep * (1/(1-p)) does.
    y = torch.empty(x.shape, dtype=x.dtype, device=x.device)
    torch.le(_uniform_int31(x.shape, seed, x.device), _last_kept(p), out=y)
    return y.mul_(x).mul_(1.0 / (1.0 - p))


if triton is not None:

    @triton.jit
    def _drop_quarter(x_ptr, y_ptr, offs, n, p, scale, r):
        inside = offs < n
        x = tl.load(x_ptr + offs, mask=inside)
        keep = tl.uint_to_uniform_float(r) >= p  # u ~ U[0, 1): kept with probability 1 - p
        y = tl.where(keep, x.to(tl.float32) * scale, 0.0)
        tl.store(y_ptr + offs, y.to(y_ptr.dtype.element_ty), mask=inside)  # rounds to nearest

    @triton.jit
    def _seeded_dropout_kernel(x_ptr, y_ptr, n, p, scale, seed, BLOCK: tl.constexpr):
        # One Philox call gives four 32-bit numbers, so a block of BLOCK elements is four
        # sub-blocks of BLOCK // 4 and sub-block k uses the k-th number of counter c. The
        # 64-bit counter is split into two 32-bit words, so any numel fits and Philox stays 32-bit.
        QUARTER: tl.constexpr = BLOCK // 4
        pid = tl.program_id(0).to(tl.int64)
        c = pid * QUARTER + tl.arange(0, QUARTER)
        c_lo = (c & 0xFFFFFFFF).to(tl.uint32)
        c_hi = (c >> 32).to(tl.uint32)
        zero = c_lo * 0
        r0, r1, r2, r3 = tl.philox(seed, c_lo, c_hi, zero, zero)
        offs = pid * BLOCK + tl.arange(0, QUARTER)
        _drop_quarter(x_ptr, y_ptr, offs, n, p, scale, r0)
        _drop_quarter(x_ptr, y_ptr, offs + QUARTER, n, p, scale, r1)
        _drop_quarter(x_ptr, y_ptr, offs + 2 * QUARTER, n, p, scale, r2)
        _drop_quarter(x_ptr, y_ptr, offs + 3 * QUARTER, n, p, scale, r3)


_TRITON_BLOCK = 1024


def _triton_seeded(x: torch.Tensor, p: float, seed: int) -> torch.Tensor:
    """y = x * m / (1 - p) with m drawn by Philox from ``seed`` inside one Triton kernel."""
    x = x.contiguous()
    y = torch.empty_like(x)
    n = x.numel()
    if n == 0:
        return y
    grid = (triton.cdiv(n, _TRITON_BLOCK),)
    # Triton launches on the current device; make it x's (the interpreter runs CPU tensors).
    with torch.cuda.device(x.device) if x.is_cuda else contextlib.nullcontext():
        _seeded_dropout_kernel[grid](x, y, n, p, 1.0 / (1.0 - p), seed, BLOCK=_TRITON_BLOCK)
    return y


def _apply_mask(x: torch.Tensor, p: float, seed: int, use_triton: bool) -> torch.Tensor:
    return _triton_seeded(x, p, seed) if use_triton else _torch_seeded(x, p, seed)


class _SeededDropoutFunction(torch.autograd.Function):
    """Autograd node that saves (p, seed, path) as Python scalars and no tensor at all."""

    @staticmethod
    def forward(ctx, x, p, seed, use_triton):
        ctx.p, ctx.seed, ctx.use_triton = p, seed, use_triton
        if p == 1.0:
            return torch.zeros_like(x)
        return _apply_mask(x, p, seed, use_triton)

    @staticmethod
    def backward(ctx, grad):
        # dx = dy * m / (1 - p) with the mask drawn again from the seed. The map is the same
        # linear one as the forward, so applying the Function again keeps double backward exact.
        if ctx.p == 1.0:
            return torch.zeros_like(grad), None, None, None
        grad_x = _SeededDropoutFunction.apply(grad, ctx.p, ctx.seed, ctx.use_triton)
        return grad_x, None, None, None


def seeded_dropout(
    x: torch.Tensor, p: float = 0.5, training: bool = True, *, seed: int | None = None
) -> torch.Tensor:
    """Inverted dropout whose backward regenerates the mask from a seed instead of storing it.

    y = x * m / (1 - p), m ~ Bernoulli(1 - p) drawn from ``seed``; the autograd node keeps only
    the seed and p (Python scalars), so nothing the size of ``x`` is saved for backward.
    Triton's low-memory dropout tutorial; FlashAttention (Dao et al., 2022).

    Args:
        x: a floating-point tensor of any shape; dtype and device are kept.
        p: drop probability in [0, 1]. p = 1 gives zeros (and zero gradients).
        training: when False, or when p = 0, ``x`` itself is returned and no random number is drawn.
        seed: an int in [0, 2**63 - 1]: the same (seed, shape, device path) gives the same mask.
            None draws a fresh seed from torch's default generator (so ``torch.manual_seed``
            makes a run repeatable).
    """
    p = check_p(p)
    if seed is not None:
        seed = _check_seed(seed)
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"x must be a floating-point tensor, got dtype {x.dtype}")
    if not training or p == 0.0:
        return x
    if seed is None:
        seed = _fresh_seed()
    return _SeededDropoutFunction.apply(x, p, seed, _use_triton(x))


class SeededDropout(DropoutModule):
    """Inverted dropout that keeps a seed, not a mask, for backward (see :func:`seeded_dropout`).

    A drop-in replacement for ``nn.Dropout(p)``: each forward in training draws a fresh seed from
    torch's default generator; in eval mode it is the identity.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return seeded_dropout(x, self.p, self.training)
