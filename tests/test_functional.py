"""Tests of dropoutlib.functional: behaviour every variant shares, then each variant's statistics.

Statistical checks use fixed seeds and a tolerance of Z = 6 standard errors, each standard error
derived in the test from the distribution being sampled (a false failure has probability ~2e-9
per check). Exact checks (masks, gradients, identities) use ``torch.equal``: each value compared
there comes from one correctly rounded elementwise operation (or none) on identical inputs,
which gives the same bits in every SIMD lane and on every CPU. A value that goes through a
reduction (a matmul) is compared within its rounding bound instead (tests/tolerance.py).
"""

import math

import pytest
import torch
import torch.nn.functional as F
from tolerance import assert_close_eps, dot_scale

import dropoutlib.functional as DF

Z = 6.0  # tolerance in standard errors
DTYPES = [torch.float32, torch.float16, torch.bfloat16]


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.fixture(autouse=True)
def _seed_global_rng():
    # module initialisations and the no-generator paths draw from the global RNG: fix it
    torch.manual_seed(0)


# ---------------------------------------------------------------------------------------------
# One entry per variant: how to build an input and call the function. ``run(x, p, training, g)``
# returns the output; ``same`` says the function returns its input itself when it is a no-op.

W_CONNECT = torch.randn(6, 8, generator=gen(100))
W_EMBED = torch.randn(11, 8, generator=gen(101))


def _connect(x, p, training, g):
    return DF.drop_connect(x, p, training, weight=W_CONNECT.to(x.dtype), generator=g)


def _embed(x, p, training, g):
    idx = torch.arange(24).reshape(4, 6) % 11
    return DF.embedding_dropout(idx, p, training, weight=x, generator=g)


VARIANTS = {
    # name: (run, input shape, allow_p_one, identity returns the input itself)
    "dropout": (lambda x, p, t, g: DF.dropout(x, p, t, generator=g), (4, 6, 8), True, True),
    "drop_connect": (_connect, (4, 6, 8), True, False),
    "spatial_dropout": (
        lambda x, p, t, g: DF.spatial_dropout(x, p, t, generator=g),
        (4, 6, 8),
        True,
        True,
    ),
    "locked_dropout": (
        lambda x, p, t, g: DF.locked_dropout(x, p, t, generator=g),
        (4, 6, 8),
        True,
        True,
    ),
    "embedding_dropout": (_embed, (11, 8), True, False),
    "drop_path": (lambda x, p, t, g: DF.drop_path(x, p, t, generator=g), (4, 6, 8), True, True),
    "drop_head": (lambda x, p, t, g: DF.drop_head(x, p, t, generator=g), (4, 3, 6, 8), False, True),
    "gaussian_dropout": (
        lambda x, p, t, g: DF.gaussian_dropout(x, p, t, generator=g),
        (4, 6, 8),
        False,
        True,
    ),
    "alpha_dropout": (
        lambda x, p, t, g: DF.alpha_dropout(x, p, t, generator=g),
        (4, 6, 8),
        False,
        True,
    ),
}
NAMES = list(VARIANTS)


def make_input(name, dtype=torch.float32, requires_grad=False):
    _, shape, _, _ = VARIANTS[name]
    x = torch.randn(shape, generator=gen(7)).to(dtype)
    return x.requires_grad_(requires_grad)


def noop_reference(name, x):
    """What the function must return when it is a no-op (eval or p == 0): for drop_connect and
    embedding_dropout the very F.linear / F.embedding call they make, on the same inputs, so the
    comparison is exact."""
    if name == "drop_connect":
        return F.linear(x, W_CONNECT.to(x.dtype))
    if name == "embedding_dropout":
        return F.embedding(torch.arange(24).reshape(4, 6) % 11, x)
    return x


# ---------------------------------------------------------------------------------------------
# Behaviour shared by every variant


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("p", [0.0, 0.5])
def test_eval_is_identity_without_rng_draws(name, p):
    run, _, _, same = VARIANTS[name]
    x = make_input(name)
    g = gen(0)
    g_state, rng_state = g.get_state(), torch.get_rng_state()
    for generator in (None, g):
        y = run(x, p, False, generator)
        if same:
            assert y is x
        else:
            assert torch.equal(y, noop_reference(name, x))
    assert torch.equal(g.get_state(), g_state)
    assert torch.equal(torch.get_rng_state(), rng_state)


