"""Chapter 08, Learned Dropout: its mask statistics over training."""

from __future__ import annotations

import matplotlib.pyplot as plt

from dropoutlib.viz.core import add_labels, figure_lang, label, rc_params

__all__ = ["plot_mask_stats"]

_LABELS = {
    "en": {
        "mask_title": "LearnedDropout masks during training",
        "mask_ones": "fraction of 1s in M_rounded",
        "mask_ones_title": "Kept channels (rounded mask)",
        "mask_extremes": "fraction of M",
        "mask_extremes_title": "Unrounded M: near 0 (dashed) and near 1 (solid)",
    },
    "ru": {
        "mask_title": "Маски LearnedDropout во время обучения",
        "mask_ones": "доля единиц в M_rounded",
        "mask_ones_title": "Сохранённые каналы (округлённая маска)",
        "mask_extremes": "доля значений M",
        "mask_extremes_title": "Неокруглённая M: около 0 (пунктир) и около 1 (сплошная)",
    },
    "zh": {
        "mask_title": "训练过程中的 LearnedDropout 掩码",
        "mask_ones": "M_rounded 中 1 的比例",
        "mask_ones_title": "保留的通道（取整后的掩码）",
        "mask_extremes": "M 中的占比",
        "mask_extremes_title": "未取整的 M：接近 0（虚线）与接近 1（实线）",
    },
}
add_labels(_LABELS)


def plot_mask_stats(results: dict, lang: str = "en"):
    """The LearnedDropout mask statistics of each run over training, in two panels.

    Left: the fraction of ones in the rounded mask (seed 002's "average % of 1s in M_rounded"),
    averaged over layers. Right: the fraction of the unrounded M below 0.1 (dashed) and above
    0.9 (solid). ``results`` maps a label to a :class:`dropoutlib.train.RunResult` (or its dict);
    runs without LearnedDropout (the baselines) are skipped, and legends name each run in
    ``lang`` (:func:`dropoutlib.reports.row_name`).
    """
    from dropoutlib.reports import learned_dropout_table, mask_history, row_name

    if not results:
        raise ValueError("results must hold at least one run, got an empty dict")
    rows = {r["label"]: r for r in learned_dropout_table(results)}
    learned = [k for k, r in rows.items() if r["kind"] == "learned"]
    if not learned:
        raise ValueError("results hold no run with LearnedDropout: no mask statistics to plot")
    flang = figure_lang(lang)
    with plt.rc_context(rc_params(flang)):
        fig, (ax, ax_m) = plt.subplots(1, 2, figsize=(11, 4.8), layout="constrained")
        for i, key in enumerate(learned):
            name, color = row_name(rows[key], flang), f"C{i}"
            ax.plot(*mask_history(results[key], "ones"), "-o", ms=3, color=color, label=name)
            ax_m.plot(*mask_history(results[key], "near_one"), "-", color=color, label=name)
            ax_m.plot(*mask_history(results[key], "near_zero"), "--", color=color)
        for a, ylabel, title in (
            (ax, "mask_ones", "mask_ones_title"),
            (ax_m, "mask_extremes", "mask_extremes_title"),
        ):
            a.set_ylim(-0.02, 1.02)
            a.set_xlabel(label("step", flang))
            a.set_ylabel(label(ylabel, flang))
            a.set_title(label(title, flang))
            a.grid(alpha=0.3)
        fig.legend(
            *ax.get_legend_handles_labels(), loc="outside lower center", ncol=2, fontsize="small"
        )
        fig.suptitle(label("mask_title", flang))
    return fig
