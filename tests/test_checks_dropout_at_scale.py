"""The chapter 09 checker accepts memory-free seeded dropout and names each typical mistake."""

import pytest
import torch

from dropoutlib import checks
from dropoutlib.checks import HINTS, check_seeded_dropout
from dropoutlib.seeded import seeded_dropout


def _mask(shape, p, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(shape, generator=g) >= p


class _Seeded(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, p, seed):
        ctx.p, ctx.seed = p, seed
        return x * _mask(x.shape, p, seed).to(x.dtype) / (1 - p)

    @staticmethod
    def backward(ctx, grad):
        keep = _mask(grad.shape, ctx.p, ctx.seed).to(grad.dtype)
        return grad * keep / (1 - ctx.p), None, None


def correct(x, p, seed):
    return _Seeded.apply(x, p, seed)


def library(x, p, seed):
    return seeded_dropout(x, p, seed=seed)


def saves_mask(x, p, seed):
    return x * _mask(x.shape, p, seed).to(x.dtype) / (1 - p)


class _Stash(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, p, seed):
        keep = _mask(x.shape, p, seed).to(x.dtype)
        ctx.keep, ctx.p = keep, p
        return x * keep / (1 - p)

    @staticmethod
    def backward(ctx, grad):
        return grad * ctx.keep / (1 - ctx.p), None, None


def stashes_mask(x, p, seed):
    return _Stash.apply(x, p, seed)


class _FreshBackward(_Seeded):
    @staticmethod
    def backward(ctx, grad):
        keep = _mask(grad.shape, ctx.p, ctx.seed + 1).to(grad.dtype)
        return grad * keep / (1 - ctx.p), None, None


def new_mask_in_backward(x, p, seed):
    return _FreshBackward.apply(x, p, seed)


def global_seed(x, p, seed):
    torch.manual_seed(seed)
    return x * (torch.rand(x.shape) >= p) / (1 - p)


def ignores_seed(x, p, seed):
    return x * (torch.rand(x.shape) >= p) / (1 - p)


def one_seed_for_all(x, p, seed):
    return correct(x, p, 0)


def swapped(x, p, seed):
    g = torch.Generator().manual_seed(seed)
    return x * (torch.rand(x.shape, generator=g) < p) / (1 - p)


def no_scaling(x, p, seed):
    return x * _mask(x.shape, p, seed)


def detached(x, p, seed):
    return correct(x.detach(), p, seed)


def in_place(x, p, seed):
    return x.mul_(_mask(x.shape, p, seed) / (1 - p))


def float32_always(x, p, seed):
    return correct(x, p, seed).float()


def stub(x, p, seed):
    raise NotImplementedError("Exercise 1: write your solution here")


@pytest.mark.parametrize("fn", [correct, library])
def test_memory_free_dropout_passes(fn, capsys):
    assert check_seeded_dropout(fn) is True
    assert "✓" in capsys.readouterr().out


@pytest.mark.parametrize(
    "fn, prop, key",
    [
        (stub, "runs", "not_implemented"),
        (float32_always, "shape_dtype", "sd_shape_dtype"),
        (in_place, "input_unchanged", "sd_input_unchanged"),
        (no_scaling, "kept_scaled", "sd_not_binary"),
        (swapped, "keep_rate", "sd_keep_rate_swapped"),
        (ignores_seed, "same_seed", "sd_same_seed"),
        (one_seed_for_all, "other_seed", "sd_other_seed"),
        (global_seed, "global_rng", "sd_global_rng"),
        (detached, "gradient", "sd_no_gradient"),
        (new_mask_in_backward, "gradient", "sd_gradient"),
        (saves_mask, "saves_nothing", "sd_saved"),
        (stashes_mask, "saves_nothing", "sd_stashed"),
    ],
)
def test_typical_mistakes_fail_with_their_hint(fn, prop, key, capsys):
    assert check_seeded_dropout(fn) is False
    out = capsys.readouterr().out
    assert f"✗ {fn.__name__}: {prop}" in out
    assert HINTS["en"][key].split("{")[0].strip()[:25] in out


@pytest.mark.parametrize("lang", ["ru", "zh"])
def test_hints_in_every_language(lang, capsys):
    assert check_seeded_dropout(saves_mask, lang=lang) is False
    assert HINTS[lang]["sd_saved"].split("{")[0].strip()[:10] in capsys.readouterr().out


def test_exported_from_checks():
    assert checks.check_seeded_dropout is check_seeded_dropout
    names = [name for name, _ in checks.seeded_dropout_checks(correct)]
    assert names[0] == "runs" and names[-1] == "saves_nothing"