@pytest.mark.parametrize("name", NAMES)
def test_p_zero_in_training_is_identity_without_rng_draws(name):
    run, _, _, same = VARIANTS[name]
    x = make_input(name)
    g = gen(0)
    g_state, rng_state = g.get_state(), torch.get_rng_state()
    for generator in (None, g):
        y = run(x, 0.0, True, generator)
        if same:
            assert y is x  # no copy
        else:
            assert torch.equal(y, noop_reference(name, x))
    assert torch.equal(g.get_state(), g_state)
    assert torch.equal(torch.get_rng_state(), rng_state)


@pytest.mark.parametrize("name", [n for n in NAMES if VARIANTS[n][2]])
def test_p_one_gives_zeros_with_zero_gradient(name):
    run, _, _, _ = VARIANTS[name]
    x = make_input(name, requires_grad=True)
    y = run(x, 1.0, True, gen(0))
    assert torch.equal(y, torch.zeros_like(y))  # drop_connect: no bias here, so 0 too
    y.sum().backward()
    assert torch.equal(x.grad, torch.zeros_like(x))


@pytest.mark.parametrize("name", [n for n in NAMES if not VARIANTS[n][2]])
def test_p_one_is_an_error_where_meaningless(name):
    run, _, _, _ = VARIANTS[name]
    with pytest.raises(ValueError, match=r"p must be in \[0, 1\), got 1\.0"):
        run(make_input(name), 1.0, True, None)


@pytest.mark.parametrize("name", NAMES)
def test_generator_reproduces_and_seeds_differ(name):
    run, _, _, _ = VARIANTS[name]
    x = make_input(name)
    a = run(x, 0.5, True, gen(1))
    b = run(x, 0.5, True, gen(1))
    c = run(x, 0.5, True, gen(2))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


@pytest.mark.parametrize("name", NAMES)
def test_global_rng_is_used_without_generator(name):
    run, _, _, _ = VARIANTS[name]
    x = make_input(name)
    torch.manual_seed(3)
    a = run(x, 0.5, True, None)
    torch.manual_seed(3)
    b = run(x, 0.5, True, None)
    c = run(x, 0.5, True, None)  # the RNG moved on: a different mask
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_dtype_and_device_preserved(name, dtype):
    run, _, _, _ = VARIANTS[name]
    x = make_input(name, dtype)
    for training in (True, False):
        y = run(x, 0.3, training, gen(4))
        assert y.dtype == dtype
        assert y.device == x.device
        assert torch.isfinite(y).all()


@pytest.mark.parametrize(
    "name", ["dropout", "spatial_dropout", "locked_dropout", "drop_path", "drop_head"]
)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision_gets_the_float32_mask(name, dtype):
    # masks are drawn in float32 and cast, so a seed drops the same units in every dtype
    run, _, _, _ = VARIANTS[name]
    x = make_input(name)
    y32 = run(x, 0.4, True, gen(5))
    y16 = run(x.to(dtype), 0.4, True, gen(5))
    assert torch.equal(y32 == 0, y16 == 0)


BAD_P = [-0.1, 1.5, float("nan"), float("inf"), "0.5", True, None]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("bad", BAD_P, ids=repr)
def test_bad_p_is_rejected(name, bad):
    run, _, _, _ = VARIANTS[name]
    with pytest.raises(ValueError, match=r"^p must be"):
        run(make_input(name), bad, True, None)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("bad", [1, 0, "yes", None, torch.tensor(True)], ids=repr)
def test_training_must_be_a_bool(name, bad):
    run, _, _, _ = VARIANTS[name]
    with pytest.raises(ValueError, match="training must be a bool"):
        run(make_input(name), 0.5, bad, None)


@pytest.mark.parametrize("name", NAMES)
def test_generator_must_be_a_generator(name):
    run, _, _, _ = VARIANTS[name]
    with pytest.raises(ValueError, match="generator must be a torch.Generator or None, got int"):
        run(make_input(name), 0.5, True, 42)


