"""Chapter 03, when dropout helps: the checker of a student's overfitting detector.

The exercise: ``overfits_from(history, min_rise=0.02) -> int | None``, which reads a run's loss
history (``RunResult.history``: dicts with ``step``, ``train_loss``, ``val_loss`` and possibly
more keys) and returns the step from which the run overfits, or None, by the rule of
:func:`dropoutlib.curves.overfitting_step`: the run overfits when its last validation loss is at
least ``min_rise`` above its lowest one while its last training loss is below the training loss
at that lowest point; the answer is the step of the lowest validation loss (the first, if tied).
"""

from __future__ import annotations

import copy

import torch

from dropoutlib.checks.core import CheckFailed, Term, add_hints, call, fn_name, run_checks

__all__ = ["check_overfitting_step", "overfitting_step_checks"]

_HINTS = {
    "en": {
        "of_type": "return a step (an int) or None, got {type}",
        "of_overfit": "{case}: expected step {want}, got {got}",
        "of_index": "{case}: you returned {got}, the position of the evaluation in the list; "
        "return its 'step' ({want})",
        "of_after_min": "{case}: you returned {got}, a step after the lowest validation loss; "
        "the run overfits from the step of that minimum ({want})",
        "of_falling": "{case}: expected None, got {got}: the validation loss still falls at the "
        "end, so the minimum is the last evaluation (underfitting or still training)",
        "of_noise": "{case}: expected None, got {got}: the validation loss ends only "
        "{rise:.3f} above its minimum, less than min_rise = {min_rise}: that is noise",
        "of_min_rise": "{case}: expected None, got {got}: use the min_rise argument; here the "
        "rise is {rise:.3f} and min_rise = {min_rise}",
        "of_train_rises": "{case}: expected None, got {got}: the training loss rose too (the "
        "optimisation went wrong, e.g. a learning rate too high), which is not overfitting",
        "of_recovered": "{case}: expected None, got {got}: the validation loss came back down; "
        "compare the LAST evaluation with the minimum, not the highest point after it",
        "of_short": "{case}: expected None, got {got}: fewer than two evaluations cannot show "
        "a rise",
        "of_first_bump": "{case}: you returned {got}, where the validation loss first went "
        "up; overfitting starts at the LOWEST validation loss ({want}), found over the whole "
        "history",
        "of_mutated": "your function changed the history it was given; only read it",
        "of_random": "on a random history ({n} evaluations, min_rise = {min_rise}) you "
        "returned {got}, expected {want}",
        "of_case_classic": "a run that overfits",
        "of_case_steps": "a run evaluated every 60 steps",
        "of_case_falling": "a run whose validation loss keeps falling",
        "of_case_noise": "a run with a small wiggle after its minimum",
        "of_case_min_rise": "a run whose validation loss rises by 0.05",
        "of_case_bump": "a run with an early bump, then a lower minimum",
        "of_case_diverging": "a run whose training loss rises too",
        "of_case_recovered": "a run whose validation loss rose, then came back",
        "of_case_short": "a history of one evaluation",
    },
    "ru": {
        "of_type": "верните шаг (int) или None, а получено {type}",
        "of_overfit": "{case}: ожидался шаг {want}, получено {got}",
        "of_index": "{case}: вы вернули {got}\u00a0— номер оценки в списке; верните её "
        "'step' ({want})",
        "of_after_min": "{case}: вы вернули {got}\u00a0— шаг после минимума потерь на "
        "валидации; переобучение начинается с шага самого минимума ({want})",
        "of_falling": "{case}: ожидалось None, получено {got}: потери на валидации к концу всё "
        "ещё падают, минимум приходится на последнюю оценку (недообучение или обучение ещё "
        "идёт)",
        "of_noise": "{case}: ожидалось None, получено {got}: потери на валидации в конце выше "
        "минимума лишь на {rise:.3f}, меньше min_rise = {min_rise}: это шум",
        "of_min_rise": "{case}: ожидалось None, получено {got}: используйте аргумент min_rise; "
        "здесь рост равен {rise:.3f}, а min_rise = {min_rise}",
        "of_train_rises": "{case}: ожидалось None, получено {got}: потери на обучении тоже "
        "выросли (сломалась сама оптимизация, например слишком велика скорость обучения), а "
        "это не переобучение",
        "of_recovered": "{case}: ожидалось None, получено {got}: потери на валидации снова "
        "снизились; сравнивайте с минимумом ПОСЛЕДНЮЮ оценку, а не самую высокую точку после "
        "минимума",
        "of_short": "{case}: ожидалось None, получено {got}: по менее чем двум оценкам рост не "
        "увидеть",
        "of_first_bump": "{case}: вы вернули {got}\u00a0— шаг, где потери на валидации впервые "
        "выросли; переобучение начинается в точке САМЫХ низких потерь на валидации ({want}) по "
        "всей истории",
        "of_mutated": "ваша функция изменила переданную историю; её нужно только читать",
        "of_random": "на случайной истории ({n} оценок, min_rise = {min_rise}) вы вернули "
        "{got}, а ожидалось {want}",
        "of_case_classic": "переобучающийся запуск",
        "of_case_steps": "запуск с оценкой каждые 60 шагов",
        "of_case_falling": "запуск, у которого потери на валидации всё время падают",
        "of_case_noise": "запуск с небольшим колебанием после минимума",
        "of_case_min_rise": "запуск, у которого потери на валидации выросли на 0.05",
        "of_case_bump": "запуск с ранним всплеском и более низким минимумом потом",
        "of_case_diverging": "запуск, у которого растут и потери на обучении",
        "of_case_recovered": "запуск, у которого потери на валидации выросли, а потом вернулись",
        "of_case_short": "история из одной оценки",
    },
    "zh": {
        "of_type": "应返回步数（int）或 None，实际返回了 {type}",
        "of_overfit": "{case}：应为第 {want} 步，实际得到 {got}",
        "of_index": "{case}：你返回了 {got}，这是该次评估在列表中的位置；应返回它的 "
        "'step'（{want}）",
        "of_after_min": "{case}：你返回了 {got}，这是验证损失最低点之后的步数；"
        "过拟合从最低点所在的步开始（{want}）",
        "of_falling": "{case}：应为 None，实际得到 {got}：验证损失到最后仍在下降，"
        "最低点就是最后一次评估（欠拟合或仍在训练）",
        "of_noise": "{case}：应为 None，实际得到 {got}：验证损失最后只比最低点高 {rise:.3f}，"
        "小于 min_rise = {min_rise}：这是噪声",
        "of_min_rise": "{case}：应为 None，实际得到 {got}：请使用参数 min_rise；"
        "这里上升了 {rise:.3f}，而 min_rise = {min_rise}",
        "of_train_rises": "{case}：应为 None，实际得到 {got}：训练损失也在上升"
        "（优化本身出了问题，例如学习率过大），这不是过拟合",
        "of_recovered": "{case}：应为 None，实际得到 {got}：验证损失又降了回来；"
        "应当用“最后一次”评估与最低点比较，而不是最低点之后的最高点",
        "of_short": "{case}：应为 None，实际得到 {got}：少于两次评估无法看出上升",
        "of_first_bump": "{case}：你返回了 {got}，这是验证损失第一次上升的位置；"
        "过拟合从整个历史中验证损失“最低”的那一步开始（{want}）",
        "of_mutated": "你的函数修改了传入的历史记录；只应读取它",
        "of_random": "在一条随机历史（{n} 次评估，min_rise = {min_rise}）上你返回了 {got}，"
        "应为 {want}",
        "of_case_classic": "一次过拟合的训练",
        "of_case_steps": "每 60 步评估一次的训练",
        "of_case_falling": "验证损失一直下降的训练",
        "of_case_noise": "最低点之后略有波动的训练",
        "of_case_min_rise": "验证损失上升 0.05 的训练",
        "of_case_bump": "先有一次早期波动、之后到达更低最低点的训练",
        "of_case_diverging": "训练损失也在上升的训练",
        "of_case_recovered": "验证损失上升后又回落的训练",
        "of_case_short": "只有一次评估的历史",
    },
}
add_hints(_HINTS)


