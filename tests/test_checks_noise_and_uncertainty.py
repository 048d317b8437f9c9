"""Chapter 05's checker accepts a correct MC-dropout prediction (from scratch and through
dropoutlib) and names each typical mistake."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import dropoutlib
from dropoutlib.checks import HINTS, check_mc_predict


def _entropy(p):
    return -(p * p.log()).sum(-1)


def correct(model, x, n):
    with dropoutlib.mc_dropout(model), torch.no_grad():
        ps = torch.stack([F.softmax(model(x), dim=-1) for _ in range(n)])
    mean = ps.mean(0)
    h = _entropy(mean)
    return mean, h, h - _entropy(ps).mean(0)


def by_hand(model, x, n):
    """Switch on the dropout modules only, then put every mode back."""
    before = [m.training for m in model.modules()]
    model.eval()
    for m in model.modules():
        if isinstance(m, nn.Dropout):
            m.train()
    with torch.no_grad():
        ps = torch.stack([F.softmax(model(x), dim=-1) for _ in range(n)])
    for m, t in zip(model.modules(), before):
        m.training = t
    mean = ps.mean(0)
    h = _entropy(mean)
    return mean, h, h - _entropy(ps).mean(0)


def through_library(model, x, n):
    out = dropoutlib.mc_predict(model, x, n)
    return out.probs, out.predictive_entropy, out.mutual_information


def stub(model, x, n):
    raise NotImplementedError


def two_outputs(model, x, n):
    return correct(model, x, n)[:2]


def dropout_off(model, x, n):
    with torch.no_grad():
        ps = torch.stack([F.softmax(model(x), dim=-1) for _ in range(n)])
    mean = ps.mean(0)
    h = _entropy(mean)
    return mean, h, h - _entropy(ps).mean(0)


def with_train(model, x, n):
    model.train()
    with torch.no_grad():
        ps = torch.stack([F.softmax(model(x), dim=-1) for _ in range(n)])
    model.eval()
    mean = ps.mean(0)
    h = _entropy(mean)
    return mean, h, h - _entropy(ps).mean(0)


def leaves_train_mode(model, x, n):
    model.train()
    return correct(model, x, n)


def logits_mean(model, x, n):
    with dropoutlib.mc_dropout(model), torch.no_grad():
        logits = torch.stack([model(x) for _ in range(n)])
    ps = F.softmax(logits, dim=-1)
    mean = F.softmax(logits.mean(0), dim=-1)
    h = _entropy(mean)
    return mean, h, h - _entropy(ps).mean(0)


def swapped_entropy(model, x, n):
    mean, h, mi = correct(model, x, n)
    return mean, h - mi, mi


def in_bits(model, x, n):
    mean, h, mi = correct(model, x, n)
    return mean, h / math.log(2), mi / math.log(2)


def mi_sign(model, x, n):
    mean, h, mi = correct(model, x, n)
    return mean, h, -mi


def fixed_passes(model, x, n):
    return correct(model, x, 8)  # ignores n (8 is a whole number of the script's cycles)


def not_probs(model, x, n):
    mean, h, mi = correct(model, x, n)
    return mean * 2, h, mi


@pytest.mark.parametrize("fn", [correct, by_hand, through_library])
def test_accepts_correct_implementations(fn, capsys):
    assert check_mc_predict(fn) is True
    out = capsys.readouterr().out
    assert out.startswith("✓ ") and "11/11" in out


@pytest.mark.parametrize(
    "fn, prop, hint_key",
    [
        (stub, "runs", "not_implemented"),
        (two_outputs, "runs", "n05_not_triple"),
        (not_probs, "valid_probs", "n05_not_probs"),
        (leaves_train_mode, "mode_restored", "n05_mode"),
        (dropout_off, "dropout_on", "n05_dropout_off"),
        (with_train, "batchnorm_eval", "n05_batchnorm"),
        (logits_mean, "mean_of_probs", "n05_logits_mean"),
        (swapped_entropy, "entropy", "n05_entropy_swapped"),
        (in_bits, "entropy", "n05_entropy_bits"),
        (mi_sign, "mutual_information", "n05_mi_sign"),
        (fixed_passes, "one_pass", "n05_one_pass"),
    ],
)
def test_rejects_typical_mistakes_and_names_the_property(fn, prop, hint_key, capsys):
    assert check_mc_predict(fn) is False
    verdict, hint = capsys.readouterr().out.splitlines()
    assert verdict.startswith(f"✗ {fn.__name__}: {prop} (")
    assert hint.startswith("  hint: " + HINTS["en"][hint_key].split("{")[0][:20])


@pytest.mark.parametrize("lang", ["en", "ru", "zh"])
def test_hints_in_every_language(lang, capsys):
    for fn in (stub, dropout_off, with_train, logits_mean):
        assert check_mc_predict(fn, lang=lang) is False
    assert capsys.readouterr().out.count(f"  {HINTS[lang]['hint']}: ") == 4


def test_stub_gets_a_friendly_message(capsys):
    assert check_mc_predict(stub) is False
    out = capsys.readouterr().out
    assert "NotImplementedError" in out and "Traceback" not in out and "0/11" in out