@pytest.mark.parametrize(
    "fn",
    [
        DF.dropout,
        DF.spatial_dropout,
        DF.locked_dropout,
        DF.drop_path,
        DF.drop_head,
        DF.gaussian_dropout,
        DF.alpha_dropout,
    ],
)
def test_x_must_be_a_float_tensor(fn):
    with pytest.raises(ValueError, match="x must be a torch.Tensor, got list"):
        fn([1.0, 2.0], 0.5)
    with pytest.raises(
        ValueError, match="x must be a floating-point tensor, got dtype torch.int64"
    ):
        fn(torch.ones(2, 3, 4, 5, dtype=torch.long), 0.5)


def test_wrong_ranks_name_the_shape():
    with pytest.raises(
        ValueError, match=r"x must have at least 3 dimensions .* got shape \(4, 8\)"
    ):
        DF.spatial_dropout(torch.ones(4, 8), 0.5)
    with pytest.raises(ValueError, match=r"x must have at least 3 dimensions.*got shape \(4, 8\)"):
        DF.locked_dropout(torch.ones(4, 8), 0.5)
    with pytest.raises(
        ValueError, match=r"x must be 4-D \(batch, heads, time, head_dim\), got shape \(2, 3, 4\)"
    ):
        DF.drop_head(torch.ones(2, 3, 4), 0.5)
    with pytest.raises(ValueError, match=r"x must be 4-D.*got shape \(1, 2, 3, 4, 5\)"):
        DF.drop_head(torch.ones(1, 2, 3, 4, 5), 0.5)
    with pytest.raises(ValueError, match=r"x must have a batch dimension .* got shape \(\)"):
        DF.drop_path(torch.tensor(1.0), 0.5)
    # shapes are checked in eval mode too, so a bug does not hide until training
    with pytest.raises(ValueError, match=r"x must be 4-D"):
        DF.drop_head(torch.ones(2, 3, 4), 0.5, training=False)


@pytest.mark.parametrize("bad", [0, -3, 3, 1.0, True, "1"], ids=repr)
def test_bad_channel_and_time_dims(bad):
    x = torch.ones(2, 3, 4)
    with pytest.raises(ValueError, match="channel_dim must"):
        DF.spatial_dropout(x, 0.5, channel_dim=bad)
    if bad != 0 and bad != -3:  # 0 and -3 are valid time dims for a 3-D input
        with pytest.raises(ValueError, match="time_dim must"):
            DF.locked_dropout(x, 0.5, time_dim=bad)


def test_drop_connect_checks_weight_bias_and_input():
    x = torch.ones(4, 8)
    with pytest.raises(
        ValueError, match=r"weight must be 2-D \(out_features, in_features\), got shape \(8,\)"
    ):
        DF.drop_connect(x, 0.5, weight=torch.ones(8))
    with pytest.raises(
        ValueError,
        match=r"x must have shape \(\*, in_features\) with in_features=5 .* got shape \(4, 8\)",
    ):
        DF.drop_connect(x, 0.5, weight=torch.ones(3, 5))
    with pytest.raises(ValueError, match=r"bias must have shape \(3,\) .* got shape \(4,\)"):
        DF.drop_connect(x, 0.5, weight=torch.ones(3, 8), bias=torch.ones(4))
    with pytest.raises(ValueError, match="weight must be a floating-point tensor"):
        DF.drop_connect(x, 0.5, weight=torch.ones(3, 8, dtype=torch.long))
    with pytest.raises(TypeError):  # weight is a required keyword
        DF.drop_connect(x, 0.5)


def test_embedding_dropout_checks_indices_and_weight():
    w = torch.ones(10, 4)
    with pytest.raises(
        ValueError, match="indices must be an int64 or int32 tensor, got dtype torch.float32"
    ):
        DF.embedding_dropout(torch.zeros(3), 0.5, weight=w)
    with pytest.raises(ValueError, match="indices must be a torch.Tensor, got list"):
        DF.embedding_dropout([1, 2], 0.5, weight=w)
    with pytest.raises(
        ValueError, match=r"weight must be 2-D \(num_embeddings, embedding_dim\), got shape \(10,\)"
    ):
        DF.embedding_dropout(torch.zeros(3, dtype=torch.long), 0.5, weight=torch.ones(10))


