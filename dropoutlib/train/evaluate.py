"""Evaluation: the loss of the full network (every dropout off) on random batches of each split."""

from __future__ import annotations

import torch
from torch import nn

from dropoutlib.train.devices import autocast

__all__ = ["estimate_loss"]


@torch.no_grad()
def estimate_loss(
    model: nn.Module,
    splits: dict[str, torch.Tensor],
    *,
    block_size: int,
    batch_size: int,
    eval_iters: int,
    generator: torch.Generator,
    device: str | torch.device = "cpu",
    amp_dtype: torch.dtype | None = None,
) -> dict[str, float]:
    """Mean cross-entropy over ``eval_iters`` random batches of each split, babyGPT's
    ``estimate_loss``, with the model in eval mode (every dropout off) and batches drawn from
    ``generator`` (splits in the order given). The model's train/eval mode is restored."""
    from dropoutlib.data import get_batch

    device = torch.device(device)
    was_training = model.training
    model.eval()
    try:
        out = {}
        for name, data in splits.items():
            losses = torch.empty(eval_iters, device=device)
            for k in range(eval_iters):
                x, y = get_batch(data, block_size, batch_size, generator, device)
                with autocast(device, amp_dtype):
                    _, loss = model(x, y)
                losses[k] = loss.float()
            out[name] = losses.mean().item()
    finally:
        model.train(was_training)
    return out
