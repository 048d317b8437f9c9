"""Tests of dropoutlib's modules: thin wrappers over dropoutlib.functional plus the modules with
learned parameters (ConcreteDropout, Standout) and LayerDrop.

Statistical checks: fixed seeds, tolerance Z = 6 standard errors derived in each test.
"""

import copy
import math

import pytest
import torch
from torch import nn

import dropoutlib as D
import dropoutlib.functional as DF
from dropoutlib import DropoutModule

Z = 6.0


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.fixture(autouse=True)
def _seed_global_rng():
    # module initialisations and the no-generator paths draw from the global RNG: fix it
    torch.manual_seed(0)


# module factory (p, generator) -> module, and an input it accepts
ACTIVATION_MODULES = {
    "Dropout": (lambda p, g: D.Dropout(p, generator=g), (4, 6, 8)),
    "SpatialDropout": (lambda p, g: D.SpatialDropout(p, generator=g), (4, 6, 8)),
    "LockedDropout": (lambda p, g: D.LockedDropout(p, generator=g), (4, 6, 8)),
    "DropPath": (lambda p, g: D.DropPath(p, generator=g), (4, 6, 8)),
    "DropHead": (lambda p, g: D.DropHead(p, generator=g), (4, 3, 6, 8)),
    "GaussianDropout": (lambda p, g: D.GaussianDropout(p, generator=g), (4, 6, 8)),
    "AlphaDropout": (lambda p, g: D.AlphaDropout(p, generator=g), (4, 6, 8)),
}
P_ONE_FORBIDDEN = {"DropHead", "GaussianDropout", "AlphaDropout"}


def make_x(shape, dtype=torch.float32):
    return torch.randn(shape, generator=gen(7)).to(dtype)


@pytest.mark.parametrize("name", ACTIVATION_MODULES)
def test_module_eval_is_identity_and_train_is_noisy(name):
    make, shape = ACTIVATION_MODULES[name]
    m = make(0.5, gen(0))
    x = make_x(shape)
    assert m.training
    y = m(x)
    assert y.shape == x.shape and not torch.equal(y, x)
    m.eval()
    state = m.generator.get_state()
    assert m(x) is x
    assert torch.equal(m.generator.get_state(), state)  # no draws at eval


@pytest.mark.parametrize("name", ACTIVATION_MODULES)
def test_module_matches_its_function(name):
    make, shape = ACTIVATION_MODULES[name]
    fn = {
        "Dropout": DF.dropout,
        "SpatialDropout": DF.spatial_dropout,
        "LockedDropout": DF.locked_dropout,
        "DropPath": DF.drop_path,
        "DropHead": DF.drop_head,
        "GaussianDropout": DF.gaussian_dropout,
        "AlphaDropout": DF.alpha_dropout,
    }[name]
    x = make_x(shape)
    assert torch.equal(make(0.3, gen(1))(x), fn(x, 0.3, True, generator=gen(1)))


@pytest.mark.parametrize("name", ACTIVATION_MODULES)
def test_module_p_is_validated_and_repr_shows_it(name):
    make, _ = ACTIVATION_MODULES[name]
    m = make(0.25, None)
    assert isinstance(m, DropoutModule)
    assert "p=0.25" in repr(m)
    for bad in [-0.1, 1.5, float("nan"), float("inf"), "0.5", True, None]:
        with pytest.raises(ValueError, match="^p must be"):
            make(bad, None)
        with pytest.raises(ValueError, match="^p must be"):
            m.p = bad
    assert m.p == 0.25  # a failed assignment leaves p unchanged
    if name in P_ONE_FORBIDDEN:
        with pytest.raises(ValueError, match=r"p must be in \[0, 1\)"):
            make(1.0, None)
    else:
        m.p = 1.0
        x = make_x(ACTIVATION_MODULES[name][1])
        assert torch.equal(m(x), torch.zeros_like(x))


@pytest.mark.parametrize("name", ACTIVATION_MODULES)
def test_module_generator_is_validated_and_reproducible(name):
    make, shape = ACTIVATION_MODULES[name]
    with pytest.raises(ValueError, match="generator must be a torch.Generator or None"):
        make(0.5, 3)
    x = make_x(shape)
    assert torch.equal(make(0.5, gen(9))(x), make(0.5, gen(9))(x))
    m = make(0.5, gen(9))
    assert "generator=Generator" in repr(m)
    c = copy.deepcopy(m)  # modules with a generator can be copied (EMA, checkpoints)
    assert torch.equal(c(x), m(x))


