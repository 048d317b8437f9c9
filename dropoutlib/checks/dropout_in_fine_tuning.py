"""Chapter 07, dropout in fine-tuning: the checker of a student's LoRA forward with input dropout.

The exercise asks for ``lora_forward(x, base, lora_A, lora_B, scaling, dropout)``: the output
of a linear layer ``base`` with a LoRA adapter (Hu et al., ICLR 2022) whose ``lora_dropout``
acts as PEFT's does, on the adapter's input only::

    base(x) + lora_B(lora_A(dropout(x))) * scaling

(``peft/tuners/lora/layer.py``, ``Linear.forward``). The checker builds a PEFT LoRA layer, hands
the student its ``base_layer``, ``lora_A``, ``lora_B``, ``scaling`` and a dropout module, and
compares with PEFT's own forward: without dropout, with a dropout whose mask is fixed (so that
a wrong placement shows as a different output), and with a real ``nn.Dropout`` in training mode
from the same seed.
"""

from __future__ import annotations

import torch
from torch import nn

from dropoutlib.checks.core import (
    CheckFailed,
    Term,
    add_hints,
    call_tensor,
    fn_name,
    run_checks,
)

__all__ = ["check_lora_forward", "lora_forward_checks", "peft_lora_layer"]

_HINTS = {
    "en": {
        "lora_shape": "for x of shape {shape} the layer must return shape {want}, got {got}",
        "lora_adapter_missing": "without dropout your output equals base(x): add the adapter's "
        "update lora_B(lora_A(x)) * scaling",
        "lora_no_scaling": "the adapter's update is multiplied by scaling (lora_alpha / r); "
        "your output has it unscaled",
        "lora_scaled_base": "only the adapter's update is scaled: base(x) + "
        "lora_B(lora_A(x)) * scaling, not (base(x) + lora_B(lora_A(x))) * scaling",
        "lora_base_missing": "the frozen layer's own output base(x) is missing: LoRA adds its "
        "update to it",
        "lora_mismatch": "{case}: your output differs from PEFT's by up to {err:.3g}",
        "lora_dropout_unused": "the dropout module you were given was never called: PEFT "
        "applies lora_dropout to the adapter's input",
        "lora_dropout_twice": "dropout was called {n} times: call it once, on x, and feed the "
        "result to lora_A",
        "lora_dropout_after": "dropout got a tensor of shape {shape} that is not x: PEFT drops "
        "the adapter's INPUT, lora_A(dropout(x)), not lora_A's or lora_B's output",
        "lora_base_dropped": "the frozen path must see the undropped x: base(x) + "
        "lora_B(lora_A(dropout(x))) * scaling, not base(dropout(x)) + ...",
        "lora_no_gradient": "no gradient reached {name}: build the output from lora_A and "
        "lora_B with differentiable operations",
        "case_plain": "without dropout",
        "case_fixed": "with a fixed dropout mask",
        "case_real": "with nn.Dropout(0.5) in training mode",
    },
    "ru": {
        "lora_shape": "для x формы {shape} слой должен вернуть форму {want}, а вернул {got}",
        "lora_adapter_missing": "без dropout ваш выход равен base(x): добавьте поправку "
        "адаптера lora_B(lora_A(x)) * scaling",
        "lora_no_scaling": "поправка адаптера умножается на scaling (lora_alpha / r); у вас "
        "она без множителя",
        "lora_scaled_base": "масштабируется только поправка адаптера: base(x) + "
        "lora_B(lora_A(x)) * scaling, а не (base(x) + lora_B(lora_A(x))) * scaling",
        "lora_base_missing": "нет выхода самого замороженного слоя base(x): LoRA прибавляет "
        "поправку к нему",
        "lora_mismatch": "{case}: ваш выход отличается от выхода PEFT на величину до {err:.3g}",
        "lora_dropout_unused": "переданный модуль dropout ни разу не вызван: PEFT применяет "
        "lora_dropout ко входу адаптера",
        "lora_dropout_twice": "dropout вызван {n} раз(а): вызовите его один раз, на x, и "
        "подайте результат в lora_A",
        "lora_dropout_after": "dropout получил тензор формы {shape}, который не равен x: PEFT "
        "отключает элементы ВХОДА адаптера, lora_A(dropout(x)), а не выхода lora_A или lora_B",
        "lora_base_dropped": "замороженный путь должен видеть x без dropout: base(x) + "
        "lora_B(lora_A(dropout(x))) * scaling, а не base(dropout(x)) + ...",
        "lora_no_gradient": "градиент не дошёл до {name}: стройте выход из lora_A и lora_B "
        "дифференцируемыми операциями",
        "case_plain": "без dropout",
        "case_fixed": "с фиксированной маской dropout",
        "case_real": "с nn.Dropout(0.5) в режиме обучения",
    },
    "zh": {
        "lora_shape": "对形状为 {shape} 的 x，该层应返回形状 {want}，实际为 {got}",
        "lora_adapter_missing": "不加暂退时你的输出等于 base(x)：还要加上适配器的增量 "
        "lora_B(lora_A(x)) * scaling",
        "lora_no_scaling": "适配器的增量要乘以 scaling（lora_alpha / r）；你的输出中没有这个因子",
        "lora_scaled_base": "只有适配器的增量需要缩放：base(x) + lora_B(lora_A(x)) * scaling，"
        "而不是 (base(x) + lora_B(lora_A(x))) * scaling",
        "lora_base_missing": "缺少冻结层自身的输出 base(x)：LoRA 是把增量加到它上面",
        "lora_mismatch": "{case}：你的输出与 PEFT 的输出最多相差 {err:.3g}",
        "lora_dropout_unused": "传入的暂退模块从未被调用：PEFT 把 lora_dropout 用在适配器的输入上",
        "lora_dropout_twice": "暂退被调用了 {n} 次：只在 x 上调用一次，再把结果送入 lora_A",
        "lora_dropout_after": "暂退收到的是形状为 {shape}、不等于 x 的张量：PEFT 丢弃的是适配器的"
        "输入 lora_A(dropout(x))，而不是 lora_A 或 lora_B 的输出",
        "lora_base_dropped": "冻结路径必须看到未经暂退的 x：base(x) + "
        "lora_B(lora_A(dropout(x))) * scaling，而不是 base(dropout(x)) + ...",
        "lora_no_gradient": "梯度没有传到 {name}：请用可微运算由 lora_A 和 lora_B 构造输出",
        "case_plain": "不加暂退时",
        "case_fixed": "使用固定的暂退掩码时",
        "case_real": "在训练模式下使用 nn.Dropout(0.5) 时",
    },
}
add_hints(_HINTS)

