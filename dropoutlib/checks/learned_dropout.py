"""Chapter 08, Learned Dropout: the checker of a student's stochastic rounding of the mask.

LearnedDropout (seed 002; :mod:`dropoutlib.learned`) turns its unrounded mask M in [0, 1] into a
binary one. In training each element becomes 1 with probability M (a Bernoulli sample), in
evaluation 1 exactly where M >= 0.5; in both the gradient passes straight through to M, as if the
rounding were the identity. The student writes ``fn(m, training=True) -> mask``.
"""

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
    run_checks,
    shape_dtype_check,
)

__all__ = ["check_stochastic_rounding", "stochastic_rounding_checks"]

_HINTS = {
    "en": {
        "sr_shape_dtype": "M of shape {shape} and dtype {dtype} gave shape {got_shape}, dtype "
        "{got_dtype}: the mask has M's shape and dtype",
        "sr_input_unchanged": "your function modified M in place; build a new tensor instead",
        "sr_rescaled": "in training the mask holds values 1/M: LearnedDropout never rescales, "
        "each element of the mask is exactly 0 or 1",
        "sr_not_binary": "in training the mask holds {bad} values that are neither 0 nor 1 "
        "(e.g. {example:.4g}): round every element to 0 or 1",
        "sr_deterministic": "in training M = {m} always gave {got:.0f}: rounding must be random "
        "in training (1 with probability M), the threshold M >= 0.5 is for evaluation only",
        "sr_swapped": "in training M = {m} gave 1 with frequency {rate:.4f}, about 1 - M: the "
        "probability of a 1 (keep) is M itself",
        "sr_keep_rate": "in training M = {m} gave 1 with frequency {rate:.4f}; expected "
        "{m} ± {tol:.4f}",
        "sr_fresh": "two calls in training gave the same mask: draw new random numbers on every "
        "call",
        "sr_eval_random": "in evaluation two calls gave different masks: evaluation must be "
        "deterministic (1 where M >= 0.5, else 0)",
        "sr_eval_threshold": "in evaluation M = {m} gave {got:.4g}, expected {want:.0f} "
        "(1 where M >= 0.5, and 0.5 itself rounds to 1)",
        "sr_no_gradient": "no gradient reached M: a sample or a comparison has no gradient; add "
        "the straight-through term, mask = sample + (M - M.detach())",
        "sr_gradient": "the gradient w.r.t. M must be the upstream gradient itself (a "
        "straight-through estimator); yours differs by up to {err:.3g}",
    },
    "ru": {
        "sr_shape_dtype": "M формы {shape} с типом {dtype} дала форму {got_shape} и тип "
        "{got_dtype}: у маски форма и тип M",
        "sr_input_unchanged": "функция изменила M на месте; создайте новый тензор",
        "sr_rescaled": "при обучении в маске есть значения 1/M: LearnedDropout ничего не "
        "масштабирует, каждый элемент маски равен ровно 0 или 1",
        "sr_not_binary": "при обучении в маске {bad} значений, не равных ни 0, ни 1 "
        "(например, {example:.4g}): округлите каждый элемент до 0 или 1",
        "sr_deterministic": "при обучении M = {m} всегда даёт {got:.0f}: округление при "
        "обучении случайное (1 с вероятностью M), а порог M >= 0.5 нужен только при оценке",
        "sr_swapped": "при обучении M = {m} даёт 1 с частотой {rate:.4f}, примерно 1 - M: "
        "вероятность единицы (элемент сохраняется) равна самой M",
        "sr_keep_rate": "при обучении M = {m} даёт 1 с частотой {rate:.4f}; ожидается "
        "{m} ± {tol:.4f}",
        "sr_fresh": "два вызова при обучении дали одну и ту же маску: генерируйте новые "
        "случайные числа при каждом вызове",
        "sr_eval_random": "при оценке два вызова дали разные маски: в режиме оценки маска "
        "детерминирована (1 там, где M >= 0.5, иначе 0)",
        "sr_eval_threshold": "при оценке M = {m} дала {got:.4g}, а нужно {want:.0f} "
        "(1 там, где M >= 0.5; сама 0.5 округляется до 1)",
        "sr_no_gradient": "градиент не дошёл до M: у выборки и у сравнения нет градиента; "
        "добавьте к маске слагаемое straight-through: mask = sample + (M - M.detach())",
        "sr_gradient": "градиент по M должен совпадать с входящим градиентом "
        "(straight-through estimator); у вас расхождение до {err:.3g}",
    },
    "zh": {
        "sr_shape_dtype": "形状为 {shape}、类型为 {dtype} 的 M 得到了形状 {got_shape}、类型 "
        "{got_dtype}：掩码的形状和类型应与 M 相同",
        "sr_input_unchanged": "你的函数原地修改了 M；请创建一个新张量",
        "sr_rescaled": "训练时掩码中出现了 1/M：LearnedDropout 不做缩放，掩码的每个元素"
        "恰好是 0 或 1",
        "sr_not_binary": "训练时掩码中有 {bad} 个既不是 0 也不是 1 的值（例如 {example:.4g}）："
        "请把每个元素取整为 0 或 1",
        "sr_deterministic": "训练时 M = {m} 总是得到 {got:.0f}：训练时的取整应是随机的"
        "（以概率 M 取 1），阈值 M >= 0.5 只用于评估",
        "sr_swapped": "训练时 M = {m} 取 1 的频率为 {rate:.4f}，约等于 1 - M：取 1"
        "（保留）的概率就是 M 本身",
        "sr_keep_rate": "训练时 M = {m} 取 1 的频率为 {rate:.4f}；应为 {m} ± {tol:.4f}",
        "sr_fresh": "训练时两次调用得到了同一个掩码：每次调用都要重新生成随机数",
        "sr_eval_random": "评估时两次调用得到了不同的掩码：评估时的掩码应是确定的"
        "（M >= 0.5 处为 1，其余为 0）",
        "sr_eval_threshold": "评估时 M = {m} 得到 {got:.4g}，应为 {want:.0f}"
        "（M >= 0.5 处为 1，0.5 本身取整为 1）",
        "sr_no_gradient": "梯度没有传到 M：采样和比较运算都没有梯度；请给掩码加上直通项："
        "mask = sample + (M - M.detach())",
        "sr_gradient": "对 M 的梯度应等于上游梯度本身（直通估计器）；"
        "你的梯度与之最多相差 {err:.3g}",
    },
}
add_hints(_HINTS)

