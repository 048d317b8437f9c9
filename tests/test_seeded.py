"""Tests of seeded (low-memory) dropout: distribution, exact gradients, memory, reproducibility."""

import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from tolerance import assert_close_eps, dot_scale
from torch import nn

from dropoutlib import SeededDropout
from dropoutlib.seeded import SEED_MAX, keep_mask, seeded_dropout

ROOT = Path(__file__).resolve().parents[1]
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
DTYPES = [torch.float32, torch.float16, torch.bfloat16]


def saved_bytes(fn, x):
    """Bytes of every tensor autograd packs for backward while ``fn(x)`` runs, and their count."""
    sizes = []

    def pack(t):
        sizes.append(t.numel() * t.element_size())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn(x)
    return sum(sizes), len(sizes)


# ---------------------------------------------------------------- distribution


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_keep_rate_is_binomial(device, p):
    n = 400_000
    y = seeded_dropout(torch.ones(n, device=device), p, seed=1234)
    q = 1.0 - p
    kept = (y != 0).double().mean().item()
    # The kept count is Binomial(n, q): 6 standard errors of the proportion.
    assert abs(kept - q) < 6 * math.sqrt(q * (1 - q) / n)
    # Kept elements are scaled by exactly 1 / (1 - p), dropped ones are exactly 0.
    assert torch.equal(y[y != 0], torch.full_like(y[y != 0], 1.0) * (1.0 / q))


@pytest.mark.parametrize("device", DEVICES)
def test_expectation_is_preserved(device):
    n, p = 400_000, 0.3
    x = torch.randn(n, generator=torch.Generator().manual_seed(0)).abs().add(0.5).to(device)
    y = seeded_dropout(x, p, seed=99)
    q = 1 - p
    # y_i = x_i * b_i / q with b_i ~ Bernoulli(q): E[y_i] = x_i, Var[y_i] = x_i^2 (1 - q) / q.
    diff = (y - x).double()
    se = math.sqrt((x.double() ** 2).sum().item() * (1 - q) / q) / n
    assert abs(diff.mean().item()) < 6 * se


def test_mask_matches_keep_mask_and_depends_only_on_seed_and_shape():
    x = torch.randn(7, 33)
    for dtype in DTYPES:
        y = seeded_dropout(x.to(dtype), 0.4, seed=5)
        assert torch.equal(y != 0, keep_mask(x.shape, 0.4, 5) & (x != 0))


# ---------------------------------------------------------------- gradients


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_gradients_equal_dropout_with_the_same_mask_bitwise(device, dtype):
    p, seed = 0.35, 2024
    gen = torch.Generator().manual_seed(3)
    x0 = torch.randn(4, 16, 24, generator=gen).to(device=device, dtype=dtype)
    g = torch.randn(4, 16, 24, generator=gen).to(device=device, dtype=dtype)

    x = x0.clone().requires_grad_()
    y = seeded_dropout(x, p, seed=seed)
    y.backward(g)

    # Recover the mask from the forward output (x0 has no zeros), then differentiate
    # plain inverted dropout with that mask.
    assert bool((x0 != 0).all())
    mask = (y != 0).detach()
    x_ref = x0.clone().requires_grad_()
    y_ref = x_ref * mask * (1.0 / (1.0 - p))
    y_ref.backward(g)

    assert y.dtype == dtype and x.grad.dtype == dtype
    assert torch.equal(y.detach(), y_ref.detach())
    assert torch.equal(x.grad, x_ref.grad)
    assert bool((x.grad[~mask] == 0).all())
    if device == "cpu":  # on CPU the mask is the PyTorch-ops path's, by construction
        assert torch.equal(mask, keep_mask(x0.shape, p, seed))


def test_gradients_through_non_contiguous_input_and_a_surrounding_graph():
    w = torch.randn(24, 8, requires_grad=True)
    x = torch.randn(24, 5)
    y = seeded_dropout((w.t() @ x).t(), 0.5, seed=11)  # a non-contiguous input
    y.square().sum().backward()
    w_ref = w.detach().clone().requires_grad_()
    mask = keep_mask((5, 8), 0.5, 11)
    y_ref = (w_ref.t() @ x).t() * mask * 2.0
    y_ref.square().sum().backward()
    # Forward and upstream gradient are exact on both sides: the same matmul, then products
    # with a 0/1 mask and powers of two.
    assert torch.equal(y, y_ref)
    # seeded_dropout returns a contiguous tensor where the reference keeps the transposed
    # layout, so grad_w = x @ g, g = d loss / d (w.t() @ x).t(), may run through another matmul
    # kernel: each entry is a length-5 dot product, equal up to its rounding (tests/tolerance.py).
    g = (2.0 * y_ref * mask * 2.0).detach()
    assert_close_eps(w.grad, w_ref.grad, ops=5, scale=dot_scale(x, g))


