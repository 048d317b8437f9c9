"""Chapter 04, structured dropout: the checker of a student's DropPath (stochastic depth)."""

from __future__ import annotations

import math

import torch

from dropoutlib.checks.core import (
    CheckFailed,
    Z,
    add_hints,
    call_tensor,
    fn_name,
    gradient_check,
    input_unchanged_check,
    positive,
    run_checks,
    shape_dtype_check,
)

__all__ = ["check_drop_path", "drop_path_checks"]

_HINTS = {
    "en": {
        "s04_shape_dtype": "input of shape {shape} and dtype {dtype} gave shape {got_shape}, "
        "dtype {got_dtype}: DropPath keeps both, for any number of dimensions",
        "s04_input_unchanged": "your function modified its input x (an in-place operation such "
        "as mul_); build a new tensor instead",
        "s04_eval_identity": "with training=False DropPath must return x unchanged; your output "
        "differs at p = {p}",
        "s04_p_zero": "with p = 0 nothing is dropped: the output must equal x",
        "s04_p_one": "with p = 1 every sample's branch is dropped: return zeros (your output has "
        "{bad} non-zero or non-finite elements)",
        "s04_per_sample": "at p = {p}, {bad} of {n} samples are partly dropped: DropPath draws "
        "ONE coin per sample (a mask of shape (B, 1, ..., 1)), so a sample's whole branch is "
        "kept or dropped together; elementwise dropout is a different variant",
        "s04_batchwise": "every sample of the batch was kept or dropped together in {calls} "
        "calls: that is the paper's per-mini-batch rule; draw one coin per sample instead "
        "(shape (B, 1, ..., 1))",
        "s04_no_scaling": "at p = {p} the kept samples equal x: scale them by 1/(1-p) so that "
        "E[y] = x (timm's scale_by_keep=True)",
        "s04_wrong_scale": "at p = {p} the kept samples are x·{got:.4g}, expected x·{want:.4g} "
        "= x/(1-p)",
        "s04_keep_rate_swapped": "at p = {p} you keep {rate:.3f} of the samples, about p: p is "
        "the probability to DROP a sample's branch",
        "s04_keep_rate": "at p = {p} you keep {rate:.4f} of the samples; expected 1-p = {q:.4f} "
        "± {tol:.4f}",
        "s04_fresh_mask": "two calls dropped the same samples: draw a new mask on every call",
        "s04_independent": "neighbouring samples are kept together with frequency {got:.4f}, "
        "expected (1-p)² = {want:.4f} ± {tol:.4f}: draw an independent coin for every sample",
        "s04_gradient": "the gradient w.r.t. x must be the sample's mask/(1-p) times the "
        "upstream gradient; yours differs by up to {err:.3g}",
        "s04_no_gradient": "no gradient reached x: build the output from x with differentiable "
        "operations",
    },
    "ru": {
        "s04_shape_dtype": "вход формы {shape} с типом {dtype} дал форму {got_shape} и тип "
        "{got_dtype}: DropPath не меняет ни форму, ни тип при любом числе измерений",
        "s04_input_unchanged": "функция изменила свой вход x (операция на месте, например mul_); "
        "создайте новый тензор",
        "s04_eval_identity": "при training=False DropPath должен вернуть x без изменений; при "
        "p = {p} ваш выход отличается от x",
        "s04_p_zero": "при p = 0 ничего не отключается: выход должен совпасть с x",
        "s04_p_one": "при p = 1 ветвь отключается у всех примеров: верните нули (у вас ненулевых "
        "элементов или inf/nan: {bad})",
        "s04_per_sample": "при p = {p} у {bad} из {n} примеров отключена только часть ветви: "
        "DropPath бросает ОДНУ монетку на пример (маска формы (B, 1, ..., 1)), и ветвь примера "
        "сохраняется или отключается целиком; поэлементный dropout\u00a0— другой вариант",
        "s04_batchwise": "в {calls} вызовах все примеры батча сохранялись или отключались вместе: "
        "так делает статья (одна монетка на мини-батч); бросайте монетку для каждого примера "
        "(форма (B, 1, ..., 1))",
        "s04_no_scaling": "при p = {p} сохранённые примеры равны x: умножьте их на 1/(1-p), "
        "чтобы E[y] = x (scale_by_keep=True в timm)",
        "s04_wrong_scale": "при p = {p} сохранённые примеры равны x·{got:.4g}, а должны быть "
        "x·{want:.4g} = x/(1-p)",
        "s04_keep_rate_swapped": "при p = {p} сохраняется доля примеров {rate:.3f}, примерно "
        "p: p\u00a0— вероятность ОТКЛЮЧИТЬ ветвь примера",
        "s04_keep_rate": "при p = {p} сохраняется доля примеров {rate:.4f}; ожидается 1-p = "
        "{q:.4f} ± {tol:.4f}",
        "s04_fresh_mask": "два вызова отключили одни и те же примеры: генерируйте новую маску "
        "при каждом вызове",
        "s04_independent": "соседние примеры сохраняются вместе с частотой {got:.4f}, а "
        "ожидается (1-p)² = {want:.4f} ± {tol:.4f}: бросайте независимую монетку для каждого "
        "примера",
        "s04_gradient": "градиент по x должен равняться маске примера, делённой на (1-p), "
        "умноженной на входящий градиент; у вас расхождение до {err:.3g}",
        "s04_no_gradient": "градиент не дошёл до x: стройте выход из x дифференцируемыми "
        "операциями",
    },
    "zh": {
        "s04_shape_dtype": "形状为 {shape}、类型为 {dtype} 的输入得到了形状 {got_shape}、"
        "类型 {got_dtype}：无论输入有几维，DropPath 都不改变形状和类型",
        "s04_input_unchanged": "你的函数修改了输入 x（原地操作，例如 mul_）；请创建一个新张量",
        "s04_eval_identity": "training=False 时 DropPath 应原样返回 x；在 p = {p} 时你的输出与 x "
        "不同",
        "s04_p_zero": "p = 0 时不丢弃任何东西：输出必须等于 x",
        "s04_p_one": "p = 1 时每个样本的分支都被丢弃：应返回全零（你的输出中有 {bad} "
        "个非零或非有限的元素）",
        "s04_per_sample": "p = {p} 时，{n} 个样本中有 {bad} 个只被丢弃了一部分：DropPath "
        "为每个样本只抛一枚硬币（掩码形状为 (B, 1, ..., 1)），一个样本的整条分支要么一起保留，"
        "要么一起丢弃；逐元素的暂退法是另一种变体",
        "s04_batchwise": "在 {calls} 次调用中，整个批量的样本总是一起保留或一起丢弃：这是论文"
        "中按小批量抛硬币的做法；请为每个样本单独抛硬币（形状 (B, 1, ..., 1)）",
        "s04_no_scaling": "p = {p} 时保留下来的样本等于 x：要乘以 1/(1-p)，使 E[y] = x"
        "（即 timm 的 scale_by_keep=True）",
        "s04_wrong_scale": "p = {p} 时保留下来的样本等于 x·{got:.4g}，应为 x·{want:.4g} = x/(1-p)",
        "s04_keep_rate_swapped": "p = {p} 时你保留的样本比例为 {rate:.3f}，约等于 p："
        "p 是“丢弃”一个样本分支的概率",
        "s04_keep_rate": "p = {p} 时你保留的样本比例为 {rate:.4f}；应为 1-p = {q:.4f} ± {tol:.4f}",
        "s04_fresh_mask": "两次调用丢弃了相同的样本：每次调用都要重新采样掩码",
        "s04_independent": "相邻样本同时保留的频率为 {got:.4f}，期望为 (1-p)² = {want:.4f} ± "
        "{tol:.4f}：应为每个样本独立抛硬币",
        "s04_gradient": "对 x 的梯度应为该样本的掩码除以 (1-p) 再乘以上游梯度；"
        "你的梯度与之最多相差 {err:.3g}",
        "s04_no_gradient": "梯度没有传到 x：请用可微的张量运算由 x 构造输出",
    },
}
add_hints(_HINTS)