@pytest.mark.parametrize("name", ACTIVATION_MODULES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_module_preserves_dtype(name, dtype):
    make, shape = ACTIVATION_MODULES[name]
    y = make(0.3, gen(2))(make_x(shape, dtype))
    assert y.dtype == dtype


def test_dropout_module_without_generator_is_torch_native():
    x = torch.randn(30, 20)
    torch.manual_seed(5)
    a = D.Dropout(0.4)(x)
    torch.manual_seed(5)
    b = nn.Dropout(0.4)(x)
    assert torch.equal(a, b)


def test_module_options_are_validated_and_shown():
    assert "channel_dim=1" in repr(D.SpatialDropout(0.1, channel_dim=1))
    assert "time_dim=0" in repr(D.LockedDropout(0.1, time_dim=0))
    assert "scale_by_keep=False" in repr(D.DropPath(0.1, scale_by_keep=False))
    with pytest.raises(ValueError, match="channel_dim must be a nonzero int"):
        D.SpatialDropout(0.1, channel_dim=0)
    with pytest.raises(ValueError, match="time_dim must be an int"):
        D.LockedDropout(0.1, time_dim=1.0)
    with pytest.raises(ValueError, match="scale_by_keep must be a bool"):
        D.DropPath(0.1, scale_by_keep="yes")
    with pytest.raises(ValueError, match=r"x must be 4-D .* got shape \(2, 3, 4\)"):
        D.DropHead(0.1)(torch.ones(2, 3, 4))


def test_set_dropout_p_reaches_the_modules():
    model = nn.Sequential(D.Dropout(0.1), D.DropPath(0.1), D.DropConnectLinear(0.1, 3, 3))
    D.set_dropout_p(model, 0.3)
    assert [m.p for m in model] == [0.3, 0.3, 0.3]


# ---------------------------------------------------------------------------------------------
# DropConnectLinear


def test_drop_connect_linear_init_matches_nn_linear():
    torch.manual_seed(0)
    ref = nn.Linear(5, 3)
    torch.manual_seed(0)
    m = D.DropConnectLinear(0.5, 5, 3)
    assert torch.equal(m.weight, ref.weight) and torch.equal(m.bias, ref.bias)
    x = torch.randn(4, 5)
    m.eval()
    assert torch.equal(m(x), ref(x))
    assert D.DropConnectLinear(0.5, 5, 3, bias=False).bias is None
    assert "in_features=5, out_features=3, bias=True" in repr(m)


def test_drop_connect_linear_from_linear_shares_parameters():
    lin = nn.Linear(8, 4)
    m = D.DropConnectLinear.from_linear(lin, 0.5, generator=gen(1))
    assert m.weight is lin.weight and m.bias is lin.bias
    assert [n for n, _ in m.named_parameters()] == ["weight", "bias"]
    assert all(t.device.type == "cpu" for t in m.parameters())
    x = torch.ones(2, 8)
    y = m(x)
    y.sum().backward()
    # the wrapped layer's weight gets the gradient; dropped weights get exactly 0
    g = lin.weight.grad
    assert set(g.unique().tolist()) <= {0.0, 2 * torch.tensor(1 / 0.5).item()}
    assert (g == 0).any() and (g != 0).any()
    # a fresh mask each forward
    assert not torch.equal(m(x), m(x))
    m.eval()
    assert torch.equal(m(x), lin(x))
    no_bias = D.DropConnectLinear.from_linear(nn.Linear(3, 2, bias=False), 0.1)
    assert no_bias.bias is None
    ps = D.DropConnectLinear.from_linear(lin, 0.5, per_sample=True, generator=gen(2))
    assert "per_sample=True" in repr(ps)
    ys = ps(torch.ones(3, 8))
    assert not torch.equal(ys[0], ys[1])  # one mask per example
    with pytest.raises(ValueError, match="linear must be an nn.Linear, got Conv1d"):
        D.DropConnectLinear.from_linear(nn.Conv1d(2, 2, 1), 0.5)


def test_drop_connect_linear_keep_rate():
    p, q = 0.3, 0.7
    m = D.DropConnectLinear(p, 500, 200, bias=False, generator=gen(2))  # 1e5 weights
    with torch.no_grad():
        m.weight.fill_(1.0)
    m(torch.ones(1, 500)).sum().backward()
    kept = m.weight.grad != 0
    se = math.sqrt(p * q / kept.numel())
    assert abs(kept.float().mean().item() - q) < Z * se


# ---------------------------------------------------------------------------------------------
# EmbeddingDropout


def test_embedding_dropout_module_wraps_an_embedding():
    emb = nn.Embedding(12, 4, padding_idx=0)
    m = D.EmbeddingDropout(0.5, emb, generator=gen(3))
    assert m.weight is emb.weight
    idx = torch.randint(0, 12, (6, 20), generator=gen(4))
    y = m(idx)
    ref = emb(idx)
    # whole token types: every occurrence of a token is dropped or scaled by 2
    for tok in range(12):
        rows = y[idx == tok]
        if rows.numel():
            dropped = (rows == 0).all(dim=-1)
            assert dropped.all() or not dropped.any()
            if not dropped.any():
                assert torch.allclose(rows, 2 * ref[idx == tok])
    y.sum().backward()
    assert torch.equal(emb.weight.grad[0], torch.zeros(4))  # padding_idx honoured
    m.eval()
    assert torch.equal(m(idx), ref)
    assert "p=0.5" in repr(m)
    with pytest.raises(ValueError, match="embedding must be an nn.Embedding, got Linear"):
        D.EmbeddingDropout(0.1, nn.Linear(2, 2))


# ---------------------------------------------------------------------------------------------
# LayerDrop


class AddConst(nn.Module):
    """A residual block x -> x + c that counts its calls and the batch sizes it saw."""

    def __init__(self, c):
        super().__init__()
        self.c = c
        self.calls = []

    def forward(self, x):
        self.calls.append(x.shape[0])
        return x + self.c


def make_layerdrop(p, n=5, generator=None):
    # block i adds 2**i, so the output reveals exactly which blocks ran
    return D.LayerDrop(p, [AddConst(2.0**i) for i in range(n)], generator=generator)


def ran_blocks(y, x, n):
    code = int((y - x)[0, 0].item())
    return [bool(code >> i & 1) for i in range(n)]


def test_layerdrop_skips_whole_blocks_for_the_whole_batch():
    n, p, q = 5, 0.4, 0.6
    ld = make_layerdrop(p, n, gen(10))
    x = torch.zeros(8, 3)
    runs = 2000
    kept = 0
    for _ in range(runs):
        y = ld(x)
        assert torch.equal(y, y[:1].expand_as(y))  # one decision for the whole batch
        ran = ran_blocks(y, x, n)
        kept += sum(ran)
    for block in ld:
        assert all(b == 8 for b in block.calls)  # a block runs on the full batch or not at all
    assert sum(len(b.calls) for b in ld) == kept
    # n * runs independent Bernoulli(q) decisions; SE of the proportion
    se = math.sqrt(p * q / (n * runs))
    assert abs(kept / (n * runs) - q) < Z * se


def test_layerdrop_runs_every_block_at_eval_and_p_zero():
    x = torch.zeros(4, 2)
    for ld, label in [(make_layerdrop(0.9).eval(), "eval"), (make_layerdrop(0.0), "p=0")]:
        state = torch.get_rng_state()
        y = ld(x)
        assert torch.equal(y, torch.full_like(x, 31.0)), label  # 1 + 2 + 4 + 8 + 16
        assert torch.equal(torch.get_rng_state(), state), label


def test_layerdrop_p_one_skips_everything():
    ld = make_layerdrop(1.0)
    x = torch.zeros(4, 2)
    assert ld(x) is x
    assert all(not b.calls for b in ld)


def test_layerdrop_generator_reproducible_and_args_passed():
    x = torch.zeros(2, 2)
    a = [ran_blocks(make_layerdrop(0.5, generator=gen(11))(x), x, 5) for _ in range(3)]
    ld1, ld2 = make_layerdrop(0.5, generator=gen(12)), make_layerdrop(0.5, generator=gen(12))
    assert [ld1(x).sum() for _ in range(10)] == [ld2(x).sum() for _ in range(10)]
    assert a[0] == a[1] == a[2]

    class Scaled(nn.Module):
        def forward(self, x, scale=1.0):
            return x + scale

    ld = D.LayerDrop(0.0, [Scaled(), Scaled()])
    assert torch.equal(ld(torch.zeros(1), scale=3.0), torch.tensor([6.0]))


def test_layerdrop_validates_blocks_and_shows_repr():
    ld = make_layerdrop(0.2)
    assert len(ld) == 5 and isinstance(ld[0], AddConst)
    assert "p=0.2, n_blocks=5" in repr(ld)
    assert isinstance(ld, DropoutModule)
    with pytest.raises(ValueError, match="blocks must contain at least one module"):
        D.LayerDrop(0.1, [])
    with pytest.raises(ValueError, match=r"blocks\[1\] must be an nn.Module, got int"):
        D.LayerDrop(0.1, [nn.Identity(), 3])
    with pytest.raises(ValueError, match="blocks must be a list of modules, got a single Linear"):
        D.LayerDrop(0.1, nn.Linear(2, 2))
    with pytest.raises(ValueError, match="^p must be"):
        D.LayerDrop(1.5, [nn.Identity()])
    # the blocks are registered submodules: their parameters train
    ld = D.LayerDrop(0.1, nn.ModuleList([nn.Linear(2, 2), nn.Linear(2, 2)]))
    assert len(list(ld.parameters())) == 4


# ---------------------------------------------------------------------------------------------
# ConcreteDropout


def test_concrete_dropout_rate_is_read_only_and_validated():
    m = D.ConcreteDropout(0.2)
    assert m.p == pytest.approx(0.2, rel=1e-6)
    with pytest.raises(AttributeError):
        m.p = 0.3
    assert not isinstance(m, DropoutModule)  # schedulers leave a learned rate alone
    for bad in [0.0, 1.0, -0.1, 1.5, float("nan"), "0.1", None]:
        with pytest.raises(ValueError, match="^p must be"):
            D.ConcreteDropout(bad)
    with pytest.raises(ValueError, match="temperature must be > 0"):
        D.ConcreteDropout(0.1, temperature=0.0)
    with pytest.raises(ValueError, match="dropout_regularizer must be >= 0"):
        D.ConcreteDropout(0.1, dropout_regularizer=-1.0)
    with pytest.raises(ValueError, match="in_features must be a positive int"):
        D.ConcreteDropout(0.1, in_features=0)
    with pytest.raises(ValueError, match="layer must be an nn.Module"):
        D.ConcreteDropout(0.1, layer=3)
    assert "p=0.2, temperature=0.1" in repr(m)


def test_concrete_dropout_relaxed_mask_statistics():
    # P(relaxed drop > 1/2) = P(logit(p) + Logistic noise > 0) = p exactly (up to eps)
    p, n = 0.3, 100_000
    m = D.ConcreteDropout(p, generator=gen(20))
    x = torch.ones(n)
    y = m(x).detach()
    z = y * (1 - p)  # the relaxed keep value 1 - drop, in [0, 1] (float32 saturates)
    assert ((z >= 0) & (z <= 1)).all()
    assert ((z > 0.01) & (z < 0.99)).any()  # relaxed, not hard: some values in between
    mostly_dropped = (z < 0.5).float().mean().item()
    assert abs(mostly_dropped - p) < Z * math.sqrt(p * (1 - p) / n)
    m.eval()
    assert m(x) is x


def test_concrete_dropout_gradient_reaches_the_logit_and_p_stays_in_range():
    m = D.ConcreteDropout(0.1, nn.Linear(10, 1), generator=gen(21))
    x = torch.randn(64, 10, generator=gen(22))
    m(x).pow(2).mean().backward()
    assert m.p_logit.grad is not None and m.p_logit.grad.item() != 0.0
    # with only the dropout (entropy) term, minimising the regulariser pulls p up towards 0.5
    m = D.ConcreteDropout(0.1, in_features=10, dropout_regularizer=1.0)
    opt = torch.optim.SGD(m.parameters(), lr=0.05)
    ps = []
    # d reg / d logit = K p (1 - p) logit: near 0.5 each step shrinks the logit by ~12%
    for _ in range(100):
        opt.zero_grad()
        m.regularizer().backward()
        opt.step()
        ps.append(m.p)
    assert all(0.0 < p < 1.0 for p in ps)
    assert ps[0] > 0.1 and abs(ps[-1] - 0.5) < 0.01
    # with a large weight term the rate is pushed down instead, staying above 0
    m = D.ConcreteDropout(0.3, nn.Linear(10, 10), weight_regularizer=1.0, dropout_regularizer=0.0)
    opt = torch.optim.SGD([m.p_logit], lr=0.1)
    m(torch.randn(2, 10))
    for _ in range(50):
        opt.zero_grad()
        m.regularizer().backward()
        opt.step()
    assert 0.0 < m.p < 0.3


def test_concrete_dropout_regularizer_formula():
    layer = nn.Linear(3, 2)
    m = D.ConcreteDropout(0.25, layer, weight_regularizer=0.5, dropout_regularizer=0.1)
    with pytest.raises(ValueError, match="in_features is unknown"):
        m.regularizer()
    m(torch.randn(4, 3))
    p = 0.25
    sq = sum(w.detach().pow(2).sum().item() for w in layer.parameters())
    expected = 0.5 * sq / (1 - p) + 0.1 * 3 * (p * math.log(p) + (1 - p) * math.log(1 - p))
    assert m.regularizer().item() == pytest.approx(expected, rel=1e-5)


def test_concrete_dropout_dtype_and_reproducibility():
    x = torch.randn(4, 5)
    a = D.ConcreteDropout(0.2, generator=gen(23))(x)
    b = D.ConcreteDropout(0.2, generator=gen(23))(x)
    assert torch.equal(a, b)
    for dtype in (torch.float16, torch.bfloat16):
        assert D.ConcreteDropout(0.2, generator=gen(23))(x.to(dtype)).dtype == dtype


# ---------------------------------------------------------------------------------------------
# Standout


def test_standout_training_masks_and_eval_expectation():
    torch.manual_seed(0)
    layer = nn.Linear(20, 50)
    m = D.Standout(layer, alpha=1.0, beta=0.5, generator=gen(30))
    x = torch.randn(2000, 20, generator=gen(31))  # 1e5 units
    y = m(x).detach()
    a = layer(x).detach()
    h, keep = torch.relu(a), torch.sigmoid(a + 0.5)
    kept = y != 0
    # kept units pass unchanged, no 1/keep rescaling; exact: a and h are the module's own ops on
    # the same x, and its straight-through factor m + (keep - keep.detach()) is exactly 1 there
    assert torch.equal(y[kept], h[kept])
    # units with h > 0: kept ~ Bernoulli(keep_i) independently; compare the count with its mean,
    # SE sqrt(sum keep_i (1 - keep_i))
    live = h > 0
    k = keep[live].double()
    count = kept[live].sum().item()
    assert abs(count - k.sum().item()) < Z * math.sqrt((k * (1 - k)).sum().item())
    m.eval()
    assert torch.allclose(m(x), h * keep)
    assert torch.allclose(m.keep_prob(x), keep)


def test_standout_gradient_reaches_the_gate_and_is_zero_where_dropped():
    layer = nn.Linear(6, 40)
    m = D.Standout(layer, generator=gen(32))
    x = torch.randn(30, 6, generator=gen(33))
    out = m(x)
    out.sum().backward()
    assert m.alpha.grad is not None and m.alpha.grad.item() != 0.0
    assert m.beta.grad is not None and m.beta.grad.item() != 0.0
    assert layer.weight.grad is not None and layer.weight.grad.abs().sum() > 0
    # the activation path: with the gate frozen (learn_gate=False, alpha=0), the gradient wrt
    # the pre-activation is relu'(a) * m exactly: 0 where dropped
    layer2 = nn.Linear(6, 40)
    m2 = D.Standout(layer2, alpha=0.0, beta=0.0, learn_gate=False, generator=gen(34))
    assert list(m2.parameters()) == list(layer2.parameters())  # alpha, beta are buffers
    xx = torch.randn(30, 6, generator=gen(35), requires_grad=True)
    out2 = m2(xx)
    (gx,) = torch.autograd.grad(out2.sum(), xx)
    a2 = layer2(xx).detach()
    mask = (out2 != 0).float()
    assert torch.allclose(gx, (mask * (a2 > 0).float()) @ layer2.weight.detach())


def test_standout_validation_and_repr():
    with pytest.raises(ValueError, match="layer must be an nn.Linear, got Conv1d"):
        D.Standout(nn.Conv1d(2, 2, 1))
    with pytest.raises(ValueError, match="alpha must be a finite real number"):
        D.Standout(nn.Linear(2, 2), alpha=float("nan"))
    with pytest.raises(ValueError, match="learn_gate must be a bool"):
        D.Standout(nn.Linear(2, 2), learn_gate=1)
    with pytest.raises(ValueError, match="x must be a floating-point tensor"):
        D.Standout(nn.Linear(2, 2))(torch.ones(1, 2, dtype=torch.long))
    assert "alpha=1, beta=0, learn_gate=True" in repr(D.Standout(nn.Linear(2, 2)))
    assert "seed 000" in D.Standout.__doc__  # tells it apart from the schedule of seed 000


def test_standout_reproducible_with_generator():
    torch.manual_seed(1)
    layer = nn.Linear(4, 8)
    x = torch.randn(5, 4)
    a = D.Standout(layer, generator=gen(40))(x)
    b = D.Standout(layer, generator=gen(40))(x)
    assert torch.equal(a, b)


def test_module_forward_uses_self_training_not_a_global():
    # F.dropout inside a module must see module.eval(): check on a small model
    model = nn.Sequential(nn.Linear(4, 4), D.Dropout(0.5), D.DropPath(0.5), D.LockedDropout(0.5))
    x = torch.randn(3, 5, 4)
    model.eval()
    assert torch.equal(model(x), model[0](x))
    model.train()
    assert not torch.equal(model(x), model[0](x))