def _history(val, train=None, *, every: int = 1, extra: bool = False) -> list[dict]:
    """A history from lists of losses; training loss falling steadily unless given."""
    if train is None:
        train = [4.0 - 0.25 * i for i in range(len(val))]
    out = []
    for i, (v, t) in enumerate(zip(val, train)):
        entry = {"step": i * every, "train_loss": float(t), "val_loss": float(v)}
        if extra:
            entry["epoch"] = i * every / 100
            entry["dropout_p"] = 0.1
        out.append(entry)
    return out


# name -> (history, min_rise, expected answer, why-term when the answer is None)
def _cases():
    classic = [4.2, 3.0, 2.7, 2.6, 2.65, 2.72, 2.8, 2.9]
    return {
        "classic": (_history(classic), 0.02, 3, None),
        "steps": (_history(classic, every=60, extra=True), 0.02, 180, None),
        "falling": (_history([4.2, 3.0, 2.8, 2.7, 2.65, 2.62, 2.6]), 0.02, None, "falling"),
        "noise": (_history([4.2, 3.0, 2.7, 2.6, 2.605, 2.61]), 0.02, None, "noise"),
        "min_rise_high": (_history([4.2, 3.0, 2.6, 2.62, 2.65]), 0.1, None, "min_rise"),
        "min_rise_low": (_history([4.2, 3.0, 2.6, 2.62, 2.65]), 0.02, 2, None),
        "bump": (_history([4.2, 3.0, 3.05, 2.8, 2.6, 2.7, 2.9], every=10), 0.02, 40, None),
        "diverging": (
            _history([4.2, 3.0, 2.6, 2.7, 2.9], train=[4.2, 2.9, 2.5, 2.6, 2.8]),
            0.02,
            None,
            "train_rises",
        ),
        "recovered": (_history([4.2, 3.0, 2.6, 2.8, 2.7, 2.61]), 0.02, None, "recovered"),
        "short": (_history([4.2]), 0.02, None, "short"),
    }


