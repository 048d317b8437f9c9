"""Reading a run's loss history: where the validation loss bottoms out, and whether it overfits.

A history is what :func:`dropoutlib.train.train` records (``RunResult.history``): one dict per
evaluation with ``step``, ``train_loss`` and ``val_loss`` (both measured in eval mode, so with
every dropout off), and extra keys (``epoch``, ``dropout_p``) that these functions ignore.

**Overfitting**, as this course reads it from a history (chapter 03): after the evaluation where
the validation loss is lowest, the validation loss *ends* at least ``min_rise`` above that
minimum, while the training loss ends *below* its value there. The model got better at its
training text and worse at new text: the generalization gap grew. The run overfits *from* the
step of the minimum, which is also where early stopping would have kept the model.

Two shapes are not overfitting by this rule: a validation loss still falling at the end (an
underfitting or still-training run: its minimum is its last evaluation), and a validation loss
that rises together with the training loss (the optimisation itself went wrong, e.g. a learning
rate too high). A rise smaller than ``min_rise`` is treated as evaluation noise.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence

__all__ = ["best_entry", "evaluation_wiggle", "overfitting_step", "run_summary"]


def _check_history(history) -> list[Mapping]:
    if isinstance(history, (str, bytes)) or not isinstance(history, Sequence):
        raise TypeError(
            f"history must be a list of dicts with 'step', 'train_loss' and 'val_loss', "
            f"got {type(history).__name__}"
        )
    for i, entry in enumerate(history):
        if not isinstance(entry, Mapping):
            raise TypeError(f"history[{i}] must be a dict, got {type(entry).__name__}")
        missing = [k for k in ("step", "train_loss", "val_loss") if k not in entry]
        if missing:
            raise ValueError(f"history[{i}] lacks {missing}: got keys {sorted(entry)}")
    return list(history)


def best_entry(history) -> Mapping | None:
    """The evaluation with the lowest validation loss (the first one if several tie), or None
    for an empty history."""
    history = _check_history(history)
    if not history:
        return None
    return min(history, key=lambda e: e["val_loss"])  # min keeps the first of equal values


def overfitting_step(history, *, min_rise: float = 0.02) -> int | None:
    """The step from which a run overfits, or ``None`` if it does not (see the module docstring).

    ``history``: evaluations in training order, each a dict with ``step``, ``train_loss`` and
    ``val_loss``. Returns the ``step`` of the lowest validation loss (the first, if tied) when

    * the last validation loss is at least ``min_rise`` (nats) above that minimum, and
    * the last training loss is below the training loss at that minimum;

    else ``None`` (also for fewer than two evaluations). ``min_rise`` must be a finite number
    >= 0.
    """
    if (
        isinstance(min_rise, bool)
        or not isinstance(min_rise, numbers.Real)
        or not math.isfinite(min_rise)
        or min_rise < 0
    ):
        raise ValueError(f"min_rise must be a finite number >= 0, got {min_rise!r}")
    history = _check_history(history)
    if len(history) < 2:
        return None
    best = best_entry(history)
    last = history[-1]
    rose = last["val_loss"] - best["val_loss"] >= min_rise
    still_fitting = last["train_loss"] < best["train_loss"]
    return int(best["step"]) if rose and still_fitting else None


def run_summary(result, *, min_rise: float = 0.02) -> dict:
    """The numbers a chapter reads off one finished run (a :class:`~dropoutlib.train.RunResult`):

    ``p`` (the global dropout rate of its model config), ``n_embd``, ``train_tokens`` (training
    characters actually used), ``epochs`` (passes over them by the last step), ``final_train``,
    ``final_val``, ``gap`` (final validation minus final training loss), ``best_val`` and
    ``best_step`` (the lowest validation loss and where it was), ``overfit_step``
    (:func:`overfitting_step`, None if the run does not overfit) and ``num_params``.
    """
    history = _check_history(result.history)
    if not history:
        raise ValueError("the run has an empty history: nothing was evaluated")
    final, best = history[-1], best_entry(history)
    config = result.model_config or {}
    return {
        "p": config.get("dropout"),
        "n_embd": config.get("n_embd"),
        "train_tokens": result.train_tokens,
        "epochs": final.get("epoch"),
        "final_train": final["train_loss"],
        "final_val": final["val_loss"],
        "gap": final["val_loss"] - final["train_loss"],
        "best_val": best["val_loss"],
        "best_step": best["step"],
        "overfit_step": overfitting_step(history, min_rise=min_rise),
        "num_params": result.num_params,
    }


def evaluation_wiggle(histories, *, after: int = 0) -> float:
    """How much a validation loss moves from one evaluation to the next: the median of
    ``|val[i+1] - val[i]|`` over consecutive evaluations of every history in ``histories``
    (a list of histories) whose first evaluation is at step >= ``after``.

    A yardstick for single-seed comparisons: two runs whose last validation losses differ by
    less than this are not told apart by one evaluation. (The median of a trend plus noise;
    it is not a standard error.)"""
    changes = []
    for history in histories:
        history = _check_history(history)
        for a, b in zip(history, history[1:]):
            if a["step"] >= after:
                changes.append(abs(b["val_loss"] - a["val_loss"]))
    if not changes:
        raise ValueError(f"no two consecutive evaluations at step >= {after}")
    changes.sort()
    n = len(changes)
    return changes[n // 2] if n % 2 else (changes[n // 2 - 1] + changes[n // 2]) / 2
