"""Figures and widgets of the course, with every reader-facing string in English, Russian, Chinese.

Notebooks are identical in the three languages except for ``lang``; everything a reader sees in
a figure (titles, axis labels, legends) comes from :data:`LABELS` here. Each plotting function
returns its :class:`~matplotlib.figure.Figure`.

Fonts: DejaVu Sans (matplotlib's default) covers Latin and Cyrillic; Chinese needs a CJK font.
``Noto Sans CJK SC`` (Debian/Ubuntu package ``fonts-noto-cjk``) is used where it is installed.
Where it is not (e.g. a fresh Colab runtime), Chinese figures fall back to English labels with
one warning instead of drawing empty boxes.
"""

from __future__ import annotations

import glob
import io
import math
import warnings

import matplotlib.pyplot as plt
import torch
from matplotlib import font_manager

LANGS = ("en", "ru", "zh")
CJK_FONT = "Noto Sans CJK SC"
BASE_FONT = "DejaVu Sans"

LABELS: dict[str, dict[str, str]] = {
    "en": {
        "input": "input x",
        "mask": "mask m",
        "output": "output y = m·x / (1 − p)",
        "kept": "kept {kept:.0%}",
        "mean": "mean {mean:.3f}",
        "masks_title": "Inverted dropout on one {h}×{w} activation map (mean of x: {mean:.3f})",
        "activation": "activation",
        "step": "training step",
        "loss": "cross-entropy (nats per character)",
        "train": "train",
        "val": "validation",
        "gap": "validation − train",
        "losses_title": "babyGPT v10 on Song ci",
        "gap_title": "Generalization gap",
        "drop_rate": "drop rate p",
        "histogram_title": "Non-zero values of y",
        "count": "count",
    },
    "ru": {
        "input": "вход x",
        "mask": "маска m",
        "output": "выход y = m·x / (1 − p)",
        "kept": "осталось {kept:.0%}",
        "mean": "среднее {mean:.3f}",
        "masks_title": "Обратный dropout на карте активаций {h}×{w} (среднее x: {mean:.3f})",
        "activation": "активация",
        "step": "шаг обучения",
        "loss": "кросс-энтропия (нат на символ)",
        "train": "обучение",
        "val": "валидация",
        "gap": "валидация − обучение",
        "losses_title": "babyGPT v10 на сунских цы",
        "gap_title": "Разрыв обобщения",
        "drop_rate": "доля отключения p",
        "histogram_title": "Ненулевые значения y",
        "count": "количество",
    },
    "zh": {
        "input": "输入 x",
        "mask": "掩码 m",
        "output": "输出 y = m·x / (1 − p)",
        "kept": "保留 {kept:.0%}",
        "mean": "均值 {mean:.3f}",
        "masks_title": "对一张 {h}×{w} 激活图施加倒置暂退法（x 的均值：{mean:.3f}）",
        "activation": "激活值",
        "step": "训练步数",
        "loss": "交叉熵（nat/字符）",
        "train": "训练集",
        "val": "验证集",
        "gap": "验证 − 训练",
        "losses_title": "宋词语料上的 babyGPT v10",
        "gap_title": "泛化差距",
        "drop_rate": "暂退概率 p",
        "histogram_title": "y 的非零值",
        "count": "频数",
    },
}

_CJK_PATTERNS = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/**/NotoSansCJK*-Regular.*",
    "/usr/share/fonts/**/NotoSansCJKsc-Regular.otf",
)
_warned_no_cjk = False
_searched_cjk = False  # the font directories are searched once per process


def check_lang(lang) -> str:
    """Return ``lang`` if it is one of the book's languages, else raise a ValueError naming them."""
    if lang not in LANGS:
        raise ValueError(f"lang must be one of {', '.join(map(repr, LANGS))}, got {lang!r}")
    return lang


def label(key: str, lang: str, **fmt) -> str:
    """The reader-facing string ``key`` in ``lang``, formatted with ``fmt``."""
    text = LABELS[check_lang(lang)][key]
    return text.format(**fmt) if fmt else text


