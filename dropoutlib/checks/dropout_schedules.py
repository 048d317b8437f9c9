"""Chapter 06, dropout schedules: the checker of a student's schedule function.

The exercise asks for ``dropout_rate(kind, step, total_steps, p, cutoff)``, the drop rate in
force after ``step`` of ``total_steps`` finished steps (or epochs) for four kinds:

* ``"adaptive"``: seed 000's fine-tuning rule ``p * (1 - step / total_steps)``;
* ``"cosine"``: ``p * (1 + cos(pi * step / total_steps)) / 2``;
* ``"early"``: ``p`` before the switching step ``c = round(cutoff * total_steps)``, 0 from ``c``
  on (Liu et al., ICML 2023, constant form);
* ``"late"``: 0 before ``c``, ``p`` from ``c`` on.

The references are :mod:`dropoutlib.schedules`' LinearDecay, CosineDecay, EarlyDropout and
LateDropout; the checker compares at every step of four short runs (the ends, the switching
step, the last epoch of seed 000's loop among them) and names the typical mistake behind a wrong
value.
"""

from __future__ import annotations

import math
import numbers

from dropoutlib.checks.core import CheckFailed, add_hints, call, fn_name, run_checks

__all__ = ["check_dropout_rate", "dropout_rate_checks", "reference_rate"]

KINDS = ("adaptive", "cosine", "early", "late")

_HINTS = {
    "en": {
        "rate_not_number": "dropout_rate must return a number (a float), got {type}",
        "rate_value": "dropout_rate({kind!r}, step={step}, total_steps={total}, p={p}, "
        "cutoff={cutoff}) returned {got:.6g}, expected {want:.6g}",
        "rate_out_of_range": "dropout_rate({kind!r}, step={step}, total_steps={total}, p={p}) "
        "returned {got:.6g}: a scheduled rate stays between 0 and the peak p",
        "adaptive_shifted": "seed 000's loop sets the rate before each epoch with the epoch "
        "index that starts at 0: step 0 gets p, and the last epoch (step = total_steps - 1) "
        "gets p / total_steps. You seem to use step + 1",
        "adaptive_rising": "seed 000's adaptive rule starts high and decays: p * (1 - step / "
        "total_steps), not p * step / total_steps",
        "adaptive_constant": "the adaptive rate does not change with step: divide with / "
        "(a float), not //, and use step / total_steps",
        "cosine_period": "at the end of training (step = total_steps) the cosine decay must "
        "reach 0: use half a period, cos(pi * step / total_steps), not cos(2 pi ...)",
        "cosine_shape": "the cosine decay is p * (1 + cos(pi * step / total_steps)) / 2: it "
        "equals p at step 0, p / 2 in the middle and 0 at the end",
        "early_late_swapped": "early and late are swapped: early dropout drops only at the "
        "start (p before the switching step, then 0), late dropout only after it",
        "switch_off_by_one": "{kind} dropout switches at step c = round(cutoff * total_steps) "
        "= {c}: step c already has the new rate ({want:g}), step c - 1 still the old one",
        "cutoff_is_fraction": "cutoff is a fraction of training: the switching step is "
        "round(cutoff * total_steps) = {c}, not cutoff itself",
        "unknown_kind": "dropout_rate returned {got!r} for kind {kind!r}; it must handle "
        "'adaptive', 'cosine', 'early' and 'late'",
    },
    "ru": {
        "rate_not_number": "dropout_rate должна возвращать число (float), а вернула {type}",
        "rate_value": "dropout_rate({kind!r}, step={step}, total_steps={total}, p={p}, "
        "cutoff={cutoff}) вернула {got:.6g}, а ожидается {want:.6g}",
        "rate_out_of_range": "dropout_rate({kind!r}, step={step}, total_steps={total}, p={p}) "
        "вернула {got:.6g}: доля отключения по расписанию лежит между 0 и пиковой p",
        "adaptive_shifted": "цикл seed 000 задаёт долю перед каждой эпохой по номеру эпохи, "
        "который начинается с 0: шаг 0 получает p, последняя эпоха (step = total_steps - 1)\u00a0"
        "— p / total_steps. Похоже, у вас step + 1",
        "adaptive_rising": "адаптивное правило seed 000 начинает с высокой доли и снижает её: "
        "p * (1 - step / total_steps), а не p * step / total_steps",
        "adaptive_constant": "адаптивная доля не меняется с шагом: делите через / (float), а не "
        "//, и берите step / total_steps",
        "cosine_period": "в конце обучения (step = total_steps) косинусное убывание должно "
        "дойти до 0: берите полпериода, cos(pi * step / total_steps), а не cos(2 pi ...)",
        "cosine_shape": "косинусное убывание\u00a0— это "
        "p * (1 + cos(pi * step / total_steps)) / 2: p на шаге 0, p / 2 в середине и 0 в конце",
        "early_late_swapped": "early и late перепутаны: ранний dropout отключает элементы только "
        "в начале (p до шага переключения, потом 0), поздний dropout\u00a0— только после него",
        "switch_off_by_one": "{kind}-dropout переключается на шаге c = round(cutoff * "
        "total_steps) = {c}: на шаге c уже действует новая доля ({want:g}), на шаге c - 1\u00a0— "
        "ещё старая",
        "cutoff_is_fraction": "cutoff\u00a0— это доля обучения: шаг переключения равен "
        "round(cutoff * total_steps) = {c}, а не самому cutoff",
        "unknown_kind": "dropout_rate вернула {got!r} для kind {kind!r}; функция должна "
        "понимать 'adaptive', 'cosine', 'early' и 'late'",
    },
    "zh": {
        "rate_not_number": "dropout_rate 应返回一个数（float），实际返回了 {type}",
        "rate_value": "dropout_rate({kind!r}, step={step}, total_steps={total}, p={p}, "
        "cutoff={cutoff}) 返回 {got:.6g}，应为 {want:.6g}",
        "rate_out_of_range": "dropout_rate({kind!r}, step={step}, total_steps={total}, p={p}) "
        "返回 {got:.6g}：按调度变化的暂退概率应在 0 和峰值 p 之间",
        "adaptive_shifted": "种子文档 000 的循环在每个迭代周期开始前"
        "用从 0 起的周期编号设置暂退概率：第 0 步为 p，"
        "最后一个迭代周期（step = total_steps - 1）为 p / total_steps。"
        "你似乎用了 step + 1",
        "adaptive_rising": "种子文档 000 的自适应规则从高处开始逐渐降低：p * (1 - step / "
        "total_steps)，而不是 p * step / total_steps",
        "adaptive_constant": "自适应暂退概率没有随 step 变化：请用 /（浮点除法）而不是 //，"
        "并计算 step / total_steps",
        "cosine_period": "训练结束时（step = total_steps）余弦衰减应降到 0：用半个周期 "
        "cos(pi * step / total_steps)，而不是 cos(2 pi ...)",
        "cosine_shape": "余弦衰减为 p * (1 + cos(pi * step / total_steps)) / 2："
        "第 0 步为 p，中点为 p / 2，结束时为 0",
        "early_late_swapped": "early 与 late 弄反了：早期暂退只在开始时丢弃（切换步之前为 p，"
        "之后为 0），晚期暂退只在切换步之后丢弃",
        "switch_off_by_one": "{kind} 暂退在第 c = round(cutoff * total_steps) = {c} 步切换："
        "第 c 步已经使用新的暂退概率（{want:g}），第 c - 1 步仍是旧的",
        "cutoff_is_fraction": "cutoff 是训练进度的比例：切换步为 round(cutoff * total_steps) "
        "= {c}，而不是 cutoff 本身",
        "unknown_kind": "对 kind {kind!r}，dropout_rate 返回了 {got!r}；它必须支持 "
        "'adaptive'、'cosine'、'early' 和 'late'",
    },
}
add_hints(_HINTS)

