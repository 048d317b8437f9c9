"""Tests of dropoutlib.learned: LearnedDropout (seed 002), its penalty, schedule and statistics."""

import copy
import math

import pytest
import torch
from torch import nn

from dropoutlib import LearnedDropout
from dropoutlib.learned import (
    NEAR_ONE,
    NEAR_ZERO,
    has_learned_dropout,
    mask_stats,
    penalty_coefficient,
    penalty_loss,
)

C, H = 48, 4  # channels, heads (head_size 12)
B, T = 4, 64  # 256 tokens, 12,288 mask entries


def make_input(seed=0, batch=B, time=T, channels=C):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, time, channels, generator=g)


def make_module(seed=0, **kwargs):
    torch.manual_seed(seed)
    return LearnedDropout(C, H, **kwargs)


def reference_attention(module, src):
    """Causal multi-head attention written out head by head, independent of the module."""
    batch, time, channels = src.shape
    d = channels // module.n_head
    w = module.qkv.weight.detach().double()
    q, k, v = (src.double() @ w.T).split(channels, dim=-1)
    causal = torch.ones(time, time, dtype=torch.bool).tril()
    out = torch.empty(batch, time, channels, dtype=torch.float64)
    for h in range(module.n_head):
        cols = slice(h * d, (h + 1) * d)
        scores = q[..., cols] @ k[..., cols].transpose(-1, -2) / math.sqrt(d)
        scores = scores.masked_fill(~causal, float("-inf"))
        out[..., cols] = scores.softmax(dim=-1) @ v[..., cols]
    return out


def binary(t):
    return bool(((t == 0) | (t == 1)).all())


# ------------------------------------------------------------------ the mask at initialisation


@pytest.mark.parametrize("shift", [0.0, math.pi / 2, math.pi])
def test_fraction_of_ones_at_init_follows_the_shift(shift):
    module = make_module(shift_init=shift)
    x = make_input()

    # The mask is 0.5 cos(attn + B) + 0.5 with the attention written out independently.
    a = reference_attention(module, x)
    m_expected = 0.5 * torch.cos(a + shift) + 0.5
    m = module.mask_probs(x).detach().double()
    assert torch.allclose(m, m_expected, atol=1e-5)

    module.train()
    module(x, generator=torch.Generator().manual_seed(1))
    ones = mask_stats(module)["ones"]
    n = m.numel()

    # Given M, the fraction of ones is a mean of n independent Bernoulli(M_i): its mean is
    # mean(M) and its standard error sqrt(sum M_i (1 - M_i)) / n. Allow 6 standard errors
    # (plus 1/n so that an all-0 or all-1 M, whose SE is 0, still has room for float error).
    se = math.sqrt(float((m * (1 - m)).sum())) / n
    assert abs(ones - float(m.mean())) <= 6 * se + 1.0 / n

    # At init the weights are N(0, 0.02^2), so the attention output a is small and
    # M ~ M0 = 0.5 cos(B) + 0.5; cos is 1-Lipschitz, so |mean(M) - M0| <= 0.5 mean|a|.
    # With the binomial spread of the sample (SE <= sqrt(0.25 / n)), the fraction of ones
    # is within 0.5 mean|a| + 6 sqrt(0.25 / n) of M0: ~1 for 0, ~0.5 for pi/2, ~0 for pi.
    m0 = 0.5 * math.cos(shift) + 0.5
    mean_abs_a = float(a.abs().mean())
    assert mean_abs_a < 0.1  # the premise: small attention output at init
    assert abs(ones - m0) <= 0.5 * mean_abs_a + 6 * math.sqrt(0.25 / n)


# ------------------------------------------------------------------ rounding


@pytest.mark.parametrize("training", [True, False])
def test_noise_linear_mask_is_exactly_binary_and_output_is_unscaled(training):
    module = make_module(shift_init=math.pi / 2)
    module.train(training)
    x = make_input()
    with torch.no_grad():
        m = module.mask_probs(x)
    y = module(x, generator=torch.Generator().manual_seed(3))
    if training:
        mask = module.last_mask
    else:
        mask = (m >= 0.5).float()
    assert binary(mask)
    assert 0 < float(mask.mean()) < 1  # both values occur at shift pi/2
    # x * mask exactly: no 1 / (1 - p) rescaling, as published.
    assert torch.equal(y, x * mask)


def test_eval_is_deterministic_and_thresholds_at_one_half():
    module = make_module(shift_init=math.pi / 2).eval()
    x = make_input()
    y1, y2 = module(x), module(x)
    assert torch.equal(y1, y2)
    m = module.mask_probs(x)
    assert torch.equal(y1, (m >= 0.5).float() * x)  # exact: the module's own ops on the same x
    assert module.last_m is None  # eval forwards leave the training statistics alone


