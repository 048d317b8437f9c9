"""Chapter 09, dropout at scale: dropout next to the other regularisers of seed 001.

* ``regularisers-data-constrained``: babyGPT in the course's data-constrained setting
  (:func:`dropoutlib.experiments.data_constrained`), once without any regulariser and once with
  each of dropout, weight decay, label smoothing, gradient clipping and token masking, each
  through the trainer's own field.
"""

from __future__ import annotations

from dropoutlib.experiments.core import RunSpec, data_constrained, experiment

# Each regulariser at the value seed 001 prints (label smoothing 0.1, clipping at norm 1.0) or
# the common one: dropout 0.2 (babyGPT v10, gpt.py); weight decay 0.1 (nanoGPT's train.py; the
# unregularised run already has AdamW's default 0.01, applied to every parameter as babyGPT
# does); token masking 0.1 (one input token in ten replaced by a random one).
REGULARISERS: dict[str, tuple[dict, dict]] = {
    "none": ({}, {}),
    "dropout 0.2": ({"dropout": 0.2}, {}),
    "weight decay 0.1": ({}, {"weight_decay": 0.1}),
    "label smoothing 0.1": ({}, {"label_smoothing": 0.1}),
    "gradient clipping 1.0": ({}, {"grad_clip": 1.0}),
    "token masking 0.1": ({}, {"token_mask_rate": 0.1}),
}


@experiment("regularisers-data-constrained")
def _regularisers_data_constrained(profile: str) -> dict[str, RunSpec]:
    """Dropout against weight decay, label smoothing, gradient clipping and token masking.

    Every run is the shared data-constrained setting (``cpu``: 3 layers, 64 dims, context 32,
    600 steps over 10,000 characters of Shakespeare, about 31 epochs; ``gpu``: gpt.py's scale on
    250,000 characters) with one regulariser switched on (:data:`REGULARISERS`); ``"none"`` and
    ``"dropout 0.2"`` are the same runs as in the other chapters that use the setting, so they
    come from the cache there. Losses are plain cross-entropy in eval mode whatever the
    training loss adds (label smoothing changes only the training objective).
    """
    return {
        label: data_constrained(profile, model=model, **train)
        for label, (model, train) in REGULARISERS.items()
    }
