"""Tests of dropoutlib.uncertainty: the MC dropout context, MC prediction's entropies, R-Drop."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from dropoutlib import layers
from dropoutlib._base import DropoutModule
from dropoutlib.learned import LearnedDropout
from dropoutlib.uncertainty import MCPrediction, mc_dropout, mc_predict, r_drop_loss


class Wrapper(DropoutModule):
    """A DropoutModule with children, as LayerDrop and EmbeddingDropout are: its own flag turns
    on in mc_dropout, its children's must not."""

    def __init__(self, p, inner):
        super().__init__(p)
        self.inner = inner

    def forward(self, x):
        return self.inner(F.dropout(x, self.p, self.training))


def bn_model():
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Linear(6, 6),
        nn.BatchNorm1d(6),
        nn.Dropout(0.5),
        nn.LayerNorm(6),
        Wrapper(0.5, nn.Sequential(nn.Linear(6, 6), nn.BatchNorm1d(6))),
    )


def modes(model):
    return [m.training for m in model.modules()]


# ------------------------------------------------------------------------------------------------
# mc_dropout


@pytest.mark.parametrize("start", ["train", "eval", "mixed"])
def test_mc_dropout_switches_only_dropout_modules_and_restores(start):
    model = bn_model()
    if start == "train":
        model.train()
    elif start == "eval":
        model.eval()
    else:
        model.train()
        model[1].eval()
        model[4].inner.eval()
        model[2].eval()
    before = modes(model)
    with mc_dropout(model) as m:
        assert m is model
        assert model[2].training and model[4].training  # the dropout modules
        assert not model.training
        assert not model[1].training and not model[3].training  # BatchNorm, LayerNorm
        assert not model[4].inner.training and not model[4].inner[1].training  # wrapped children
    assert modes(model) == before


def test_mc_dropout_restores_on_exception():
    model = bn_model().train()
    model[1].eval()
    before = modes(model)
    with pytest.raises(RuntimeError, match="boom"):
        with mc_dropout(model):
            raise RuntimeError("boom")
    assert modes(model) == before


def test_mc_dropout_batchnorm_keeps_eval_behaviour():
    model = bn_model().train()
    x = torch.randn(16, 6)
    model(x)  # give the running statistics non-trivial values
    bns = [model[1], model[4].inner[1]]
    stats = [
        (bn.running_mean.clone(), bn.running_var.clone(), bn.num_batches_tracked.clone())
        for bn in bns
    ]
    with mc_dropout(model):
        outs = [model(torch.randn(16, 6)) for _ in range(3)]
        # BatchNorm normalises with its running statistics (eval), not the batch's
        h = model[0](x)
        expected = F.batch_norm(
            h,
            bns[0].running_mean,
            bns[0].running_var,
            bns[0].weight,
            bns[0].bias,
            False,
            0.0,
            bns[0].eps,
        )
        assert torch.equal(model[1](h), expected)  # exact: the very call eval BatchNorm makes
        # and the dropout modules do draw masks: two passes on the same input differ
        assert not torch.equal(model(x), model(x))
    assert all(torch.isfinite(o).all() for o in outs)
    for bn, (mean, var, count) in zip(bns, stats):
        assert torch.equal(bn.running_mean, mean)
        assert torch.equal(bn.running_var, var)
        assert torch.equal(bn.num_batches_tracked, count)


def test_mc_dropout_bad_model():
    with pytest.raises(TypeError, match="model must be a torch.nn.Module"):
        with mc_dropout("model"):
            pass


