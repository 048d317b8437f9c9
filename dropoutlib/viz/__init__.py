"""Figures and widgets of the course, with every reader-facing string in English, Russian, Chinese.

Each plotting function takes ``lang`` and returns its :class:`~matplotlib.figure.Figure`. The
shared plumbing (label tables, fonts, :func:`glue`) is in :mod:`dropoutlib.viz.core`; each
chapter's figures live in the module named after the chapter:

* :mod:`~dropoutlib.viz.standard_dropout` (chapter 01): :func:`plot_masks`,
  :func:`dropout_widget`;
* :mod:`~dropoutlib.viz.curves` (every chapter that trains): :func:`plot_losses`;
* :mod:`~dropoutlib.viz.learned_dropout` (chapter 08): :func:`plot_mask_stats`,
  :func:`plot_data_constrained`;
* :mod:`~dropoutlib.viz.dropout_at_scale` (chapter 09): :func:`plot_bench`,
  :func:`plot_site_costs`, :func:`plot_rank_masks`, :func:`plot_regularisers`.
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
from dropoutlib.viz.dropout_at_scale import (
    plot_bench,
    plot_rank_masks,
    plot_regularisers,
    plot_site_costs,
    reg_name,
)
from dropoutlib.viz.learned_dropout import plot_data_constrained, plot_mask_stats
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
    "glue",
    "has_cjk_font",
    "in_interactive_kernel",
    "label",
    "number",
    "plot_bench",
    "plot_data_constrained",
    "plot_losses",
    "plot_mask_stats",
    "plot_masks",
    "plot_rank_masks",
    "plot_regularisers",
    "plot_site_costs",
    "rc_params",
    "reg_name",
]
