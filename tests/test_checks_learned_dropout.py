"""The chapter 08 checker accepts the LearnedDropout rounding and names each typical mistake."""

import pytest
import torch

from dropoutlib import checks
from dropoutlib.checks import HINTS, check_stochastic_rounding
from dropoutlib.learned import LearnedDropout


def correct(m, training=True):
    hard = torch.bernoulli(m.detach()) if training else (m.detach() >= 0.5).to(m.dtype)
    return hard + (m - m.detach())


def library(m, training=True):
    """dropoutlib's own rule, through LearnedDropout.round_mask."""
    module = LearnedDropout(8, 2).train(training)
    return module.round_mask(m)


def deterministic_round(m, training=True):
    return torch.round(m)


def no_straight_through(m, training=True):
    return torch.bernoulli(m) if training else (m >= 0.5).to(m.dtype)


def comparison_only(m, training=True):
    return (torch.rand_like(m) < m).to(m.dtype) if training else (m >= 0.5).to(m.dtype)


def swapped(m, training=True):
    hard = (torch.rand_like(m) >= m).to(m.dtype) if training else (m >= 0.5).to(m.dtype)
    return hard + (m - m.detach())


def continuous(m, training=True):
    return m * 1.0


def rescaled(m, training=True):
    hard = torch.bernoulli(m.detach()) / m.detach()
    return hard + (m - m.detach())


def random_in_eval(m, training=True):
    return torch.bernoulli(m.detach()) + (m - m.detach())


def strict_threshold(m, training=True):
    hard = torch.bernoulli(m.detach()) if training else (m.detach() > 0.5).to(m.dtype)
    return hard + (m - m.detach())


def sigmoid_gradient(m, training=True):
    hard = torch.bernoulli(m.detach()) if training else (m.detach() >= 0.5).to(m.dtype)
    soft = torch.sigmoid(60 * (m - 0.5))
    return hard + (soft - soft.detach())


def in_place(m, training=True):
    return m.detach().bernoulli_() if training else (m >= 0.5).to(m.dtype)


def same_draw_every_call(m, training=True):
    g = torch.Generator().manual_seed(0)
    u = torch.rand(m.shape, generator=g, dtype=m.dtype)
    hard = (u < m.detach()).to(m.dtype) if training else (m.detach() >= 0.5).to(m.dtype)
    return hard + (m - m.detach())


def float32_always(m, training=True):
    return correct(m, training).float()


def stub(m, training=True):
    raise NotImplementedError("Exercise 1: write your solution here")


@pytest.mark.parametrize("fn", [correct, library])
def test_correct_rounding_passes(fn, capsys):
    assert check_stochastic_rounding(fn) is True
    assert "✓" in capsys.readouterr().out


@pytest.mark.parametrize(
    "fn, prop, key",
    [
        (stub, "runs", "not_implemented"),
        (float32_always, "shape_dtype", "sr_shape_dtype"),
        (in_place, "input_unchanged", "sr_input_unchanged"),
        (continuous, "binary", "sr_not_binary"),
        (rescaled, "binary", "sr_rescaled"),
        (deterministic_round, "keep_rate", "sr_deterministic"),
        (swapped, "keep_rate", "sr_swapped"),
        (same_draw_every_call, "fresh", "sr_fresh"),
        (random_in_eval, "eval_threshold", "sr_eval_random"),
        (strict_threshold, "eval_threshold", "sr_eval_threshold"),
        (no_straight_through, "gradient", "sr_no_gradient"),
        (comparison_only, "gradient", "sr_no_gradient"),
        (sigmoid_gradient, "gradient", "sr_gradient"),
    ],
)
def test_typical_mistakes_fail_with_their_hint(fn, prop, key, capsys):
    assert check_stochastic_rounding(fn) is False
    out = capsys.readouterr().out
    assert f"✗ {fn.__name__}: {prop}" in out
    fixed = HINTS["en"][key].split("{")[0].strip()
    assert fixed[:30] in out


@pytest.mark.parametrize("lang", ["ru", "zh"])
def test_hints_in_every_language(lang, capsys):
    assert check_stochastic_rounding(swapped, lang=lang) is False
    out = capsys.readouterr().out
    assert HINTS[lang]["sr_swapped"].split("{")[0].strip()[:10] in out


def test_checker_leaves_the_global_rng_alone():
    torch.manual_seed(123)
    before = torch.get_rng_state()
    check_stochastic_rounding(correct, verbose=False)
    assert torch.equal(before, torch.get_rng_state())


def test_exported_from_checks():
    assert checks.check_stochastic_rounding is check_stochastic_rounding
    names = [name for name, _ in checks.stochastic_rounding_checks(correct)]
    assert names[0] == "runs" and names[-1] == "gradient"