def test_mc_dropout_with_dropoutlib_layers():
    block = nn.Sequential(nn.Linear(8, 8), nn.BatchNorm1d(8))
    concrete = layers.ConcreteDropout(0.2, layer=nn.Linear(8, 8))
    standout = layers.Standout(nn.Linear(8, 8))
    learned = LearnedDropout(8, 2)
    model = nn.Sequential(
        nn.LayerNorm(8),
        layers.Dropout(0.5),
        layers.DropPath(0.5),
        layers.LayerDrop(0.5, [block]),
        concrete,
        standout,
        learned,
        nn.BatchNorm1d(8),
    )
    model.eval()
    with mc_dropout(model):
        assert [m.training for m in model] == [False, True, True, True, True, True, False, False]
        assert not block.training and not block[1].training  # blocks LayerDrop wraps
        assert not concrete.layer.training and not standout.layer.training
    assert not any(modes(model))


# ------------------------------------------------------------------------------------------------
# mc_predict


def entropy(p):
    return -(p * p.log()).sum(-1)


def test_mc_predict_without_dropout_is_deterministic_prediction():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.LayerNorm(8), nn.Linear(8, 5)).train()
    x = torch.randn(3, 7, 4)
    out = mc_predict(model, x, n=10)
    assert isinstance(out, MCPrediction)
    probs = F.softmax(model(x), dim=-1)
    assert out.probs.shape == (3, 7, 5)
    assert out.predictive_entropy.shape == out.mutual_information.shape == (3, 7)
    torch.testing.assert_close(out.probs, probs, rtol=0, atol=1e-6)
    torch.testing.assert_close(out.predictive_entropy, entropy(probs), rtol=0, atol=1e-5)
    torch.testing.assert_close(out.expected_entropy, entropy(probs), rtol=0, atol=1e-5)
    assert out.mutual_information.abs().max() < 1e-5
    assert model.training and all(m.training for m in model.modules())  # modes restored


def test_mc_predict_with_dropout_matches_hand_computation():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Dropout(0.5), nn.Linear(32, 5)).eval()
    x = torch.randn(6, 8)
    n = 40
    out = mc_predict(model, x, n, seed=123)

    # by hand, in float64, with the same random stream
    with torch.random.fork_rng(devices=[]), mc_dropout(model), torch.no_grad():
        torch.manual_seed(123)
        ps = torch.stack([F.softmax(model(x).double(), dim=-1) for _ in range(n)])
    mean = ps.mean(0)
    predictive = entropy(mean)
    expected = entropy(ps).mean(0)
    torch.testing.assert_close(out.probs.double(), mean, rtol=0, atol=1e-6)
    torch.testing.assert_close(out.predictive_entropy.double(), predictive, rtol=0, atol=1e-5)
    torch.testing.assert_close(out.expected_entropy.double(), expected, rtol=0, atol=1e-5)
    torch.testing.assert_close(
        out.mutual_information.double(), predictive - expected, rtol=0, atol=1e-5
    )

    assert (out.mutual_information > 1e-3).all()  # passes disagree: epistemic uncertainty
    torch.testing.assert_close(out.probs.sum(-1), torch.ones(6), rtol=0, atol=1e-6)
    assert (out.predictive_entropy <= math.log(5) + 1e-6).all()
    assert not model.training and not any(m.training for m in model.modules())


def test_mc_predict_seed_is_reproducible_and_leaves_global_rng_alone():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.Dropout(0.5), nn.Linear(16, 3))
    x = torch.randn(4, 8)
    state = torch.get_rng_state()
    a = mc_predict(model, x, 5, seed=7)
    assert torch.equal(torch.get_rng_state(), state)
    b = mc_predict(model, x, 5, seed=7)
    c = mc_predict(model, x, 5, seed=8)
    assert all(torch.equal(u, v) for u, v in zip(a, b))
    assert not torch.equal(a.probs, c.probs)


