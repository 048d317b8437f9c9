"""Chapter 02, dropout inside a transformer: which dropout site matters (the site ablation)."""

from __future__ import annotations

import matplotlib.pyplot as plt

from dropoutlib.viz.core import LABELS, add_labels, figure_lang, label, number, rc_params

__all__ = ["plot_site_ablation", "site_name"]

_LABELS = {
    "en": {
        "ablation_title": "Dropout {p:g} at one site at a time ({epochs:.0f} epochs of "
        "{chars} characters)",
        "ablation_curves": "Validation loss",
        "ablation_points": "Validation loss: last step and lowest",
        "ablation_final_val": "validation, last step",
        "ablation_best_val": "validation, lowest",
        "ablation_final_train": "Training loss,\nlast step",
        "ablation_nats": "nats per character",
        "site:none": "none",
        "site:embedding": "embedding",
        "site:attention weights": "attention weights",
        "site:attention output": "attention output",
        "site:FFN output": "FFN output",
        "site:v10's three": "v10's three sites",
        "site:all": "all four sites",
    },
    "ru": {
        "ablation_title": "Dropout {p:g} по одному месту за раз (эпох: {epochs:.0f}, "
        "символов: {chars})",
        "ablation_curves": "Потери на валидации",
        "ablation_points": "Потери на валидации: последний шаг и минимум",
        "ablation_final_val": "валидация, последний шаг",
        "ablation_best_val": "валидация, минимум",
        "ablation_final_train": "Потери на обучении,\nпоследний шаг",
        "ablation_nats": "нат на символ",
        "site:none": "нигде",
        "site:embedding": "эмбеддинги",
        "site:attention weights": "веса внимания",
        "site:attention output": "выход внимания",
        "site:FFN output": "выход FFN",
        "site:v10's three": "три места v10",
        "site:all": "все четыре места",
    },
    "zh": {
        "ablation_title": "每次只在一个位置施加暂退概率 {p:g}"
        "（{chars} 个字符，{epochs:.0f} 个迭代周期）",
        "ablation_curves": "验证损失",
        "ablation_points": "验证损失：最后一步与最低点",
        "ablation_final_val": "验证，最后一步",
        "ablation_best_val": "验证，最低点",
        "ablation_final_train": "训练损失，\n最后一步",
        "ablation_nats": "nat/字符",
        "site:none": "无",
        "site:embedding": "嵌入",
        "site:attention weights": "注意力权重",
        "site:attention output": "注意力输出",
        "site:FFN output": "FFN 输出",
        "site:v10's three": "v10 的三个位置",
        "site:all": "全部四个位置",
    },
}
add_labels(_LABELS)


def site_name(site: str, lang: str) -> str:
    """The reader-facing name of an ablation label (``"attention weights"``), or the label."""
    key = f"site:{site}"
    return label(key, lang) if key in LABELS[lang] else site


def plot_site_ablation(results: dict, lang: str = "en", *, p: float = 0.2):
    """The site ablation of chapter 02 in three panels.

    ``results`` maps an ablation label (``"none"``, ``"embedding"``, ``"attention weights"``,
    ``"attention output"``, ``"FFN output"``, ``"v10's three"``, ``"all"``, as in
    :data:`dropoutlib.experiments.dropout_in_transformers.SITES`) to a RunResult. Left: the
    validation loss of every run against the step (from the first evaluation after step 0).
    Middle: per run, the validation loss after the last step (filled) and the lowest one
    (open), with the "none" run's last validation loss as a dashed line. Right: the training
    loss after the last step. ``p`` is the rate at the ablated sites, for the title.
    """
    if not results:
        raise ValueError("results must hold at least one run, got an empty dict")
    flang = figure_lang(lang)
    first = next(iter(results.values()))
    epochs = first.history[-1].get("epoch", float("nan"))
    chars = number(first.train_tokens, flang) if first.train_tokens is not None else "?"
    names = list(results)
    colors = [f"C{i}" for i in range(len(names))]
    with plt.rc_context(rc_params(flang)):
        fig, (ax, ax_val, ax_train) = plt.subplots(
            1, 3, figsize=(14, 4.8), layout="constrained",
            gridspec_kw={"width_ratios": [3, 2, 1.2]},
        )  # fmt: skip
        for name, color in zip(names, colors):
            history = results[name].history
            steps = [h["step"] for h in history[1:]]  # the untrained model squashes the rest
            vals = [h["val_loss"] for h in history[1:]]
            style = "--" if name == "none" else "-"
            ax.plot(steps, vals, style, color=color, label=site_name(name, flang))
        ax.set_xlabel(label("step", flang))
        ax.set_ylabel(label("loss", flang))
        ax.set_title(label("ablation_curves", flang))
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")

        ys = list(range(len(names)))
        finals = [results[n].history[-1]["val_loss"] for n in names]
        bests = [min(h["val_loss"] for h in results[n].history) for n in names]
        trains = [results[n].history[-1]["train_loss"] for n in names]
        for y, color in zip(ys, colors):
            ax_val.plot([bests[y], finals[y]], [y, y], "-", color=color, lw=1)
        ax_val.scatter(finals, ys, color=colors, zorder=3, label=label("ablation_final_val", flang))
        ax_val.scatter(
            bests, ys, facecolors="white", edgecolors=colors, zorder=3,
            label=label("ablation_best_val", flang),
        )  # fmt: skip
        if "none" in results:
            ax_val.axvline(results["none"].history[-1]["val_loss"], color="0.5", ls="--", lw=0.8)
        ax_val.set_yticks(ys)
        ax_val.set_yticklabels([site_name(n, flang) for n in names])
        ax_val.set_ylim(len(names) + 0.7, -0.6)  # room for the legend below the last run
        ax_val.set_xlabel(label("loss", flang))
        ax_val.set_title(label("ablation_points", flang))
        ax_val.grid(axis="x", alpha=0.3)
        ax_val.legend(fontsize="small", loc="lower center", ncols=2)

        ax_train.scatter(trains, ys, marker="x", color=colors, zorder=3)
        ax_train.set_yticks(ys)
        ax_train.set_yticklabels([])
        ax_train.set_ylim(ax_val.get_ylim())
        ax_train.set_xlabel(label("ablation_nats", flang))
        ax_train.set_title(label("ablation_final_train", flang))
        ax_train.grid(axis="x", alpha=0.3)
        fig.suptitle(label("ablation_title", flang, p=p, epochs=epochs, chars=chars))
    return fig
