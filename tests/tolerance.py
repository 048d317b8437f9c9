"""Comparing two floating-point computations of one quantity: exact where exact, else a bound.

Exact equality (``torch.equal``) is right when both sides run the same operations, in the same
order, on the same inputs: a copy, a mask, a seeded generator, the identity, one correctly
rounded elementwise operation (``+ - * /`` round the same way in every SIMD lane and on every
CPU), an exact mathematical fact (multiplying by a power of two or by 0 / 1, adding small
integers). It is wrong as soon as a reduction (sum, mean, matmul, softmax, LayerNorm, attention)
reaches the same value through other operations or another memory layout: the kernel, its
blocking and its summation order depend on the layout, the SIMD width (AVX2 / AVX-512) and the
thread count, so two such paths can agree on one machine and differ in the last bits on another.

For those, :func:`assert_close_eps` bounds the difference from the dtype's machine epsilon and
the size of the computation. In the standard model of floating-point arithmetic every operation
returns the exact result times ``(1 + d)`` with ``|d| <= u = eps / 2``; a sum of ``n`` terms in
any order, or a dot product of length ``n``, is then within ``gamma(n) * sum |terms|`` of the
exact value, ``gamma(n) = n u / (1 - n u)`` (Higham, *Accuracy and Stability of Numerical
Algorithms*, 2nd ed., section 3.1 and chapter 4). Two computations in two orders differ by at
most twice that::

    |actual - expected| <= 2 gamma(ops) * scale  ~=  ops * eps * scale

``ops`` is the number of roundings along the longest chain (the length of the reduction, plus
the operations around it), ``scale`` the magnitude of what is rounded (``sum |terms|``; for a
matrix product ``max (|A| @ |B|)``, :func:`dot_scale`). The bound is a worst case: it never
fails on correct code, and a real bug (a wrong mask, a missing scale, a mixed-up head) is
orders of magnitude larger.
"""

from __future__ import annotations

import math

import torch


def unit_roundoff(dtype: torch.dtype) -> float:
    """``u = eps / 2``: the largest relative error of one rounding to nearest in ``dtype``."""
    return torch.finfo(dtype).eps / 2


def tolerance(dtype: torch.dtype, *, ops: int, scale: float) -> float:
    """``2 gamma(ops) * scale``: how far two computations of ``ops`` roundings may drift apart."""
    if isinstance(ops, bool) or not isinstance(ops, int) or ops < 1:
        raise ValueError(f"ops must be an int >= 1, got {ops!r}")
    scale = float(scale)
    if not math.isfinite(scale) or scale < 0:
        raise ValueError(f"scale must be a finite number >= 0, got {scale!r}")
    nu = ops * unit_roundoff(dtype)
    if nu >= 0.5:
        raise ValueError(f"ops={ops} is too many roundings for {dtype}: the bound is meaningless")
    return 2 * nu / (1 - nu) * scale


def dot_scale(a: torch.Tensor, b: torch.Tensor) -> float:
    """``max_ij sum_k |a_ik b_kj|``: the magnitude whose rounding bounds the error of ``a @ b``."""
    a, b = a.detach().double().abs(), b.detach().double().abs()
    return float((a @ b).max()) if a.numel() and b.numel() else 0.0


def assert_close_eps(
    actual: torch.Tensor,
    expected: torch.Tensor,
    *,
    ops: int,
    scale: float | None = None,
    msg: str = "",
) -> None:
    """Assert ``|actual - expected| <= tolerance(dtype, ops=ops, scale=scale)`` elementwise.

    Shapes, dtypes and devices must match (``torch.testing.assert_close``); ``dtype`` is theirs,
    so a bfloat16 result gets bfloat16's epsilon. ``scale`` defaults to ``max |expected|``, right
    when no cancellation makes the terms larger than the result; pass ``sum |terms|`` otherwise.
    """
    if scale is None:
        scale = float(expected.detach().abs().max()) if expected.numel() else 0.0
    tol = tolerance(actual.dtype, ops=ops, scale=scale)
    note = f"tolerance {tol:.3g} = 2 gamma({ops}) * {scale:.3g} in {actual.dtype}"
    torch.testing.assert_close(
        actual,
        expected,
        rtol=0.0,
        atol=tol,
        msg=lambda default: f"{default}\n{note}" + (f"\n{msg}" if msg else ""),
    )
