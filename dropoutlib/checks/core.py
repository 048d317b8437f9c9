"""What every checker shares: failures, verdicts, hints in three languages, and their record.

A checker takes the student's function, tests the PROPERTIES the function must have (never its
source text), prints one verdict line (``✓`` / ``✗``) and, on failure, a hint in the reader's
language that names the first property that failed. It returns ``True`` or ``False`` and never
raises because of a wrong answer: an exception from the student's code is the failure it reports.

Statistical properties use fixed seeds and tolerances derived from the distribution (:data:`Z`
standard errors), so a correct function passes and a wrong one fails deterministically. The
global RNG is seeded inside :func:`torch.random.fork_rng`, so a checker does not disturb the
caller's random state.

**The record.** When ``$DROPOUTLIB_VERDICTS`` names a file, every verdict is also appended to it
as one JSON line: ``checker``, ``function``, ``passed``, ``failed`` (the first failed property),
``hint`` (its hint key), ``not_done`` (the answer is still the stub: ``raise
NotImplementedError`` or unanswered questions), ``held`` and ``total``, ``failures`` (every failed
item of a :func:`run_report`), ``lang``, and ``cell``: the IPython execution count of the cell
that called the checker (None outside IPython), which lets ``python -m dropoutlib grade`` tie
each verdict to its notebook cell and exercise.

**Two ways to report.** :func:`run_checks` stops at the first failed property and prints one
verdict line and one hint, for a function with one job. :func:`run_report` runs every item and
prints one line per item (a quiz question, a dropout site of a model), with a hint under each
failed one, for an answer with many independent parts.
"""

from __future__ import annotations

import json
import os
import sys

import torch

from dropoutlib._base import add_translations
from dropoutlib.viz import check_lang

__all__ = [
    "HINTS",
    "NOT_DONE",
    "Z",
    "CheckFailed",
    "Term",
    "add_hints",
    "call",
    "call_tensor",
    "fn_name",
    "gradient_check",
    "input_unchanged_check",
    "positive",
    "run_checks",
    "shape_dtype_check",
    "run_report",
]

# Tolerance in standard errors: a correct function fails one test with probability about 2e-9
# (two-sided normal tail at 6 sigma), a checker with k such tests with probability below k * 2e-9.
Z = 6.0

# Hint keys that mean "the student has not answered yet" (the grader reports "not done").
NOT_DONE = frozenset({"not_implemented", "unanswered"})

HINTS: dict[str, dict[str, str]] = {
    "en": {
        "hint": "hint",
        "before": "{k}/{n} properties held before it",
        "not_implemented": "not implemented yet: replace `raise NotImplementedError` with "
        "your code",
        "raised": "your function raised {exc}",
        "not_tensor": "return a torch.Tensor, got {type}",
        "unanswered": "not answered yet: replace None with your answer",
        "skipped": "not checked: the first item must hold first",
    },
    "ru": {
        "hint": "подсказка",
        "before": "до него выполнено {k} из {n} свойств",
        "not_implemented": "решение ещё не написано: замените `raise NotImplementedError` "
        "своим кодом",
        "raised": "ваша функция выбросила исключение {exc}",
        "not_tensor": "функция должна вернуть torch.Tensor, а вернула {type}",
        "unanswered": "ответа ещё нет: замените None своим ответом",
        "skipped": "не проверено: сначала должен выполниться первый пункт",
    },
    "zh": {
        "hint": "提示",
        "before": "此前已通过 {k}/{n} 项",
        "not_implemented": "还没有实现：请把 `raise NotImplementedError` 换成你的代码",
        "raised": "你的函数抛出了异常 {exc}",
        "not_tensor": "函数应返回 torch.Tensor，实际返回了 {type}",
        "unanswered": "还没有作答：请把 None 换成你的答案",
        "skipped": "未检查：须先通过第一项",
    },
}


def add_hints(tables: dict[str, dict[str, str]]) -> None:
    """Add a checker's hints to :data:`HINTS`: the same keys in every language, none taken."""
    add_translations(HINTS, tables, "hints")


class Term(str):
    """A word inside a hint that is itself translated: ``Term("axis_row")`` is shown as
    ``HINTS[lang]["axis_row"]``."""


