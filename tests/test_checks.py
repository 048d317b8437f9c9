"""The exercise checker accepts correct inverted dropout and names each typical mistake."""

import pytest
import torch
import torch.nn.functional as F

from dropoutlib import checks
from dropoutlib.checks import HINTS, check_inverted_dropout


def correct(x, p, training=True):
    if not training or p == 0:
        return x
    if p == 1:
        return torch.zeros_like(x)
    mask = torch.rand(x.shape) >= p
    return x * mask / (1 - p)


def no_scaling(x, p, training=True):
    if not training or p == 0:
        return x
    return x * (torch.rand(x.shape) >= p)


def scaled_by_p(x, p, training=True):
    if not training or p == 0:
        return x
    if p == 1:
        return torch.zeros_like(x)
    return x * (torch.rand(x.shape) >= p) * p


def scaled_by_q(x, p, training=True):
    if not training or p == 0:
        return x
    return x * (torch.rand(x.shape) >= p) * (1 - p)


def keeps_with_prob_p(x, p, training=True):
    if not training or p == 0:
        return x
    if p == 1:
        return torch.zeros_like(x)
    return x * (torch.rand(x.shape) < p) / (1 - p)


def ignores_training(x, p, training=True):
    if p == 1:
        return torch.zeros_like(x)
    return x * (torch.rand(x.shape) >= p) / (1 - p)


def in_place(x, p, training=True):
    if not training or p == 0:
        return x
    if p == 1:
        return x.zero_()
    return x.mul_((torch.rand(x.shape) >= p) / (1 - p))


def naive_p_one(x, p, training=True):
    """d2l's first attempt without the p == 1 branch: 0 * inf = nan."""
    if not training:
        return x
    return x * (torch.rand(x.shape) >= p) / (1 - p)


def one_mask_per_row(x, p, training=True):
    if not training or p == 0:
        return x
    if p == 1:
        return torch.zeros_like(x)
    return x * (torch.rand(x.shape[-1]) >= p) / (1 - p)


def fixed_mask(x, p, training=True):
    if not training or p == 0:
        return x
    if p == 1:
        return torch.zeros_like(x)
    g = torch.Generator().manual_seed(0)
    return x * (torch.rand(x.shape, generator=g) >= p) / (1 - p)


def detached(x, p, training=True):
    if not training or p == 0:
        return x
    if p == 1:
        return torch.zeros_like(x)
    return (x * (torch.rand(x.shape) >= p) / (1 - p)).detach()


def returns_float32(x, p, training=True):
    return correct(x, p, training).float()


def returns_numpy(x, p, training=True):
    return correct(x, p, training).numpy()


def stub(x, p, training=True):
    raise NotImplementedError


def typo(x, p, training=True):
    return x * mask  # noqa: F821  (the student forgot to define mask)


@pytest.mark.parametrize(
    "fn",
    [
        correct,
        lambda x, p, training=True: F.dropout(x, p, training),
        lambda x, p, training=True: torch.nn.Dropout(p).train(training)(x),
    ],
    ids=["scratch", "F.dropout", "nn.Dropout"],
)
def test_accepts_correct_implementations(fn, capsys):
    assert check_inverted_dropout(fn) is True
    out = capsys.readouterr().out
    assert out.startswith("✓ ")
    assert "12/12" in out


@pytest.mark.parametrize(
    "fn, prop, hint_key",
    [
        (stub, "runs", "not_implemented"),
        (typo, "runs", "raised"),
        (returns_numpy, "runs", "not_tensor"),
        (returns_float32, "shape_dtype", "shape_dtype"),
        (in_place, "input_unchanged", "input_unchanged"),
        (ignores_training, "eval_identity", "eval_identity"),
        (naive_p_one, "p_one", "p_one"),
        (no_scaling, "kept_scaled", "no_scaling"),
        (scaled_by_p, "kept_scaled", "scaled_by_p"),
        (scaled_by_q, "kept_scaled", "scaled_by_q"),
        (keeps_with_prob_p, "keep_rate", "keep_rate_swapped"),
        (fixed_mask, "fresh_mask", "fresh_mask"),
        (one_mask_per_row, "independent", "independent"),
        (detached, "gradient", "no_gradient"),
    ],
)
def test_rejects_typical_mistakes_and_names_the_property(fn, prop, hint_key, capsys):
    assert check_inverted_dropout(fn) is False  # never raises on a wrong answer
    verdict, hint = capsys.readouterr().out.splitlines()
    assert verdict.startswith(f"✗ {fn.__name__}: {prop} (")
    # The hint is the first sentence of the named hint, formatted with the measured values.
    assert hint.startswith("  hint: " + HINTS["en"][hint_key].split("{")[0][:20])


def test_stub_gets_a_friendly_message(capsys):
    assert check_inverted_dropout(stub) is False
    out = capsys.readouterr().out
    assert "NotImplementedError" in out and "Traceback" not in out
    assert "0/12" in out


@pytest.mark.parametrize("lang", ["en", "ru", "zh"])
def test_hints_in_every_language(lang, capsys):
    for fn in (stub, no_scaling, keeps_with_prob_p, one_mask_per_row, in_place):
        assert check_inverted_dropout(fn, lang=lang) is False
    out = capsys.readouterr().out
    assert out.count(f"  {HINTS[lang]['hint']}: ") == 5


def test_hint_tables_have_the_same_keys_and_fields():
    import string

    def fields(text):
        return {f for _, f, _, _ in string.Formatter().parse(text) if f}

    for lang in ("ru", "zh"):
        assert HINTS[lang].keys() == HINTS["en"].keys()
        for key, text in HINTS["en"].items():
            assert fields(HINTS[lang][key]) == fields(text), (lang, key)


def test_bad_lang_is_a_clear_error():
    with pytest.raises(ValueError, match="lang must be one of 'en', 'ru', 'zh', got 'de'"):
        check_inverted_dropout(correct, lang="de")


def test_checker_leaves_the_global_rng_alone():
    torch.manual_seed(123)
    expected = torch.rand(5)
    torch.manual_seed(123)
    check_inverted_dropout(correct, verbose=False)
    assert torch.equal(torch.rand(5), expected)


def test_verdict_is_deterministic(capsys):
    check_inverted_dropout(keeps_with_prob_p)
    first = capsys.readouterr().out
    check_inverted_dropout(keeps_with_prob_p)
    assert capsys.readouterr().out == first


def test_silent_mode_prints_nothing(capsys):
    assert checks.check_inverted_dropout(no_scaling, verbose=False) is False
    assert capsys.readouterr().out == ""