_CASE_TERMS = {
    "classic": "of_case_classic",
    "steps": "of_case_steps",
    "falling": "of_case_falling",
    "noise": "of_case_noise",
    "min_rise_high": "of_case_min_rise",
    "min_rise_low": "of_case_min_rise",
    "bump": "of_case_bump",
    "diverging": "of_case_diverging",
    "recovered": "of_case_recovered",
    "short": "of_case_short",
}


def _answer(fn, history, min_rise):
    before = copy.deepcopy(history)
    got = call(fn, history, min_rise=min_rise)
    if history != before:
        raise CheckFailed("of_mutated")
    if got is not None and (isinstance(got, bool) or not isinstance(got, int)):
        # numpy / torch integers are fine; floats and anything else are not
        if hasattr(got, "__index__") and not isinstance(got, bool):
            return int(got.__index__())
        raise CheckFailed("of_type", type=type(got).__name__)
    return got


def _rise(history) -> float:
    best = min(h["val_loss"] for h in history)
    return history[-1]["val_loss"] - best


def _check_case(fn, name: str) -> None:
    history, min_rise, want, why = _cases()[name]
    got = _answer(fn, history, min_rise)
    case = Term(_CASE_TERMS[name])
    if got == want:
        return
    if want is None:
        fmt = {}
        if why in ("noise", "min_rise"):
            fmt = dict(rise=_rise(history), min_rise=min_rise)
        raise CheckFailed(f"of_{why}", case=case, got=got, **fmt)
    steps = [h["step"] for h in history]
    best_i = steps.index(want)
    if got == best_i != want:
        raise CheckFailed("of_index", case=case, got=got, want=want)
    if name == "bump" and got in (steps[1], steps[2]):
        raise CheckFailed("of_first_bump", case=case, got=got, want=want)
    if got is not None and got in steps and steps.index(got) > best_i:
        raise CheckFailed("of_after_min", case=case, got=got, want=want)
    raise CheckFailed("of_overfit", case=case, got=got, want=want)


def overfitting_step_checks(fn):
    """The properties of ``fn(history, min_rise=0.02) -> int | None``, as (name, check) pairs."""

    def runs():
        history, min_rise, _, _ = _cases()["classic"]
        _answer(fn, history, min_rise)

    def case(*names):
        def check():
            for name in names:
                _check_case(fn, name)

        return check

    def random_histories():
        from dropoutlib.curves import overfitting_step

        g = torch.Generator().manual_seed(3)
        for _ in range(200):
            n = int(torch.randint(2, 15, (1,), generator=g))
            val = (2.5 + 0.3 * torch.rand(n, generator=g, dtype=torch.float64)).tolist()
            train = (2.0 + 0.5 * torch.rand(n, generator=g, dtype=torch.float64)).tolist()
            every = int(torch.randint(1, 100, (1,), generator=g))
            history = _history(val, train, every=every)
            min_rise = [0.0, 0.02, 0.1][int(torch.randint(0, 3, (1,), generator=g))]
            want = overfitting_step(history, min_rise=min_rise)
            got = _answer(fn, history, min_rise)
            if got != want:
                raise CheckFailed("of_random", n=n, min_rise=min_rise, got=got, want=want)

    return [
        ("runs", runs),
        ("overfits", case("classic")),
        ("steps", case("steps")),
        ("still_falling", case("falling")),
        ("noise", case("noise")),
        ("min_rise", case("min_rise_high", "min_rise_low")),
        ("lowest_minimum", case("bump")),
        ("train_still_falls", case("diverging")),
        ("last_evaluation", case("recovered")),
        ("short_history", case("short")),
        ("random_histories", random_histories),
    ]


def check_overfitting_step(fn, *, lang: str = "en", seed: int = 0, verbose: bool = True) -> bool:
    """Check a student's ``fn(history, min_rise=0.02) -> int | None`` that says from which step
    a run overfits (see the module docstring). Properties, in order: it runs and returns an int
    or None; a run that overfits; steps that are not positions; a validation loss still falling;
    a wiggle below ``min_rise``; the ``min_rise`` argument; the lowest minimum, not the first
    rise; a training loss that rises too; the last evaluation, not the highest; a one-entry
    history; agreement with :func:`dropoutlib.curves.overfitting_step` on 200 random histories.
    The history must come back unchanged. Prints the verdict (and a hint in ``lang``) and
    returns True when every property holds."""
    return run_checks(
        fn_name(fn), overfitting_step_checks(fn), lang, seed, verbose, checker="overfitting_step"
    )