IN_FEATURES, OUT_FEATURES, RANK, ALPHA = 16, 12, 4, 8.0
FIXED_P = 0.5


def peft_lora_layer(p: float = 0.0, *, seed: int = 0) -> nn.Module:
    """A PEFT ``lora.Linear`` (16 -> 12, r = 4, lora_alpha = 8, so scaling = 2) with random
    weights, its ``lora_B`` made non-zero so that the adapter matters (PEFT starts B at zero)."""
    from peft import LoraConfig, get_peft_model

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = nn.Sequential(nn.Linear(IN_FEATURES, OUT_FEATURES))
        config = LoraConfig(r=RANK, lora_alpha=ALPHA, target_modules=["0"], lora_dropout=p)
        layer = get_peft_model(net, config).base_model.model[0]
        with torch.no_grad():
            layer.lora_B["default"].weight.normal_(0.0, 0.5)
    return layer


class FixedMask(nn.Module):
    """A stand-in for dropout whose mask depends only on the input's shape (inverted dropout at
    rate ``p`` from a generator seeded afresh at every call); it records what it was given."""

    def __init__(self, p: float = FIXED_P, seed: int = 1234):
        super().__init__()
        self.p, self.seed, self.inputs = p, seed, []

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        self.inputs.append(t.detach().clone())
        g = torch.Generator().manual_seed(self.seed)
        keep = torch.rand(t.shape, generator=g) >= self.p
        return t * keep.to(t.dtype) / (1.0 - self.p)


def _parts(layer):
    return (
        layer.base_layer,
        layer.lora_A["default"],
        layer.lora_B["default"],
        float(layer.scaling["default"]),
    )