class CheckFailed(Exception):
    """A property did not hold: ``key`` names the hint, ``fmt`` fills it in."""

    def __init__(self, key: str, **fmt):
        super().__init__(key)
        self.key = key
        self.fmt = fmt


def call(fn, *args, **kwargs):
    """Call the student's function; turn its exceptions into failures (``raise
    NotImplementedError``, the stub, is "not implemented yet")."""
    try:
        return fn(*args, **kwargs)
    except NotImplementedError:
        raise CheckFailed("not_implemented") from None
    except Exception as exc:  # any error in the student's code is the failure we report
        raise CheckFailed("raised", exc=f"{type(exc).__name__}: {exc}") from None


def call_tensor(fn, *args, **kwargs) -> torch.Tensor:
    """:func:`call`, and the result must be a tensor."""
    out = call(fn, *args, **kwargs)
    if not isinstance(out, torch.Tensor):
        raise CheckFailed("not_tensor", type=type(out).__name__)
    return out


def fn_name(fn) -> str:
    return getattr(fn, "__name__", type(fn).__name__)


def positive(shape, dtype=torch.float32) -> torch.Tensor:
    """Strictly positive input, so an output of 0 can only mean "dropped"."""
    return (torch.rand(shape) + 0.5).to(dtype)


def shape_dtype_check(apply, inputs, key: str = "shape_dtype"):
    """The check that ``apply(x)`` (the student's function on ``x``) has the shape and dtype of
    ``x``, for every ``x`` that ``inputs()`` yields; a failure raises ``key`` with both."""

    def shape_dtype():
        for x in inputs():
            y = apply(x)
            if y.shape != x.shape or y.dtype != x.dtype:
                raise CheckFailed(
                    key,
                    shape=tuple(x.shape),
                    dtype=x.dtype,
                    got_shape=tuple(y.shape),
                    got_dtype=y.dtype,
                )

    return shape_dtype


def gradient_check(apply, make_input, slope, prefix: str = "", *, nonzero: bool = False):
    """The check that ``y = apply(x)``, for the leaf ``x = make_input().requires_grad_()``,
    carries a gradient and that it is ``slope(y, x)``: the elementwise dy/dx the forward
    implies (``y / x`` for a mask scaled on a positive x). Failures raise ``prefix +
    "no_gradient"`` (also for an all-zero gradient when ``nonzero``) or ``prefix + "gradient"``
    with the largest error; a backward that raises is ``"raised"``."""

    def gradient():
        x = make_input().requires_grad_()
        y = apply(x)
        if not y.requires_grad:
            raise CheckFailed(prefix + "no_gradient")
        upstream = torch.randn_like(y)
        try:
            (g,) = torch.autograd.grad(y, x, upstream, allow_unused=True)
        except RuntimeError as exc:
            raise CheckFailed("raised", exc=f"RuntimeError: {exc}") from None
        if g is None or (nonzero and not bool(g.abs().sum() > 0)):
            raise CheckFailed(prefix + "no_gradient")
        err = float((g - upstream * slope(y.detach(), x.detach())).abs().max())
        if err > 1e-9:
            raise CheckFailed(prefix + "gradient", err=err)

    return gradient


def input_unchanged_check(apply, make_input, key: str = "input_unchanged"):
    """The check that ``apply(x)`` leaves ``x = make_input()`` as it was (no in-place write)."""

    def input_unchanged():
        x = make_input()
        before = x.clone()
        apply(x)
        if not torch.equal(x, before):
            raise CheckFailed(key)

    return input_unchanged


