"""Chapter 07, dropout in fine-tuning: the fine-tuning runs on Su Shi, their forgetting, a table."""

from __future__ import annotations

import matplotlib.pyplot as plt

from dropoutlib.viz.core import LABELS, add_labels, figure_lang, label, number, rc_params

__all__ = ["fine_tuning_markdown", "ft_label", "plot_fine_tuning"]

_LABELS = {
    "en": {
        "ft_title": "Fine-tuning on Su Shi's ci",
        "ft_val": "validation loss on Su Shi (nats per character)",
        "ft_before": "before fine-tuning",
        "ft_trade_title": "Fit against forgetting (final models)",
        "ft_general": "loss on the rest of Song ci (nats per character)",
        "ft_pretrained": "pre-trained model",
        "ft_col_run": "run",
        "ft_col_trainable": "trainable parameters",
        "ft_col_final": "Su Shi val, final",
        "ft_col_best": "Su Shi val, best (step)",
        "ft_col_general": "rest of Song ci",
        "ft_col_forgetting": "forgetting",
        "ft:pre-training": "pre-trained (no fine-tuning)",
        "ft:full, dropout 0": "full, dropout 0",
        "ft:full, dropout 0.1": "full, dropout 0.1",
        "ft:full, dropout 0.2": "full, dropout 0.2",
        "ft:full, seed 000 decay from 0.2": "full, seed 000 decay from 0.2",
        "ft:LoRA, lora_dropout 0": "LoRA, lora_dropout 0",
        "ft:LoRA, lora_dropout 0.05": "LoRA, lora_dropout 0.05",
        "ft:LoRA, lora_dropout 0.1": "LoRA, lora_dropout 0.1",
        "ft:R-Drop, dropout 0.1": "R-Drop, dropout 0.1",
    },
    "ru": {
        "ft_title": "Дообучение на цы Су Ши",
        "ft_val": "потери на валидации Су Ши (нат на символ)",
        "ft_before": "до дообучения",
        "ft_trade_title": "Качество против забывания (итоговые модели)",
        "ft_general": "потери на остальных сунских цы (нат на символ)",
        "ft_pretrained": "предобученная модель",
        "ft_col_run": "запуск",
        "ft_col_trainable": "обучаемых параметров",
        "ft_col_final": "валидация Су Ши, в конце",
        "ft_col_best": "валидация Су Ши, лучшая (шаг)",
        "ft_col_general": "остальные цы",
        "ft_col_forgetting": "забывание",
        "ft:pre-training": "предобученная (без дообучения)",
        "ft:full, dropout 0": "полное, dropout 0",
        "ft:full, dropout 0.1": "полное, dropout 0.1",
        "ft:full, dropout 0.2": "полное, dropout 0.2",
        "ft:full, seed 000 decay from 0.2": "полное, убывание seed 000 от 0.2",
        "ft:LoRA, lora_dropout 0": "LoRA, lora_dropout 0",
        "ft:LoRA, lora_dropout 0.05": "LoRA, lora_dropout 0.05",
        "ft:LoRA, lora_dropout 0.1": "LoRA, lora_dropout 0.1",
        "ft:R-Drop, dropout 0.1": "R-Drop, dropout 0.1",
    },
    "zh": {
        "ft_title": "在苏轼词上微调",
        "ft_val": "苏轼词验证损失（nat/字符）",
        "ft_before": "微调前",
        "ft_trade_title": "拟合与遗忘的权衡（最终模型）",
        "ft_general": "其余宋词上的损失（nat/字符）",
        "ft_pretrained": "预训练模型",
        "ft_col_run": "运行",
        "ft_col_trainable": "可训练参数",
        "ft_col_final": "苏轼词验证（最终）",
        "ft_col_best": "苏轼词验证（最佳，步）",
        "ft_col_general": "其余宋词",
        "ft_col_forgetting": "遗忘",
        "ft:pre-training": "预训练（未微调）",
        "ft:full, dropout 0": "全量，暂退 0",
        "ft:full, dropout 0.1": "全量，暂退 0.1",
        "ft:full, dropout 0.2": "全量，暂退 0.2",
        "ft:full, seed 000 decay from 0.2": "全量，种子文档 000 的衰减（从 0.2 起）",
        "ft:LoRA, lora_dropout 0": "LoRA，lora_dropout 0",
        "ft:LoRA, lora_dropout 0.05": "LoRA，lora_dropout 0.05",
        "ft:LoRA, lora_dropout 0.1": "LoRA，lora_dropout 0.1",
        "ft:R-Drop, dropout 0.1": "R-Drop，暂退 0.1",
    },
}
add_labels(_LABELS)