def test_training_mask_depends_on_the_generator():
    module = make_module(shift_init=math.pi / 2).train()
    x = make_input()
    y1 = module(x, generator=torch.Generator().manual_seed(5))
    y2 = module(x, generator=torch.Generator().manual_seed(5))
    y3 = module(x, generator=torch.Generator().manual_seed(6))
    assert torch.equal(y1, y2)
    assert not torch.equal(y1, y3)
    module.generator = torch.Generator().manual_seed(5)  # the attribute works the same way
    assert torch.equal(module(x), y1)


@pytest.mark.parametrize("training", [True, False])
def test_sigmoid_roundings_and_no_rounding(training):
    x = make_input()
    outputs = {}
    for rounding in ("sigmoid", "sigmoid_detach", None):
        module = make_module(shift_init=math.pi / 2, rounding=rounding).train(training)
        m = module.mask_probs(x)
        soft = torch.sigmoid(60 * (m - 0.5))
        y = module(x)
        expected = x * (m if rounding is None else soft)
        assert torch.allclose(y, expected, atol=1e-6)
        outputs[rounding] = y
        # Gradient of sum(w * y) with respect to B: sigmoid differentiates through the sigmoid,
        # sigmoid_detach and None pass the gradient straight to M.
        w = make_input(seed=9)
        (g,) = torch.autograd.grad((w * y).sum(), module.shift)
        surrogate = x * (soft if rounding == "sigmoid" else m)
        (g_expected,) = torch.autograd.grad((w * surrogate).sum(), module.shift)
        assert torch.allclose(g, g_expected, rtol=1e-4, atol=1e-6)
    # the three roundings really differ
    assert not torch.allclose(outputs["sigmoid"], outputs[None])


# ------------------------------------------------------------------ gradients


@pytest.mark.parametrize("shift", [0.0, math.pi / 2])
def test_gradients_reach_shift_and_qkv_through_the_straight_through_estimator(shift):
    module = make_module(shift_init=shift).train()
    x = make_input()
    w = make_input(seed=7)
    y = module(x, generator=torch.Generator().manual_seed(2))
    (w * y).sum().backward()

    # Straight-through: the gradient is the one of the continuous surrogate x * M.
    ref = make_module(shift_init=shift)
    (w * x * ref.mask_probs(x)).sum().backward()
    assert torch.allclose(module.shift.grad, ref.shift.grad, rtol=1e-4, atol=1e-8)
    assert torch.allclose(module.qkv.weight.grad, ref.qkv.weight.grad, rtol=1e-4, atol=1e-9)

    for name, grad in [("shift", module.shift.grad)] + [
        (part, chunk) for part, chunk in zip("qkv", module.qkv.weight.grad.chunk(3))
    ]:
        assert torch.isfinite(grad).all(), name
        assert grad.abs().sum() > 0, name


def test_detach_input_stops_the_mask_gradient_into_its_input():
    x = make_input().requires_grad_()
    module = make_module(shift_init=math.pi / 2, detach_input=True).eval()
    module(x).sum().backward()
    assert torch.equal(x.grad, (module.mask_probs(x) >= 0.5).float())  # only via x * mask

    x2 = make_input().requires_grad_()
    module = make_module(shift_init=math.pi / 2).eval()
    module(x2).sum().backward()
    assert not torch.equal(x2.grad, (module.mask_probs(x2) >= 0.5).float())


# ------------------------------------------------------------------ causality and inputs


def test_mask_is_causal():
    module = make_module(shift_init=math.pi / 2).eval()
    x = make_input()
    x2 = x.clone()
    t0 = 40
    x2[:, t0] += 3.0
    with torch.no_grad():
        m1, m2 = module.mask_probs(x), module.mask_probs(x2)
    assert torch.allclose(m1[:, :t0], m2[:, :t0], rtol=0, atol=1e-7)
    assert (m1[:, t0:] - m2[:, t0:]).abs().max() > 1e-4


def test_embed_input():
    module = make_module(shift_init=math.pi / 2, input="embed").eval()
    x, x_other, e = make_input(0), make_input(1), make_input(2)
    with pytest.raises(ValueError, match="embed"):
        module(x)
    with pytest.raises(ValueError, match="shape"):
        module(x, e[:, :10])
    # The mask is computed from embed, not from x, and multiplies x.
    m = module.mask_probs(x, e)
    assert torch.equal(m, module.mask_probs(x_other, e))
    assert torch.equal(module(x, e), (m >= 0.5).float() * x)
    expected = 0.5 * torch.cos(reference_attention(module, e) + math.pi / 2) + 0.5
    assert torch.allclose(m.double(), expected, atol=1e-5)