def has_cjk_font() -> bool:
    """True when matplotlib can draw Chinese with :data:`CJK_FONT` (registering it if needed).

    matplotlib caches its font list; a font installed after the cache was built is added here.
    """
    global _searched_cjk
    if any(f.name == CJK_FONT for f in font_manager.fontManager.ttflist):
        return True
    if _searched_cjk:
        return False
    _searched_cjk = True
    for pattern in _CJK_PATTERNS:
        for path in glob.glob(pattern, recursive=True):
            try:
                font_manager.fontManager.addfont(path)
            except (OSError, RuntimeError, ValueError):
                continue
    return any(f.name == CJK_FONT for f in font_manager.fontManager.ttflist)


def _figure_lang(lang: str) -> str:
    """The language figures can be drawn in: ``lang``, or English for Chinese without a CJK font."""
    global _warned_no_cjk
    check_lang(lang)
    if lang == "zh" and not has_cjk_font():
        if not _warned_no_cjk:
            warnings.warn(
                f"font {CJK_FONT!r} not found: figure labels are drawn in English "
                "(install the fonts-noto-cjk package to get Chinese labels)",
                stacklevel=3,
            )
            _warned_no_cjk = True
        return "en"
    return lang


def rc_params(lang: str) -> dict:
    """matplotlib settings for ``lang``: concrete font families only, so findfont never warns."""
    families = [BASE_FONT]
    if has_cjk_font():
        # Chinese glyphs first for zh; for en/ru DejaVu first and CJK only as a per-glyph fallback.
        families = [CJK_FONT, BASE_FONT] if lang == "zh" else [BASE_FONT, CJK_FONT]
    return {"font.family": families, "axes.titlesize": "medium"}


