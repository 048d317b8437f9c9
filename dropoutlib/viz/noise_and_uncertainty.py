"""Chapter 05, noise and uncertainty: moments through a deep SELU stack, the rates Concrete
dropout learns, MC dropout's uncertainty on familiar and foreign text, reliability diagrams, and
how the MC estimates settle as passes accumulate."""

from __future__ import annotations

import matplotlib.pyplot as plt

from dropoutlib.viz.core import LABELS, add_labels, figure_lang, label, rc_params

__all__ = [
    "plot_selu_moments",
    "plot_concrete_rates",
    "plot_mc_uncertainty",
    "plot_reliability",
    "plot_mc_curve",
]

_LABELS = {
    "en": {
        "n05_selu_title": "A deep SELU network: activations after each layer",
        "n05_layer": "layer (depth)",
        "n05_act_mean": "mean of the activations",
        "n05_act_var": "variance of the activations",
        "n05_kind_none": "no dropout",
        "n05_kind_standard": "standard dropout",
        "n05_kind_alpha": "Alpha dropout",
        "n05_concrete_title": "Drop rates learned by Concrete dropout, per site and layer",
        "n05_rate": "learned drop rate p",
        "n05_site_embd": "embedding",
        "n05_site_resid": "attention output",
        "n05_site_ffn": "FFN output",
        "n05_start": "start value {p:g}",
        "n05_block": "block",
        "n05_site_axis": "site and block",
        "n05_unc_title": "MC dropout ({n} passes) on familiar and foreign text",
        "n05_pred_entropy": "predictive entropy per character (nats)",
        "n05_mutual_info": "mutual information per character (nats)",
        "n05_density": "fraction of characters",
        "n05_text_val": "Shakespeare (validation)",
        "n05_text_shuffled": "Shakespeare, characters shuffled",
        "n05_text_song_ci": "Song ci mapped onto Shakespeare's characters",
        "n05_rel_title": "Reliability diagram (validation characters)",
        "n05_confidence": "confidence (largest predicted probability)",
        "n05_accuracy": "accuracy in the bin",
        "n05_perfect": "perfect calibration",
        "n05_ece": "{name}: ECE {ece:.3f}",
        "n05_deterministic": "deterministic (eval mode)",
        "n05_mc": "MC dropout, {n} passes",
        "n05_curve_title": "MC estimates against the number of passes",
        "n05_passes": "number of passes n",
        "n05_nll": "cross-entropy of the MC average (nats per character)",
        "n05_mean": "mean {v:.3f}",
        "n05_eval_nll": "deterministic prediction",
        "n05_rdrop_title": "R-Drop against plain dropout: validation loss",
    },
    "ru": {
        "n05_selu_title": "Глубокая сеть с SELU: активации после каждого слоя",
        "n05_layer": "слой (глубина)",
        "n05_act_mean": "среднее активаций",
        "n05_act_var": "дисперсия активаций",
        "n05_kind_none": "без dropout",
        "n05_kind_standard": "стандартный dropout",
        "n05_kind_alpha": "Alpha dropout",
        "n05_concrete_title": "Доли отключения, выученные Concrete dropout, по местам и слоям",
        "n05_rate": "выученная доля отключения p",
        "n05_site_embd": "эмбеддинг",
        "n05_site_resid": "выход внимания",
        "n05_site_ffn": "выход FFN",
        "n05_start": "начальное значение {p:g}",
        "n05_block": "блок",
        "n05_site_axis": "место и блок",
        "n05_unc_title": "MC dropout ({n} проходов) на знакомом и чужом тексте",
        "n05_pred_entropy": "предсказательная энтропия на символ (нат)",
        "n05_mutual_info": "взаимная информация на символ (нат)",
        "n05_density": "доля символов",
        "n05_text_val": "Шекспир (валидация)",
        "n05_text_shuffled": "Шекспир с перемешанными символами",
        "n05_text_song_ci": "цы, переложенные в символы Шекспира",
        "n05_rel_title": "Диаграмма надёжности (символы валидации)",
        "n05_confidence": "уверенность (наибольшая предсказанная вероятность)",
        "n05_accuracy": "точность в интервале",
        "n05_perfect": "идеальная калибровка",
        "n05_ece": "{name}: ECE {ece:.3f}",
        "n05_deterministic": "детерминированно (режим оценки)",
        "n05_mc": "MC dropout, {n} проходов",
        "n05_curve_title": "Оценки MC в зависимости от числа проходов",
        "n05_passes": "число проходов n",
        "n05_nll": "кросс-энтропия MC-среднего (нат на символ)",
        "n05_mean": "среднее {v:.3f}",
        "n05_eval_nll": "детерминированное предсказание",
        "n05_rdrop_title": "R-Drop и обычный dropout: потери на валидации",
    },
    "zh": {
        "n05_selu_title": "深层 SELU 网络：每层之后的激活",
        "n05_layer": "层（深度）",
        "n05_act_mean": "激活的均值",
        "n05_act_var": "激活的方差",
        "n05_kind_none": "无暂退法",
        "n05_kind_standard": "标准暂退法",
        "n05_kind_alpha": "Alpha 暂退法",
        "n05_concrete_title": "Concrete 暂退法学到的暂退概率（按位置和层）",
        "n05_rate": "学到的暂退概率 p",
        "n05_site_embd": "嵌入",
        "n05_site_resid": "注意力输出",
        "n05_site_ffn": "FFN 输出",
        "n05_start": "初始值 {p:g}",
        "n05_block": "块",
        "n05_site_axis": "位置与块",
        "n05_unc_title": "熟悉文本与陌生文本上的蒙特卡洛暂退法（{n} 次传播）",
        "n05_pred_entropy": "每个字符的预测熵（nat）",
        "n05_mutual_info": "每个字符的互信息（nat）",
        "n05_density": "字符比例",
        "n05_text_val": "莎士比亚（验证集）",
        "n05_text_shuffled": "字符打乱的莎士比亚",
        "n05_text_song_ci": "映射到莎士比亚字符上的宋词",
        "n05_rel_title": "可靠性图（验证集字符）",
        "n05_confidence": "置信度（最大预测概率）",
        "n05_accuracy": "该区间内的准确率",
        "n05_perfect": "完美校准",
        "n05_ece": "{name}：ECE {ece:.3f}",
        "n05_deterministic": "确定性预测（评估模式）",
        "n05_mc": "蒙特卡洛暂退法，{n} 次传播",
        "n05_curve_title": "蒙特卡洛估计随传播次数的变化",
        "n05_passes": "传播次数 n",
        "n05_nll": "蒙特卡洛平均的交叉熵（nat/字符）",
        "n05_mean": "均值 {v:.3f}",
        "n05_eval_nll": "确定性预测",
        "n05_rdrop_title": "R-Drop 与普通暂退法：验证损失",
    },
}
add_labels(_LABELS)