def test_hidden_input_ignores_embed():
    module = make_module(shift_init=math.pi / 2).eval()
    x = make_input()
    assert torch.equal(module(x, make_input(3)), module(x))


# ------------------------------------------------------------------ penalty


def known_mask_module(shifts):
    """A module with zero Q/K/V weights: the attention output is 0, so M = 0.5 cos(B) + 0.5."""
    module = LearnedDropout(len(shifts), 1)
    with torch.no_grad():
        module.qkv.weight.zero_()
        module.shift.copy_(torch.tensor(shifts))
    return module


def test_penalty_equals_its_formula_on_a_known_mask():
    shifts = [0.0, 0.3, 1.0, math.pi / 2, 2.5, math.pi]
    module = known_mask_module(shifts).train()
    module(make_input(channels=len(shifts)))
    m = torch.tensor([0.5 * math.cos(b) + 0.5 for b in shifts])
    assert torch.allclose(module.last_m, m.expand(B, T, -1), atol=1e-6)
    assert module.penalty("squared").item() == pytest.approx(float((m**2 / 2).mean()), abs=1e-6)
    assert module.penalty().item() == pytest.approx(float((m**2 / 2).mean()), abs=1e-6)
    assert module.penalty("linear").item() == pytest.approx(float(m.mean()), abs=1e-6)


class TwoMasks(nn.Module):
    def __init__(self, first, second):
        super().__init__()
        self.first, self.second = first, second

    def forward(self, x):
        return self.second(self.first(x))


def test_penalty_loss_averages_modules_and_applies_the_coefficient():
    model = TwoMasks(known_mask_module([0.0, 1.0]), known_mask_module([2.0, 3.0])).train()
    model(make_input(channels=2))
    p1, p2 = model.first.penalty().item(), model.second.penalty().item()
    assert p1 != pytest.approx(p2)

    loss = penalty_loss(model, step=0, coeff=0.3)
    assert loss.dim() == 0
    assert loss.item() == pytest.approx(0.3 * (p1 + p2) / 2, rel=1e-6)

    lin = penalty_loss(model, step=0, kind="linear", coeff=0.3).item()
    l1, l2 = model.first.penalty("linear").item(), model.second.penalty("linear").item()
    assert lin == pytest.approx(0.3 * (l1 + l2) / 2, rel=1e-6)

    schedule = {"rate": 0.01, "min": 0.02, "max": 0.5}
    c = penalty_coefficient(30, 0.1, schedule)
    scheduled = penalty_loss(model, step=30, coeff=0.1, schedule=schedule).item()
    assert scheduled == pytest.approx(c * (p1 + p2) / 2, rel=1e-6)

    # The penalty trains B: d/dB of coeff * mean(M^2 / 2) with M = 0.5 cos(B) + 0.5.
    loss.backward()
    b = model.first.shift.detach()
    m = 0.5 * torch.cos(b) + 0.5
    # mean over modules (1/2) and over the 2 channels (1/2); every (batch, time) entry is alike
    expected = 0.3 * 0.5 * 0.5 * m * (-0.5 * torch.sin(b))
    assert torch.allclose(model.first.shift.grad, expected, atol=1e-6)
    assert model.first.shift.grad.abs().sum() > 0


def test_penalty_before_a_training_forward_and_without_modules():
    module = make_module()
    with pytest.raises(RuntimeError, match="forward"):
        module.penalty()
    # penalty_loss: nothing waits to be penalised, so 0 (LayerDrop may skip every block)
    assert penalty_loss(module, step=0).item() == 0.0
    module.eval()(make_input())
    assert penalty_loss(module, step=0).item() == 0.0
    with torch.no_grad():
        module.train()(make_input())  # no graph, nothing to penalise
    assert penalty_loss(module, step=0).item() == 0.0

    plain = nn.Linear(4, 4)
    zero = penalty_loss(plain, step=10)
    assert zero.dim() == 0 and zero.item() == 0.0
    assert not has_learned_dropout(plain)
    assert has_learned_dropout(nn.Sequential(nn.Linear(C, C), make_module()))
    assert mask_stats(plain) == {}
    assert mask_stats(make_module()) == {}  # modules exist but none ran in training