def glue(name: str, value) -> None:
    """Store ``value`` under ``name`` for the book's ``{glue:text}`` roles; invisible elsewhere.

    Uses ``myst_nb.glue(name, value, display=False)`` when myst-nb is installed (book builds,
    papermill runs) and does nothing where it is not (Colab), so prose numbers always come from
    the executed cell.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a non-empty string, got {name!r}")
    if not _in_ipython():
        return  # plain Python: IPython's display() would print the raw bundle
    try:
        from myst_nb import glue as _glue
    except ImportError:
        return
    _glue(name, value, display=False)


def _in_ipython() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    return get_ipython() is not None


# --- dropout masks -------------------------------------------------------------------------


def activation_map(shape=(16, 16), *, seed: int = 0) -> torch.Tensor:
    """A smooth, non-negative "feature map" (like a ReLU output), easy to recognise under a mask."""
    h, w = shape
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(
        torch.linspace(0, math.pi, h), torch.linspace(0, math.pi, w), indexing="ij"
    )
    smooth = 0.5 + 0.4 * torch.sin(2 * xx) * torch.cos(yy)
    return (smooth + 0.1 * torch.rand(shape, generator=g)).clamp_min(0.0)


def _masks(x: torch.Tensor, p_values, seed: int):
    """Inverted-dropout masks and outputs for each p, drawn from ONE uniform sample ``u``.

    Element i is dropped when ``u_i < p``: each mask is Bernoulli(1 - p), and a larger p drops a
    superset of what a smaller p drops, which makes the panels easy to compare.
    """
    u = torch.rand(x.shape, generator=torch.Generator().manual_seed(seed))
    out = []
    for p in p_values:
        m = (u >= p).to(x.dtype)
        y = x * m / (1 - p) if p < 1 else torch.zeros_like(x)
        out.append((p, m, y))
    return out


def _check_p_values(p_values) -> list[float]:
    from dropoutlib._base import check_p

    p_values = [check_p(p, "p_values[i]") for p in p_values]
    if not p_values:
        raise ValueError("p_values must hold at least one drop rate, got an empty sequence")
    return p_values


def plot_masks(p_values=(0.1, 0.3, 0.5, 0.7), lang: str = "en", *, shape=(16, 16), seed: int = 0):
    """Input, masks and outputs of inverted dropout for several ``p``, one column per ``p``.

    Top row: the mask (white = kept, black = dropped); bottom row: ``y = m·x/(1-p)`` on the same
    colour scale as the input (saturating at twice its maximum), so the 1/(1-p) brightening of
    the kept units is visible.
    """
    p_values = _check_p_values(p_values)
    flang = _figure_lang(lang)
    x = activation_map(shape, seed=seed)
    panels = _masks(x, p_values, seed + 1)
    # Shared colour scale up to 2·max(x): kept units at p > 0.5 saturate, which is the point.
    vmax = 2 * float(x.max())
    n = len(p_values)
    with plt.rc_context(rc_params(flang)):
        fig, axes = plt.subplots(
            2, n + 1, figsize=(2.3 * (n + 1) + 0.8, 5.0), squeeze=False, layout="constrained"
        )
        ax = axes[0, 0]
        im = ax.imshow(x.numpy(), cmap="viridis", vmin=0, vmax=vmax)
        ax.set_title(label("input", flang))
        axes[1, 0].axis("off")
        for j, (p, m, y) in enumerate(panels, start=1):
            axes[0, j].imshow(m.numpy(), cmap="gray", vmin=0, vmax=1)
            kept = float(m.mean())
            axes[0, j].set_title(f"p = {p:g}\n" + label("kept", flang, kept=kept))
            axes[1, j].imshow(y.numpy(), cmap="viridis", vmin=0, vmax=vmax)
            axes[1, j].set_title(label("mean", flang, mean=float(y.mean())))
        for ax in axes.flat:
            ax.set_xticks([])
            ax.set_yticks([])
        axes[0, 1].set_ylabel(label("mask", flang))
        axes[1, 1].set_ylabel(label("output", flang))
        fig.colorbar(im, ax=axes[:, -1], shrink=0.8, extend="max", label=label("activation", flang))
        fig.suptitle(
            label("masks_title", flang, h=shape[0], w=shape[1], mean=float(x.mean())),
        )
    return fig


def _widget_figure(p: float, lang: str, shape, seed: int):
    """The figure behind the slider: input, mask, output and a histogram of the kept values."""
    flang = _figure_lang(lang)
    x = activation_map(shape, seed=seed)
    [(_, m, y)] = _masks(x, [p], seed + 1)
    vmax = 2 * float(x.max())  # the scale of plot_masks: kept units saturate beyond p = 0.5
    with plt.rc_context(rc_params(flang)):
        fig, axes = plt.subplots(1, 4, figsize=(12, 3.2), layout="constrained")
        axes[0].imshow(x.numpy(), cmap="viridis", vmin=0, vmax=vmax)
        axes[0].set_title(label("input", flang))
        axes[1].imshow(m.numpy(), cmap="gray", vmin=0, vmax=1)
        axes[1].set_title(label("mask", flang) + " · " + label("kept", flang, kept=float(m.mean())))
        axes[2].imshow(y.numpy(), cmap="viridis", vmin=0, vmax=vmax)
        axes[2].set_title(label("mean", flang, mean=float(y.mean())))
        for ax in axes[:3]:
            ax.set_xticks([])
            ax.set_yticks([])
        kept_values = y[m.bool()]
        axes[3].hist(kept_values.numpy(), bins=20, color="C0")
        axes[3].set_title(label("histogram_title", flang))
        axes[3].set_ylabel(label("count", flang))
        fig.suptitle(f"p = {p:.2f}")
    return fig


def dropout_widget(lang: str = "en", *, shape=(16, 16), seed: int = 0, p: float = 0.3):
    """An ipywidgets slider over ``p`` that redraws the mask, the output and its histogram.

    Returns the widget (display it as the last expression of a cell), or ``None`` when ipywidgets
    is not installed. Each frame is rendered to PNG, so it works in Jupyter, VS Code and Colab
    with any matplotlib backend.
    """
    check_lang(lang)
    try:
        import ipywidgets as widgets
    except ImportError:
        return None
    slider = widgets.FloatSlider(
        value=p,
        min=0.0,
        max=0.95,
        step=0.05,
        description=label("drop_rate", lang),
        continuous_update=False,
        readout_format=".2f",
        style={"description_width": "initial"},
        layout=widgets.Layout(width="480px"),
    )
    image = widgets.Image(format="png")

    def redraw(change=None):
        fig = _widget_figure(slider.value, lang, shape, seed)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=80)
        plt.close(fig)
        image.value = buf.getvalue()

    class DropoutDemo(widgets.VBox):
        # A language-neutral text/plain, so the three editions store the same text output.
        def __repr__(self):
            return f"dropout_widget(p={slider.value:.2f})"

    slider.observe(redraw, names="value")
    redraw()
    return DropoutDemo([slider, image])


def in_interactive_kernel() -> bool:
    """True inside a Jupyter kernel (Jupyter, Colab, papermill), False in plain Python."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