def test_drop_path_scale_by_keep_must_be_bool():
    with pytest.raises(ValueError, match="scale_by_keep must be a bool"):
        DF.drop_path(torch.ones(3, 2), 0.5, scale_by_keep=1)


# ---------------------------------------------------------------------------------------------
# Helpers for the statistical checks


def assert_keep_rate(kept: torch.Tensor, q: float, n_units: int):
    """Fraction of kept units vs q; SE of a binomial proportion sqrt(q (1 - q) / n)."""
    rate = kept.float().mean().item()
    se = math.sqrt(q * (1 - q) / n_units)
    assert abs(rate - q) < Z * se, (rate, q, se)


def assert_mean_one(y_units: torch.Tensor, q: float):
    """Mean of m / q over n independent units: E = 1, Var(m / q) = (1 - q) / q."""
    n = y_units.numel()
    mean = y_units.double().mean().item()
    se = math.sqrt((1 - q) / q / n)
    assert abs(mean - 1.0) < Z * se, (mean, se)


def assert_inverted_gradient(x_grad: torch.Tensor, y: torch.Tensor, q: float):
    """With x = 1 and loss = y.sum(), the gradient is the noise itself: 0 or exactly 1/q (y and the
    gradient are both 1 * noise, one exact product each)."""
    assert torch.equal(x_grad, y.detach())
    one_over_q = torch.tensor(1.0 / q, dtype=x_grad.dtype)
    assert torch.equal(x_grad[y == 0], torch.zeros_like(x_grad[y == 0]))
    assert (x_grad[y != 0] == one_over_q).all()


# ---------------------------------------------------------------------------------------------
# dropout


@pytest.mark.parametrize("use_generator", [False, True])
def test_dropout_keep_rate_mean_and_gradient(use_generator):
    p, q = 0.3, 0.7
    x = torch.ones(100, 1000, requires_grad=True)  # 1e5 independent units
    torch.manual_seed(11)
    y = DF.dropout(x, p, True, generator=gen(11) if use_generator else None)
    assert_keep_rate(y != 0, q, x.numel())
    assert_mean_one(y, q)
    y.sum().backward()
    assert_inverted_gradient(x.grad, y, q)


def test_dropout_without_generator_is_torch_native():
    x = torch.randn(50, 40)
    torch.manual_seed(12)
    a = DF.dropout(x, 0.25)
    torch.manual_seed(12)
    b = F.dropout(x, 0.25, training=True)
    assert torch.equal(a, b)


# ---------------------------------------------------------------------------------------------
# drop_connect


def test_drop_connect_masks_weights_with_exact_gradient():
    p, q = 0.4, 0.6
    out_f, in_f = 200, 500  # 1e5 weights
    w = torch.ones(out_f, in_f, requires_grad=True)
    b = torch.zeros(out_f, requires_grad=True)
    x = torch.ones(1, in_f)
    y = DF.drop_connect(x, p, True, weight=w, bias=b, generator=gen(13))
    y.sum().backward()
    # d y_o / d W_oi = M_oi / q * x_i = M_oi / q: the weight gradient is the scaled mask itself
    mask = w.grad != 0
    assert set(w.grad.unique().tolist()) <= {0.0, torch.tensor(1 / q).item()}
    assert_keep_rate(mask, q, w.numel())
    # y_o = sum_i M_oi / q: E = in_f, Var = in_f (1 - q) / q; mean over out_f independent outputs
    se = math.sqrt(in_f * (1 - q) / q / out_f)
    assert abs(y.mean().item() - in_f) < Z * se
    assert torch.equal(b.grad, torch.ones(out_f))  # the bias is never dropped
    # the output is exactly the linear map of the masked weight
    assert torch.allclose(y, x @ w.grad.T)


def test_drop_connect_draws_a_fresh_mask_each_call():
    w = torch.randn(5, 7)
    x = torch.randn(3, 7)
    g = gen(14)
    assert not torch.equal(
        DF.drop_connect(x, 0.5, weight=w, generator=g),
        DF.drop_connect(x, 0.5, weight=w, generator=g),
    )