def lora_forward_checks(fn):
    """The properties of ``fn(x, base, lora_A, lora_B, scaling, dropout) -> Tensor``, as (name,
    check) pairs, compared with PEFT's ``lora.Linear`` forward."""
    x = torch.randn(2, 5, IN_FEATURES, generator=torch.Generator().manual_seed(7))

    def student(layer, dropout):
        base, a, b, scaling = _parts(layer)
        return call_tensor(fn, x.clone(), base, a, b, scaling, dropout)

    def peft(layer, dropout):
        layer.lora_dropout["default"] = dropout
        return layer(x.clone())

    def err(a, b):
        return float((a - b).abs().max())

    def close(a, b):
        return a.shape == b.shape and err(a, b) <= 1e-5

    def runs():
        layer = peft_lora_layer()
        out = student(layer, nn.Identity())
        want = (*x.shape[:-1], OUT_FEATURES)
        if tuple(out.shape) != want:
            raise CheckFailed("lora_shape", shape=tuple(x.shape), want=want, got=tuple(out.shape))

    def without_dropout():
        layer = peft_lora_layer()
        with torch.no_grad():
            out = student(layer, nn.Identity()).detach()
            want = peft(layer, nn.Identity())
            base, a, b, s = _parts(layer)
            if close(out, want):
                return
            update = b(a(x))
            if close(out, base(x)):
                raise CheckFailed("lora_adapter_missing")
            if close(out, base(x) + update):
                raise CheckFailed("lora_no_scaling")
            if close(out, (base(x) + update) * s):
                raise CheckFailed("lora_scaled_base")
            if close(out, update * s):
                raise CheckFailed("lora_base_missing")
        raise CheckFailed("lora_mismatch", case=Term("case_plain"), err=err(out, want))

    def dropout_placement():
        layer = peft_lora_layer()
        mask = FixedMask()
        with torch.no_grad():
            out = student(layer, mask).detach()
            calls = list(mask.inputs)
            want = peft(layer, FixedMask())
            if close(out, want) and len(calls) == 1:
                return
            if not calls:
                raise CheckFailed("lora_dropout_unused")
            if len(calls) > 1:
                raise CheckFailed("lora_dropout_twice", n=len(calls))
            if not close(calls[0], x):
                raise CheckFailed("lora_dropout_after", shape=tuple(calls[0].shape))
            base, a, b, s = _parts(layer)
            dropped = FixedMask()(x)
            if close(out, base(dropped) + b(a(dropped)) * s):
                raise CheckFailed("lora_base_dropped")
        raise CheckFailed("lora_mismatch", case=Term("case_fixed"), err=err(out, want))

    def real_dropout():
        layer = peft_lora_layer()
        drop = nn.Dropout(0.5).train()
        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            torch.manual_seed(11)
            out = student(layer, drop).detach()
            torch.manual_seed(11)
            want = peft(layer, drop)
        if not close(out, want):
            raise CheckFailed("lora_mismatch", case=Term("case_real"), err=err(out, want))

    def gradients():
        layer = peft_lora_layer()
        base, a, b, s = _parts(layer)
        out = student(layer, nn.Identity())
        params = {"lora_A": a.weight, "lora_B": b.weight}
        if not out.requires_grad:
            raise CheckFailed("lora_no_gradient", name="lora_A, lora_B")
        grads = torch.autograd.grad(out.sum(), list(params.values()), allow_unused=True)
        for (name, _), g in zip(params.items(), grads):
            if g is None or not bool(torch.any(g != 0)):
                raise CheckFailed("lora_no_gradient", name=name)

    return [
        ("runs", runs),
        ("without_dropout", without_dropout),
        ("dropout_on_input", dropout_placement),
        ("same_as_peft_in_training", real_dropout),
        ("gradients", gradients),
    ]


def check_lora_forward(fn, *, lang: str = "en", seed: int = 0, verbose: bool = True) -> bool:
    """Check a student's ``lora_forward(x, base, lora_A, lora_B, scaling, dropout)`` against
    PEFT's ``lora.Linear``: ``base(x) + lora_B(lora_A(dropout(x))) * scaling``.

    Properties, in order: it runs and keeps the batch shape; without dropout it equals PEFT's
    output (naming a missing adapter, scaling or base path); with a fixed-mask dropout it calls
    the dropout once, on x, and the frozen path sees the undropped x; with ``nn.Dropout(0.5)`` in
    training mode it draws the same mask as PEFT from the same seed; gradients reach lora_A and
    lora_B. Prints the verdict (and a hint in ``lang``) and returns True when every property
    holds. Needs PEFT (the book extra).
    """
    return run_checks(
        fn_name(fn), lora_forward_checks(fn), lang, seed, verbose, checker="lora_forward"
    )
