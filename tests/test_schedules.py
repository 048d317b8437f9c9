"""Tests of dropoutlib.schedules: exact rates over training and depth, setting p on a model, and
the scheduler's steps and resume."""

import math

import pytest
import torch
from torch import nn

from dropoutlib import layers
from dropoutlib._base import DropoutModule
from dropoutlib.schedules import (
    ConstantRate,
    CosineDecay,
    CurriculumDropout,
    DropoutScheduler,
    EarlyDropout,
    LateDropout,
    LinearDecay,
    dropout_modules,
    interpolate_rates,
    layerwise_rates,
    set_dropout_p,
)


class TinyDrop(DropoutModule):
    """A minimal DropoutModule subclass, standing in for dropoutlib's layers."""

    def forward(self, x):
        return nn.functional.dropout(x, self.p, self.training)


class NoOneDrop(TinyDrop):
    allow_p_one = False


class LearnedRate(DropoutModule):
    """A module whose rate is learned: p is a read-only property computed from a parameter."""

    def __init__(self):
        nn.Module.__init__(self)
        self.logit = nn.Parameter(torch.tensor(0.0))

    @property
    def p(self):
        return float(torch.sigmoid(self.logit.detach()))

    def forward(self, x):
        return x


def mixed_model():
    return nn.Sequential(
        nn.Linear(4, 4),
        nn.Dropout(0.1),
        nn.Dropout1d(0.1),
        nn.Dropout2d(0.2),
        nn.Dropout3d(0.2),
        nn.AlphaDropout(0.1),
        nn.FeatureAlphaDropout(0.1),
        nn.Sequential(TinyDrop(0.3), nn.LayerNorm(4)),
        LearnedRate(),
    )


# ------------------------------------------------------------------------------------------------
# Schedules over training: exact values at chosen steps


def test_constant():
    s = ConstantRate(0.25)
    assert [s(t, 8) for t in (0, 4, 8)] == [0.25, 0.25, 0.25]


def test_linear_decay_is_seed_000_rule():
    # seed 000: initial * (1 - epoch / epochs), one scheduler step per epoch
    s = LinearDecay(0.1)
    assert [s(epoch, 3) for epoch in range(3)] == [0.1 * (1 - epoch / 3) for epoch in range(3)]
    assert s(0, 10) == 0.1
    assert s(5, 10) == 0.05
    assert s(10, 10) == 0.0


def test_linear_decay_to_floor():
    s = LinearDecay(0.3, final=0.1)
    assert s(0, 4) == pytest.approx(0.3, abs=1e-15)
    assert s(2, 4) == pytest.approx(0.2, abs=1e-15)
    assert s(4, 4) == pytest.approx(0.1, abs=1e-15)


def test_cosine_decay():
    s = CosineDecay(0.2, final=0.05)
    assert s(0, 10) == pytest.approx(0.2, abs=1e-15)
    assert s(5, 10) == pytest.approx(0.125, abs=1e-15)  # cos(pi/2) = 0: halfway
    assert s(10, 10) == pytest.approx(0.05, abs=1e-15)
    # a quarter of the way: (1 + cos(pi/4)) / 2 of the way down from 0.2
    assert s(25, 100) == pytest.approx(0.05 + 0.15 * (1 + math.sqrt(0.5)) / 2, abs=1e-15)
    assert CosineDecay(0.1)(10, 10) == pytest.approx(0.0, abs=1e-15)


def test_early_dropout_constant_switches_at_cutoff():
    s = EarlyDropout(0.1, cutoff=0.25)
    assert s(0, 100) == 0.1
    assert s(24, 100) == 0.1
    assert s(25, 100) == 0.0  # the switching step
    assert s(100, 100) == 0.0


def test_early_dropout_linear():
    s = EarlyDropout(0.1, cutoff=0.25, schedule="linear")
    assert s(0, 100) == 0.1
    assert s(10, 100) == pytest.approx(0.1 * (1 - 10 / 25), abs=1e-15)
    assert s(24, 100) == pytest.approx(0.1 / 25, abs=1e-15)
    assert s(25, 100) == 0.0
    assert s(60, 100) == 0.0