def test_drop_connect_shares_one_mask_over_the_batch():
    # identical rows of x give identical outputs: the mask does not depend on the example
    w = torch.randn(5, 7)
    x = torch.randn(1, 7).expand(6, 7)
    y = DF.drop_connect(x, 0.5, weight=w, generator=gen(15))
    # Rows of one matmul may go through different micro-kernels (a block and its remainder):
    # equal up to the rounding of a length-7 dot product with weights at most |w| / (1 - p).
    assert_close_eps(y, y[:1].expand_as(y), ops=7, scale=dot_scale(x[:1], w.T) / 0.5)


def test_drop_connect_per_sample_masks():
    p, q = 0.3, 0.7
    B, out_f, in_f = 20, 50, 100  # 1e5 mask entries
    w = torch.ones(out_f, in_f, requires_grad=True)
    b = torch.zeros(out_f)
    x = torch.ones(B, in_f)  # identical examples
    y = DF.drop_connect(x, p, True, weight=w, bias=b, generator=gen(40), per_sample=True)
    assert y.shape == (B, out_f)
    assert not torch.equal(y[0], y[1])  # each example has its own mask
    # y[b, o] = sum_i M_boi / q: mean in_f, variance in_f (1 - q) / q, B * out_f independent
    se = math.sqrt(in_f * (1 - q) / q / (B * out_f))
    assert abs(y.mean().item() - in_f) < Z * se
    y.sum().backward()
    # d loss / d W_oi = sum_b M_boi / q: a whole number of 1/q steps, from 0 to B / q
    steps = w.grad * q
    assert torch.allclose(steps, steps.round(), atol=1e-4)
    assert steps.min() >= 0 and steps.max() <= B
    # (B, T, in) inputs: one mask per sequence, shared over its positions
    x3 = torch.randn(4, 1, 6).expand(4, 5, 6)
    y3 = DF.drop_connect(x3, 0.5, weight=torch.randn(3, 6), generator=gen(41), per_sample=True)
    assert torch.allclose(y3, y3[:, :1].expand_as(y3))
    with pytest.raises(ValueError, match=r"x must be \(batch, \*, in_features\) with per_sample"):
        DF.drop_connect(torch.ones(6), 0.5, weight=torch.ones(3, 6), per_sample=True)
    with pytest.raises(ValueError, match="per_sample must be a bool"):
        DF.drop_connect(x, 0.5, weight=w, per_sample=1)


# ---------------------------------------------------------------------------------------------
# spatial_dropout and locked_dropout


def test_spatial_dropout_sequence_layout_drops_channels_for_all_positions():
    p, q = 0.3, 0.7
    B, T, C = 200, 50, 10
    x = torch.ones(B, T, C, requires_grad=True)
    y = DF.spatial_dropout(x, p, True, generator=gen(16))
    # structure: the value of (b, c) is the same at every position t
    assert torch.equal(y, y[:, :1, :].expand_as(y))
    units = y[:, 0, :]  # B * C = 2000 independent (sample, channel) units
    assert_keep_rate(units != 0, q, units.numel())
    assert_mean_one(units, q)
    y.sum().backward()
    assert_inverted_gradient(x.grad, y, q)


def test_spatial_dropout_conv_layout():
    p, q = 0.5, 0.5
    B, C, H, W = 100, 20, 4, 5
    x = torch.ones(B, C, H, W)
    y = DF.spatial_dropout(x, p, True, generator=gen(17), channel_dim=1)
    assert torch.equal(y, y[:, :, :1, :1].expand_as(y))  # whole feature maps
    units = y[:, :, 0, 0]
    assert_keep_rate(units != 0, q, units.numel())
    # masks differ between samples of the batch
    assert not torch.equal(units[0], units[1])


def test_locked_dropout_shares_the_mask_over_time():
    p, q = 0.25, 0.75
    B, T, C = 200, 50, 10
    x = torch.ones(B, T, C, requires_grad=True)
    y = DF.locked_dropout(x, p, True, generator=gen(18))
    assert torch.equal(y, y[:, :1].expand_as(y))
    units = y[:, 0]
    assert_keep_rate(units != 0, q, units.numel())
    assert_mean_one(units, q)
    assert not torch.equal(units[0], units[1])  # per sequence, not shared over the batch
    y.sum().backward()
    assert_inverted_gradient(x.grad, y, q)


