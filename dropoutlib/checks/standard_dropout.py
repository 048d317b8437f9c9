"""Chapter 01, standard dropout: the checker of a student's inverted dropout."""

from __future__ import annotations

import math

import torch

from dropoutlib.checks.core import (
    CheckFailed,
    Term,
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

__all__ = ["check_inverted_dropout", "inverted_dropout_checks"]

_HINTS = {
    "en": {
        "shape_dtype": "input of shape {shape} and dtype {dtype} gave shape {got_shape}, dtype "
        "{got_dtype}: dropout keeps both",
        "input_unchanged": "your function modified its input x (an in-place operation such as "
        "mul_ or x[mask] = 0); build a new tensor instead",
        "eval_identity": "with training=False dropout must return x unchanged (no mask, no "
        "scaling); your output differs at p = {p}",
        "p_zero": "with p = 0 nothing is dropped and 1/(1-p) = 1: the output must equal x",
        "p_one": "with p = 1 every element is dropped; 1/(1-p) is infinite, so return zeros "
        "directly (your output has {bad} non-zero or non-finite elements)",
        "not_binary": "at p = {p} the output holds values that are neither 0 nor x·{factor}: "
        "each element must be dropped (0) or kept and scaled",
        "no_scaling": "at p = {p} the kept elements equal x: inverted dropout multiplies them "
        "by 1/(1-p) so that E[y] = x",
        "scaled_by_p": "at p = {p} the kept elements are x·p: the factor is 1/(1-p), not p",
        "scaled_by_q": "at p = {p} the kept elements are x·(1-p): divide by (1-p) instead",
        "wrong_scale": "at p = {p} the kept elements are x·{got:.4g}, expected x·{want:.4g} "
        "= x/(1-p)",
        "keep_rate_swapped": "at p = {p} you keep {rate:.3f} of the elements, about p: p is the "
        "probability to DROP, so keep with probability 1-p",
        "keep_rate": "at p = {p} you keep {rate:.4f} of the elements; expected 1-p = {q:.4f} "
        "± {tol:.4f}",
        "mean": "at p = {p} the mean of y over {n} copies of x = 1 is {mean:.4f}; expected "
        "1 ± {tol:.4f}",
        "fresh_mask": "two calls returned the same mask: draw a new random mask on every call",
        "independent": "neighbouring elements ({axis}) are kept together with frequency "
        "{got:.4f}, expected (1-p)² = {want:.4f} ± {tol:.4f}: draw one independent coin per "
        "element (torch.rand(x.shape)), not one per row or column",
        "gradient": "the gradient w.r.t. x must be mask/(1-p) times the upstream gradient; "
        "yours differs by up to {err:.3g}",
        "no_gradient": "no gradient reached x: build the output from x with differentiable "
        "tensor operations (no .detach(), no torch.no_grad())",
        "axis_row": "along a row",
        "axis_col": "down a column",
    },
    "ru": {
        "shape_dtype": "вход формы {shape} с типом {dtype} дал форму {got_shape} и тип "
        "{got_dtype}: dropout не меняет ни форму, ни тип",
        "input_unchanged": "функция изменила свой вход x (операция на месте, например mul_ "
        "или x[mask] = 0); создайте новый тензор",
        "eval_identity": "при training=False dropout должен вернуть x без изменений (ни маски, "
        "ни масштабирования); при p = {p} ваш выход отличается от x",
        "p_zero": "при p = 0 ничего не отключается и 1/(1-p) = 1: выход должен совпасть с x",
        "p_one": "при p = 1 отключается всё; 1/(1-p) бесконечно, поэтому сразу верните нули "
        "(у вас ненулевых элементов или inf/nan: {bad})",
        "not_binary": "при p = {p} в выходе есть значения, не равные ни 0, ни x·{factor}: "
        "каждый элемент либо отключается (0), либо сохраняется с масштабом",
        "no_scaling": "при p = {p} сохранённые элементы равны x: инвертированный dropout "
        "умножает их на 1/(1-p), чтобы E[y] = x",
        "scaled_by_p": "при p = {p} сохранённые элементы равны x·p: множитель 1/(1-p), а не p",
        "scaled_by_q": "при p = {p} сохранённые элементы равны x·(1-p): на (1-p) нужно делить",
        "wrong_scale": "при p = {p} сохранённые элементы равны x·{got:.4g}, а должны быть "
        "x·{want:.4g} = x/(1-p)",
        "keep_rate_swapped": "при p = {p} сохраняется доля {rate:.3f}, примерно p: p\u00a0— это "
        "вероятность ОТКЛЮЧИТЬ элемент, сохранять нужно с вероятностью 1-p",
        "keep_rate": "при p = {p} сохраняется доля {rate:.4f}; ожидается 1-p = {q:.4f} ± {tol:.4f}",
        "mean": "при p = {p} среднее y по {n} копиям x = 1 равно {mean:.4f}; ожидается "
        "1 ± {tol:.4f}",
        "fresh_mask": "два вызова дали одну и ту же маску: генерируйте новую маску при каждом "
        "вызове",
        "independent": "соседние элементы ({axis}) сохраняются вместе с частотой {got:.4f}, "
        "а ожидается (1-p)² = {want:.4f} ± {tol:.4f}: бросайте независимую монетку для каждого "
        "элемента (torch.rand(x.shape)), а не одну на строку или столбец",
        "gradient": "градиент по x должен равняться mask/(1-p), умноженному на входящий "
        "градиент; у вас расхождение до {err:.3g}",
        "no_gradient": "градиент не дошёл до x: стройте выход из x дифференцируемыми "
        "операциями (без .detach() и torch.no_grad())",
        "axis_row": "вдоль строки",
        "axis_col": "вдоль столбца",
    },
    "zh": {
        "shape_dtype": "形状为 {shape}、类型为 {dtype} 的输入得到了形状 {got_shape}、类型 "
        "{got_dtype}：暂退法不改变形状和类型",
        "input_unchanged": "你的函数修改了输入 x（原地操作，例如 mul_ 或 x[mask] = 0）；"
        "请创建一个新张量",
        "eval_identity": "training=False 时暂退法应原样返回 x（不采样掩码，也不缩放）；"
        "在 p = {p} 时你的输出与 x 不同",
        "p_zero": "p = 0 时不丢弃任何元素，且 1/(1-p) = 1：输出必须等于 x",
        "p_one": "p = 1 时所有元素都被丢弃；1/(1-p) 为无穷大，所以应直接返回全零"
        "（你的输出中有 {bad} 个非零或非有限的元素）",
        "not_binary": "p = {p} 时输出中有既不是 0 也不是 x·{factor} 的值："
        "每个元素要么丢弃（0），要么保留并缩放",
        "no_scaling": "p = {p} 时保留下来的元素等于 x：倒置暂退法要把它们乘以 1/(1-p)，"
        "才能使 E[y] = x",
        "scaled_by_p": "p = {p} 时保留下来的元素等于 x·p：缩放因子是 1/(1-p)，不是 p",
        "scaled_by_q": "p = {p} 时保留下来的元素等于 x·(1-p)：应当除以 (1-p)",
        "wrong_scale": "p = {p} 时保留下来的元素等于 x·{got:.4g}，应为 x·{want:.4g} = x/(1-p)",
        "keep_rate_swapped": "p = {p} 时你保留的元素比例为 {rate:.3f}，约等于 p："
        "p 是“丢弃”的概率，应以 1-p 的概率保留",
        "keep_rate": "p = {p} 时你保留的元素比例为 {rate:.4f}；应为 1-p = {q:.4f} ± {tol:.4f}",
        "mean": "p = {p} 时，在 {n} 个 x = 1 的副本上 y 的均值为 {mean:.4f}；应为 1 ± {tol:.4f}",
        "fresh_mask": "两次调用得到了同一个掩码：每次调用都要重新采样掩码",
        "independent": "相邻元素（{axis}）同时保留下来的频率为 {got:.4f}，期望为 (1-p)² = "
        "{want:.4f} ± {tol:.4f}：应为每个元素独立抽样（torch.rand(x.shape)），"
        "而不是每行或每列共用一个",
        "gradient": "对 x 的梯度应为 mask/(1-p) 乘以上游梯度；你的梯度与之最多相差 {err:.3g}",
        "no_gradient": "梯度没有传到 x：请用可微的张量运算由 x 构造输出"
        "（不要用 .detach() 或 torch.no_grad()）",
        "axis_row": "同一行",
        "axis_col": "同一列",
    },
}
add_hints(_HINTS)

P_VALUES = (0.2, 0.5, 0.8)  # 0.5 alone cannot tell "keep with prob p" from "keep with prob 1-p"
N = 200_000  # elements per statistical test
SHAPES_DTYPES = (((1000,), torch.float32), ((4, 8, 16), torch.float64))


def _scale_failure(p: float, ratio: float) -> CheckFailed:
    """Name the typical scaling mistake behind a measured ratio y/x on kept elements."""
    q = 1.0 - p

    def close(a, b):
        return math.isclose(a, b, rel_tol=1e-4)

    if close(ratio, 1.0):
        return CheckFailed("no_scaling", p=p)
    if close(ratio, p):
        return CheckFailed("scaled_by_p", p=p)
    if close(ratio, q):
        return CheckFailed("scaled_by_q", p=p)
    return CheckFailed("wrong_scale", p=p, got=ratio, want=1.0 / q)


def inverted_dropout_checks(fn):
    """The properties of inverted dropout ``fn(x, p, training=True)``, as (name, check) pairs."""

    def runs():
        call_tensor(fn, positive((8, 8)), 0.5, training=True)

    def train(x):
        return call_tensor(fn, x, 0.5, training=True)

    shape_dtype = shape_dtype_check(train, lambda: (positive(s, d) for s, d in SHAPES_DTYPES))
    input_unchanged = input_unchanged_check(train, lambda: positive((64, 64)))

    def eval_identity():
        x = positive((64, 64))
        for p in P_VALUES:
            y = call_tensor(fn, x, p, training=False)
            if not torch.equal(y, x):
                raise CheckFailed("eval_identity", p=p)

    def p_zero():
        x = positive((64, 64))
        if not torch.equal(call_tensor(fn, x, 0.0, training=True), x):
            raise CheckFailed("p_zero")

    def p_one():
        y = call_tensor(fn, positive((64, 64)), 1.0, training=True)
        bad = int((~torch.isfinite(y) | (y != 0)).sum())
        if bad:
            raise CheckFailed("p_one", bad=bad)

    def kept_scaled():
        for p in P_VALUES:
            x = positive((N,), torch.float64)
            y = call_tensor(fn, x, p, training=True).detach()
            kept = y != 0
            factor = 1.0 / (1.0 - p)
            ok = torch.where(kept, torch.isclose(y, x * factor, rtol=1e-9, atol=0.0), True)
            if not bool(ok.all()):
                ratios = (y[kept] / x[kept]).tolist()
                if ratios and max(ratios) - min(ratios) <= 1e-9 * max(abs(r) for r in ratios):
                    raise _scale_failure(p, ratios[0])
                raise CheckFailed("not_binary", p=p, factor=f"{factor:.4g}")

    def keep_rate():
        for p in P_VALUES:
            y = call_tensor(fn, positive((N,)), p, training=True)
            rate = float((y != 0).double().mean())
            q = 1.0 - p
            tol = Z * math.sqrt(p * q / N)  # binomial standard error of a proportion
            if abs(rate - q) > tol:
                if abs(rate - p) <= tol:
                    raise CheckFailed("keep_rate_swapped", p=p, rate=rate)
                raise CheckFailed("keep_rate", p=p, rate=rate, q=q, tol=tol)

    def mean():
        for p in P_VALUES:
            y = call_tensor(fn, torch.ones(N, dtype=torch.float64), p, training=True)
            m = float(y.double().mean())
            tol = Z * math.sqrt(p / (1.0 - p) / N)  # Var[y_i] = x² p/(1-p) with x = 1
            if abs(m - 1.0) > tol:
                raise CheckFailed("mean", p=p, n=N, mean=m, tol=tol)

    def fresh_mask():
        x = positive((1000,))
        a = call_tensor(fn, x, 0.5, training=True) != 0
        b = call_tensor(fn, x, 0.5, training=True) != 0
        if torch.equal(a, b):  # chance for a correct function: 2**-1000
            raise CheckFailed("fresh_mask")

    def independent():
        p = 0.5
        q = 1.0 - p
        m = (call_tensor(fn, positive((400, 500)), p, training=True) != 0).double()
        for axis, both in (("row", m[:, :-1] * m[:, 1:]), ("col", m[:-1, :] * m[1:, :])):
            n = both.numel()
            # Overlapping pairs Z_i = m_i m_{i+1}: Var Z = q²(1-q²), Cov(Z_i, Z_{i+1}) = q³ - q⁴.
            tol = Z * math.sqrt((q**2 * (1 - q**2) + 2 * (q**3 - q**4)) / n)
            got = float(both.mean())
            if abs(got - q**2) > tol:
                raise CheckFailed(
                    "independent", axis=Term(f"axis_{axis}"), got=got, want=q**2, tol=tol
                )

    # y = x·m/(1-p), so dy/dx = m/(1-p) = y/x (x > 0): the gradient follows from the output.
    gradient = gradient_check(
        lambda x: call_tensor(fn, x, 0.3, training=True),
        lambda: positive((50, 40), torch.float64),
        lambda y, x: y / x,
    )

    return [
        ("runs", runs),
        ("shape_dtype", shape_dtype),
        ("input_unchanged", input_unchanged),
        ("eval_identity", eval_identity),
        ("p_zero", p_zero),
        ("p_one", p_one),
        ("kept_scaled", kept_scaled),
        ("keep_rate", keep_rate),
        ("mean", mean),
        ("fresh_mask", fresh_mask),
        ("independent", independent),
        ("gradient", gradient),
    ]


def check_inverted_dropout(fn, *, lang: str = "en", seed: int = 0, verbose: bool = True) -> bool:
    """Check a student's inverted dropout ``fn(x, p, training=True) -> Tensor``.

    Inverted dropout (Srivastava et al., JMLR 2014, with the scaling moved to training time):
    ``y = x * m / (1 - p)`` with ``m ~ Bernoulli(1 - p)`` elementwise in training, ``y = x`` in
    eval. Properties, in order: it runs; shape and dtype kept; input not modified; identity when
    ``training=False``; identity at p = 0; zeros at p = 1; kept elements scaled by exactly
    1/(1-p); keep rate 1-p and mean E[y] = x within 6 standard errors; a fresh mask per call;
    independent coins per element; gradient m/(1-p). Prints the verdict (and a hint in ``lang``
    on failure) and returns True when every property holds.
    """
    return run_checks(
        fn_name(fn), inverted_dropout_checks(fn), lang, seed, verbose, checker="inverted_dropout"
    )
