"""Checkers for the course's coding exercises, in the spirit of Karpathy's ``cmp``.

Each checker tests the properties a student's function must have, prints a verdict and a hint in
the reader's language, and returns True or False (:mod:`dropoutlib.checks.core` says how, and
how verdicts are recorded for grading). One module per chapter:

* :mod:`~dropoutlib.checks.standard_dropout` (chapter 01): :func:`check_inverted_dropout`;
* :mod:`~dropoutlib.checks.dropout_in_transformers` (chapter 02): :func:`check_dropout_sites`;
* :mod:`~dropoutlib.checks.when_dropout_helps` (chapter 03): :func:`check_overfitting_step`;
* :mod:`~dropoutlib.checks.structured_dropout` (chapter 04): :func:`check_drop_path`;
* :mod:`~dropoutlib.checks.noise_and_uncertainty` (chapter 05): :func:`check_mc_predict`;
* :mod:`~dropoutlib.checks.dropout_schedules` (chapter 06): :func:`check_dropout_rate`;
* :mod:`~dropoutlib.checks.dropout_in_fine_tuning` (chapter 07): :func:`check_lora_forward`;
* :mod:`~dropoutlib.checks.learned_dropout` (chapter 08): :func:`check_stochastic_rounding`;
* :mod:`~dropoutlib.checks.dropout_at_scale` (chapter 09): :func:`check_seeded_dropout`;
* :mod:`~dropoutlib.checks.review` (chapter 10): :func:`check_quiz` (the self-check quiz) and
  :func:`check_dropout_bugs` (the fix of :class:`~dropoutlib.checks.review.BuggyGPT`).
"""

from dropoutlib.checks.core import (
    HINTS,
    CheckFailed,
    Term,
    Z,
    add_hints,
    run_checks,
)
from dropoutlib.checks.dropout_at_scale import (
    check_seeded_dropout,
    seeded_dropout_checks,
)
from dropoutlib.checks.dropout_in_fine_tuning import (
    check_lora_forward,
    lora_forward_checks,
)
from dropoutlib.checks.dropout_in_transformers import (
    check_dropout_sites,
    dropout_sites_checks,
)
from dropoutlib.checks.dropout_schedules import (
    check_dropout_rate,
    dropout_rate_checks,
)
from dropoutlib.checks.learned_dropout import (
    check_stochastic_rounding,
    stochastic_rounding_checks,
)
from dropoutlib.checks.noise_and_uncertainty import (
    check_mc_predict,
    mc_predict_checks,
)
from dropoutlib.checks.review import (
    check_dropout_bugs,
    check_quiz,
)
from dropoutlib.checks.standard_dropout import (
    check_inverted_dropout,
    inverted_dropout_checks,
)
from dropoutlib.checks.structured_dropout import (
    check_drop_path,
    drop_path_checks,
)
from dropoutlib.checks.when_dropout_helps import (
    check_overfitting_step,
    overfitting_step_checks,
)

__all__ = [
    "CheckFailed",
    "HINTS",
    "Term",
    "Z",
    "add_hints",
    "check_drop_path",
    "check_dropout_bugs",
    "check_dropout_rate",
    "check_dropout_sites",
    "check_inverted_dropout",
    "check_lora_forward",
    "check_mc_predict",
    "check_overfitting_step",
    "check_quiz",
    "check_seeded_dropout",
    "check_stochastic_rounding",
    "drop_path_checks",
    "dropout_rate_checks",
    "dropout_sites_checks",
    "inverted_dropout_checks",
    "lora_forward_checks",
    "mc_predict_checks",
    "overfitting_step_checks",
    "run_checks",
    "seeded_dropout_checks",
    "stochastic_rounding_checks",
]