# --- training curves -------------------------------------------------------------------------


def _curve(history, key: str):
    pairs = [(r["step"], r[key]) for r in history if r.get(key) is not None]
    return [s for s, _ in pairs], [v for _, v in pairs]


def _run_name(key: str, result) -> str:
    """``p = 0.2`` when the run has one dropout rate (language-neutral), else the run's label."""
    p = (getattr(result, "model_config", None) or {}).get("dropout")
    return f"p = {p:g}" if isinstance(p, (int, float)) and not isinstance(p, bool) else key


def _focus_after_first_eval(ax) -> None:
    """Clip the y-axis above the later evaluations when the loss of the untrained model (the
    first point, ~log(vocab size)) would squash every later difference into a few pixels."""
    later = [y for line in ax.get_lines() for y in line.get_ydata()[1:]]
    first = [line.get_ydata()[0] for line in ax.get_lines() if len(line.get_ydata())]
    if not later or not first:
        return
    lo, hi = min(later), max(later)
    span = max(hi - lo, 1e-6)
    if max(first) > hi + span:
        ax.set_ylim(lo - 0.05 * span, hi + 0.3 * span)


def plot_losses(results: dict, lang: str = "en"):
    """Train (dashed) and validation (solid) loss of each run, and the gap between them.

    ``results`` maps a run label to a :class:`dropoutlib.train.RunResult` (``history``: dicts with
    ``step``, ``train_loss``, ``val_loss``). A run with one dropout rate is named ``p = <rate>``
    in the legend, so legends need no translation; other runs keep their label. When the first
    evaluation (the untrained model) is far above the rest, the y-axis is clipped above the later
    evaluations so that the differences between runs stay visible.
    """
    if not results:
        raise ValueError("results must hold at least one run, got an empty dict")
    flang = _figure_lang(lang)
    with plt.rc_context(rc_params(flang)):
        fig, (ax, ax_gap) = plt.subplots(
            1, 2, figsize=(11, 4), layout="constrained", gridspec_kw={"width_ratios": [3, 2]}
        )
        for i, (name, result) in enumerate(results.items()):
            color = f"C{i}"
            s_tr, tr = _curve(result.history, "train_loss")
            s_va, va = _curve(result.history, "val_loss")
            name = _run_name(name, result)
            ax.plot(s_tr, tr, "--", color=color, label=f"{name} · {label('train', flang)}")
            ax.plot(s_va, va, "-", color=color, label=f"{name} · {label('val', flang)}")
            train_at = dict(zip(s_tr, tr))
            gap = [(s, v - train_at[s]) for s, v in zip(s_va, va) if s in train_at]
            ax_gap.plot([s for s, _ in gap], [g for _, g in gap], "-", color=color, label=name)
        _focus_after_first_eval(ax)
        ax.set_xlabel(label("step", flang))
        ax.set_ylabel(label("loss", flang))
        ax.set_title(label("losses_title", flang))
        ax.grid(alpha=0.3)
        ax.legend()
        ax_gap.axhline(0.0, color="0.5", lw=0.8)
        ax_gap.set_xlabel(label("step", flang))
        ax_gap.set_ylabel(label("gap", flang))
        ax_gap.set_title(label("gap_title", flang))
        ax_gap.grid(alpha=0.3)
        ax_gap.legend()
    return fig


# ------------------------------------------------------------------------------------------------
# What dropout costs (dropoutlib.bench results)

