"""Chapter 01, standard dropout: masks on an activation map, and the slider over p."""

from __future__ import annotations

import io
import math

import matplotlib.pyplot as plt
import torch

from dropoutlib.viz.core import add_labels, check_lang, figure_lang, label, rc_params

__all__ = ["activation_map", "plot_masks", "dropout_widget"]

_LABELS = {
    "en": {
        "input": "input x",
        "mask": "mask m",
        "output": "output y = m·x / (1 − p)",
        "kept": "kept {kept:.0%}",
        "mean": "mean {mean:.3f}",
        "masks_title": "Inverted dropout on one {h}×{w} activation map (mean of x: {mean:.3f})",
        "activation": "activation",
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
        "masks_title": "Инвертированный dropout на карте активаций {h}×{w} (среднее x: {mean:.3f})",
        "activation": "активация",
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
        "drop_rate": "暂退概率 p",
        "histogram_title": "y 的非零值",
        "count": "频数",
    },
}
add_labels(_LABELS)


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
    flang = figure_lang(lang)
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
    flang = figure_lang(lang)
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
