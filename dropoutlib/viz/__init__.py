"""Figures and widgets of the course, with every reader-facing string in English, Russian, Chinese.

Each plotting function takes ``lang`` and returns its :class:`~matplotlib.figure.Figure`. The
shared plumbing (label tables, fonts, :func:`glue`) is in :mod:`dropoutlib.viz.core`; each
chapter's figures live in the module named after the chapter:

* :mod:`~dropoutlib.viz.curves` (every chapter that trains): :func:`plot_losses`;
* :mod:`~dropoutlib.viz.standard_dropout` (chapter 01): :func:`plot_masks`,
  :func:`dropout_widget`;
* :mod:`~dropoutlib.viz.dropout_in_transformers` (chapter 02): :func:`plot_site_ablation`;
* :mod:`~dropoutlib.viz.when_dropout_helps` (chapter 03): :func:`plot_regimes`,
  :func:`plot_epochs`, :func:`plot_rate_sweep`, :func:`plot_width_rates`;
* :mod:`~dropoutlib.viz.structured_dropout` (chapter 04): :func:`plot_structured_mask`,
  :func:`plot_val_curves`, :func:`plot_pruning`;
* :mod:`~dropoutlib.viz.noise_and_uncertainty` (chapter 05): :func:`plot_selu_moments`,
  :func:`plot_concrete_rates`, :func:`plot_mc_uncertainty`, :func:`plot_reliability`,
  :func:`plot_mc_curve`;
* :mod:`~dropoutlib.viz.dropout_schedules` (chapter 06): :func:`plot_schedules`,
  :func:`plot_schedule_runs`, :func:`schedules_markdown`;
* :mod:`~dropoutlib.viz.dropout_in_fine_tuning` (chapter 07): :func:`plot_fine_tuning`,
  :func:`fine_tuning_markdown`;
* :mod:`~dropoutlib.viz.learned_dropout` (chapter 08): :func:`plot_mask_stats`;
* :mod:`~dropoutlib.viz.learned_dropout` (chapter 08): :func:`plot_mask_stats`,
  :func:`plot_data_constrained`;
* :mod:`~dropoutlib.viz.dropout_at_scale` (chapter 09): :func:`plot_bench`;
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
from dropoutlib.viz.curves import (
    plot_losses,
)
from dropoutlib.viz.dropout_at_scale import (
    plot_bench,
    plot_rank_masks,
    plot_regularisers,
    plot_site_costs,
    reg_name,
)
from dropoutlib.viz.dropout_in_fine_tuning import (
    fine_tuning_markdown,
    plot_fine_tuning,
)
from dropoutlib.viz.dropout_in_transformers import (
    plot_site_ablation,
    site_name,
)
from dropoutlib.viz.dropout_schedules import (
    plot_schedule_runs,
    plot_schedules,
    run_label,
    schedules_markdown,
)
from dropoutlib.viz.learned_dropout import (
    plot_data_constrained,
    plot_mask_stats,
)
from dropoutlib.viz.noise_and_uncertainty import (
    plot_concrete_rates,
    plot_mc_curve,
    plot_mc_uncertainty,
    plot_reliability,
    plot_selu_moments,
)
from dropoutlib.viz.standard_dropout import (
    activation_map,
    dropout_widget,
    plot_masks,
)
from dropoutlib.viz.structured_dropout import (
    plot_pruning,
    plot_structured_mask,
    plot_val_curves,
    structured_masks,
)
from dropoutlib.viz.when_dropout_helps import (
    plot_epochs,
    plot_rate_sweep,
    plot_regimes,
    plot_width_rates,
)

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
    "plot_concrete_rates",
    "plot_data_constrained",
    "plot_epochs",
    "plot_fine_tuning",
    "plot_losses",
    "plot_mask_stats",
    "plot_masks",
    "plot_mc_curve",
    "plot_mc_uncertainty",
    "plot_pruning",
    "plot_rank_masks",
    "plot_rate_sweep",
    "plot_regimes",
    "plot_regularisers",
    "plot_reliability",
    "plot_schedule_runs",
    "plot_schedules",
    "plot_selu_moments",
    "plot_site_ablation",
    "plot_site_costs",
    "plot_structured_mask",
    "plot_val_curves",
    "plot_width_rates",
    "rc_params",
    "reg_name",
    "run_label",
    "schedules_markdown",
    "site_name",
    "structured_masks",
]
