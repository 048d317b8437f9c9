"""Chapter 06, dropout schedules: the schedules' curves, and the runs that compare them."""

from __future__ import annotations

import matplotlib.pyplot as plt

from dropoutlib.viz.core import LABELS, add_labels, figure_lang, label, rc_params

__all__ = ["plot_schedule_runs", "plot_schedules", "run_label", "schedules_markdown"]

_LABELS = {
    "en": {
        "sched_title": "Dropout rate over training ({steps} steps, {epochs} epochs)",
        "sched_x": "training progress (% of steps)",
        "sched_y": "drop rate p",
        "depth_title": "Dropout rate over depth ({layers} blocks)",
        "depth_x": "block (0 = nearest the input)",
        "runs_title:schedules-data-constrained": "Data-constrained: the model overfits",
        "runs_title:schedules-single-epoch": "Single epoch: the model underfits",
        "runs_val": "validation loss (nats per character)",
        "runs_final": "final validation loss (nats per character)",
        "runs_best": "best",
        "runs_end": "end",
        "runs_none": "no dropout",
        "runs_seeds": "final, other seeds",
        "table_run": "run",
        "table_final": "final val loss",
        "table_best": "best val loss",
        "table_best_step": "best at step",
        "table_train": "final train loss",
        "table_vs_none": "final − no dropout",
        "run:no dropout": "no dropout",
        "run:constant": "constant",
        "run:seed 000 decay": "seed 000 decay",
        "run:cosine decay": "cosine decay",
        "run:early": "early dropout",
        "run:late": "late dropout",
        "run:curriculum": "curriculum",
        "run:layer-wise, seed 000's rule (rising)": "layer-wise, seed 000 (rising)",
        "run:layer-wise, linear (falling)": "layer-wise, linear (falling)",
        "run:seed 000 (0.1 + 0.02 i)": "seed 000's values (0.1 + 0.02 i)",
    },
    "ru": {
        "sched_title": "Доля отключения dropout по ходу обучения ({steps} шагов, эпох: {epochs})",
        "sched_x": "ход обучения (% шагов)",
        "sched_y": "доля отключения p",
        "depth_title": "Доля отключения dropout по глубине (блоков: {layers})",
        "depth_x": "блок (0\u00a0— ближайший ко входу)",
        "runs_title:schedules-data-constrained": "Мало данных: модель переобучается",
        "runs_title:schedules-single-epoch": "Одна эпоха: модель недообучается",
        "runs_val": "потери на валидации (нат на символ)",
        "runs_final": "потери на валидации в конце (нат на символ)",
        "runs_best": "лучшие",
        "runs_end": "в конце",
        "runs_none": "без dropout",
        "runs_seeds": "в конце, другие seed",
        "table_run": "запуск",
        "table_final": "потери на валидации в конце",
        "table_best": "лучшие потери на валидации",
        "table_best_step": "шаг лучших потерь",
        "table_train": "потери на обучении в конце",
        "table_vs_none": "в конце − без dropout",
        "run:no dropout": "без dropout",
        "run:constant": "постоянная доля",
        "run:seed 000 decay": "убывание seed 000",
        "run:cosine decay": "косинусное убывание",
        "run:early": "ранний dropout",
        "run:late": "поздний dropout",
        "run:curriculum": "curriculum dropout",
        "run:layer-wise, seed 000's rule (rising)": "по слоям, seed 000 (растёт)",
        "run:layer-wise, linear (falling)": "по слоям, линейно (убывает)",
        "run:seed 000 (0.1 + 0.02 i)": "значения seed 000 (0.1 + 0.02 i)",
    },
    "zh": {
        "sched_title": "暂退概率随训练的变化（{steps} 步，{epochs} 个迭代周期）",
        "sched_x": "训练进度（步数的 %）",
        "sched_y": "暂退概率 p",
        "depth_title": "暂退概率随深度的变化（{layers} 个块）",
        "depth_x": "块（0 = 最靠近输入）",
        "runs_title:schedules-data-constrained": "数据受限：模型过拟合",
        "runs_title:schedules-single-epoch": "单个迭代周期：模型欠拟合",
        "runs_val": "验证损失（nat/字符）",
        "runs_final": "最终验证损失（nat/字符）",
        "runs_best": "最佳",
        "runs_end": "最终",
        "runs_none": "无暂退",
        "runs_seeds": "最终，其他随机种子",
        "table_run": "运行",
        "table_final": "最终验证损失",
        "table_best": "最佳验证损失",
        "table_best_step": "最佳所在步",
        "table_train": "最终训练损失",
        "table_vs_none": "最终 − 无暂退",
        "run:no dropout": "无暂退",
        "run:constant": "恒定",
        "run:seed 000 decay": "种子文档 000 的衰减",
        "run:cosine decay": "余弦衰减",
        "run:early": "早期暂退",
        "run:late": "晚期暂退",
        "run:curriculum": "课程式暂退",
        "run:layer-wise, seed 000's rule (rising)": "逐层，种子文档 000（递增）",
        "run:layer-wise, linear (falling)": "逐层，线性（递减）",
        "run:seed 000 (0.1 + 0.02 i)": "种子文档 000 的取值（0.1 + 0.02 i）",
    },
}
add_labels(_LABELS)