def test_locked_dropout_time_first_and_4d():
    x = torch.ones(30, 8, 6)  # (T, B, C)
    y = DF.locked_dropout(x, 0.5, True, generator=gen(19), time_dim=0)
    assert torch.equal(y, y[:1].expand_as(y))
    assert not torch.equal(y[:, 0], y[:, 1])
    # 4-D (B, T, H, D): shared over T only, unlike spatial_dropout which shares over T and H
    x4 = torch.ones(4, 10, 3, 8)
    y4 = DF.locked_dropout(x4, 0.5, True, generator=gen(20))
    assert torch.equal(y4, y4[:, :1].expand_as(y4))
    assert not torch.equal(y4[:, :, 0], y4[:, :, 1])


# ---------------------------------------------------------------------------------------------
# embedding_dropout


def test_embedding_dropout_drops_whole_token_types():
    p, q = 0.3, 0.7
    V, D = 20000, 5  # 1e5 weights, 2e4 independent rows
    w = torch.ones(V, D, requires_grad=True)
    idx = torch.randperm(V, generator=gen(21))  # every token once
    y = DF.embedding_dropout(idx, p, True, weight=w, generator=gen(22))
    assert torch.equal(y, y[:, :1].expand_as(y))  # whole rows
    rows = y[:, 0]
    assert_keep_rate(rows != 0, q, V)
    assert_mean_one(rows, q)
    y.sum().backward()
    # each token occurs once: d loss / d W[i] = m_i / q, exactly (the scatter-add of the
    # embedding's backward adds one term to 0)
    assert torch.equal(w.grad[idx], y.detach())
    assert set(w.grad.unique().tolist()) <= {0.0, torch.tensor(1 / q).item()}


def test_embedding_dropout_same_token_same_fate_everywhere():
    w = torch.randn(7, 4)
    idx = torch.randint(0, 7, (8, 30), generator=gen(23))
    y = DF.embedding_dropout(idx, 0.5, True, weight=w, generator=gen(24))
    ref = F.embedding(idx, w)
    for tok in range(7):
        where = idx == tok
        if where.any():
            dropped = (y[where] == 0).all(dim=-1)
            assert dropped.all() or not dropped.any()  # all occurrences or none
            if not dropped.any():
                assert torch.allclose(y[where], ref[where] / 0.5)


def test_embedding_dropout_padding_idx_passes_through():
    w = torch.randn(5, 3, requires_grad=True)
    idx = torch.tensor([[0, 1, 2, 4, 4]])
    y = DF.embedding_dropout(idx, 0.2, True, weight=w, padding_idx=4, generator=gen(25))
    y.sum().backward()
    assert torch.equal(w.grad[4], torch.zeros(3))  # padding row gets no gradient
    # no padding_idx: the last row is an ordinary row (the AWD-LSTM -1 trap)
    w.grad = None
    y = DF.embedding_dropout(idx, 0.0, True, weight=w)
    y.sum().backward()
    assert torch.equal(w.grad[4], torch.full((3,), 2.0))


# ---------------------------------------------------------------------------------------------
# drop_path


def test_drop_path_per_sample():
    p, q = 0.2, 0.8
    B = 20000
    x = torch.ones(B, 5, requires_grad=True)
    y = DF.drop_path(x, p, True, generator=gen(26))
    assert torch.equal(y, y[:, :1].expand_as(y))  # whole samples
    units = y[:, 0]
    assert_keep_rate(units != 0, q, B)
    assert_mean_one(units, q)
    y.sum().backward()
    assert_inverted_gradient(x.grad, y, q)


def test_drop_path_without_scale_by_keep():
    x = torch.full((1000, 3, 2), 2.0)
    y = DF.drop_path(x, 0.5, True, generator=gen(27), scale_by_keep=False)
    assert set(y.unique().tolist()) == {0.0, 2.0}
    # same seed, same samples kept as with scaling (by 1 / (1 - 0.5) = 2: exact, a power of two)
    ys = DF.drop_path(x, 0.5, True, generator=gen(27))
    assert torch.equal(ys, y * 2)


# ---------------------------------------------------------------------------------------------
# drop_head


