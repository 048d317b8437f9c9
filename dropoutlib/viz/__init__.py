"""Figures and widgets of the course, with every reader-facing string in English, Russian, Chinese.

Each plotting function takes ``lang`` and returns its :class:`~matplotlib.figure.Figure`. The
shared plumbing (label tables, fonts, :func:`glue`) is in :mod:`dropoutlib.viz.core`; each
chapter's figures live in the module named after the chapter:

* :mod:`~dropoutlib.viz.standard_dropout` (chapter 01): :func:`plot_masks`,
  :func:`dropout_widget`;
* :mod:`~dropoutlib.viz.curves` (every chapter that trains): :func:`plot_losses`;
* :mod:`~dropoutlib.viz.dropout_schedules` (chapter 06): :func:`plot_schedules`,
  :func:`plot_schedule_runs`, :func:`schedules_markdown`;
* :mod:`~dropoutlib.viz.dropout_in_fine_tuning` (chapter 07): :func:`plot_fine_tuning`,
  :func:`fine_tuning_markdown`;
* :mod:`~dropoutlib.viz.learned_dropout` (chapter 08): :func:`plot_mask_stats`;
* :mod:`~dropoutlib.viz.dropout_at_scale` (chapter 09): :func:`plot_bench`.
"""

from dropoutlib.viz.core import (
    BASE_FONT,
    CJK_FONT,
    LABELS,
    LANGS,
    add_labels,
    check_lang,
    figure_lang,
    glue,
    has_cjk_font,
    in_interactive_kernel,
    label,
    number,
    rc_params,
)
from dropoutlib.viz.curves import plot_losses
from dropoutlib.viz.dropout_at_scale import plot_bench
from dropoutlib.viz.dropout_in_fine_tuning import fine_tuning_markdown, plot_fine_tuning
from dropoutlib.viz.dropout_schedules import (
    plot_schedule_runs,
    plot_schedules,
    run_label,
    schedules_markdown,
)
from dropoutlib.viz.learned_dropout import plot_mask_stats
from dropoutlib.viz.standard_dropout import activation_map, dropout_widget, plot_masks

__all__ = [
    "BASE_FONT",
    "CJK_FONT",
    "LABELS",
    "LANGS",
    "activation_map",
    "add_labels",
    "check_lang",
    "dropout_widget",
    "figure_lang",
    "fine_tuning_markdown",
    "glue",
    "has_cjk_font",
    "in_interactive_kernel",
    "label",
    "number",
    "plot_bench",
    "plot_fine_tuning",
    "plot_losses",
    "plot_mask_stats",
    "plot_masks",
    "plot_schedule_runs",
    "plot_schedules",
    "rc_params",
    "run_label",
    "schedules_markdown",
]