def test_early_dropout_matches_reference_scheduler_constant_form():
    # facebookresearch/dropout's drop_scheduler(mode="early", schedule="constant"): p for the
    # first cutoff_epoch * niter_per_ep iterations, then 0 (epochs=6, niter=5, cutoff_epoch=2)
    epochs, niter, cutoff_epoch = 6, 5, 2
    expected = [0.1] * (cutoff_epoch * niter) + [0.0] * ((epochs - cutoff_epoch) * niter)
    s = EarlyDropout(0.1, cutoff=cutoff_epoch / epochs)
    assert [s(t, epochs * niter) for t in range(epochs * niter)] == expected


def test_late_dropout():
    s = LateDropout(0.1, cutoff=0.5)
    assert s(0, 10) == 0.0
    assert s(4, 10) == 0.0
    assert s(5, 10) == 0.1  # the switching step
    assert s(10, 10) == 0.1


def test_cutoff_rounds_to_nearest_step():
    # 0.1 * 10 is 1 up to float error: the switch happens at step 1, not 2
    assert [EarlyDropout(0.5, 0.1)(t, 10) for t in range(3)] == [0.5, 0.0, 0.0]
    # 0.5 * 3 = 1.5 rounds half up to step 2
    assert [LateDropout(0.5, 0.5)(t, 3) for t in range(4)] == [0.0, 0.0, 0.5, 0.5]
    # the ends: cutoff 0 and 1
    assert EarlyDropout(0.5, 0.0).rates(4) == [0.0] * 5
    assert LateDropout(0.5, 0.0).rates(4) == [0.5] * 5
    assert EarlyDropout(0.5, 1.0).rates(4) == [0.5] * 4 + [0.0]


def test_curriculum():
    s = CurriculumDropout(0.5, gamma=0.1)
    assert s(0, 20) == 0.0
    assert s(10, 20) == pytest.approx(0.5 * (1 - math.exp(-1.0)), abs=1e-15)
    assert s(20, 20) == pytest.approx(0.5 * (1 - math.exp(-2.0)), abs=1e-15)
    # the paper's retain probability theta(t) = (1 - theta_bar) exp(-gamma t) + theta_bar
    theta_bar = 0.5
    for t in (0, 3, 17):
        theta = (1 - theta_bar) * math.exp(-0.1 * t) + theta_bar
        assert s(t, 20) == pytest.approx(1 - theta, abs=1e-15)


def test_curriculum_default_gamma_is_ten_over_total():
    s = CurriculumDropout(0.3)
    assert s(0, 100) == 0.0
    assert s(50, 100) == pytest.approx(0.3 * (1 - math.exp(-5.0)), abs=1e-15)
    assert s(100, 100) == pytest.approx(0.3 * (1 - math.exp(-10.0)), abs=1e-15)
    # independent of the length of training: same fraction, same rate
    assert s(500, 1000) == pytest.approx(s(50, 100), abs=1e-15)


def test_rates_lists_every_step():
    s = CosineDecay(0.4)
    values = s.rates(6)
    assert len(values) == 7
    assert values == [s(t, 6) for t in range(7)]
    assert all(a >= b for a, b in zip(values, values[1:]))


@pytest.mark.parametrize(
    "schedule",
    [
        ConstantRate(0.1),
        LinearDecay(0.1),
        CosineDecay(0.1),
        EarlyDropout(0.1, 0.3),
        LateDropout(0.1, 0.3),
        CurriculumDropout(0.1),
    ],
)
def test_steps_are_validated(schedule):
    assert 0.0 <= schedule(7, 7) <= 0.1
    with pytest.raises(ValueError, match=r"step must be in \[0, total_steps\]"):
        schedule(8, 7)
    with pytest.raises(ValueError, match="step must be an int >= 0"):
        schedule(-1, 7)
    with pytest.raises(ValueError, match="total_steps must be an int >= 1"):
        schedule(0, 0)
    with pytest.raises(TypeError, match="step must be an int"):
        schedule(1.0, 7)
    with pytest.raises(TypeError, match="total_steps must be an int"):
        schedule(1, 7.0)
    with pytest.raises(TypeError, match="step must be an int"):
        schedule(True, 7)


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan"), float("inf"), "0.1", None, True])
def test_schedule_rates_are_validated(bad):
    for make in (ConstantRate, LinearDecay, CosineDecay, CurriculumDropout):
        with pytest.raises(ValueError, match="p must be"):
            make(bad)
    with pytest.raises(ValueError, match="p must be"):
        EarlyDropout(bad, 0.5)
    with pytest.raises(ValueError, match="cutoff must be"):
        LateDropout(0.1, bad)
    with pytest.raises(ValueError, match="final must be"):
        LinearDecay(0.5, final=bad)