# (total_steps, p, cutoff): cutoff * total_steps is a whole number (exactly, or a hair above it
# in floating point), so round(), int() and floor(x + 0.5) agree on the switching step.
CASES = ((12, 0.2, 0.25), (10, 0.1, 0.5), (100, 0.3, 0.2), (3, 0.5, 1 / 3))


def reference_rate(kind: str, step: int, total_steps: int, p: float, cutoff: float) -> float:
    """The correct answer, from :mod:`dropoutlib.schedules`."""
    from dropoutlib import schedules

    schedule = {
        "adaptive": lambda: schedules.LinearDecay(p),
        "cosine": lambda: schedules.CosineDecay(p),
        "early": lambda: schedules.EarlyDropout(p, cutoff),
        "late": lambda: schedules.LateDropout(p, cutoff),
    }[kind]()
    return schedule(step, total_steps)


def _switch(total: int, cutoff: float) -> int:
    return math.floor(cutoff * total + 0.5)


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def dropout_rate_checks(fn):
    """The properties of ``fn(kind, step, total_steps, p, cutoff) -> float``, as (name, check)
    pairs: one group per kind, then the range of every value."""

    def rate(kind, step, total, p, cutoff):
        out = call(fn, kind, step, total, p, cutoff)
        if out is None or isinstance(out, (str, bytes)):
            raise CheckFailed("unknown_kind", kind=kind, got=out)
        if isinstance(out, bool) or not isinstance(out, numbers.Real):
            try:
                out = float(out)  # a 0-d tensor or numpy number
            except (TypeError, ValueError):
                raise CheckFailed("rate_not_number", type=type(out).__name__) from None
        return float(out)

    def runs():
        for kind in KINDS:
            rate(kind, 0, 10, 0.1, 0.5)

    def value_failure(kind, step, total, p, cutoff, got, want):
        if math.isnan(got) or not -1e-12 <= got <= p + 1e-12:
            return CheckFailed("rate_out_of_range", kind=kind, step=step, total=total, p=p, got=got)
        return CheckFailed(
            "rate_value", kind=kind, step=step, total=total, p=p, cutoff=cutoff, got=got, want=want
        )

    def first_wrong(kind, got, want):
        return next((s for s in sorted(got) if not _close(got[s], want[s])), None)

    def out_of_range(kind, got, total, p):
        for s in sorted(got):
            if math.isnan(got[s]) or not -1e-12 <= got[s] <= p + 1e-12:
                raise CheckFailed(
                    "rate_out_of_range", kind=kind, step=s, total=total, p=p, got=got[s]
                )

    def adaptive():
        for total, p, cutoff in CASES:
            steps = range(total + 1)
            got = {s: rate("adaptive", s, total, p, cutoff) for s in steps}
            want = {s: reference_rate("adaptive", s, total, p, cutoff) for s in steps}
            if first_wrong("adaptive", got, want) is None:
                continue
            if all(_close(got[s], p) for s in range(total)):
                raise CheckFailed("adaptive_constant")
            if _close(got[0], 0.0) and _close(got[total], p):
                raise CheckFailed("adaptive_rising")
            if all(_close(got[s], p * (1 - (s + 1) / total)) for s in range(total)):
                raise CheckFailed("adaptive_shifted")
            out_of_range("adaptive", got, total, p)
            s = first_wrong("adaptive", got, want)
            raise value_failure("adaptive", s, total, p, cutoff, got[s], want[s])

    def cosine():
        for total, p, cutoff in CASES:
            steps = range(total + 1)
            got = {s: rate("cosine", s, total, p, cutoff) for s in steps}
            want = {s: reference_rate("cosine", s, total, p, cutoff) for s in steps}
            if first_wrong("cosine", got, want) is None:
                continue
            if _close(got[total], p) and not _close(got[total // 2], p):
                raise CheckFailed("cosine_period")
            out_of_range("cosine", got, total, p)
            if _close(got[0], p):
                raise CheckFailed("cosine_shape")
            s = first_wrong("cosine", got, want)
            raise value_failure("cosine", s, total, p, cutoff, got[s], want[s])

    def switching(kind):
        other = "late" if kind == "early" else "early"
        for total, p, cutoff in CASES:
            c = _switch(total, cutoff)
            steps = range(total + 1)
            got = {s: rate(kind, s, total, p, cutoff) for s in steps}
            want = {s: reference_rate(kind, s, total, p, cutoff) for s in steps}
            if first_wrong(kind, got, want) is None:
                continue
            if all(_close(got[s], reference_rate(other, s, total, p, cutoff)) for s in steps):
                raise CheckFailed("early_late_swapped")
            for d in (-1, 1):
                shifted = _Switch(kind, p, c + d)
                if all(_close(got[s], shifted.rate(s)) for s in steps):
                    raise CheckFailed("switch_off_by_one", kind=kind, c=c, want=want[c])
            as_step = _Switch(kind, p, math.ceil(cutoff))  # cutoff read as a step index
            if all(_close(got[s], as_step.rate(s)) for s in steps):
                raise CheckFailed("cutoff_is_fraction", c=c)
            out_of_range(kind, got, total, p)
            s = first_wrong(kind, got, want)
            raise value_failure(kind, s, total, p, cutoff, got[s], want[s])

    return [
        ("runs", runs),
        ("adaptive", adaptive),
        ("cosine", cosine),
        ("early", lambda: switching("early")),
        ("late", lambda: switching("late")),
    ]


class _Switch:
    """A switching schedule with an explicit switching step, for naming off-by-one mistakes."""

    def __init__(self, kind: str, p: float, c: int):
        self.kind, self.p, self.c = kind, p, c

    def rate(self, step: int) -> float:
        before = step < self.c
        return self.p if before == (self.kind == "early") else 0.0


def check_dropout_rate(fn, *, lang: str = "en", seed: int = 0, verbose: bool = True) -> bool:
    """Check a student's ``dropout_rate(kind, step, total_steps, p, cutoff)``.

    Properties, in order: it runs for the four kinds and returns a number; ``"adaptive"`` is
    seed 000's ``p * (1 - step / total_steps)`` (p at step 0, p / total_steps at the last epoch
    of its loop, 0 at the end); ``"cosine"`` is the half-cosine from p to 0; ``"early"`` and
    ``"late"`` switch at ``round(cutoff * total_steps)`` (Liu et al., ICML 2023). Each is
    compared with :mod:`dropoutlib.schedules` at every step of four runs; a value outside
    [0, p] is named as such. Prints the verdict (and a hint in ``lang`` naming the mistake) and
    returns True when every property holds.
    """
    return run_checks(
        fn_name(fn), dropout_rate_checks(fn), lang, seed, verbose, checker="dropout_rate"
    )