# Colours by family: full fine-tuning in blues, seed 000's decay purple, LoRA greens, R-Drop red.
_COLOURS = {
    "full, dropout 0": "#9ecae1",
    "full, dropout 0.1": "#4292c6",
    "full, dropout 0.2": "#08519c",
    "full, seed 000 decay from 0.2": "#7b4fa0",
    "LoRA, lora_dropout 0": "#a1d99b",
    "LoRA, lora_dropout 0.05": "#41ab5d",
    "LoRA, lora_dropout 0.1": "#006d2c",
    "R-Drop, dropout 0.1": "#cb181d",
}


def ft_label(name: str, lang: str) -> str:
    """A fine-tuning run's label as shown in ``lang`` (the label itself without a translation)."""
    key = f"ft:{name}"
    return label(key, lang) if key in LABELS[lang] else name


def _colour(name: str, i: int) -> str:
    return _COLOURS.get(name, f"C{i}")


def plot_fine_tuning(results: dict, rows: list[dict], lang: str = "en", *, parent="pre-training"):
    """Left: validation loss on the fine-tuning corpus over the fine-tuning steps of every run
    (``results``: ``{label: RunResult}``; the parent, if present, is drawn as the level before
    fine-tuning). Right: each final model's validation loss on the fine-tuning corpus against its
    loss on the general corpus (``rows`` of
    :func:`dropoutlib.experiments.dropout_in_fine_tuning.fine_tuning_table`): lower-left is
    better at both, rightwards is more forgetting."""
    runs = {k: v for k, v in results.items() if k != parent}
    if not runs:
        raise ValueError("results must hold at least one fine-tuning run")
    flang = figure_lang(lang)
    by_label = {r["label"]: r for r in rows}
    with plt.rc_context(rc_params(flang)):
        fig, (ax, ax_trade) = plt.subplots(
            1, 2, figsize=(12, 4.8), layout="constrained", gridspec_kw={"width_ratios": [3, 2]}
        )
        later = []
        for i, (name, result) in enumerate(runs.items()):
            steps = [h["step"] for h in result.history]
            vals = [h["val_loss"] for h in result.history]
            style = "--" if name.startswith("LoRA") else "-"
            ax.plot(steps, vals, style, color=_colour(name, i), lw=1.6, label=ft_label(name, flang))
            later.extend(vals)
        before = next(iter(runs.values())).history[0]["val_loss"]
        ax.axhline(before, color="0.5", lw=0.8, ls=":", label=label("ft_before", flang))
        lo, hi = min(later), max(later)
        span = max(hi - lo, 1e-6)
        ax.set_ylim(lo - 0.05 * span, hi + 0.08 * span)
        ax.set_xlabel(label("step", flang))
        ax.set_ylabel(label("ft_val", flang))
        ax.set_title(label("ft_title", flang))
        ax.grid(alpha=0.3)
        ax.legend(fontsize="x-small", ncols=2)
        for i, name in enumerate(runs):
            row = by_label.get(name)
            if row is None:
                continue
            marker = "s" if name.startswith("LoRA") else "o"
            ax_trade.plot(
                row["general_loss"], row["target_loss"], marker, color=_colour(name, i), ms=8
            )
        if parent in by_label and by_label[parent]["target_loss"] is not None:
            row = by_label[parent]
            ax_trade.plot(
                row["general_loss"], row["target_loss"], "*", color="black", ms=12,
                label=label("ft_pretrained", flang),
            )  # fmt: skip
            ax_trade.legend(fontsize="x-small")
        ax_trade.set_xlabel(label("ft_general", flang))
        ax_trade.set_ylabel(label("ft_val", flang))
        ax_trade.set_title(label("ft_trade_title", flang))
        ax_trade.grid(alpha=0.3)
    return fig


def fine_tuning_markdown(rows: list[dict], lang: str = "en", *, digits: int = 3) -> str:
    """The rows of :func:`~dropoutlib.experiments.dropout_in_fine_tuning.fine_tuning_table` as
    a markdown table with headers in ``lang`` (parameter counts grouped as the edition writes
    them, losses with ``digits`` decimals, forgetting signed)."""
    if not rows:
        raise ValueError("rows must hold at least one run")
    cols = ("run", "trainable", "final", "best", "general", "forgetting")
    lines = [
        "| " + " | ".join(label(f"ft_col_{c}", lang) for c in cols) + " |",
        "|---|" + "---:|" * (len(cols) - 1),
    ]
    for row in rows:
        forgetting = row.get("forgetting")
        cells = [
            ft_label(row["label"], lang),
            number(row["trainable"], lang),
            "—" if row["target_loss"] is None else f"{row['target_loss']:.{digits}f}",
            "—"
            if row["best_target_loss"] is None
            else f"{row['best_target_loss']:.{digits}f} ({row['best_step']})",
            f"{row['general_loss']:.{digits}f}",
            "—" if forgetting is None else f"{forgetting:+.{digits}f}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
