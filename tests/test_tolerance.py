"""Tests of the tests' tolerance helper (tests/tolerance.py): its formula, that it holds where the
rounding analysis says it must, and that it still catches errors larger than rounding."""

import math

import pytest
import torch
from tolerance import assert_close_eps, dot_scale, tolerance, unit_roundoff


def sequential_sum(values: torch.Tensor) -> torch.Tensor:
    """Left-to-right sum, one correctly rounded scalar addition at a time (the same on any CPU)."""
    total = torch.zeros((), dtype=values.dtype)
    for v in values:
        total = total + v
    return total


def test_formula_is_twice_gamma_of_ops_times_scale():
    eps32 = torch.finfo(torch.float32).eps
    assert unit_roundoff(torch.float32) == eps32 / 2 == 2.0**-24
    assert unit_roundoff(torch.bfloat16) == 2.0**-8
    nu = 10 * 2.0**-24
    assert tolerance(torch.float32, ops=10, scale=3.0) == 2 * nu / (1 - nu) * 3.0
    assert tolerance(torch.float32, ops=10, scale=3.0) == pytest.approx(10 * eps32 * 3.0, rel=1e-5)
    assert tolerance(torch.float64, ops=1, scale=1.0) < tolerance(torch.float32, ops=1, scale=1.0)
    assert tolerance(torch.float32, ops=4, scale=0.0) == 0.0


@pytest.mark.parametrize(
    "kwargs", [dict(ops=0, scale=1.0), dict(ops=2.0, scale=1.0), dict(ops=True, scale=1.0)]
)
def test_bad_ops(kwargs):
    with pytest.raises(ValueError, match="ops must be an int >= 1"):
        tolerance(torch.float32, **kwargs)


@pytest.mark.parametrize("scale", [-1.0, math.inf, math.nan])
def test_bad_scale(scale):
    with pytest.raises(ValueError, match="scale must be a finite number >= 0"):
        tolerance(torch.float32, ops=3, scale=scale)


def test_too_many_roundings_for_the_dtype():
    with pytest.raises(ValueError, match="too many roundings"):
        tolerance(torch.bfloat16, ops=128, scale=1.0)


def test_two_summation_orders_differ_but_stay_within_the_bound():
    x = torch.randn(1000, generator=torch.Generator().manual_seed(0))
    forward, backward = sequential_sum(x), sequential_sum(x.flip(0))
    assert not torch.equal(forward, backward)  # why exact equality is wrong here
    assert_close_eps(forward, backward, ops=x.numel(), scale=x.abs().sum())


def test_lost_low_order_terms_stay_within_the_bound():
    # 1 followed by n terms each below half an ulp of 1: added one by one they all vanish; added
    # among themselves first they survive. The bound covers the whole gap, n u, with its margin.
    n = 1000
    x = torch.cat([torch.ones(1), torch.full((n,), 2.0**-25)])
    one_by_one = sequential_sum(x)
    small_first = sequential_sum(x[1:]) + x[0]
    assert one_by_one.item() == 1.0 and small_first.item() == 1.0 + n * 2.0**-25
    assert_close_eps(one_by_one, small_first, ops=n + 1, scale=x.abs().sum())
    # ... while a bound of a single rounding would not.
    with pytest.raises(AssertionError):
        assert_close_eps(one_by_one, small_first, ops=1, scale=x.abs().sum())


def test_a_product_in_another_layout_is_within_dot_scale():
    g = torch.Generator().manual_seed(1)
    a, b = torch.randn(37, 300, generator=g), torch.randn(300, 29, generator=g)
    assert_close_eps(a @ b, (b.T @ a.T).T, ops=300, scale=dot_scale(a, b))
    assert dot_scale(a, b) == pytest.approx(float((a.abs().double() @ b.abs().double()).max()))


def test_an_error_larger_than_rounding_is_caught():
    x = torch.randn(64, generator=torch.Generator().manual_seed(2))
    tol = tolerance(torch.float32, ops=64, scale=x.abs().max())
    assert_close_eps(x + tol / 2, x, ops=64)
    with pytest.raises(AssertionError, match="tolerance"):
        assert_close_eps(x + 2 * tol, x, ops=64)


def test_default_scale_is_the_largest_expected_magnitude():
    expected = torch.tensor([1.0, -8.0, 2.0])
    tol = tolerance(torch.float32, ops=3, scale=8.0)  # far above 3 roundings at 1.0
    assert_close_eps(expected + torch.tensor([0.9 * tol, 0, 0]), expected, ops=3)
    with pytest.raises(AssertionError):
        assert_close_eps(expected + torch.tensor([1.1 * tol, 0, 0]), expected, ops=3)


def test_dtype_sets_epsilon_and_must_match():
    x = torch.tensor([1.0, 2.0, 3.0])
    # one bfloat16 step at 2 (2**-7 * 2) is within 4 roundings of bfloat16, not of float32
    step = torch.tensor([0.0, 2.0**-6, 0.0])
    assert_close_eps((x + step).bfloat16(), x.bfloat16(), ops=4)
    with pytest.raises(AssertionError):
        assert_close_eps(x + step, x, ops=4)
    with pytest.raises(AssertionError, match="dtype"):
        assert_close_eps(x.double(), x, ops=4)
