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
as one JSON line (checker, function, passed, the failed property, how many held): this is what
``python -m dropoutlib grade`` collects from the notebooks it executes.
"""

from __future__ import annotations

import json
import os

import torch

from dropoutlib._base import add_translations
from dropoutlib.viz import check_lang

__all__ = [
    "HINTS",
    "Z",
    "CheckFailed",
    "Term",
    "add_hints",
    "call",
    "fn_name",
    "run_checks",
]

# Tolerance in standard errors: a correct function fails one test with probability about 2e-9
# (two-sided normal tail at 6 sigma), a checker with k such tests with probability below k * 2e-9.
Z = 6.0

HINTS: dict[str, dict[str, str]] = {
    "en": {
        "hint": "hint",
        "before": "{k}/{n} properties held before it",
        "not_implemented": "not implemented yet: replace `raise NotImplementedError` with "
        "your code",
        "raised": "your function raised {exc}",
        "not_tensor": "return a torch.Tensor, got {type}",
    },
    "ru": {
        "hint": "подсказка",
        "before": "до него выполнено {k} из {n} свойств",
        "not_implemented": "решение ещё не написано: замените `raise NotImplementedError` "
        "своим кодом",
        "raised": "ваша функция выбросила исключение {exc}",
        "not_tensor": "функция должна вернуть torch.Tensor, а вернула {type}",
    },
    "zh": {
        "hint": "提示",
        "before": "此前已通过 {k}/{n} 项",
        "not_implemented": "还没有实现：请把 `raise NotImplementedError` 换成你的代码",
        "raised": "你的函数抛出了异常 {exc}",
        "not_tensor": "函数应返回 torch.Tensor，实际返回了 {type}",
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


def _record(checker: str, name: str, passed: list[str], total: int, failed: str | None) -> None:
    path = os.environ.get("DROPOUTLIB_VERDICTS")
    if not path:
        return
    line = {
        "checker": checker,
        "function": name,
        "passed": failed is None,
        "failed": failed,
        "held": len(passed),
        "total": total,
    }
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(line, ensure_ascii=False) + "\n")


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
    _record(checker or name, name, passed, len(checks), failure[0] if failure else None)
    if verbose:
        hints = HINTS[lang]
        if failure is None:
            print(f"✓ {name}: {len(passed)}/{len(checks)} — " + " · ".join(passed))
        else:
            prop, fail = failure
            before = hints["before"].format(k=len(passed), n=len(checks))
            print(f"✗ {name}: {prop} ({before})")
            fmt = {k: hints[v] if isinstance(v, Term) else v for k, v in fail.fmt.items()}
            print(f"  {hints['hint']}: " + hints[fail.key].format(**fmt))
    return failure is None
