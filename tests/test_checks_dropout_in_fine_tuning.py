"""The chapter 07 checker accepts a LoRA forward with PEFT's dropout placement and names each
typical mistake."""

import pytest
import torch

from dropoutlib import checks
from dropoutlib.checks import HINTS, check_lora_forward
from dropoutlib.checks.dropout_in_fine_tuning import FixedMask, peft_lora_layer

pytest.importorskip("peft")


def correct(x, base, lora_A, lora_B, scaling, dropout):
    return base(x) + lora_B(lora_A(dropout(x))) * scaling


def by_weights(x, base, lora_A, lora_B, scaling, dropout):
    """The same with the weight matrices: y = x W^T + b + s (dropout(x) A^T) B^T."""
    h = dropout(x) @ lora_A.weight.T
    return x @ base.weight.T + base.bias + scaling * h @ lora_B.weight.T


def adapter_missing(x, base, lora_A, lora_B, scaling, dropout):
    return base(x)


def no_scaling(x, base, lora_A, lora_B, scaling, dropout):
    return base(x) + lora_B(lora_A(dropout(x)))


def scaled_base(x, base, lora_A, lora_B, scaling, dropout):
    return (base(x) + lora_B(lora_A(dropout(x)))) * scaling


def base_missing(x, base, lora_A, lora_B, scaling, dropout):
    return lora_B(lora_A(dropout(x))) * scaling


def dropout_unused(x, base, lora_A, lora_B, scaling, dropout):
    return base(x) + lora_B(lora_A(x)) * scaling


def dropout_twice(x, base, lora_A, lora_B, scaling, dropout):
    return base(dropout(x)) + lora_B(lora_A(dropout(x))) * scaling


def dropout_after(x, base, lora_A, lora_B, scaling, dropout):
    return base(x) + dropout(lora_B(lora_A(x))) * scaling


def dropout_on_sum(x, base, lora_A, lora_B, scaling, dropout):
    return dropout(base(x) + lora_B(lora_A(x)) * scaling)


def base_dropped(x, base, lora_A, lora_B, scaling, dropout):
    x = dropout(x)
    return base(x) + lora_B(lora_A(x)) * scaling


def own_dropout(x, base, lora_A, lora_B, scaling, dropout):
    """Ignores the module and draws its own mask: right placement, not PEFT's module."""
    keep = torch.rand(x.shape) >= 0.5
    return base(x) + lora_B(lora_A(x * keep * 2.0)) * scaling


def detached(x, base, lora_A, lora_B, scaling, dropout):
    with torch.no_grad():
        return base(x) + lora_B(lora_A(dropout(x))) * scaling


def wrong_shape(x, base, lora_A, lora_B, scaling, dropout):
    return correct(x, base, lora_A, lora_B, scaling, dropout).flatten(0, 1)


WRONG = {
    "lora_shape": wrong_shape,
    "lora_adapter_missing": adapter_missing,
    "lora_no_scaling": no_scaling,
    "lora_scaled_base": scaled_base,
    "lora_base_missing": base_missing,
    "lora_dropout_unused": dropout_unused,
    "lora_dropout_twice": dropout_twice,
    "lora_dropout_after": dropout_after,
    "lora_base_dropped": base_dropped,
    "lora_mismatch": own_dropout,
    "lora_no_gradient": detached,
}


@pytest.mark.parametrize("fn", [correct, by_weights])
def test_correct_forward_passes(fn, capsys):
    assert check_lora_forward(fn)
    assert capsys.readouterr().out.startswith(f"✓ {fn.__name__}: 5/5")


@pytest.mark.parametrize("key", list(WRONG))
def test_each_mistake_is_named(key, capsys):
    assert not check_lora_forward(WRONG[key])
    out = capsys.readouterr().out
    assert out.startswith("✗")
    hint = HINTS["en"][key].split("{")[0].strip()
    assert hint[:25] in out, (key, out)


def test_dropout_on_the_sum_is_rejected(capsys):
    assert not check_lora_forward(dropout_on_sum)
    assert "lora_dropout_after" not in capsys.readouterr().out  # named by its hint, not its key


def test_stub_is_not_implemented(capsys):
    def lora_forward(x, base, lora_A, lora_B, scaling, dropout):
        raise NotImplementedError("Exercise 2: write your solution here")

    assert checks.check_lora_forward(lora_forward, lang="zh") is False
    assert "NotImplementedError" in capsys.readouterr().out


def test_peft_layer_is_what_the_checker_assumes():
    layer = peft_lora_layer(0.1)
    assert float(layer.scaling["default"]) == 2.0
    assert isinstance(layer.lora_dropout["default"], torch.nn.Dropout)
    assert bool(torch.any(layer.lora_B["default"].weight != 0))
    # PEFT's forward is the formula, with the dropout on the adapter's input only
    x = torch.randn(3, 16)
    layer.lora_dropout["default"] = FixedMask()
    want = correct(
        x, layer.base_layer, layer.lora_A["default"], layer.lora_B["default"], 2.0, FixedMask()
    )
    assert torch.allclose(layer(x), want)


def test_fixed_mask_depends_on_the_shape_only():
    a, b = FixedMask(), FixedMask()
    x = torch.ones(4, 16)
    assert torch.equal(a(x), b(x)) and torch.equal(a(x), a(x))
    assert set(a(x).unique().tolist()) <= {0.0, 2.0}
    assert len(a.inputs) == 4