def run_label(name: str, lang: str) -> str:
    """A run's label as shown in ``lang`` (the label itself when it has no translation)."""
    key = f"run:{name}"
    return label(key, lang) if key in LABELS[lang] else name


def _schedule_curve(spec, p: float, steps: int, epochs: int) -> list[float]:
    """The rate at every step 0..steps of a ``dropout_schedule`` spec (None: constant ``p``),
    with a per-epoch schedule stepped where the epoch changes, as the trainer does."""
    from dropoutlib.train.config import make_schedule

    if spec is None:
        return [p] * (steps + 1)
    schedule, every = make_schedule(spec)
    if every == "step":
        return [schedule(t, steps) for t in range(steps + 1)]
    return [schedule(min(epochs, t * epochs // steps), epochs) for t in range(steps + 1)]


def plot_schedules(
    lang: str = "en",
    *,
    steps: int = 600,
    epochs: int = 31,
    n_layer: int = 12,
    schedules: dict | None = None,
    layerwise: dict | None = None,
):
    """Left: the rate of each schedule of chapter 06 over training (``steps`` steps, ``epochs``
    epochs for seed 000's per-epoch decay). Right: the rate of each block for the rules over
    depth, with ``n_layer`` blocks. Defaults: :data:`dropoutlib.experiments.dropout_schedules.
    SCHEDULES` and its :func:`~dropoutlib.experiments.dropout_schedules.layerwise_specs`, plus
    seed 000's own values (0.1 + 0.02 i) for reference."""
    from dropoutlib.experiments import dropout_schedules as ex
    from dropoutlib.model import _resolve_rates

    schedules = dict(ex.SCHEDULES) if schedules is None else schedules
    if layerwise is None:
        layerwise = {"seed 000 (0.1 + 0.02 i)": {"base": 0.1, "step": 0.02}}  # its own values
        layerwise.update(ex.layerwise_specs(n_layer))
    flang = figure_lang(lang)
    with plt.rc_context(rc_params(flang)):
        fig, (ax, ax_depth) = plt.subplots(
            1, 2, figsize=(11, 4), layout="constrained", gridspec_kw={"width_ratios": [3, 2]}
        )
        x = [100 * t / steps for t in range(steps + 1)]
        for i, (name, spec) in enumerate(schedules.items()):
            ys = _schedule_curve(spec, ex.P, steps, epochs)
            ax.plot(x, ys, color=f"C{i + 1}", lw=1.8, label=run_label(name, flang))
        ax.set_xlabel(label("sched_x", flang))
        ax.set_ylabel(label("sched_y", flang))
        ax.set_title(label("sched_title", flang, steps=steps, epochs=epochs))
        ax.set_ylim(-0.01, ex.P * 1.15)
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small", ncols=2)
        depth = list(range(n_layer))
        for i, (name, spec) in enumerate(layerwise.items()):
            rates = _resolve_rates(spec, name, n_layer)
            ax_depth.plot(depth, rates, "o-", color=f"C{i + 7}", label=run_label(name, flang))
        ax_depth.set_xlabel(label("depth_x", flang))
        ax_depth.set_ylabel(label("sched_y", flang))
        ax_depth.set_title(label("depth_title", flang, layers=n_layer))
        ax_depth.grid(alpha=0.3)
        ax_depth.legend(fontsize="small")
    return fig


def _val_curve(result):
    pairs = [(h["step"], h["val_loss"]) for h in result.history]
    return [s for s, _ in pairs], [v for _, v in pairs]


def plot_schedule_runs(regimes: dict, lang: str = "en", *, seeds: dict | None = None):
    """One column per regime (``{experiment name: {label: RunResult}}``): the validation loss of
    every run over training (top; the untrained model's first point is left out of the y-range),
    and each run's final validation loss as a bar with its best as a dot (bottom), against the
    run without dropout (dashed line). ``seeds`` (``{experiment name: {label: [RunResult,
    ...]}}``, e.g. from :func:`dropoutlib.experiments.dropout_schedules.seed_groups`) adds the
    final validation loss of the same configuration with other seeds as crosses on its row."""
    if not regimes or not all(regimes.values()):
        raise ValueError("regimes must map experiment names to non-empty {label: RunResult}")
    flang = figure_lang(lang)
    n = len(regimes)
    with plt.rc_context(rc_params(flang)):
        fig, axes = plt.subplots(
            2,
            n,
            figsize=(5.8 * n, 8.5),
            layout="constrained",
            squeeze=False,
            gridspec_kw={"height_ratios": [3, 2.4]},
        )
        for col, (name, results) in enumerate(regimes.items()):
            ax, ax_bar = axes[0][col], axes[1][col]
            later = []
            for i, (run, result) in enumerate(results.items()):
                steps, vals = _val_curve(result)
                style = "--" if run == "no dropout" else "-"
                ax.plot(steps, vals, style, color=f"C{i}", lw=1.5, label=run_label(run, flang))
                # the y-range follows the last four fifths of training, where the runs differ
                later.extend(v for s, v in zip(steps, vals) if s >= steps[-1] / 5)
            lo, hi = min(later), max(later)
            span = max(hi - lo, 1e-6)
            ax.set_ylim(lo - 0.05 * span, hi + 0.1 * span)
            key = f"runs_title:{name}"
            ax.set_title(label(key, flang) if key in LABELS[flang] else name)
            ax.set_xlabel(label("step", flang))
            ax.set_ylabel(label("runs_val", flang))
            ax.grid(alpha=0.3)
            ax.legend(fontsize="x-small", ncols=2)
            names = list(results)
            finals = [results[r].final["val_loss"] for r in names]
            bests = [results[r].best["val_loss"] for r in names]
            ys = list(range(len(names)))
            ax_bar.barh(ys, finals, color=[f"C{i}" for i in ys], alpha=0.75)
            ax_bar.plot(bests, ys, "o", color="black", ms=4, label=label("runs_best", flang))
            others = (seeds or {}).get(name, {})
            xs = [r.final["val_loss"] for run in names for r in others.get(run, [])]
            rows = [ys[names.index(run)] for run in names for _ in others.get(run, [])]
            if xs:
                ax_bar.plot(xs, rows, "x", color="0.2", ms=7, label=label("runs_seeds", flang))
                finals = finals + xs  # for the x-range only

            if "no dropout" in results:
                ref = results["no dropout"].final["val_loss"]
                ax_bar.axvline(ref, color="0.3", ls="--", lw=1, label=label("runs_none", flang))
            low, high = min(bests + finals), max(bests + finals)
            pad = max(high - low, 1e-3)
            ax_bar.set_xlim(low - 0.3 * pad, high + 0.5 * pad)  # room for the legend
            ax_bar.set_yticks(ys)
            ax_bar.set_yticklabels([run_label(r, flang) for r in names], fontsize="small")
            ax_bar.invert_yaxis()
            ax_bar.set_xlabel(label("runs_final", flang))
            ax_bar.grid(axis="x", alpha=0.3)
            ax_bar.legend(fontsize="x-small", loc="upper right")
    return fig


def schedules_markdown(results: dict, lang: str = "en", *, digits: int = 3) -> str:
    """A markdown table of the runs of one regime: final train and validation loss, best
    validation loss and its step, and the final validation loss minus that of "no dropout"."""
    if not results:
        raise ValueError("results must hold at least one run")
    none = results.get("no dropout")
    cols = ("table_run", "table_train", "table_final", "table_best", "table_best_step")
    cols += ("table_vs_none",) if none is not None else ()
    lines = [
        "| " + " | ".join(label(c, lang) for c in cols) + " |",
        "|" + "|".join(["---"] + ["---:"] * (len(cols) - 1)) + "|",
    ]
    for run, result in results.items():
        final, best = result.final, result.best
        cells = [
            run_label(run, lang),
            f"{final['train_loss']:.{digits}f}",
            f"{final['val_loss']:.{digits}f}",
            f"{best['val_loss']:.{digits}f}",
            f"{best['step']:d}",
        ]
        if none is not None:
            delta = final["val_loss"] - none.final["val_loss"]
            cells.append("—" if run == "no dropout" else f"{delta:+.{digits}f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
