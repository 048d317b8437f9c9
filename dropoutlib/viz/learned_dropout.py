"""Chapter 08, Learned Dropout: its mask statistics over training, and the data-constrained runs."""

from __future__ import annotations

import matplotlib.pyplot as plt

from dropoutlib.viz.core import add_labels, figure_lang, label, number, rc_params

__all__ = ["plot_data_constrained", "plot_mask_stats", "run_name"]

_LABELS = {
    "en": {
        "mask_title": "LearnedDropout masks during training",
        "mask_ones": "fraction of 1s in M_rounded",
        "mask_ones_title": "Kept channels (rounded mask)",
        "mask_extremes": "fraction of M",
        "mask_extremes_title": "Unrounded M: near 0 (dashed) and near 1 (solid)",
        "dc_title": "When the text repeats: {chars} characters, {epochs:.0f} epochs",
        "dc_losses": "Validation (solid) and train (dashed) loss",
        "dc_mask": "LearnedDropout: kept fraction of the rounded mask",
        "run_none": "no dropout",
        "run_dropout": "dropout {p:g}",
        "run_learned": "LearnedDropout",
    },
    "ru": {
        "mask_title": "Маски LearnedDropout во время обучения",
        "mask_ones": "доля единиц в M_rounded",
        "mask_ones_title": "Сохранённые каналы (округлённая маска)",
        "mask_extremes": "доля значений M",
        "mask_extremes_title": "Неокруглённая M: около 0 (пунктир) и около 1 (сплошная)",
        "dc_title": "Когда текст повторяется: символов {chars}, эпох {epochs:.0f}",
        "dc_losses": "Потери на валидации (сплошные) и на обучении (пунктир)",
        "dc_mask": "LearnedDropout: доля сохранённых в округлённой маске",
        "run_none": "без dropout",
        "run_dropout": "dropout {p:g}",
        "run_learned": "LearnedDropout",
    },
    "zh": {
        "mask_title": "训练过程中的 LearnedDropout 掩码",
        "mask_ones": "M_rounded 中 1 的比例",
        "mask_ones_title": "保留的通道（取整后的掩码）",
        "mask_extremes": "M 中的占比",
        "mask_extremes_title": "未取整的 M：接近 0（虚线）与接近 1（实线）",
        "dc_title": "文本反复出现时：{chars} 个字符，{epochs:.0f} 个迭代周期",
        "dc_losses": "验证损失（实线）与训练损失（虚线）",
        "dc_mask": "LearnedDropout：取整后掩码中保留的比例",
        "run_none": "无暂退",
        "run_dropout": "暂退概率 {p:g}",
        "run_learned": "LearnedDropout",
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


def run_name(result, lang: str = "en") -> str:
    """A run's name in ``lang`` from its model config: "LearnedDropout" (``ffn_kind`` learned),
    "dropout 0.2" (one rate at every site) or "no dropout"."""
    mc = getattr(result, "model_config", None) or {}
    if mc.get("ffn_kind") == "learned":
        return label("run_learned", lang)
    p = mc.get("dropout", 0.0)
    if not isinstance(p, (int, float)) or isinstance(p, bool):
        return f"dropout {p}"  # a rate per layer or a rule: shown as the config holds it
    return label("run_dropout", lang, p=p) if p > 0 else label("run_none", lang)


def _epochs(result) -> float | None:
    tc = getattr(result, "train_config", None) or {}
    mc = getattr(result, "model_config", None) or {}
    if not tc.get("train_tokens"):
        return None
    return tc["max_iters"] * tc["batch_size"] * mc["block_size"] / tc["train_tokens"]


def plot_data_constrained(results: dict, lang: str = "en"):
    """The runs of ``learned-dropout-data-constrained`` in two panels.

    Left: validation (solid) and train (dashed) loss of each run over training, both measured in
    eval mode. Right: the fraction of ones in the rounded mask of each LearnedDropout run,
    averaged over layers (its last training batch before each evaluation). The title gives the
    number of training characters and epochs. ``results`` maps labels to
    :class:`dropoutlib.train.RunResult`.
    """
    from dropoutlib.viz.curves import _curve, _focus_after_first_eval

    if not results:
        raise ValueError("results must hold at least one run, got an empty dict")
    flang = figure_lang(lang)
    first = next(iter(results.values()))
    with plt.rc_context(rc_params(flang)):
        fig, (ax, ax_m) = plt.subplots(
            1, 2, figsize=(11, 4.4), layout="constrained", gridspec_kw={"width_ratios": [3, 2]}
        )
        for i, result in enumerate(results.values()):
            color, name = f"C{i}", run_name(result, flang)
            ax.plot(*_curve(result.history, "val_loss"), "-", color=color, label=name)
            ax.plot(*_curve(result.history, "train_loss"), "--", color=color, alpha=0.6)
            pairs = [
                (h["step"], h["mask_stats"]["ones"])
                for h in result.history
                if "ones" in (h.get("mask_stats") or {})
            ]
            if pairs:
                steps, ones = zip(*pairs)
                ax_m.plot(steps, ones, "-o", ms=3, color=color, label=name)
        _focus_after_first_eval(ax)
        ax.set_xlabel(label("step", flang))
        ax.set_ylabel(label("loss", flang))
        ax.set_title(label("dc_losses", flang))
        ax.grid(alpha=0.3)
        ax.legend()
        ax_m.set_ylim(-0.02, 1.02)
        ax_m.set_xlabel(label("step", flang))
        ax_m.set_ylabel(label("mask_ones", flang))
        ax_m.set_title(label("dc_mask", flang))
        ax_m.grid(alpha=0.3)
        epochs = _epochs(first)
        if epochs is not None:
            chars = number(first.train_config["train_tokens"], flang)
            fig.suptitle(label("dc_title", flang, chars=chars, epochs=epochs))
    return fig
