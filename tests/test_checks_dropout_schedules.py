"""The chapter 06 checker accepts a correct schedule function and names each typical mistake."""

import math

import pytest

from dropoutlib import checks
from dropoutlib.checks import HINTS, check_dropout_rate
from dropoutlib.checks.dropout_schedules import CASES, KINDS, reference_rate


def correct(kind, step, total_steps, p, cutoff=0.25):
    c = round(cutoff * total_steps)
    if kind == "adaptive":
        return p * (1 - step / total_steps)
    if kind == "cosine":
        return p * (1 + math.cos(math.pi * step / total_steps)) / 2
    if kind == "early":
        return p if step < c else 0.0
    if kind == "late":
        return 0.0 if step < c else p
    raise ValueError(kind)


def with_kind(kind, replacement):
    def fn(k, step, total_steps, p, cutoff=0.25):
        if k == kind:
            return replacement(step, total_steps, p, cutoff)
        return correct(k, step, total_steps, p, cutoff)

    fn.__name__ = f"wrong_{kind}"
    return fn


WRONG = {
    # seed 000's loop with the epoch counted from 1
    "adaptive_shifted": with_kind("adaptive", lambda s, t, p, c: p * (1 - (s + 1) / t)),
    "adaptive_rising": with_kind("adaptive", lambda s, t, p, c: p * s / t),
    "adaptive_constant": with_kind("adaptive", lambda s, t, p, c: p * (1 - s // t)),
    "cosine_period": with_kind(
        "cosine", lambda s, t, p, c: p * (1 + math.cos(2 * math.pi * s / t)) / 2
    ),
    "cosine_shape": with_kind("cosine", lambda s, t, p, c: p * math.cos(math.pi * s / t / 2)),
    "early_late_swapped": with_kind("early", lambda s, t, p, c: 0.0 if s < round(c * t) else p),
    "switch_off_by_one": with_kind("late", lambda s, t, p, c: 0.0 if s <= round(c * t) else p),
    "cutoff_is_fraction": with_kind("early", lambda s, t, p, c: p if s < c else 0.0),
    "rate_out_of_range": with_kind("cosine", lambda s, t, p, c: p * math.cos(math.pi * s / t)),
    "unknown_kind": with_kind("late", lambda s, t, p, c: None),
    "rate_not_number": with_kind("early", lambda s, t, p, c: [p]),
    "rate_value": with_kind("early", lambda s, t, p, c: p / 2 if s < round(c * t) else 0.0),
}


def test_reference_matches_the_formulas():
    for kind in KINDS:
        for total, p, cutoff in CASES:
            for step in range(total + 1):
                assert math.isclose(
                    reference_rate(kind, step, total, p, cutoff),
                    correct(kind, step, total, p, cutoff),
                    abs_tol=1e-12,
                )


def test_correct_function_passes(capsys):
    assert check_dropout_rate(correct)
    out = capsys.readouterr().out
    assert out.startswith("✓ correct: 5/5")


def test_numpy_and_tensor_numbers_are_accepted():
    torch = pytest.importorskip("torch")

    def tensor_rate(kind, step, total_steps, p, cutoff=0.25):
        return torch.tensor(correct(kind, step, total_steps, p, cutoff), dtype=torch.float64)

    assert check_dropout_rate(tensor_rate, verbose=False)


@pytest.mark.parametrize("key", list(WRONG))
def test_each_mistake_is_named(key, capsys):
    assert not check_dropout_rate(WRONG[key])
    out = capsys.readouterr().out
    assert out.startswith("✗")
    hint = HINTS["en"][key].split("{")[0].strip()
    assert hint[:30] in out, (key, out)


def test_stub_is_not_implemented(capsys):
    def dropout_rate(kind, step, total_steps, p, cutoff=0.25):
        raise NotImplementedError("Exercise 3: write your solution here")

    assert checks.check_dropout_rate(dropout_rate, lang="ru") is False
    assert "NotImplementedError" in capsys.readouterr().out


@pytest.mark.parametrize("lang", ["en", "ru", "zh"])
def test_hints_print_in_every_language(lang, capsys):
    assert not check_dropout_rate(WRONG["switch_off_by_one"], lang=lang)
    out = capsys.readouterr().out
    assert HINTS[lang]["hint"] in out


def test_seed_000_last_epoch_is_p_over_epochs():
    # seed 000's loop never reaches 0: its last epoch trains with initial / epochs
    assert math.isclose(reference_rate("adaptive", 2, 3, 0.1, 0.5), 0.1 / 3)