def test_gradcheck_and_double_backward():
    x = torch.randn(6, 10, dtype=torch.float64, requires_grad=True)
    fn = lambda t: seeded_dropout(t, 0.3, seed=17)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x,))
    # backward is the same linear map as forward, so double backward is exact too.
    assert torch.autograd.gradgradcheck(fn, (x,))


# ---------------------------------------------------------------- memory


def test_saves_nothing_for_backward_while_native_dropout_saves_a_mask():
    x = torch.randn(64, 128, requires_grad=True)
    nbytes, count = saved_bytes(lambda t: seeded_dropout(t, 0.2, seed=1), x)
    assert (nbytes, count) == (0, 0)

    native_bytes, _ = saved_bytes(lambda t: F.dropout(t, 0.2, training=True), x)
    assert native_bytes >= x.numel()  # at least one byte per element (CPU: float noise)

    module = SeededDropout(0.2)
    assert saved_bytes(module, x) == (0, 0)


def test_saved_bytes_are_counted_for_the_surrounding_graph_only():
    lin = nn.Linear(32, 32)
    x = torch.randn(8, 32, requires_grad=True)
    plain, _ = saved_bytes(lambda t: lin(t).relu(), x)
    with_seeded, _ = saved_bytes(lambda t: seeded_dropout(lin(t).relu(), 0.5, seed=3), x)
    assert with_seeded == plain


# ---------------------------------------------------------------- reproducibility


def test_same_seed_same_output_different_seeds_differ():
    x = torch.randn(2000)
    a = seeded_dropout(x, 0.5, seed=42)
    assert torch.equal(a, seeded_dropout(x, 0.5, seed=42))
    assert not torch.equal(a, seeded_dropout(x, 0.5, seed=43))


def test_seed_none_follows_torch_manual_seed():
    x = torch.randn(2000)
    torch.manual_seed(7)
    a, b = seeded_dropout(x, 0.5), seeded_dropout(x, 0.5)
    torch.manual_seed(7)
    assert torch.equal(a, seeded_dropout(x, 0.5))
    assert torch.equal(b, seeded_dropout(x, 0.5))
    assert not torch.equal(a, b)  # consecutive calls draw fresh seeds


def test_extreme_seeds_are_accepted():
    x = torch.ones(100)
    for seed in (0, SEED_MAX):
        assert seeded_dropout(x, 0.5, seed=seed).shape == x.shape


# ---------------------------------------------------------------- edge cases


def test_eval_and_p_zero_are_identity_without_random_draws():
    x = torch.randn(10, 10)
    state = torch.get_rng_state()
    assert seeded_dropout(x, 0.5, training=False) is x
    assert seeded_dropout(x, 0.0) is x
    assert torch.equal(torch.get_rng_state(), state)


def test_p_one_gives_zeros_and_zero_gradients():
    x = torch.randn(5, 5, requires_grad=True)
    y = seeded_dropout(x, 1.0, seed=0)
    assert torch.equal(y, torch.zeros(5, 5))
    y.sum().backward()
    assert torch.equal(x.grad, torch.zeros(5, 5))


def test_extreme_rates_keep_all_or_drop_all():
    x = torch.randn(10_000)
    # P(drop) = 1e-12 and P(keep) = 1e-12 are below the mask's resolution of 2**-31
    p = 1e-12
    assert torch.equal(seeded_dropout(x, p, seed=1), x * (1.0 / (1.0 - p)))
    assert torch.equal(seeded_dropout(x, 1.0 - 1e-12, seed=1), torch.zeros_like(x))


def test_empty_tensor():
    x = torch.randn(0, 4, requires_grad=True)
    y = seeded_dropout(x, 0.5, seed=0)
    y.sum().backward()
    assert y.shape == (0, 4) and x.grad.shape == (0, 4)


@pytest.mark.parametrize("p", [-0.1, 1.5, float("nan"), "0.5", True, None])
def test_bad_p_raises(p):
    with pytest.raises(ValueError, match="p must be"):
        seeded_dropout(torch.ones(3), p, seed=0)