_BENCH_LABELS = {
    "en": {
        "bench_title": (
            "What dropout costs: measured on {device} ({threads} threads), torch {torch}, {date}"
        ),
        "bench_speed": "Forward + backward speed",
        "bench_speed_x": "fraction of copy bandwidth (1 = as fast as a copy)",
        "bench_memory": "Saved for backward",
        "bench_memory_x": "bytes per input element",
        "bench_steps": "babyGPT training step",
        "bench_steps_x": "step time ÷ fused attention at p = 0",
        "bench_size": "x {shape}",
        "bench_setting": "block_size {block}",
        "bench_case:heads, dropout 0.2": "per-head attention, p = 0.2",
        "bench_case:heads, dropout 0": "per-head attention, p = 0",
        "bench_case:heads, LearnedDropout FFN": "per-head, LearnedDropout",
        "bench_case:fused, dropout 0.2": "fused attention, p = 0.2",
        "bench_case:fused, dropout 0": "fused attention, p = 0",
        "bench_case:fused, no dropout modules": "fused, no dropout modules",
        "bench_case:fused, LearnedDropout FFN": "fused, LearnedDropout",
        "bench_variant:nn.Dropout (native)": "nn.Dropout (native)",
        "bench_variant:dropout (generator)": "dropout (own generator)",
    },
    "ru": {
        "bench_title": (
            "Во что обходится dropout: {device} (потоков: {threads}), torch {torch}, {date}"
        ),
        "bench_speed": "Скорость прямого и обратного прохода",
        "bench_speed_x": "доля от скорости копирования (1 = как при копировании)",
        "bench_memory": "Сохраняется для обратного прохода",
        "bench_memory_x": "байт на элемент входа",
        "bench_steps": "Шаг обучения babyGPT",
        "bench_steps_x": "время шага ÷ слитое при p = 0",
        "bench_size": "x {shape}",
        "bench_setting": "block_size {block}",
        "bench_case:heads, dropout 0.2": "внимание по головам, p = 0.2",
        "bench_case:heads, dropout 0": "внимание по головам, p = 0",
        "bench_case:heads, LearnedDropout FFN": "по головам, LearnedDropout",
        "bench_case:fused, dropout 0.2": "слитое внимание, p = 0.2",
        "bench_case:fused, dropout 0": "слитое внимание, p = 0",
        "bench_case:fused, no dropout modules": "слитое, без модулей dropout",
        "bench_case:fused, LearnedDropout FFN": "слитое, LearnedDropout",
        "bench_variant:nn.Dropout (native)": "nn.Dropout (встроенный)",
        "bench_variant:dropout (generator)": "dropout (свой генератор)",
    },
    "zh": {
        "bench_title": "暂退法的代价：测于 {device}（{threads} 个线程），torch {torch}，{date}",
        "bench_speed": "前向 + 反向速度",
        "bench_speed_x": "相对复制带宽的比例（1 = 与复制一样快）",
        "bench_memory": "为反向传播保存的数据",
        "bench_memory_x": "每个输入元素的字节数",
        "bench_steps": "babyGPT 单步训练",
        "bench_steps_x": "单步时间 ÷ 融合注意力（p = 0）",
        "bench_size": "x {shape}",
        "bench_setting": "block_size {block}",
        "bench_case:heads, dropout 0.2": "逐头注意力，p = 0.2",
        "bench_case:heads, dropout 0": "逐头注意力，p = 0",
        "bench_case:heads, LearnedDropout FFN": "逐头，LearnedDropout",
        "bench_case:fused, dropout 0.2": "融合注意力，p = 0.2",
        "bench_case:fused, dropout 0": "融合注意力，p = 0",
        "bench_case:fused, no dropout modules": "融合，无暂退模块",
        "bench_case:fused, LearnedDropout FFN": "融合，LearnedDropout",
        "bench_variant:nn.Dropout (native)": "nn.Dropout（原生）",
        "bench_variant:dropout (generator)": "dropout（自带生成器）",
    },
}
for _lang, _table in _BENCH_LABELS.items():
    LABELS[_lang].update(_table)


def _bench_name(kind: str, name: str, lang: str) -> str:
    """A variant or model name as shown: translated where it is prose, else the code name."""
    key = f"bench_{kind}:{name}"
    return label(key, lang) if key in LABELS[lang] else name


