"""Chapter 03's checker: a student's overfitting detector, on synthetic and random histories."""

import pytest

from dropoutlib.checks import HINTS, check_overfitting_step
from dropoutlib.curves import overfitting_step


def correct(history, min_rise=0.02):
    if len(history) < 2:
        return None
    best = min(history, key=lambda h: h["val_loss"])
    last = history[-1]
    if last["val_loss"] - best["val_loss"] >= min_rise and last["train_loss"] < best["train_loss"]:
        return best["step"]
    return None


def with_the_library(history, min_rise=0.02):
    return overfitting_step(history, min_rise=min_rise)


def always_argmin(history, min_rise=0.02):
    return min(history, key=lambda h: h["val_loss"])["step"]


def returns_index(history, min_rise=0.02):
    step = correct(history, min_rise)
    return None if step is None else [h["step"] for h in history].index(step)


def any_rise(history, min_rise=0.02):
    vals = [h["val_loss"] for h in history]
    i = vals.index(min(vals))
    return history[i]["step"] if i < len(vals) - 1 else None


def ignores_min_rise(history, min_rise=0.02):
    return correct(history, 0.02)


def first_bump(history, min_rise=0.02):
    for a, b in zip(history, history[1:]):
        if b["val_loss"] >= a["val_loss"] + min_rise:
            return a["step"]
    return None


def ignores_training_loss(history, min_rise=0.02):
    vals = [h["val_loss"] for h in history]
    i = vals.index(min(vals))
    return history[i]["step"] if vals[-1] - vals[i] >= min_rise else None


def highest_after_minimum(history, min_rise=0.02):
    vals = [h["val_loss"] for h in history]
    i = vals.index(min(vals))
    rose = max(vals[i:]) - vals[i] >= min_rise
    fitting = history[-1]["train_loss"] < history[i]["train_loss"]
    return history[i]["step"] if rose and fitting else None


def sorts_in_place(history, min_rise=0.02):
    answer = correct(history, min_rise)
    history.sort(key=lambda h: h["val_loss"])
    return answer


def returns_float(history, min_rise=0.02):
    step = correct(history, min_rise)
    return None if step is None else float(step)


def stub(history, min_rise=0.02):
    raise NotImplementedError


@pytest.mark.parametrize("fn", [correct, with_the_library])
def test_accepts_correct_detectors(fn, capsys):
    assert check_overfitting_step(fn) is True
    assert capsys.readouterr().out.startswith(f"✓ {fn.__name__}: 11/11")


@pytest.mark.parametrize(
    "fn, prop, hint_key",
    [
        (always_argmin, "still_falling", "of_falling"),
        (returns_index, "steps", "of_index"),
        (any_rise, "noise", "of_noise"),
        (ignores_min_rise, "min_rise", "of_min_rise"),
        (first_bump, "lowest_minimum", "of_first_bump"),
        (ignores_training_loss, "train_still_falls", "of_train_rises"),
        (highest_after_minimum, "last_evaluation", "of_recovered"),
        (sorts_in_place, "runs", "of_mutated"),
        (returns_float, "runs", "of_type"),
    ],
)
def test_rejects_typical_mistakes_and_names_the_property(fn, prop, hint_key, capsys):
    assert check_overfitting_step(fn) is False
    verdict, hint = capsys.readouterr().out.splitlines()
    assert verdict.startswith(f"✗ {fn.__name__}: {prop} (")
    assert (
        HINTS["en"][hint_key].split("{")[0] in hint
        or HINTS["en"][hint_key].split("}")[1][:20] in hint
    )


def test_stub_gets_a_friendly_message(capsys):
    assert check_overfitting_step(stub) is False
    out = capsys.readouterr().out
    assert "NotImplementedError" in out and "Traceback" not in out and "0/11" in out


@pytest.mark.parametrize("lang", ["en", "ru", "zh"])
def test_hints_in_every_language(lang, capsys):
    fns = (
        stub,
        always_argmin,
        returns_index,
        any_rise,
        ignores_training_loss,
        highest_after_minimum,
    )
    for fn in fns:
        assert check_overfitting_step(fn, lang=lang) is False
    out = capsys.readouterr().out
    assert out.count(f"  {HINTS[lang]['hint']}: ") == len(fns)
    assert "{" not in out
