"""Chapter 03, when dropout helps: overfitting and underfitting curves, dropout against epochs,
the rate sweep, and the best rate as the model widens."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt

from dropoutlib.curves import run_summary
from dropoutlib.viz.core import add_labels, figure_lang, label, number, rc_params

__all__ = ["plot_regimes", "plot_epochs", "plot_rate_sweep", "plot_width_rates"]

_LABELS = {
    "en": {
        "regime_title": "{epochs:.2g} epochs of {chars} characters",
        "regimes_title": "The same model and compute, two amounts of unique training text",
        "overfit_from": "overfits from step {step}",
        "epochs_x": "epochs over the unique training text (log scale)",
        "epochs_final": "Validation loss after the last step",
        "epochs_best": "Lowest validation loss during training",
        "epochs_title": "Dropout against repetition: the same {steps} steps on less and less text",
        "epochs_chars": "{chars} chars",
        "rate_x": "drop rate p",
        "sweep_val": "Validation loss",
        "sweep_gap": "Generalization gap after the last step",
        "sweep_final": "after the last step",
        "sweep_best": "lowest",
        "sweep_title": "The rate sweep: {epochs:.0f} epochs of {chars} characters",
        "width_final": "Validation loss after the last step",
        "width_best": "Lowest validation loss during training",
        "width_line": "width {width} ({params} parameters)",
        "width_title": "The best rate as the model widens ({chars} characters, {epochs:.0f} "
        "epochs)",
    },
    "ru": {
        "regime_title": "эпох: {epochs:.2g}, символов: {chars}",
        "regimes_title": "Одна модель, одни вычисления, разный объём уникального текста",
        "overfit_from": "переобучение с шага {step}",
        "epochs_x": "эпохи по уникальному обучающему тексту (логарифмическая шкала)",
        "epochs_final": "Потери на валидации после последнего шага",
        "epochs_best": "Наименьшие потери на валидации за обучение",
        "epochs_title": "Dropout и повторение данных: то же число шагов ({steps}) на всё "
        "меньшем тексте",
        "epochs_chars": "{chars} симв.",
        "rate_x": "доля отключения p",
        "sweep_val": "Потери на валидации",
        "sweep_gap": "Разрыв обобщения после последнего шага",
        "sweep_final": "после последнего шага",
        "sweep_best": "минимум",
        "sweep_title": "Перебор доли отключения (эпох: {epochs:.0f}, символов: {chars})",
        "width_final": "Потери на валидации после последнего шага",
        "width_best": "Наименьшие потери на валидации за обучение",
        "width_line": "ширина {width} (параметров: {params})",
        "width_title": "Лучшая доля отключения при росте ширины модели (символов: {chars}, "
        "эпох: {epochs:.0f})",
    },
    "zh": {
        "regime_title": "{chars} 个字符，{epochs:.2g} 个迭代周期",
        "regimes_title": "同一个模型、同样的计算量，唯一训练文本的多少不同",
        "overfit_from": "从第 {step} 步开始过拟合",
        "epochs_x": "在唯一训练文本上的迭代周期数（对数刻度）",
        "epochs_final": "最后一步的验证损失",
        "epochs_best": "训练过程中的最低验证损失",
        "epochs_title": "暂退法与数据重复：同样的 {steps} 步，文本越来越少",
        "epochs_chars": "{chars} 个字符",
        "rate_x": "暂退概率 p",
        "sweep_val": "验证损失",
        "sweep_gap": "最后一步的泛化差距",
        "sweep_final": "最后一步",
        "sweep_best": "最低点",
        "sweep_title": "暂退概率扫描：{chars} 个字符，{epochs:.0f} 个迭代周期",
        "width_final": "最后一步的验证损失",
        "width_best": "训练过程中的最低验证损失",
        "width_line": "宽度 {width}（{params} 个参数）",
        "width_title": "模型变宽时的最佳暂退概率（{chars} 个字符，{epochs:.0f} 个迭代周期）",
    },
}
add_labels(_LABELS)


def _check_results(results) -> dict:
    if not isinstance(results, dict) or not results:
        raise ValueError("results must be a non-empty dict of label -> RunResult")
    return results


def _p_name(p) -> str:
    return f"p = {p:g}"


def plot_regimes(regimes: dict, lang: str = "en"):
    """Loss curves of the same runs in two (or more) regimes, one panel each.

    ``regimes`` maps a panel key to ``{label: RunResult}`` (e.g. the no-dropout and dropout runs
    on 10,000 characters, and on the whole corpus). Each run draws its training loss (dashed)
    and validation loss (solid), named ``p = <rate>``; a dotted vertical line marks where a run
    overfits (:func:`dropoutlib.curves.overfitting_step`). Each panel's title gives the epochs
    and the characters of unique training text; the y-axis starts after the untrained model.
    """
    _check_results(regimes)
    flang = figure_lang(lang)
    with plt.rc_context(rc_params(flang)):
        fig, axes = plt.subplots(
            1,
            len(regimes),
            figsize=(5.6 * len(regimes), 4.4),
            layout="constrained",
            squeeze=False,
            sharey=True,
        )
        for ax, (_, runs) in zip(axes[0], regimes.items()):
            _check_results(runs)
            summary = None
            for i, result in enumerate(runs.values()):
                summary = run_summary(result)
                h = result.history[1:]
                steps = [e["step"] for e in h]
                name = _p_name(summary["p"])
                ax.plot(
                    steps,
                    [e["train_loss"] for e in h],
                    "--",
                    color=f"C{i}",
                    label=f"{name} · {label('train', flang)}",
                )
                ax.plot(
                    steps,
                    [e["val_loss"] for e in h],
                    "-",
                    color=f"C{i}",
                    label=f"{name} · {label('val', flang)}",
                )
                if summary["overfit_step"] is not None:
                    ax.axvline(summary["overfit_step"], color=f"C{i}", ls=":", lw=1.2)
                    ax.annotate(
                        label("overfit_from", flang, step=summary["overfit_step"]),
                        (summary["overfit_step"], 0.0),
                        xycoords=("data", "axes fraction"),
                        xytext=(4, 4 + 12 * i),
                        textcoords="offset points",
                        color=f"C{i}",
                        fontsize="small",
                        va="bottom",
                    )
            ax.set_title(
                label(
                    "regime_title",
                    flang,
                    epochs=summary["epochs"],
                    chars=number(summary["train_tokens"], flang),
                )
            )
            ax.set_xlabel(label("step", flang))
            ax.grid(alpha=0.3)
            marked = any(line.get_linestyle() == ":" for line in ax.get_lines())
            ax.legend(fontsize="small", loc="center right" if marked else "best")
        axes[0, 0].set_ylabel(label("loss", flang))
        fig.suptitle(label("regimes_title", flang))
    return fig


def _by_rate(results: dict) -> dict:
    """{p: [summary, ...]} in the order met."""
    groups: dict = {}
    for result in results.values():
        s = run_summary(result)
        groups.setdefault(s["p"], []).append(s)
    return groups


def plot_epochs(results: dict, lang: str = "en"):
    """Dropout against epochs (chapter 03): the runs of ``dropout-vs-epochs``, one line per rate,
    the final (left) and the lowest (right) validation loss against the epochs the fixed compute
    makes over the unique training text (log scale), each point labelled with its characters."""
    _check_results(results)
    flang = figure_lang(lang)
    groups = _by_rate(results)
    steps = next(iter(results.values())).history[-1]["step"]
    with plt.rc_context(rc_params(flang)):
        fig, axes = plt.subplots(1, 2, figsize=(12, 4.6), layout="constrained", sharey=True)
        for ax, key, title in (
            (axes[0], "final_val", "epochs_final"),
            (axes[1], "best_val", "epochs_best"),
        ):
            for i, (p, rows) in enumerate(groups.items()):
                rows = sorted(rows, key=lambda s: s["epochs"])
                ax.plot(
                    [s["epochs"] for s in rows],
                    [s[key] for s in rows],
                    "o-",
                    color=f"C{i}",
                    label=_p_name(p),
                )
            first = sorted(next(iter(groups.values())), key=lambda s: s["epochs"])
            for s in first:
                ax.annotate(
                    label("epochs_chars", flang, chars=number(s["train_tokens"], flang)),
                    (s["epochs"], 1.0),
                    xycoords=("data", "axes fraction"),
                    xytext=(0, -4),
                    textcoords="offset points",
                    ha="center",
                    va="top",
                    fontsize="x-small",
                    color="0.35",
                )
            ax.set_xscale("log")
            ax.margins(x=0.12)
            ax.set_xlabel(label("epochs_x", flang))
            ax.set_title(label(title, flang))
            ax.grid(alpha=0.3, which="both")
            ax.legend(fontsize="small", loc="lower right")
        axes[0].set_ylabel(label("loss", flang))
        fig.suptitle(label("epochs_title", flang, steps=steps))
    return fig


def plot_rate_sweep(results: dict, lang: str = "en"):
    """The rate sweep (chapter 03): validation loss after the last step and at its lowest
    against the drop rate (left), and the generalization gap after the last step (right)."""
    _check_results(results)
    flang = figure_lang(lang)
    rows = sorted((run_summary(r) for r in results.values()), key=lambda s: s["p"])
    ps = [s["p"] for s in rows]
    with plt.rc_context(rc_params(flang)):
        fig, (ax, ax_gap) = plt.subplots(1, 2, figsize=(11, 4.2), layout="constrained")
        ax.plot(
            ps, [s["final_val"] for s in rows], "o-", color="C0", label=label("sweep_final", flang)
        )
        ax.plot(
            ps,
            [s["best_val"] for s in rows],
            "o--",
            color="C1",
            mfc="white",
            label=label("sweep_best", flang),
        )
        ax.set_xlabel(label("rate_x", flang))
        ax.set_ylabel(label("loss", flang))
        ax.set_title(label("sweep_val", flang))
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
        ax_gap.plot(ps, [s["gap"] for s in rows], "o-", color="C2")
        ax_gap.axhline(0.0, color="0.5", lw=0.8)
        ax_gap.set_xlabel(label("rate_x", flang))
        ax_gap.set_ylabel(label("gap", flang))
        ax_gap.set_title(label("sweep_gap", flang))
        ax_gap.grid(alpha=0.3)
        s0 = rows[0]
        fig.suptitle(
            label(
                "sweep_title", flang, epochs=s0["epochs"], chars=number(s0["train_tokens"], flang)
            )
        )
    return fig


def plot_width_rates(results: dict, lang: str = "en"):
    """The best rate as the model widens (chapter 03): for each width (``n_embd``), the final
    (left) and the lowest (right) validation loss against the drop rate; a star marks the best
    rate of each width."""
    _check_results(results)
    flang = figure_lang(lang)
    widths: dict = {}
    for result in results.values():
        s = run_summary(result)
        widths.setdefault(s["n_embd"], []).append(s)
    s0 = next(iter(widths.values()))[0]
    with plt.rc_context(rc_params(flang)):
        fig, axes = plt.subplots(1, 2, figsize=(12, 4.6), layout="constrained")
        for ax, key, title in (
            (axes[0], "final_val", "width_final"),
            (axes[1], "best_val", "width_best"),
        ):
            for i, (width, rows) in enumerate(sorted(widths.items())):
                rows = sorted(rows, key=lambda s: s["p"])
                name = label(
                    "width_line", flang, width=width, params=number(rows[0]["num_params"], flang)
                )
                ax.plot(
                    [s["p"] for s in rows], [s[key] for s in rows], "o-", color=f"C{i}", label=name
                )
                best = min(rows, key=lambda s: s[key])
                ax.plot([best["p"]], [best[key]], "*", color=f"C{i}", ms=16, mec="black", zorder=4)
            ax.set_xlabel(label("rate_x", flang))
            ax.set_title(label(title, flang))
            ax.grid(alpha=0.3)
            ax.legend(fontsize="small")
        axes[0].set_ylabel(label("loss", flang))
        epochs = s0["epochs"] if s0["epochs"] is not None else math.nan
        fig.suptitle(
            label("width_title", flang, chars=number(s0["train_tokens"], flang), epochs=epochs)
        )
    return fig
