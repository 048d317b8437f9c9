"""Checkers for the course's coding exercises, in the spirit of Karpathy's ``cmp``.

Each checker tests the properties a student's function must have, prints a verdict and a hint in
the reader's language, and returns True or False (:mod:`dropoutlib.checks.core` says how, and
how verdicts are recorded for grading). One module per chapter:

* :mod:`~dropoutlib.checks.standard_dropout` (chapter 01): :func:`check_inverted_dropout`;
* :mod:`~dropoutlib.checks.structured_dropout` (chapter 04): :func:`check_drop_path`;
* :mod:`~dropoutlib.checks.noise_and_uncertainty` (chapter 05): :func:`check_mc_predict`.
"""

from dropoutlib.checks.core import HINTS, CheckFailed, Term, Z, add_hints, run_checks
from dropoutlib.checks.noise_and_uncertainty import check_mc_predict, mc_predict_checks
from dropoutlib.checks.standard_dropout import check_inverted_dropout, inverted_dropout_checks
from dropoutlib.checks.structured_dropout import check_drop_path, drop_path_checks

__all__ = [
    "HINTS",
    "Z",
    "CheckFailed",
    "Term",
    "add_hints",
    "check_inverted_dropout",
    "inverted_dropout_checks",
    "check_drop_path",
    "drop_path_checks",
    "check_mc_predict",
    "mc_predict_checks",
    "run_checks",
]
