"""Training curves, shared by every chapter that trains: loss against step and the gap."""

from __future__ import annotations

import matplotlib.pyplot as plt

from dropoutlib.viz.core import figure_lang, label, rc_params

__all__ = ["plot_losses"]


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
    flang = figure_lang(lang)
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