def _kept_heads_moments(H, q):
    """Moments of K ~ Binomial(H, q) conditioned on K > 0 (the redraw rule)."""
    p0 = (1 - q) ** H
    pmf = {k: math.comb(H, k) * q**k * (1 - q) ** (H - k) / (1 - p0) for k in range(1, H + 1)}
    ek = sum(k * v for k, v in pmf.items())
    ek2 = sum(k * k * v for k, v in pmf.items())
    e_inv = sum(v / k for k, v in pmf.items())
    return ek, ek2 - ek**2, e_inv


def test_drop_head_whole_heads_rescaled_by_kept_count():
    p, q, H = 0.5, 0.5, 4
    B = 5000
    x = torch.ones(B, H, 3, 2, requires_grad=True)
    y = DF.drop_head(x, p, True, generator=gen(28))
    assert torch.equal(y, y[:, :, :1, :1].expand_as(y))  # whole heads
    scale = y[:, :, 0, 0]
    kept = scale != 0
    k = kept.sum(dim=1)
    assert (k >= 1).all()  # every sample keeps a head
    # kept heads carry exactly H / k (drop_head's own expression on the same integer counts,
    # times x = 1); the per-sample total is H, up to the rounding of k terms H / k
    assert torch.equal(scale, kept.float() * (H / k.float())[:, None])
    assert torch.allclose(scale.sum(dim=1), torch.full((B,), float(H)))
    # keep rate: E[K / H] with K | K > 0; SE from Var(K) / H^2 over B independent samples
    ek, vk, e_inv = _kept_heads_moments(H, q)
    rate = kept.float().mean().item()
    assert abs(rate - ek / H) < Z * math.sqrt(vk / H**2 / B)
    # E[y] = x for one head: E[xi H / K] = 1, E[(xi H / K)^2] = H E[1 / K]
    se = math.sqrt((H * e_inv - 1) / B)
    assert abs(scale[:, 0].double().mean().item() - 1.0) < Z * se
    y.sum().backward()
    assert torch.equal(x.grad, y.detach())  # gradient 0 on dropped heads, H / k on kept ones


def test_drop_head_masks_differ_across_samples_not_time():
    x = torch.randn(8, 6, 5, 4)
    y = DF.drop_head(x, 0.5, True, generator=gen(29))
    dropped = (y == 0).all(dim=-1).all(dim=-1)  # (B, H)
    assert dropped.any()
    assert not (dropped == dropped[:1]).all()


def test_drop_head_single_head_is_never_dropped():
    x = torch.randn(50, 1, 3, 2)
    y = DF.drop_head(x, 0.9, True, generator=gen(30))
    assert torch.equal(y, x)  # one head: always redrawn until kept, scale 1 / 1


# ---------------------------------------------------------------------------------------------
# gaussian_dropout


def test_gaussian_dropout_mean_variance_and_gradient():
    p = 0.3
    var = p / (1 - p)
    n = 100_000
    x = torch.ones(n, requires_grad=True)
    y = DF.gaussian_dropout(x, p, True, generator=gen(31))
    yd = y.detach().double()
    # mean: SE sqrt(var / n); sample variance of a normal: SE sqrt(2 var^2 / (n - 1))
    assert abs(yd.mean().item() - 1.0) < Z * math.sqrt(var / n)
    assert abs(yd.var().item() - var) < Z * math.sqrt(2 * var**2 / (n - 1))
    y.sum().backward()
    assert torch.equal(x.grad, y.detach())  # dy/dx is the noise itself


def test_gaussian_dropout_variance_matches_bernoulli_dropout():
    # same p, same per-unit variance p / (1 - p) as inverted Bernoulli dropout
    p, n = 0.3, 100_000
    yb = DF.dropout(torch.ones(n), p, generator=gen(32)).double()
    yg = DF.gaussian_dropout(torch.ones(n), p, generator=gen(33)).double()
    target = p / (1 - p)
    # Bernoulli: m/q - 1 is 1/q - 1 with prob q and -1 with prob p; the SE of the sample
    # variance is sqrt((mu4 - var^2) / n) with mu4 the 4th central moment
    q = 1 - p
    mu4_b = q * (1 / q - 1) ** 4 + p * 1.0
    assert abs(yb.var().item() - target) < Z * math.sqrt((mu4_b - target**2) / n)
    assert abs(yg.var().item() - target) < Z * math.sqrt(2 * target**2 / (n - 1))