P_VALUES = (0.2, 0.8)  # one p alone cannot tell "drop with prob p" from "keep with prob p"
N_SAMPLES = 40_000  # samples (the batch dimension) per statistical test
SHAPES_DTYPES = (((64, 10), torch.float32), ((16, 3, 5, 4), torch.float64))


def _kept_samples(y: torch.Tensor) -> torch.Tensor:
    """Per sample: 1 if any element survived."""
    return (y.detach() != 0).flatten(1).any(dim=1).double()


def drop_path_checks(fn):
    """The properties of per-sample DropPath ``fn(x, p, training=True)``, as (name, check)."""

    def runs():
        call_tensor(fn, positive((8, 4, 6)), 0.5, training=True)

    def train(x):
        return call_tensor(fn, x, 0.5, training=True)

    shape_dtype = shape_dtype_check(
        train,
        lambda: (positive(s, d) for s, d in SHAPES_DTYPES),
        "s04_shape_dtype",
    )
    input_unchanged = input_unchanged_check(
        train, lambda: positive((64, 8, 8)), "s04_input_unchanged"
    )

    def eval_identity():
        x = positive((64, 8, 8))
        for p in P_VALUES:
            if not torch.equal(call_tensor(fn, x, p, training=False), x):
                raise CheckFailed("s04_eval_identity", p=p)

    def p_zero():
        x = positive((64, 8, 8))
        if not torch.equal(call_tensor(fn, x, 0.0, training=True), x):
            raise CheckFailed("s04_p_zero")

    def p_one():
        y = call_tensor(fn, positive((64, 8, 8)), 1.0, training=True)
        bad = int((~torch.isfinite(y) | (y != 0)).sum())
        if bad:
            raise CheckFailed("s04_p_one", bad=bad)

    def per_sample():
        for p in P_VALUES:
            y = call_tensor(fn, positive((2000, 6, 5)), p, training=True).detach()
            zero = (y == 0).flatten(1)
            partial = zero.any(dim=1) & ~zero.all(dim=1)
            if bool(partial.any()):
                raise CheckFailed("s04_per_sample", p=p, bad=int(partial.sum()), n=len(y))

    def not_batchwise():
        calls = 5
        together = 0
        for _ in range(calls):
            kept = _kept_samples(call_tensor(fn, positive((200, 4)), 0.5, training=True))
            together += int(bool((kept == kept[0]).all()))
        if together == calls:  # chance for a per-sample function: 5 * 2**-199
            raise CheckFailed("s04_batchwise", calls=calls)

    def kept_scaled():
        for p in P_VALUES:
            x = positive((4000, 3), torch.float64)
            y = call_tensor(fn, x, p, training=True).detach()
            kept = y != 0
            if not bool(kept.any()):
                continue
            ratio = y[kept] / x[kept]
            want = 1.0 / (1.0 - p)
            if not torch.allclose(ratio, torch.full_like(ratio, want), rtol=1e-9, atol=0.0):
                got = float(ratio[0])
                if math.isclose(got, 1.0, rel_tol=1e-6):
                    raise CheckFailed("s04_no_scaling", p=p)
                raise CheckFailed("s04_wrong_scale", p=p, got=got, want=want)

    def keep_rate():
        for p in P_VALUES:
            y = call_tensor(fn, positive((N_SAMPLES, 2)), p, training=True)
            rate = float(_kept_samples(y).mean())
            q = 1.0 - p
            tol = Z * math.sqrt(p * q / N_SAMPLES)
            if abs(rate - q) > tol:
                if abs(rate - p) <= tol:
                    raise CheckFailed("s04_keep_rate_swapped", p=p, rate=rate)
                raise CheckFailed("s04_keep_rate", p=p, rate=rate, q=q, tol=tol)

    def fresh_mask():
        x = positive((1000, 3))
        a = _kept_samples(call_tensor(fn, x, 0.5, training=True))
        b = _kept_samples(call_tensor(fn, x, 0.5, training=True))
        if torch.equal(a, b):  # chance for a correct function: 2**-1000
            raise CheckFailed("s04_fresh_mask")

    def independent():
        p = 0.5
        q = 1.0 - p
        m = _kept_samples(call_tensor(fn, positive((N_SAMPLES, 2)), p, training=True))
        both = m[:-1] * m[1:]
        n = both.numel()
        tol = Z * math.sqrt((q**2 * (1 - q**2) + 2 * (q**3 - q**4)) / n)
        got = float(both.mean())
        if abs(got - q**2) > tol:
            raise CheckFailed("s04_independent", got=got, want=q**2, tol=tol)

    gradient = gradient_check(  # dy/dx = mask/(1-p) = y/x, as x > 0
        lambda x: call_tensor(fn, x, 0.3, training=True),
        lambda: positive((200, 5, 4), torch.float64),
        lambda y, x: y / x,
        "s04_",
    )

    return [
        ("runs", runs),
        ("shape_dtype", shape_dtype),
        ("input_unchanged", input_unchanged),
        ("eval_identity", eval_identity),
        ("p_zero", p_zero),
        ("p_one", p_one),
        ("per_sample", per_sample),
        ("not_batchwise", not_batchwise),
        ("kept_scaled", kept_scaled),
        ("keep_rate", keep_rate),
        ("fresh_mask", fresh_mask),
        ("independent", independent),
        ("gradient", gradient),
    ]


def check_drop_path(fn, *, lang: str = "en", seed: int = 0, verbose: bool = True) -> bool:
    """Check a student's DropPath ``fn(x, p, training=True) -> Tensor``.

    DropPath (stochastic depth, Huang et al. 2016) per sample, as timm's ``drop_path``: the
    input is the output of a residual branch, ``x`` of shape ``(B, ...)``; while training each
    sample's whole branch is kept with probability ``1 - p`` and scaled by ``1 / (1 - p)``, or
    dropped; identity when ``training=False``. Properties, in order: it runs; shape and dtype
    kept; input not modified; identity in eval and at p = 0; zeros at p = 1; one coin per sample
    (no partly dropped sample); not one coin for the whole batch; kept samples scaled by exactly
    1/(1-p); keep rate 1-p within 6 standard errors; a fresh mask per call; independent samples;
    gradient mask/(1-p). Prints the verdict (and a hint in ``lang``) and returns True when every
    property holds.
    """
    return run_checks(fn_name(fn), drop_path_checks(fn), lang, seed, verbose, checker="drop_path")