def test_mc_predict_takes_first_element_of_tuple_output():
    class LM(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(11, 16)
            self.drop = nn.Dropout(0.3)
            self.head = nn.Linear(16, 11)

        def forward(self, idx, targets=None):
            return self.head(self.drop(self.emb(idx))), None

    torch.manual_seed(0)
    model = LM()
    idx = torch.randint(0, 11, (2, 9))
    out = mc_predict(model, idx, 8, seed=0)
    assert out.probs.shape == (2, 9, 11)
    assert (out.mutual_information > 0).all()


def test_mc_predict_concrete_dropout_and_babygpt():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(4, 16), nn.ReLU(), layers.ConcreteDropout(0.3), nn.Linear(16, 3)
    )
    out = mc_predict(model, torch.randn(5, 4), 16, seed=0)
    assert (out.mutual_information > 0).all()

    from dropoutlib.model import BabyGPT, GPTConfig

    gpt = BabyGPT(GPTConfig.v10(vocab_size=13))
    idx = torch.randint(0, 13, (2, 8))
    out = mc_predict(gpt, idx, 8, seed=0)  # forward returns (logits, loss)
    assert out.probs.shape == (2, 8, 13)
    assert (out.mutual_information > 0).all()
    torch.testing.assert_close(out.probs.sum(-1), torch.ones(2, 8), rtol=0, atol=1e-5)
    assert gpt.training  # its mode is restored


def test_mc_predict_masked_logits_have_finite_entropy():
    # a vocabulary mask of -inf logits: p = 0 there, and 0 log 0 counts as 0, not nan
    class Masked(nn.Module):
        def __init__(self):
            super().__init__()
            self.drop = nn.Dropout(0.5)

        def forward(self, x):
            return self.drop(x).masked_fill(torch.arange(4) >= 2, float("-inf"))

    out = mc_predict(Masked(), torch.randn(3, 4), 10, seed=0)
    assert torch.isfinite(out.predictive_entropy).all()
    assert torch.isfinite(out.expected_entropy).all()
    assert (out.probs[:, 2:] == 0).all()
    assert (out.predictive_entropy <= math.log(2) + 1e-6).all()


def test_mc_predict_half_precision_logits():
    model = nn.Sequential(nn.Linear(4, 5)).to(torch.bfloat16)
    x = torch.randn(3, 4, dtype=torch.bfloat16)
    out = mc_predict(model, x, 2)
    assert out.probs.dtype == torch.float32
    torch.testing.assert_close(out.probs.sum(-1), torch.ones(3), rtol=0, atol=1e-6)


def test_mc_predict_bad_input():
    model = nn.Sequential(nn.Linear(4, 3), nn.Dropout(0.1))
    x = torch.randn(2, 4)
    with pytest.raises(ValueError, match="n must be an int >= 1"):
        mc_predict(model, x, 0)
    for bad in (2.0, True, "3"):
        with pytest.raises(TypeError, match="n must be an int"):
            mc_predict(model, x, bad)
    with pytest.raises(TypeError, match="seed must be an int or None"):
        mc_predict(model, x, 2, seed=1.5)
    with pytest.raises(TypeError, match="model must be a torch.nn.Module"):
        mc_predict(lambda t: t, x, 2)

    class Dict(nn.Module):
        def forward(self, x):
            return {"logits": x}

    with pytest.raises(TypeError, match="model output must be a floating-point tensor"):
        mc_predict(Dict(), x, 2)


# ------------------------------------------------------------------------------------------------
# r_drop_loss


def sym_kl_by_hand(a, b):
    pa, pb = F.softmax(a.double(), -1), F.softmax(b.double(), -1)
    kl_ab = (pa * (pa / pb).log()).sum(-1)
    kl_ba = (pb * (pb / pa).log()).sum(-1)
    return 0.5 * (kl_ab + kl_ba)


def test_r_drop_loss_zero_for_equal_logits():
    a = torch.randn(2, 5, 7)
    assert r_drop_loss(a, a.clone(), alpha=3.0).item() == 0.0  # (p - p)(log p - log p) = 0


def test_r_drop_loss_is_symmetric():
    torch.manual_seed(0)
    a, b = torch.randn(4, 6, 9), torch.randn(4, 6, 9)
    # exact: swapping the inputs negates both factors of each (p_a - p_b)(log p_a - log p_b)
    assert torch.equal(r_drop_loss(a, b, 0.5), r_drop_loss(b, a, 0.5))