@pytest.mark.parametrize("seed", [True, -1, SEED_MAX + 1, 1.5, "3", torch.tensor(3)])
def test_bad_seed_raises(seed):
    with pytest.raises(ValueError, match="seed must be an int"):
        seeded_dropout(torch.ones(3), 0.5, seed=seed)


def test_bad_input_raises():
    with pytest.raises(TypeError, match="floating-point"):
        seeded_dropout(torch.ones(3, dtype=torch.int64), 0.5, seed=0)
    with pytest.raises(TypeError, match="torch.Tensor"):
        seeded_dropout([1.0, 2.0], 0.5, seed=0)


# ---------------------------------------------------------------- module


def test_module_in_a_model_train_and_eval():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(16, 16), SeededDropout(0.5))
    x = torch.randn(4, 16)
    model.train()
    a, b = model(x), model(x)
    assert not torch.equal(a, b)  # a fresh seed each forward
    model.eval()
    assert torch.equal(model(x), model[0](x))
    assert "p=0.5" in repr(model[1])


def test_module_validates_p():
    with pytest.raises(ValueError, match="p must be"):
        SeededDropout(1.2)
    m = SeededDropout(0.1)
    with pytest.raises(ValueError, match="p must be"):
        m.p = -0.5


# ---------------------------------------------------------------- Triton kernel (interpreter)

TRITON_SCRIPT = textwrap.dedent(
    """
    import math, torch
    from dropoutlib import seeded as S
    assert S.triton is not None
    S._use_triton = lambda x: True  # route CPU tensors through the kernel (interpreted)
    # keep rate and scale, with a size that is not a multiple of the block
    n, p = 100_003, 0.3
    y = S.seeded_dropout(torch.ones(n), p, seed=2**40 + 7)
    kept = (y != 0).double().mean().item()
    assert abs(kept - 0.7) < 6 * math.sqrt(0.21 / n), kept
    assert torch.equal(y[y != 0], torch.full_like(y[y != 0], 1 / 0.7))
    # reproducible, seeds differ, sub-blocks differ (no repeated pattern across the four)
    assert torch.equal(y, S.seeded_dropout(torch.ones(n), p, seed=2**40 + 7))
    assert not torch.equal(y, S.seeded_dropout(torch.ones(n), p, seed=1))
    q = (y[:1024] != 0).view(4, 256)
    assert not torch.equal(q[0], q[1])
    # gradients equal dropout with the same mask, bitwise, in every dtype
    for dtype in (torch.float32, torch.float16, torch.bfloat16):
        g = torch.Generator().manual_seed(0)
        x0 = torch.randn(3, 50, 70, generator=g).to(dtype)
        dy = torch.randn(3, 50, 70, generator=g).to(dtype)
        x = x0.clone().requires_grad_()
        out = S.seeded_dropout(x.transpose(1, 2), 0.4, seed=9)  # non-contiguous input
        out.backward(dy.transpose(1, 2))
        mask = (out != 0).detach()
        xr = x0.clone().requires_grad_()
        ref = xr.transpose(1, 2) * mask * (1 / 0.6)
        ref.backward(dy.transpose(1, 2))
        assert out.dtype == dtype and torch.equal(mask, ref.detach() != 0), dtype
        if dtype == torch.bfloat16:
            # The interpreter emulates float32 -> bfloat16 by truncation where a GPU rounds to
            # nearest, as torch does: allow one bfloat16 step (2**-7 relative) here only.
            for a, b in ((out.detach(), ref.detach()), (x.grad, xr.grad)):
                assert torch.allclose(a.float(), b.float(), rtol=2**-7, atol=0), dtype
        else:
            assert torch.equal(out.detach(), ref.detach()), dtype
            assert torch.equal(x.grad, xr.grad), dtype
    print("TRITON-OK")
    """
)


def test_triton_kernel_in_the_interpreter():
    pytest.importorskip("triton", reason="triton not installed (extra 'triton')")
    env = dict(os.environ, TRITON_INTERPRET="1", PYTHONPATH=str(ROOT))
    run = subprocess.run(
        [sys.executable, "-c", TRITON_SCRIPT],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert "TRITON-OK" in run.stdout


def test_functional_re_exports_seeded_dropout():
    from dropoutlib import functional

    assert functional.seeded_dropout is seeded_dropout