def test_schedule_arguments_are_validated():
    with pytest.raises(ValueError, match="final must be <= p"):
        LinearDecay(0.1, final=0.2)
    with pytest.raises(ValueError, match="final must be <= p"):
        CosineDecay(0.1, final=0.2)
    with pytest.raises(ValueError, match="schedule must be 'constant' or 'linear'"):
        EarlyDropout(0.1, 0.5, schedule="cosine")
    for gamma in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="gamma must be"):
            CurriculumDropout(0.1, gamma=gamma)
    with pytest.raises(ValueError, match="gamma must be a real number"):
        CurriculumDropout(0.1, gamma="fast")


def test_schedules_are_frozen():
    s = LinearDecay(0.1)
    with pytest.raises(AttributeError):
        s.p = 0.5


# ------------------------------------------------------------------------------------------------
# Rates over depth


def test_layerwise_rates_seed_000():
    assert layerwise_rates(4, 0.1, 0.02) == [0.1 + i * 0.02 for i in range(4)]
    assert layerwise_rates(4, 0.1, 0.02) == pytest.approx([0.1, 0.12, 0.14, 0.16], abs=1e-15)
    assert layerwise_rates(3, 0.3, -0.1) == pytest.approx([0.3, 0.2, 0.1], abs=1e-15)
    assert layerwise_rates(1, 0.7, 5.0) == [0.7]


def test_layerwise_rates_errors_name_the_layer():
    with pytest.raises(ValueError, match="layer 3 gets rate"):
        layerwise_rates(5, 0.9, 0.05)  # 0.9, 0.95, 1.0, 1.05: layer 3 is out
    with pytest.raises(ValueError, match="layer 2 gets rate"):
        layerwise_rates(3, 0.1, -0.1)  # 0.1, 0.0, -0.1
    with pytest.raises(ValueError, match="n_layers must be an int >= 1"):
        layerwise_rates(0, 0.1, 0.0)
    with pytest.raises(TypeError, match="n_layers must be an int"):
        layerwise_rates(2.0, 0.1, 0.0)
    with pytest.raises(ValueError, match="base must be"):
        layerwise_rates(2, 1.2, 0.0)
    with pytest.raises(ValueError, match="step must be finite"):
        layerwise_rates(2, 0.1, float("inf"))


def test_interpolate_rates():
    assert interpolate_rates(5, 0.0, 0.2) == pytest.approx([0.0, 0.05, 0.1, 0.15, 0.2], abs=1e-15)
    rates = interpolate_rates(5, 0.0, 0.2)
    assert rates[0] == 0.0 and rates[-1] == 0.2  # exact at both ends
    assert interpolate_rates(3, 0.4, 0.1) == pytest.approx([0.4, 0.25, 0.1], abs=1e-15)
    assert interpolate_rates(1, 0.1, 0.3) == [0.1]  # linspace's convention
    assert interpolate_rates(4, 1.0, 1.0) == [1.0] * 4
    # timm's stochastic-depth rule: torch.linspace(0, drop_path_rate, depth)
    expected = torch.linspace(0, 0.1, 12, dtype=torch.float64).tolist()
    assert interpolate_rates(12, 0.0, 0.1) == pytest.approx(expected, abs=1e-15)


def test_interpolate_rates_errors():
    with pytest.raises(ValueError, match="p_first must be"):
        interpolate_rates(3, -0.1, 0.2)
    with pytest.raises(ValueError, match="p_last must be"):
        interpolate_rates(3, 0.1, 1.2)
    with pytest.raises(ValueError, match="n_layers must be an int >= 1"):
        interpolate_rates(0, 0.1, 0.2)


# ------------------------------------------------------------------------------------------------
# set_dropout_p


def test_set_dropout_p_sets_every_dropout_module():
    model = mixed_model()
    learned_p = model[-1].p
    assert set_dropout_p(model, 0.05) == 7
    kinds = [type(m) for _, m in dropout_modules(model)]
    assert kinds == [
        nn.Dropout,
        nn.Dropout1d,
        nn.Dropout2d,
        nn.Dropout3d,
        nn.AlphaDropout,
        nn.FeatureAlphaDropout,
        TinyDrop,
    ]
    assert all(m.p == 0.05 for _, m in dropout_modules(model))
    assert model[-1].p == learned_p  # a learned rate is not touched