def test_r_drop_loss_matches_hand_computation():
    torch.manual_seed(0)
    a, b = torch.randn(3, 4, 10), torch.randn(3, 4, 10)
    per_position = sym_kl_by_hand(a, b)
    loss = r_drop_loss(a, b, alpha=0.7)
    assert loss.ndim == 0
    assert loss.item() == pytest.approx(0.7 * per_position.mean().item(), rel=1e-5)
    loss_sum = r_drop_loss(a, b, alpha=0.7, reduction="sum")
    assert loss_sum.item() == pytest.approx(0.7 * per_position.sum().item(), rel=1e-5)
    # the authors' compute_kl_loss: F.kl_div both ways with reduction "sum", averaged
    la, lb = F.log_softmax(a, -1), F.log_softmax(b, -1)
    reference = 0.5 * (
        F.kl_div(la, lb, reduction="sum", log_target=True)
        + F.kl_div(lb, la, reduction="sum", log_target=True)
    )
    assert loss_sum.item() == pytest.approx(0.7 * reference.item(), rel=1e-5)
    assert r_drop_loss(a, b, alpha=0.0).item() == 0.0


def test_r_drop_loss_gradients_reach_both_passes():
    torch.manual_seed(0)
    a = torch.randn(2, 3, 5, requires_grad=True)
    b = torch.randn(2, 3, 5, requires_grad=True)
    r_drop_loss(a, b).backward()
    assert a.grad.abs().sum() > 0 and b.grad.abs().sum() > 0
    # moving a towards b lowers the loss: the gradient points away from b
    with torch.no_grad():
        step = r_drop_loss(a - 0.1 * a.grad, b)
    assert step < r_drop_loss(a, b).detach()


def test_r_drop_loss_low_precision():
    a = torch.randn(4, 8, dtype=torch.bfloat16)
    b = torch.randn(4, 8, dtype=torch.bfloat16)
    loss = r_drop_loss(a, b)
    assert loss.dtype == torch.float32
    assert loss.item() == pytest.approx(
        sym_kl_by_hand(a.float(), b.float()).mean().item(), rel=1e-5
    )


def test_r_drop_loss_bad_input():
    a = torch.randn(2, 5)
    with pytest.raises(ValueError, match=r"same shape, got \(2, 5\) and \(2, 6\)"):
        r_drop_loss(a, torch.randn(2, 6))
    for bad in (-0.1, float("nan"), float("inf"), True, "1"):
        with pytest.raises(ValueError, match="alpha must be"):
            r_drop_loss(a, a, alpha=bad)
    with pytest.raises(ValueError, match="reduction must be"):
        r_drop_loss(a, a, reduction="none")
    with pytest.raises(ValueError, match="floating-point"):
        r_drop_loss(torch.ones(2, 5, dtype=torch.long), torch.ones(2, 5, dtype=torch.long))
    with pytest.raises(TypeError, match="must be tensors"):
        r_drop_loss(a.tolist(), a)


@pytest.mark.parametrize("attention", ["heads", "fused"])
def test_mc_dropout_samples_attention_dropout_on_both_attention_paths(attention):
    """With only attention-weight dropout on, MC passes must differ on both paths: the fused
    block reads the mode of its (uncalled) dropout module, which mc_dropout switches on."""
    from dropoutlib import BabyGPT, GPTConfig

    torch.manual_seed(0)
    cfg = GPTConfig.v10(
        11, dropout=0.0, attn_dropout=0.5, attention=attention, n_layer=1, block_size=8
    )
    model = BabyGPT(cfg).eval()
    idx = torch.randint(0, 11, (2, 8), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ref = model(idx)[0]
        with mc_dropout(model):
            a, b = model(idx)[0], model(idx)[0]
        assert torch.equal(model(idx)[0], ref)  # eval again after the context
    assert not torch.equal(a, b)
