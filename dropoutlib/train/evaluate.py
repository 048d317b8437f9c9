"""Evaluation: the loss of the full network (every dropout off) on random batches of each split.

* :func:`estimate_loss`: what the trainer logs, on the run's own corpus;
* :func:`loss_on_corpus`: the loss of a finished run's model on a split of *another* corpus with
  the same vocabulary, e.g. how much a model fine-tuned on Su Shi forgot of the rest of Song ci.
"""

from __future__ import annotations

import torch
from torch import nn

from dropoutlib.train.devices import autocast

__all__ = ["estimate_loss", "loss_on_corpus"]


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


SPLITS = ("train", "val")


def loss_on_corpus(
    result,
    corpus: str,
    split: str = "val",
    *,
    eval_iters: int | None = None,
    batch_size: int | None = None,
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> float:
    """The mean cross-entropy of ``result``'s trained model on ``split`` of ``corpus``.

    ``result`` is a finished :class:`~dropoutlib.train.RunResult` (its stored weights, checked
    against their sha256, or the model trained in this process; LoRA adapters included);
    ``corpus`` must share the vocabulary of the run's corpus (:func:`dropoutlib.data.vocab_corpus`:
    ``song_ci``, ``song_ci_su_shi`` and ``song_ci_without_su_shi`` do), ``split`` is ``"train"``
    or ``"val"`` (the first 90 % and the rest, as every run splits). The loss is
    :func:`estimate_loss`'s, in eval mode, over ``eval_iters`` batches of ``batch_size`` windows
    (default: the run's own) drawn from a generator seeded with ``seed``: every model evaluated
    with the same arguments sees the same batches, so the losses of several runs are paired.
    """
    from dropoutlib.data import CORPORA, vocab_corpus
    from dropoutlib.train.batches import corpus_tensors

    if corpus not in CORPORA:
        raise ValueError(f"corpus must be one of {CORPORA}, got {corpus!r}")
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if vocab_corpus(corpus) != vocab_corpus(result.corpus):
        raise ValueError(
            f"corpus {corpus!r} has the vocabulary of {vocab_corpus(corpus)!r}, but the run was "
            f"trained on {result.corpus!r} with the vocabulary of {vocab_corpus(result.corpus)!r}"
        )
    tc = result.train_config
    eval_iters = tc["eval_iters"] if eval_iters is None else eval_iters
    batch_size = tc["batch_size"] if batch_size is None else batch_size
    for name, value in (("eval_iters", eval_iters), ("batch_size", batch_size), ("seed", seed)):
        low = 0 if name == "seed" else 1
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    _, train_data, val_data = corpus_tensors(corpus)
    model = result.load_model(device)
    losses = estimate_loss(
        model,
        {split: train_data if split == "train" else val_data},
        block_size=result.model_config["block_size"],
        batch_size=batch_size,
        eval_iters=eval_iters,
        generator=torch.Generator().manual_seed(seed),
        device=device,
    )
    return losses[split]