def test_set_dropout_p_changes_behaviour():
    model = nn.Sequential(nn.Dropout(0.5), TinyDrop(0.5)).train()
    x = torch.ones(64)
    set_dropout_p(model, 0.0)
    assert torch.equal(model(x), x)
    set_dropout_p(model, 1.0)
    assert torch.equal(model(x), torch.zeros(64))


def test_set_dropout_p_on_transformer_layer():
    layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.1)
    # dropout, dropout1, dropout2, and MultiheadAttention's float self_attn.dropout (which the
    # module-only set_dropout_p used to miss, leaving the attention weights dropped)
    assert set_dropout_p(layer, 0.0) == 4
    assert layer.dropout.p == layer.dropout1.p == layer.dropout2.p == 0.0
    assert layer.self_attn.dropout == 0.0
    x = torch.randn(5, 3, 8)
    assert torch.equal(layer.train()(x), layer(x))


def test_set_dropout_p_without_dropout_returns_zero():
    assert set_dropout_p(nn.Sequential(nn.Linear(2, 2), nn.ReLU()), 0.1) == 0


def test_set_dropout_p_bad_input():
    model = mixed_model()
    before = [m.p for _, m in dropout_modules(model)]
    for bad in (1.5, -0.1, float("nan"), "0.1", None):
        with pytest.raises(ValueError, match="p must be"):
            set_dropout_p(model, bad)
    assert [m.p for _, m in dropout_modules(model)] == before  # nothing changed
    with pytest.raises(TypeError, match="model must be a torch.nn.Module"):
        set_dropout_p([nn.Dropout()], 0.1)


def test_set_dropout_p_one_rejected_by_module_that_forbids_it():
    model = nn.Sequential(nn.Dropout(0.1), NoOneDrop(0.1), nn.Dropout(0.1))
    with pytest.raises(ValueError, match=r"module '1' \(NoOneDrop\).*\[0, 1\)"):
        set_dropout_p(model, 1.0)
    assert [m.p for m in model] == [0.1, 0.1, 0.1]  # a refusal changes no module
    with pytest.raises(ValueError, match=r"module '1' \(NoOneDrop\)"):
        DropoutScheduler(model, lambda step, total: 1.0, total_steps=2)
    assert [m.p for m in model] == [0.1, 0.1, 0.1]
    assert set_dropout_p(model, 0.99) == 3


def test_set_dropout_p_with_dropoutlib_layers():
    concrete = layers.ConcreteDropout(0.2)
    standout = layers.Standout(nn.Linear(8, 8))
    model = nn.Sequential(
        layers.Dropout(0.1),
        layers.DropPath(0.1),
        layers.LockedDropout(0.1),
        layers.DropHead(0.1),
        layers.LayerDrop(0.1, [nn.Linear(8, 8)]),
        nn.Dropout(0.1),
        concrete,
        standout,
    )
    concrete_p = concrete.p
    assert set_dropout_p(model, 0.3) == 6
    assert [m.p for m in model[:6]] == [0.3] * 6
    assert concrete.p == concrete_p  # learned rate: not touched
    # DropHead forbids p = 1 and says so, naming the module
    with pytest.raises(ValueError, match=r"module '3' \(DropHead\)"):
        set_dropout_p(model, 1.0)


def test_scheduler_on_babygpt():
    from dropoutlib.model import BabyGPT, GPTConfig

    torch.manual_seed(0)
    model = BabyGPT(GPTConfig.v10(vocab_size=11))
    n_dropout = sum(isinstance(m, nn.Dropout) for m in model.modules())
    scheduler = DropoutScheduler(model, EarlyDropout(0.2, cutoff=0.5), total_steps=4)
    assert len(scheduler.modules) == n_dropout > 0
    idx = torch.randint(0, 11, (2, 8))
    model.train()
    assert not torch.equal(model(idx)[0], model(idx)[0])  # p = 0.2: stochastic
    scheduler.step()
    scheduler.step()  # step 2 = the cutoff: dropout off
    assert all(m.p == 0.0 for m in model.modules() if isinstance(m, nn.Dropout))
    assert torch.equal(model(idx)[0], model(idx)[0])