def _maybe(key: str, lang: str, fallback: str) -> str:
    return label(key, lang) if key in LABELS[lang] else fallback


def plot_selu_moments(stats: dict, lang: str = "en"):
    """Mean (left) and variance (right) of the activations after each layer of a deep SELU
    network, one line per dropout kind. ``stats`` maps ``"none"``, ``"standard"`` or
    ``"alpha"`` to :func:`dropoutlib.experiments.noise_and_uncertainty.selu_stack_moments`'s
    list of ``(mean, variance)``. Dotted lines mark SELU's fixed point (0, 1)."""
    if not stats:
        raise ValueError("stats must hold at least one kind's moments")
    flang = figure_lang(lang)
    with plt.rc_context(rc_params(flang)):
        fig, (ax_m, ax_v) = plt.subplots(1, 2, figsize=(11, 4), layout="constrained")
        for i, (kind, moments) in enumerate(stats.items()):
            depth = range(1, len(moments) + 1)
            name = _maybe(f"n05_kind_{kind}", flang, kind)
            ax_m.plot(depth, [m for m, _ in moments], "-", color=f"C{i}", label=name)
            ax_v.plot(depth, [v for _, v in moments], "-", color=f"C{i}", label=name)
        for ax, target, ylabel in ((ax_m, 0.0, "n05_act_mean"), (ax_v, 1.0, "n05_act_var")):
            ax.axhline(target, color="0.4", ls=":", lw=1)
            ax.set_xlabel(label("n05_layer", flang))
            ax.set_ylabel(label(ylabel, flang))
            ax.grid(alpha=0.3)
        ax_m.legend(fontsize="small")
        fig.suptitle(label("n05_selu_title", flang))
    return fig