# ---------------------------------------------------------------------------------------------
# alpha_dropout


def _alpha_constants(p):
    q = 1 - p
    ap = -DF.SELU_SCALE * DF.SELU_ALPHA
    a = (q * (1 + p * ap**2)) ** -0.5
    b = -a * ap * p
    return q, ap, a, b


def test_alpha_dropout_constants_match_the_derivation():
    p = 0.2
    q, ap, a, b = _alpha_constants(p)
    assert ap == pytest.approx(-1.7580993408473766, rel=1e-12)  # torch's hard-coded constant
    # torch's form a = 1 / sqrt((alpha^2 p + 1)(1 - p))
    assert a == pytest.approx(1 / math.sqrt((ap**2 * p + 1) * (1 - p)), rel=1e-12)


@pytest.mark.parametrize("p", [0.1, 0.5])
def test_alpha_dropout_keeps_mean_zero_variance_one(p):
    q, ap, a, b = _alpha_constants(p)
    n = 100_000
    x = torch.randn(n, generator=gen(34), requires_grad=True)
    y = DF.alpha_dropout(x, p, True, generator=gen(35))
    yd = y.detach().double()
    # y is the mixture: with prob q, a x + b (x ~ N(0, 1)); with prob p, a alpha' + b.
    # mean 0, variance 1 by construction; 4th moment for the SE of the sample variance:
    mu4 = q * (3 * a**4 + 6 * a**2 * b**2 + b**4) + p * (a * ap + b) ** 4
    assert abs(yd.mean().item()) < Z * math.sqrt(1.0 / n)
    assert abs(yd.var().item() - 1.0) < Z * math.sqrt((mu4 - 1.0) / n)
    y.sum().backward()
    g = x.grad
    a32 = torch.tensor(a, dtype=torch.float32)
    assert ((g == 0) | (g == a32)).all()  # exactly 0 where dropped, a where kept
    kept = g != 0
    assert_keep_rate(kept, q, n)
    # dropped units all sit at the affine image of the saturation value, a alpha' + b
    dropped_vals = y.detach()[~kept]
    assert torch.allclose(dropped_vals, torch.full_like(dropped_vals, a * ap + b), rtol=1e-6)
    # kept units are a x + b
    assert torch.allclose(y.detach()[kept], a * x.detach()[kept] + b, atol=1e-6)


def test_alpha_dropout_differs_from_plain_dropout_on_selu_inputs():
    # plain dropout on SELU-normal inputs shifts the variance; alpha dropout does not
    n, p = 100_000, 0.3
    x = torch.randn(n, generator=gen(36))
    v_plain = DF.dropout(x, p, generator=gen(37)).double().var().item()
    assert v_plain > 1.3  # E[(x m / q)^2] = 1 / q = 1.43


# ---------------------------------------------------------------------------------------------
# GPU (skipped on a CPU-only machine)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_cuda_device_and_dtype_preserved(name, dtype):
    run, _, _, _ = VARIANTS[name]
    x = make_input(name, dtype).cuda()
    if name == "drop_connect":
        y_cpu_gen = DF.drop_connect(x, 0.3, weight=W_CONNECT.to(x), generator=gen(1))
        y_cuda = DF.drop_connect(x, 0.3, weight=W_CONNECT.to(x))
    elif name == "embedding_dropout":
        idx = torch.arange(24, device="cuda").reshape(4, 6) % 11
        y_cpu_gen = DF.embedding_dropout(idx, 0.3, weight=x, generator=gen(1))
        y_cuda = DF.embedding_dropout(idx, 0.3, weight=x)
    else:
        y_cpu_gen = run(x, 0.3, True, gen(1))  # a CPU generator: mask drawn there, moved over
        y_cuda = run(x, 0.3, True, None)  # the CUDA global RNG (fused kernel for dropout)
    for y in (y_cpu_gen, y_cuda):
        assert y.device == x.device and y.dtype == dtype
    # a CPU generator gives the same mask on either device
    x_cpu = x.cpu()
    if name not in ("drop_connect", "embedding_dropout"):
        torch.testing.assert_close(run(x_cpu, 0.3, True, gen(1)), y_cpu_gen.cpu())
