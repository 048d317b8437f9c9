"""Checkers for the course's coding exercises, in the spirit of Karpathy's ``cmp``.

Each checker tests the properties a student's function must have, prints a verdict and a hint in
the reader's language, and returns True or False (:mod:`dropoutlib.checks.core` says how, and
how verdicts are recorded for grading). One module per chapter:

* :mod:`~dropoutlib.checks.standard_dropout` (chapter 01): :func:`check_inverted_dropout`;
* :mod:`~dropoutlib.checks.learned_dropout` (chapter 08): :func:`check_stochastic_rounding`;
* :mod:`~dropoutlib.checks.dropout_at_scale` (chapter 09): :func:`check_seeded_dropout`.
"""

from dropoutlib.checks.core import HINTS, CheckFailed, Term, Z, add_hints, run_checks
from dropoutlib.checks.dropout_at_scale import check_seeded_dropout, seeded_dropout_checks
from dropoutlib.checks.learned_dropout import (  # noqa: I001 (one import per chapter, in order)
    check_stochastic_rounding,
    stochastic_rounding_checks,
)
from dropoutlib.checks.standard_dropout import check_inverted_dropout, inverted_dropout_checks

__all__ = [
    "HINTS",
    "Z",
    "CheckFailed",
    "Term",
    "add_hints",
    "check_inverted_dropout",
    "check_seeded_dropout",
    "check_stochastic_rounding",
    "inverted_dropout_checks",
    "run_checks",
    "seeded_dropout_checks",
    "stochastic_rounding_checks",
]
