"""The training objective: cross-entropy plus whatever the run's regularisers add.

Every term here is for training only; the losses a run reports (:mod:`.evaluate`) stay plain
cross-entropy in eval mode, so runs with different regularisers compare.

* ``label_smoothing``: ``F.cross_entropy(..., label_smoothing=eps)``: the target distribution is
  ``(1 - eps)`` on the right token plus ``eps / V`` spread over the vocabulary.
* ``r_drop_alpha``: R-Drop (Liang et al., NeurIPS 2021). The batch goes through the model twice
  (as one batch of 2B, so the two halves draw independent dropout masks, as the authors'
  implementation does); the loss is the mean of the two cross-entropies plus
  ``alpha * (KL(P1||P2) + KL(P2||P1)) / 2`` per token (:func:`dropoutlib.r_drop_loss`).
* LearnedDropout's mask penalty (:func:`dropoutlib.learned.penalty_loss`), when the model has
  LearnedDropout modules and ``penalty`` is set.
* Concrete dropout's regulariser (Gal, Hron, Kendall 2017), when the model has
  :class:`~dropoutlib.ConcreteDropout` modules: the sum of their ``regularizer()``.
  :func:`setup_concrete` gives each module ``dropout_regularizer = 1 / N`` with N the number
  of training tokens (each token is one example whose ``in_features`` units are dropped): the
  KL term of the objective divided by N. (The authors' regression notebook uses ``2 / N``
  because its Euclidean loss leaves out the Gaussian likelihood's factor 1/2; a cross-entropy
  is the log-likelihood itself.) babyGPT's concrete sites wrap no layer, so the weight term is
  absent.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["setup_concrete", "training_loss"]


def _cross_entropy(logits: torch.Tensor, y: torch.Tensor, smoothing: float) -> torch.Tensor:
    # The same call as BabyGPT.forward's (flattened, mean over positions), so runs without
    # regularisers compute exactly what the model's own loss would.
    if smoothing == 0.0:
        return F.cross_entropy(logits.flatten(0, 1), y.flatten())
    return F.cross_entropy(logits.flatten(0, 1), y.flatten(), label_smoothing=smoothing)


def setup_concrete(model: nn.Module, n_train: int) -> list[nn.Module]:
    """The ConcreteDropout modules of ``model``, each given ``dropout_regularizer = 1 / n_train``
    (the KL term per example for a cross-entropy loss, ``n_train`` training examples); [] if
    none."""
    from dropoutlib.layers import ConcreteDropout

    found = [m for m in model.modules() if isinstance(m, ConcreteDropout)]
    for m in found:
        m.dropout_regularizer = 1.0 / n_train
    return found


def training_loss(
    model: nn.Module, x, y, tc, *, step: int, raw_model=None, learned=None, concrete=()
):
    """The loss the optimizer minimises at ``step`` (1-based) for batch ``(x, y)``;
    ``concrete`` lists the model's ConcreteDropout modules (:func:`setup_concrete`)."""
    from dropoutlib.uncertainty import r_drop_loss

    if tc.r_drop_alpha > 0:
        logits, _ = model(torch.cat([x, x]))
        first, second = logits.chunk(2)
        loss = 0.5 * (
            _cross_entropy(first, y, tc.label_smoothing)
            + _cross_entropy(second, y, tc.label_smoothing)
        )
        loss = loss + r_drop_loss(first, second, tc.r_drop_alpha)
    else:
        logits, _ = model(x)
        loss = _cross_entropy(logits, y, tc.label_smoothing)
    for module in concrete:
        loss = loss + module.regularizer()
    if learned is not None and tc.penalty is not None:
        loss = loss + learned.penalty_loss(
            raw_model if raw_model is not None else model,
            step - 1,
            kind=tc.penalty,
            coeff=tc.penalty_coeff,
            schedule=tc.penalty_schedule,
        )
    return loss