def plot_concrete_rates(rates: dict, lang: str = "en", *, start: float | None = None):
    """Grouped bars: the drop rate Concrete dropout learned at each site (``rates`` maps
    ``"embd"``, ``"resid"``, ``"ffn"`` to one rate per layer; the embedding has one), with a
    dashed line at the ``start`` value when given."""
    if not rates:
        raise ValueError("rates must hold at least one site")
    flang = figure_lang(lang)
    with plt.rc_context(rc_params(flang)):
        fig, ax = plt.subplots(figsize=(8, 4.2), layout="constrained")
        x = 0.0
        ticks, names = [], []
        for i, (site, values) in enumerate(rates.items()):
            values = list(values)
            pos = [x + j for j in range(len(values))]
            ax.bar(
                pos, values, color=f"C{i}", width=0.8, label=_maybe(f"n05_site_{site}", flang, site)
            )
            for pp, v in zip(pos, values):
                ax.text(pp, v, f"{v:.3f}", ha="center", va="bottom", fontsize="x-small")
            if len(values) > 1:
                ticks += pos
                names += [f"{label('n05_block', flang)} {j}" for j in range(len(values))]
            else:
                ticks += pos
                names += [_maybe(f"n05_site_{site}", flang, site)]
            x += len(values) + 1
        if start is not None:
            ax.axhline(start, color="0.3", ls="--", lw=1, label=label("n05_start", flang, p=start))
        ax.set_xticks(ticks)
        ax.set_xticklabels(names, fontsize="small", rotation=30, ha="right")
        ax.set_xlabel(label("n05_site_axis", flang))
        ax.set_ylabel(label("n05_rate", flang))
        ax.set_title(label("n05_concrete_title", flang))
        ax.grid(alpha=0.3, axis="y")
        ax.legend(fontsize="small")
    return fig


def plot_mc_uncertainty(predictions: dict, lang: str = "en", *, n: int | None = None):
    """Histograms of the per-character predictive entropy (left) and mutual information
    (right) of MC dropout on several texts. ``predictions`` maps a text name (``"val"``,
    ``"shuffled"``, ``"song_ci"`` are shown in ``lang``) to a
    :class:`dropoutlib.uncertainty.MCPrediction`; ``n`` is the number of passes (title)."""
    if not predictions:
        raise ValueError("predictions must hold at least one text")
    flang = figure_lang(lang)
    with plt.rc_context(rc_params(flang)):
        fig, axes = plt.subplots(1, 2, figsize=(11.5, 4.2), layout="constrained")
        for ax, field, xlabel in (
            (axes[0], "predictive_entropy", "n05_pred_entropy"),
            (axes[1], "mutual_information", "n05_mutual_info"),
        ):
            values = {
                k: getattr(v, field).flatten().clamp_min(0).numpy() for k, v in predictions.items()
            }
            hi = max(float(v.max()) for v in values.values())
            bins = [hi * i / 40 for i in range(41)]
            for i, (name, v) in enumerate(values.items()):
                weights = [1.0 / len(v)] * len(v)
                shown = _maybe(f"n05_text_{name}", flang, name)
                ax.hist(
                    v,
                    bins=bins,
                    weights=weights,
                    histtype="step",
                    lw=1.8,
                    color=f"C{i}",
                    label=f"{shown} ({label('n05_mean', flang, v=float(v.mean()))})",
                )
            ax.set_xlabel(label(xlabel, flang))
            ax.set_ylabel(label("n05_density", flang))
            ax.grid(alpha=0.3)
            ax.legend(fontsize="small")
        fig.suptitle(label("n05_unc_title", flang, n=n if n is not None else "?"))
    return fig