# ------------------------------------------------------------------------------------------------
# DropoutScheduler


def test_scheduler_updates_every_module_every_step():
    model = mixed_model()
    schedule = LinearDecay(0.4)
    scheduler = DropoutScheduler(model, schedule, total_steps=4)
    assert scheduler.p == 0.4
    assert all(m.p == 0.4 for _, m in dropout_modules(model))
    for step in range(1, 5):
        assert scheduler.step() == schedule(step, 4)
        assert scheduler.p == schedule(step, 4)
        assert all(m.p == schedule(step, 4) for _, m in dropout_modules(model))
    assert scheduler.p == 0.0
    with pytest.raises(ValueError, match="finished"):
        scheduler.step()


def test_scheduler_reproduces_seed_000_loop():
    # seed 000 sets every nn.Dropout's p to initial * (1 - epoch / epochs) at the start of an epoch
    model = nn.Sequential(nn.Dropout(0.1), nn.Linear(2, 2), nn.Dropout(0.1))
    epochs = 3
    scheduler = DropoutScheduler(model, LinearDecay(0.1), total_steps=epochs)
    seen = []
    for _epoch in range(epochs):
        seen.append([model[0].p, model[2].p])
        scheduler.step()
    assert seen == [[0.1 * (1 - e / epochs)] * 2 for e in range(epochs)]


def test_scheduler_resumes_from_state_dict():
    schedule = CosineDecay(0.3, final=0.05)
    a = DropoutScheduler(mixed_model(), schedule, total_steps=10)
    for _ in range(4):
        a.step()
    state = a.state_dict()
    assert state == {"last_step": 4, "total_steps": 10, "p": schedule(4, 10)}

    model_b = mixed_model()
    b = DropoutScheduler(model_b, schedule, total_steps=10)
    assert b.p == 0.3
    b.load_state_dict(state)
    assert b.p == a.p
    assert all(m.p == a.p for _, m in dropout_modules(model_b))
    for _ in range(6):
        assert b.step() == a.step()
    with pytest.raises(ValueError, match="finished"):
        b.step()


def test_scheduler_with_plain_function_and_learned_rate_ignored():
    model = mixed_model()
    learned_p = model[-1].p
    scheduler = DropoutScheduler(model, lambda step, total: 0.1 * step / total, total_steps=2)
    scheduler.step()
    assert all(m.p == 0.05 for _, m in dropout_modules(model))
    assert model[-1].p == learned_p
    assert "step=1/2" in repr(scheduler)


def test_scheduler_bad_input():
    model = mixed_model()
    with pytest.raises(ValueError, match="no dropout module"):
        DropoutScheduler(nn.Linear(2, 2), LinearDecay(0.1), total_steps=3)
    with pytest.raises(TypeError, match="schedule must be callable"):
        DropoutScheduler(model, 0.1, total_steps=3)
    with pytest.raises(ValueError, match="total_steps must be an int >= 1"):
        DropoutScheduler(model, LinearDecay(0.1), total_steps=0)
    with pytest.raises(TypeError, match="total_steps must be an int"):
        DropoutScheduler(model, LinearDecay(0.1), total_steps=3.0)
    with pytest.raises(ValueError, match=r"schedule\(step, total_steps\) must be in"):
        DropoutScheduler(model, lambda step, total: 1.5, total_steps=3)
    scheduler = DropoutScheduler(model, LinearDecay(0.1), total_steps=3)
    with pytest.raises(ValueError, match="does not match"):
        scheduler.load_state_dict({"last_step": 1, "total_steps": 4, "p": 0.0})
    with pytest.raises(ValueError, match=r"state\['last_step'\] must be in \[0, 3\]"):
        scheduler.load_state_dict({"last_step": 4, "total_steps": 3, "p": 0.0})
    assert scheduler.last_step == 0 and scheduler.p == 0.1  # a failed load changes nothing
    # a schedule that breaks mid-training: the failed step changes neither the step nor p
    broken = DropoutScheduler(model, lambda step, total: 0.2 if step < 2 else 1.5, total_steps=3)
    broken.step()
    with pytest.raises(ValueError, match=r"schedule\(step, total_steps\) must be in"):
        broken.step()
    assert broken.last_step == 1 and broken.p == 0.2
    assert all(m.p == 0.2 for _, m in dropout_modules(model))