class SkippingModel(nn.Module):
    """Runs only the masks listed in ``self.active``, like LayerDrop skipping blocks."""

    def __init__(self, masks):
        super().__init__()
        self.masks = nn.ModuleList(masks)
        self.active = list(range(len(masks)))

    def forward(self, x):
        for i in self.active:
            x = self.masks[i](x)
        return x


def test_penalty_loss_uses_the_modules_of_the_current_forward():
    masks = [known_mask_module(s) for s in ([0.0, 1.0], [2.0, 3.0], [0.5, 2.5])]
    model = SkippingModel(masks).train()
    x = make_input(channels=2)

    out = model(x)
    loss = penalty_loss(model, step=0, coeff=1.0)
    assert loss.item() == pytest.approx(sum(m.penalty().item() for m in masks) / 3, rel=1e-6)
    assert penalty_loss(model, step=0, coeff=1.0).item() == loss.item()  # same until backward
    (out.sum() + loss).backward()
    assert penalty_loss(model, step=0).item() == 0.0  # already used, no new forward

    model(x).sum().backward()  # a step without the penalty frees the graphs of M too
    assert not any(m.pending for m in masks)

    # Next step skips mask 1: its M belongs to the freed graph of the step before, so the
    # penalty averages masks 0 and 2 and the backward works.
    model.active = [0, 2]
    out = model(x)
    loss = penalty_loss(model, step=1, coeff=1.0)
    expected = (masks[0].penalty().item() + masks[2].penalty().item()) / 2
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    for m in masks:
        m.zero_grad()
    (out.sum() + loss).backward()
    assert masks[1].shift.grad is None or masks[1].shift.grad.abs().sum() == 0
    assert masks[0].shift.grad.abs().sum() > 0

    model.active = []  # every block skipped: nothing to penalise
    model(x)
    assert penalty_loss(model, step=2).item() == 0.0


# ------------------------------------------------------------------ schedule


def test_penalty_coefficient_constant_and_exponential():
    assert penalty_coefficient(0) == 0.1
    assert penalty_coefficient(12345, coeff=0.25) == 0.25

    schedule = {"rate": 0.01, "min": 0.02, "max": 0.5}
    assert penalty_coefficient(0, 0.1, schedule) == pytest.approx(0.02)  # exp(0) - 1 + min
    assert penalty_coefficient(20, 0.1, schedule) == pytest.approx(math.exp(0.2) - 1 + 0.02)
    cap_step = math.log(0.5 - 0.02 + 1) / 0.01  # where the ramp reaches max
    assert penalty_coefficient(math.floor(cap_step), 0.1, schedule) < 0.5
    assert penalty_coefficient(math.ceil(cap_step), 0.1, schedule) == 0.5
    assert penalty_coefficient(10**9, 0.1, schedule) == 0.5  # no overflow
    values = [penalty_coefficient(s, 0.1, schedule) for s in range(0, 60, 5)]
    assert values == sorted(values)

    # "min" defaults to 0, "max" to coeff
    assert penalty_coefficient(0, 0.1, {"rate": 0.001}) == 0.0
    assert penalty_coefficient(100, 0.3, {"rate": 0.001}) == pytest.approx(math.exp(0.1) - 1)
    assert penalty_coefficient(10**6, 0.3, {"rate": 0.001}) == 0.3


@pytest.mark.parametrize(
    "schedule, match",
    [
        ({"rate": 0.1, "slope": 1}, "unknown"),
        ({"min": 0.0, "max": 0.1}, "rate"),
        ({"rate": 0.0}, "rate"),
        ({"rate": 1.0}, "rate"),
        ({"rate": 0.1, "min": 0.2, "max": 0.1}, "min"),
        ({"rate": 0.1, "min": -0.1}, "min"),
        ({"rate": 0.1, "max": 0.0}, "max"),
        ({"rate": 0.1, "max": float("inf")}, "max"),
        ([0.1], "dict"),
    ],
)
def test_bad_schedules(schedule, match):
    with pytest.raises(ValueError, match=match):
        penalty_coefficient(1, 0.1, schedule)


def test_bad_step_and_coeff():
    for step in (-1, 1.5, True):
        with pytest.raises(ValueError, match="step"):
            penalty_coefficient(step)
    for coeff in (-0.1, float("nan"), "0.1"):
        with pytest.raises(ValueError, match="coeff"):
            penalty_coefficient(0, coeff)


# ------------------------------------------------------------------ statistics


