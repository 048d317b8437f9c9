"""Pruning whole blocks at inference: LayerDrop's second half (Fan, Grave, Joulin, ICLR 2020).

A model trained with LayerDrop has learned to work with random blocks missing, so at inference
whole blocks can be removed ("pruned") to make it shallower and faster. This module measures
what that costs for a :class:`~dropoutlib.BabyGPT`: :func:`keep_blocks` runs the model with a
chosen subset of its blocks, and :func:`pruning_curve` evaluates the loss for every number of
removed blocks, over all subsets of blocks of that size. (The paper prunes with a fixed
"every other" choice of blocks; evaluating every subset shows the best and the worst choice
as well, which at babyGPT's few blocks costs little.)

The same measurement on a model trained without LayerDrop is the control: it shows how much of
the robustness comes from LayerDrop rather than from the residual stream alone.
"""

from __future__ import annotations

import contextlib
import itertools
import numbers
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import nn

__all__ = ["PruningPoint", "blocks_of", "keep_blocks", "pruning_curve"]


def blocks_of(model: nn.Module) -> list[nn.Module]:
    """The transformer blocks of a BabyGPT, in order, whether or not it has LayerDrop."""
    blocks = getattr(model, "blocks", None)
    if blocks is None or not isinstance(blocks, nn.Module):
        raise ValueError(f"model must have a .blocks container (a BabyGPT), got {type(model)}")
    return list(blocks)


def _check_keep(keep, n: int) -> list[int]:
    if isinstance(keep, (str, bytes)) or not isinstance(keep, Sequence):
        raise ValueError(f"keep must be a sequence of block indices, got {keep!r}")
    out = []
    for i in keep:
        if isinstance(i, bool) or not isinstance(i, numbers.Integral) or not 0 <= i < n:
            raise ValueError(f"keep must hold block indices in [0, {n - 1}], got {list(keep)}")
        out.append(int(i))
    if sorted(set(out)) != out:
        raise ValueError(f"keep must be strictly increasing (each block once), got {list(keep)}")
    return out


@contextlib.contextmanager
def keep_blocks(model: nn.Module, keep: Sequence[int]) -> Iterator[nn.Module]:
    """Context in which ``model`` (a BabyGPT) runs only the blocks listed in ``keep``.

    ``keep`` holds block indices in increasing order; ``[]`` leaves only the embeddings, the
    final LayerNorm and the output layer. The blocks themselves are not changed (their weights
    and modes stay as they are); on exit the model gets its own block container back, even after
    an exception. Used with the model in eval mode this is LayerDrop's pruning at inference
    (``--decoder-layers-to-keep`` in fairseq). Yields ``model``.
    """
    blocks = blocks_of(model)
    keep = _check_keep(keep, len(blocks))
    original = model.blocks
    model.blocks = nn.ModuleList([blocks[i] for i in keep])
    try:
        yield model
    finally:
        model.blocks = original


@dataclass(frozen=True)
class PruningPoint:
    """The losses of a model with ``removed`` blocks pruned: one per subset evaluated
    (``subsets``, the kept block indices), their ``mean``, ``best`` (lowest) and ``worst``."""

    removed: int
    subsets: tuple[tuple[int, ...], ...]
    losses: tuple[float, ...]

    @property
    def mean(self) -> float:
        return sum(self.losses) / len(self.losses)

    @property
    def best(self) -> float:
        return min(self.losses)

    @property
    def worst(self) -> float:
        return max(self.losses)


@torch.no_grad()
def _mean_loss(model: nn.Module, batches) -> float:
    total = 0.0
    for x, y in batches:
        _, loss = model(x, y)
        total += float(loss)
    return total / len(batches)


@torch.no_grad()
def pruning_curve(
    model: nn.Module, batches, *, max_subsets: int | None = None
) -> list[PruningPoint]:
    """The mean cross-entropy of ``model`` on ``batches`` with 0, 1, ..., n_layer blocks
    removed at inference, one :class:`PruningPoint` per number removed.

    ``batches`` is a list of ``(x, y)`` token tensors (the same batches for every subset). Every
    subset of blocks of each size is evaluated (``2 ** n_layer`` sweeps over the batches in
    all), or at most ``max_subsets`` per size, spread evenly over their lexicographic order. The
    model runs in eval mode (its mode is restored afterwards).
    """
    if max_subsets is not None and (
        isinstance(max_subsets, bool) or not isinstance(max_subsets, int) or max_subsets < 1
    ):
        raise ValueError(f"max_subsets must be a positive int or None, got {max_subsets!r}")
    batches = list(batches)
    if not batches:
        raise ValueError("batches must hold at least one (x, y) pair")
    n = len(blocks_of(model))
    was_training = model.training
    model.eval()
    points = []
    try:
        for removed in range(n + 1):
            kept_sets = list(itertools.combinations(range(n), n - removed))
            if max_subsets is not None and len(kept_sets) > max_subsets:
                stride = len(kept_sets) / max_subsets
                kept_sets = [kept_sets[int(i * stride)] for i in range(max_subsets)]
            losses = []
            for kept in kept_sets:
                with keep_blocks(model, list(kept)):
                    losses.append(_mean_loss(model, batches))
            points.append(PruningPoint(removed, tuple(kept_sets), tuple(losses)))
    finally:
        model.train(was_training)
    return points