def _cell() -> int | None:
    """The execution count of the IPython cell running now (its ``In [n]``), or None outside
    IPython. Read from the result IPython is filling for the running cell: the shell's own
    ``execution_count`` is already the next cell's in recent IPython versions."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    result = getattr(getattr(shell, "displayhook", None), "exec_result", None)
    count = getattr(result, "execution_count", None)
    return count if isinstance(count, int) else None


def _record(
    checker: str,
    name: str,
    passed: list[str],
    total: int,
    failed: str | None,
    *,
    hint: str | None = None,
    failures: list[str] | None = None,
    lang: str | None = None,
) -> None:
    path = os.environ.get("DROPOUTLIB_VERDICTS")
    if not path:
        return
    line = {
        "checker": checker,
        "function": name,
        "passed": failed is None,
        "failed": failed,
        "hint": hint,
        "not_done": failed is not None and hint in NOT_DONE and not passed,
        "held": len(passed),
        "total": total,
        "failures": [] if failed is None else (failures or [failed]),
        "lang": lang,
        "cell": _cell(),
    }
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(line, ensure_ascii=False) + "\n")


def _hint_text(hints: dict[str, str], fail: CheckFailed) -> str:
    fmt = {k: hints[v] if isinstance(v, Term) else v for k, v in fail.fmt.items()}
    return hints[fail.key].format(**fmt)


def run_checks(
    name: str, checks, lang: str, seed: int, verbose: bool, *, checker: str = ""
) -> bool:
    """Run ``checks`` (a list of (property, function)) in order; stop at the first failure.
    Prints the verdict (and the hint in ``lang``) when ``verbose``; records it (see above)."""
    check_lang(lang)
    passed = []
    failure = None
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for prop, check in checks:
            try:
                check()
            except CheckFailed as fail:
                failure = (prop, fail)
                break
            passed.append(prop)
    _record(
        checker or name,
        name,
        passed,
        len(checks),
        failure[0] if failure else None,
        hint=failure[1].key if failure else None,
        lang=lang,
    )
    if verbose:
        hints = HINTS[lang]
        if failure is None:
            print(f"✓ {name}: {len(passed)}/{len(checks)} — " + " · ".join(passed))
        else:
            prop, fail = failure
            before = hints["before"].format(k=len(passed), n=len(checks))
            print(f"✗ {name}: {prop} ({before})")
            print(f"  {hints['hint']}: " + _hint_text(hints, fail))
    return failure is None


def _print_report(name: str, results, hints: dict[str, str]) -> None:
    def shown(label):
        return hints[label] if isinstance(label, Term) else label

    held = [label for label, fail in results if fail is None]
    failed = [fail for _, fail in results if fail is not None]
    if not failed:  # every item held: one line
        print(f"✓ {name}: {len(held)}/{len(results)} — " + " · ".join(map(shown, held)))
        return
    print(f"✗ {name}: {len(held)}/{len(results)}")
    keys = {fail.key for fail in failed} - {"skipped"}
    if not held and len(keys) == 1:  # e.g. not started yet: one hint, not the same one per item
        print(f"  {hints['hint']}: " + _hint_text(hints, failed[0]))
        return
    for label, fail in results:
        if fail is None:
            print(f"  ✓ {shown(label)}")
        else:
            print(f"  ✗ {shown(label)}: " + _hint_text(hints, fail))


def run_report(
    name: str, items, lang: str, seed: int, verbose: bool, *, checker: str = "", gate: int = 0
) -> bool:
    """Run EVERY item of ``items`` (a list of (label, function)); print one line per item.

    The first line is the verdict (``✓``/``✗``, how many items held); then each item on its own
    line, ``✓ label`` or ``✗ label: hint`` (a :class:`Term` label is shown in ``lang`` and
    recorded as its key). When every item held, one line lists them; when every item failed for
    one reason (nothing answered yet, a class that cannot be built), one hint says so. The first
    ``gate`` items must hold for the others to run (a model that cannot even be built fails every
    site the same way): after a failed gate item, the rest are reported as not checked. Records
    the verdict like :func:`run_checks`, with every failed label in ``failures``. Returns True
    when every item held.
    """
    check_lang(lang)
    results: list[tuple[str, CheckFailed | None]] = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for i, (label, check) in enumerate(items):
            if i >= gate and any(fail is not None for _, fail in results[:gate]):
                results.append((label, CheckFailed("skipped")))
                continue
            try:
                check()
            except CheckFailed as fail:
                results.append((label, fail))
                continue
            results.append((label, None))
    passed = [label for label, fail in results if fail is None]
    failed = [(label, fail) for label, fail in results if fail is not None]
    # The first failure's key is the hint recorded: "unanswered" or "not_implemented" with no
    # item held is an answer not started, which the record marks as not done.
    _record(
        checker or name,
        name,
        passed,
        len(results),
        failed[0][0] if failed else None,
        hint=failed[0][1].key if failed else None,
        failures=[label for label, _ in failed],
        lang=lang,
    )
    if verbose:
        _print_report(name, results, HINTS[lang])
    return not failed