def test_mask_stats_on_known_masks():
    # channels with M = 1 (B = 0), M = 0 (B = pi), M = 0.5 (B = pi / 2), M ~ 0.97 (B = 0.35)
    first = known_mask_module([0.0, math.pi, math.pi / 2, 0.35])
    second = known_mask_module([0.0, 0.0, 0.0, math.pi])
    model = TwoMasks(first, second).train()
    model(make_input(channels=4))
    stats = mask_stats(model)

    assert set(stats) == {
        f"{prefix}{key}"
        for prefix in ("", "layer0.", "layer1.")
        for key in ("ones", "near_zero", "near_one", "mean")
    }
    assert NEAR_ZERO == 0.1 and NEAR_ONE == 0.9
    assert stats["layer0.near_one"] == 0.5  # B = 0 and B = 0.35 give M > 0.9
    assert stats["layer0.near_zero"] == 0.25
    assert stats["layer1.near_one"] == 0.75
    assert stats["layer1.near_zero"] == 0.25
    assert stats["near_one"] == pytest.approx(0.625)
    assert stats["layer1.ones"] == 0.75  # Bernoulli(1) and Bernoulli(0) are certain
    m0 = [0.5 * math.cos(b) + 0.5 for b in (0.0, math.pi, math.pi / 2, 0.35)]
    assert stats["layer0.mean"] == pytest.approx(sum(m0) / 4, abs=1e-6)
    # layer0's ones: 1 + 0 + Bernoulli(0.5) + Bernoulli(0.97) per token, over 4 channels
    n = B * T
    expected = (1 + 0 + 0.5 + m0[3]) / 4
    se = math.sqrt((0.25 + m0[3] * (1 - m0[3])) * n) / (4 * n)
    assert abs(stats["layer0.ones"] - expected) <= 6 * se
    assert stats["ones"] == pytest.approx((stats["layer0.ones"] + stats["layer1.ones"]) / 2)
    assert all(isinstance(v, float) for v in stats.values())


def test_statistics_keep_the_last_training_forward():
    module = make_module(shift_init=math.pi / 2).train()
    module(make_input(0))
    before = mask_stats(module)
    module.eval()(make_input(1))
    assert mask_stats(module) == before


# ------------------------------------------------------------------ module housekeeping


def test_deepcopy_and_state_dict_after_a_training_forward():
    module = make_module().train()
    module(make_input())
    clone = copy.deepcopy(module)
    assert torch.equal(clone.qkv.weight, module.qkv.weight)
    assert torch.equal(clone.last_m, module.last_m.detach()) and not clone.pending
    assert module.pending  # the original is untouched
    assert set(module.state_dict()) == {"qkv.weight", "shift"}


def test_extra_repr_and_parameters():
    module = LearnedDropout(C, H, shift_init=1.0, rounding="sigmoid", input="embed")
    text = repr(module)
    for part in ("n_embd=48", "n_head=4", "shift_init=1", "'sigmoid'", "'embed'"):
        assert part in text
    assert module.qkv.bias is None
    assert module.qkv.weight.shape == (3 * C, C)
    assert module.shift.shape == (C,) and bool((module.shift == 1.0).all())
    assert not any("proj" in name for name, _ in module.named_parameters())  # no output proj
    assert sum(p.numel() for p in module.parameters()) == 3 * C * C + C


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"shift_init": -0.1}, r"shift_init.*\[0, pi\]"),
        ({"shift_init": 3.2}, r"shift_init.*\[0, pi\]"),
        ({"shift_init": float("nan")}, "shift_init"),
        ({"shift_init": "0"}, "shift_init"),
        ({"rounding": "round"}, "rounding.*noise_linear"),
        ({"input": "tokens"}, "input.*hidden"),
        ({"detach_input": 1}, "detach_input"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        LearnedDropout(C, H, **kwargs)


def test_bad_sizes_and_shapes():
    with pytest.raises(ValueError, match=r"n_embd=10.*n_head=3"):
        LearnedDropout(10, 3)
    with pytest.raises(ValueError, match="n_head"):
        LearnedDropout(10, 0)
    with pytest.raises(ValueError, match="n_embd"):
        LearnedDropout(10.0, 2)
    assert LearnedDropout(8, 2, shift_init=math.pi).shift_init == math.pi  # pi itself is valid
    module = make_module()
    with pytest.raises(ValueError, match="shape"):
        module(torch.randn(2, 5, C + 1))
    with pytest.raises(ValueError, match="shape"):
        module(torch.randn(5, C))


def test_unknown_penalty_kind():
    module = make_module().train()
    module(make_input())
    with pytest.raises(ValueError, match="kind.*squared"):
        module.penalty("cubic")
    with pytest.raises(ValueError, match="kind.*squared"):
        penalty_loss(module, step=0, kind="l2")