def plot_reliability(calibrations: dict, lang: str = "en", *, min_count: int = 10):
    """Reliability diagram: accuracy against confidence per bin for each prediction method,
    with the diagonal of perfect calibration and each method's ECE in the legend.
    ``calibrations`` maps a name (``"deterministic"`` is shown in ``lang``; ``"mc <n>"`` as
    "MC dropout, n passes") to a :class:`dropoutlib.uncertainty.Calibration`. Bins with fewer
    than ``min_count`` predictions are not drawn (their accuracy is mostly noise); the ECE
    counts every bin."""
    if not calibrations:
        raise ValueError("calibrations must hold at least one method")
    flang = figure_lang(lang)
    with plt.rc_context(rc_params(flang)):
        fig, ax = plt.subplots(figsize=(6.2, 5.6), layout="constrained")
        ax.plot([0, 1], [0, 1], ":", color="0.4", label=label("n05_perfect", flang))
        for i, (name, cal) in enumerate(calibrations.items()):
            if name.startswith("mc "):
                shown = label("n05_mc", flang, n=int(name.split()[1]))
            else:
                shown = _maybe(f"n05_{name}", flang, name)
            keep = cal.count >= max(1, min_count)
            conf = cal.confidence[keep].numpy()
            acc = cal.accuracy[keep].numpy()
            ax.plot(
                conf,
                acc,
                "-o",
                ms=4,
                color=f"C{i}",
                label=label("n05_ece", flang, name=shown, ece=cal.ece),
            )
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_aspect("equal")
        ax.set_xlabel(label("n05_confidence", flang))
        ax.set_ylabel(label("n05_accuracy", flang))
        ax.set_title(label("n05_rel_title", flang))
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small", loc="upper left")
    return fig


def plot_mc_curve(points, lang: str = "en", *, deterministic: float | None = None):
    """The MC estimates after n passes (:func:`dropoutlib.uncertainty.mc_curve`), against n on
    a log scale, in three panels: the cross-entropy of the averaged prediction (with the
    deterministic prediction's as a dashed line when given), the mean predictive entropy and
    the mean mutual information."""
    points = list(points)
    if not points:
        raise ValueError("points must hold at least one MCPoint")
    flang = figure_lang(lang)
    ns = [pt.n for pt in points]
    with plt.rc_context(rc_params(flang)):
        fig, axes = plt.subplots(1, 3, figsize=(13, 3.9), layout="constrained")
        panels = (
            ([pt.nll for pt in points], "n05_nll", "C0"),
            ([pt.predictive_entropy for pt in points], "n05_pred_entropy", "C1"),
            ([pt.mutual_information for pt in points], "n05_mutual_info", "C2"),
        )
        for ax, (values, ylabel, color) in zip(axes, panels):
            ax.plot(ns, values, "-o", color=color, ms=4)
            ax.set_ylabel(label(ylabel, flang))
            ax.set_xscale("log", base=2)
            ax.set_xticks(ns)
            ax.set_xticklabels([str(k) for k in ns])
            ax.set_xlabel(label("n05_passes", flang))
            ax.grid(alpha=0.3)
        if deterministic is not None:
            axes[0].axhline(
                deterministic, color="C3", ls="--", lw=1.2, label=label("n05_eval_nll", flang)
            )
            axes[0].legend(fontsize="small")
        fig.suptitle(label("n05_curve_title", flang))
    return fig