LEVELS = (0.1, 0.5, 0.9)  # M values of the keep-rate test: 0.5 alone cannot tell M from 1 - M
N = 100_000  # elements per M value
SHAPES_DTYPES = (((1000,), torch.float32), ((2, 8, 16), torch.float64))


def stochastic_rounding_checks(fn):
    """The properties of the rounding ``fn(m, training=True)``, as (name, check) pairs."""

    def levels() -> torch.Tensor:
        return torch.tensor(LEVELS, dtype=torch.float64).repeat_interleave(N)

    def runs():
        call_tensor(fn, torch.rand(4, 8), training=True)

    def both_modes(m):
        call_tensor(fn, m, training=True)
        call_tensor(fn, m, training=False)

    shape_dtype = shape_dtype_check(
        lambda m: call_tensor(fn, m, training=True),
        lambda: (torch.rand(s, dtype=d) for s, d in SHAPES_DTYPES),
        "sr_shape_dtype",
    )
    input_unchanged = input_unchanged_check(
        both_modes, lambda: torch.rand(64, 64), "sr_input_unchanged"
    )

    def binary():
        m = torch.rand(10_000, dtype=torch.float64) * 0.98 + 0.01
        y = call_tensor(fn, m, training=True).detach()
        bad = (y != 0) & (y != 1)
        if bool(bad.any()):
            if bool(torch.isclose(y[bad], 1 / m[bad], rtol=1e-6).all()):
                raise CheckFailed("sr_rescaled")
            raise CheckFailed("sr_not_binary", bad=int(bad.sum()), example=float(y[bad][0]))

    def keep_rate():
        m = levels()
        y = call_tensor(fn, m, training=True).detach()
        for i, level in enumerate(LEVELS):
            rate = float(y[i * N : (i + 1) * N].double().mean())
            tol = Z * math.sqrt(level * (1 - level) / N)  # binomial standard error
            if rate in (0.0, 1.0) and level != 0.5:
                raise CheckFailed("sr_deterministic", m=level, got=rate)
            if abs(rate - level) > tol:
                if abs(rate - (1 - level)) <= tol:
                    raise CheckFailed("sr_swapped", m=level, rate=rate)
                raise CheckFailed("sr_keep_rate", m=level, rate=rate, tol=tol)

    def fresh():
        m = torch.full((1000,), 0.5)
        a = call_tensor(fn, m, training=True)
        b = call_tensor(fn, m, training=True)
        if torch.equal(a, b):  # chance for a correct function: 2**-1000
            raise CheckFailed("sr_fresh")

    def eval_threshold():
        m = torch.tensor([0.0, 0.2, 0.4999, 0.5, 0.5001, 0.8, 1.0], dtype=torch.float64)
        m = m.repeat(100)
        a = call_tensor(fn, m, training=False).detach()
        b = call_tensor(fn, m, training=False).detach()
        if not torch.equal(a, b):
            raise CheckFailed("sr_eval_random")
        want = (m >= 0.5).to(m.dtype)
        wrong = (a != want).nonzero()
        if len(wrong):
            i = int(wrong[0])
            raise CheckFailed(
                "sr_eval_threshold", m=float(m[i]), got=float(a[i]), want=float(want[i])
            )

    gradient = gradient_check(  # straight-through: dy/dm = 1
        lambda m: call_tensor(fn, m, training=True),
        lambda: torch.rand(50, 40, dtype=torch.float64) * 0.98 + 0.01,
        lambda y, m: torch.ones_like(y),
        "sr_",
        nonzero=True,
    )

    return [
        ("runs", runs),
        ("shape_dtype", shape_dtype),
        ("input_unchanged", input_unchanged),
        ("binary", binary),
        ("keep_rate", keep_rate),
        ("fresh", fresh),
        ("eval_threshold", eval_threshold),
        ("gradient", gradient),
    ]


def check_stochastic_rounding(fn, *, lang: str = "en", seed: int = 0, verbose: bool = True) -> bool:
    """Check a student's LearnedDropout rounding ``fn(m, training=True) -> mask``.

    The rule of seed 002 (Yan, "Learned Dropout", ``yiphei/yif-AI``): in training each element
    is 1 with probability M and 0 otherwise; in evaluation it is 1 where M >= 0.5; the values are
    exactly 0 and 1 (no rescaling), and the gradient with respect to M is the upstream gradient
    (straight-through). Properties, in order: it runs; shape and dtype kept; M not modified;
    binary in training; P(1) = M within 6 standard errors at M = 0.1, 0.5, 0.9; fresh randomness
    per call; the deterministic threshold in evaluation; the straight-through gradient. Prints
    the verdict (and a hint in ``lang`` on failure) and returns True when every property holds.
    """
    return run_checks(
        fn_name(fn),
        stochastic_rounding_checks(fn),
        lang,
        seed,
        verbose,
        checker="stochastic_rounding",
    )