def plot_bench(results: dict, lang: str = "en"):
    """The benchmark of :mod:`dropoutlib.bench` in three panels, from its JSON (a dict).

    Left: forward + backward speed of each variant as a fraction of a plain copy of the same
    tensors (the memory-bandwidth limit), one bar per activation size. Middle: bytes each variant
    keeps for backward per input element. Right: babyGPT training-step time of each model,
    relative to fused attention at p = 0, per setting. The title names the device, torch version
    and date of the measurement. Parts missing from ``results`` leave their panel out.
    """
    panels = [k for k in ("throughput", "memory", "steps") if results.get(k)]
    if not panels:
        raise ValueError("results has none of 'throughput', 'memory', 'steps': nothing to plot")
    flang = _figure_lang(lang)
    env = results.get("env", {})
    with plt.rc_context(rc_params(flang)):
        fig, axes = plt.subplots(
            1, len(panels), figsize=(5.2 * len(panels), 5.6), layout="constrained", squeeze=False
        )
        for ax, panel in zip(axes[0], panels):
            if panel == "throughput":
                sizes = results["throughput"]
                names = [r["name"] for r in sizes[0]["rows"] if r["name"] != "copy (reference)"]
                height = 0.8 / len(sizes)
                for i, size in enumerate(sizes):
                    rows = {r["name"]: r for r in size["rows"]}
                    ys = [k + i * height for k in range(len(names))]
                    shape = "×".join(map(str, size["shape"]))
                    ax.barh(
                        ys,
                        [rows[n]["fraction_of_copy"] for n in names],
                        height=height,
                        color=f"C{i}",
                        label=label("bench_size", flang, shape=shape),
                    )
                ax.set_yticks([k + 0.4 - height / 2 for k in range(len(names))])
                ax.set_yticklabels([_bench_name("variant", n, flang) for n in names])
                ax.axvline(1.0, color="0.4", lw=0.8, ls="--")
                ax.set_xscale("log")
                ax.set_xlabel(label("bench_speed_x", flang))
                ax.set_title(label("bench_speed", flang))
            elif panel == "memory":
                rows = results["memory"]["rows"]
                ax.barh(range(len(rows)), [r["bytes_per_element"] for r in rows], color="C2")
                ax.set_yticks(range(len(rows)))
                ax.set_yticklabels([_bench_name("variant", r["name"], flang) for r in rows])
                for k, r in enumerate(rows):
                    ax.annotate(
                        f"{r['bytes_per_element']:.2g}",
                        (r["bytes_per_element"], k),
                        xytext=(3, 0),
                        textcoords="offset points",
                        va="center",
                        fontsize="small",
                    )
                ax.set_xlabel(label("bench_memory_x", flang))
                ax.set_title(label("bench_memory", flang))
            else:
                settings = results["steps"]
                names = [r["name"] for r in settings[0]["rows"]]
                height = 0.8 / len(settings)
                for i, s in enumerate(settings):
                    med = {r["name"]: r["median_s"] for r in s["rows"]}
                    base = med["fused, dropout 0"]
                    ks = [k for k, n in enumerate(names) if n in med]
                    ax.barh(
                        [k + i * height for k in ks],
                        [med[names[k]] / base for k in ks],
                        height=height,
                        color=f"C{i + 3}",
                        label=label("bench_setting", flang, block=s["config"]["block_size"]),
                    )
                ax.set_yticks([k + 0.4 - height / 2 for k in range(len(names))])
                ax.set_yticklabels([_bench_name("case", n, flang) for n in names])
                ax.axvline(1.0, color="0.4", lw=0.8, ls="--")
                ax.set_xlabel(label("bench_steps_x", flang))
                ax.set_title(label("bench_steps", flang))
            ax.invert_yaxis()
            ax.grid(axis="x", alpha=0.3)
            if panel != "memory":
                ax.legend(fontsize="small")
        fig.suptitle(
            label(
                "bench_title",
                flang,
                device=env.get("device_name", "?"),
                threads=env.get("threads", "?"),
                torch=env.get("torch_version", "?"),
                date=str(env.get("date", "?"))[:10],
            )
        )
    return fig


# ------------------------------------------------------------------------------------------------
# LearnedDropout masks over training (experiment "learned-dropout-shakespeare")

_MASK_LABELS = {
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
for _lang, _table in _MASK_LABELS.items():
    LABELS[_lang].update(_table)


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
    flang = _figure_lang(lang)
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
