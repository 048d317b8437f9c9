"""Chapter 04's checker accepts a correct DropPath (timm's, dropoutlib's, one from scratch) and
names each typical mistake."""

import pytest
import torch

import dropoutlib.functional as DF
from dropoutlib.checks import HINTS, check_drop_path


def correct(x, p, training=True):
    if not training or p == 0:
        return x
    if p == 1:
        return torch.zeros_like(x)
    keep = torch.rand((x.shape[0],) + (1,) * (x.dim() - 1)) >= p
    return x * keep / (1 - p)


def timm_style(x, p, training=True):
    """The algorithm of timm's drop_path (a Bernoulli(1 - p) tensor of shape (B, 1, ..., 1),
    divided by 1 - p), written here with torch.bernoulli."""
    if not training or p == 0:
        return x
    q = 1 - p
    coins = torch.bernoulli(torch.full((x.shape[0],) + (1,) * (x.dim() - 1), q, dtype=x.dtype))
    return x * (coins / q if q > 0 else coins)


def stub(x, p, training=True):
    raise NotImplementedError


def elementwise(x, p, training=True):
    if not training or p == 0:
        return x
    if p == 1:
        return torch.zeros_like(x)
    return x * (torch.rand(x.shape) >= p) / (1 - p)


def per_batch(x, p, training=True):
    if not training or p == 0:
        return x
    if p == 1:
        return torch.zeros_like(x)
    return x * float(torch.rand(()) >= p) / (1 - p)


def no_scaling(x, p, training=True):
    if not training or p == 0:
        return x
    return x * (torch.rand((x.shape[0],) + (1,) * (x.dim() - 1)) >= p)


def scaled_by_q(x, p, training=True):
    if not training or p == 0:
        return x
    return x * (torch.rand((x.shape[0],) + (1,) * (x.dim() - 1)) >= p) * (1 - p)


def keeps_with_prob_p(x, p, training=True):
    if not training or p == 0:
        return x
    if p == 1:
        return torch.zeros_like(x)
    return x * (torch.rand((x.shape[0],) + (1,) * (x.dim() - 1)) < p) / (1 - p)


def ignores_training(x, p, training=True):
    return correct(x, p, True)


def in_place(x, p, training=True):
    if not training or p == 0:
        return x
    if p == 1:
        return x.zero_()
    return x.mul_((torch.rand((x.shape[0],) + (1,) * (x.dim() - 1)) >= p) / (1 - p))


def only_3d(x, p, training=True):
    if not training or p == 0:
        return x
    if p == 1:
        return torch.zeros_like(x)
    return x * (torch.rand(x.shape[0], 1, 1) >= p) / (1 - p)  # wrong shape on 2-D input


def naive_p_one(x, p, training=True):
    if not training:
        return x
    return x * (torch.rand((x.shape[0],) + (1,) * (x.dim() - 1)) >= p) / (1 - p)


def detached(x, p, training=True):
    return correct(x.detach(), p, training)


def pairs(x, p, training=True):
    """One coin for each pair of samples: per-sample-looking but not independent."""
    if not training or p == 0:
        return x
    if p == 1:
        return torch.zeros_like(x)
    b = x.shape[0]
    coins = (torch.rand((b + 1) // 2) >= p).repeat_interleave(2)[:b]
    return x * coins.view((b,) + (1,) * (x.dim() - 1)) / (1 - p)


@pytest.mark.parametrize(
    "fn",
    [
        correct,
        timm_style,
        lambda x, p, training=True: DF.drop_path(x, p, training),
    ],
    ids=["scratch", "timm", "dropoutlib"],
)
def test_accepts_correct_implementations(fn, capsys):
    assert check_drop_path(fn) is True
    out = capsys.readouterr().out
    assert out.startswith("✓ ") and "13/13" in out


@pytest.mark.parametrize(
    "fn, prop, hint_key",
    [
        (stub, "runs", "not_implemented"),
        (only_3d, "shape_dtype", "s04_shape_dtype"),
        (in_place, "input_unchanged", "s04_input_unchanged"),
        (ignores_training, "eval_identity", "s04_eval_identity"),
        (naive_p_one, "p_one", "s04_p_one"),
        (elementwise, "per_sample", "s04_per_sample"),
        (per_batch, "not_batchwise", "s04_batchwise"),
        (no_scaling, "kept_scaled", "s04_no_scaling"),
        (scaled_by_q, "kept_scaled", "s04_wrong_scale"),
        (keeps_with_prob_p, "keep_rate", "s04_keep_rate_swapped"),
        (pairs, "independent", "s04_independent"),
        (detached, "gradient", "s04_no_gradient"),
    ],
)
def test_rejects_typical_mistakes_and_names_the_property(fn, prop, hint_key, capsys):
    assert check_drop_path(fn) is False
    verdict, hint = capsys.readouterr().out.splitlines()
    assert verdict.startswith(f"✗ {fn.__name__}: {prop} (")
    assert hint.startswith("  hint: " + HINTS["en"][hint_key].split("{")[0][:20])


def test_stub_gets_a_friendly_message(capsys):
    assert check_drop_path(stub) is False
    out = capsys.readouterr().out
    assert "NotImplementedError" in out and "Traceback" not in out and "0/13" in out


@pytest.mark.parametrize("lang", ["en", "ru", "zh"])
def test_hints_in_every_language(lang, capsys):
    for fn in (stub, elementwise, per_batch, no_scaling, keeps_with_prob_p):
        assert check_drop_path(fn, lang=lang) is False
    assert capsys.readouterr().out.count(f"  {HINTS[lang]['hint']}: ") == 5


def test_checker_is_deterministic_and_leaves_the_rng_alone(capsys):
    torch.manual_seed(1)
    expected = torch.rand(3)
    torch.manual_seed(1)
    check_drop_path(keeps_with_prob_p)
    assert torch.equal(torch.rand(3), expected)
    first = capsys.readouterr().out
    check_drop_path(keeps_with_prob_p)
    assert capsys.readouterr().out == first
