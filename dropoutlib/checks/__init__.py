"""Checkers for the course's coding exercises, in the spirit of Karpathy's ``cmp``.

Each checker tests the properties a student's function must have, prints a verdict and a hint in
the reader's language, and returns True or False (:mod:`dropoutlib.checks.core` says how, and
how verdicts are recorded for grading). One module per chapter:

* :mod:`~dropoutlib.checks.standard_dropout` (chapter 01): :func:`check_inverted_dropout`;
* :mod:`~dropoutlib.checks.dropout_schedules` (chapter 06): :func:`check_dropout_rate`;
* :mod:`~dropoutlib.checks.dropout_in_fine_tuning` (chapter 07): :func:`check_lora_forward`.
"""

from dropoutlib.checks.core import HINTS, CheckFailed, Term, Z, add_hints, run_checks
from dropoutlib.checks.dropout_in_fine_tuning import check_lora_forward, lora_forward_checks
from dropoutlib.checks.dropout_schedules import check_dropout_rate, dropout_rate_checks
from dropoutlib.checks.standard_dropout import check_inverted_dropout, inverted_dropout_checks

__all__ = [
    "HINTS",
    "Z",
    "CheckFailed",
    "Term",
    "add_hints",
    "check_dropout_rate",
    "check_inverted_dropout",
    "check_lora_forward",
    "dropout_rate_checks",
    "inverted_dropout_checks",
    "lora_forward_checks",
    "run_checks",
]
