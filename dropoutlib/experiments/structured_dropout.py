"""Chapter 04, structured dropout: each variant at its natural site of babyGPT, in the course's
data-constrained setting (:func:`~dropoutlib.experiments.data_constrained`).

* ``structured-dropout``: no dropout; standard dropout at babyGPT's three sites; and each
  structured variant alone at its natural site, all at the same rate :data:`STRUCTURED_RATE`.
  The runs ``"none"`` and ``"standard"`` are the shared setting's own (cached across chapters).
* ``structured-dropout-seeds``: the ``"standard"`` run with two more seeds, :data:`SEEDS`: the
  run-to-run spread that differences between the variants must exceed to mean anything.
"""

from __future__ import annotations

import dataclasses

from dropoutlib.experiments.core import RunSpec, data_constrained, experiment

__all__ = ["SEEDS", "STRUCTURED_RATE", "STRUCTURED_SITES", "structured_runs"]

STRUCTURED_RATE = 0.2
SEEDS = (1, 2)  # beside the setting's own seed, 1337

# Each variant alone, at its natural site(s) of babyGPT (GPTConfig fields), every other site 0.
# "standard" is babyGPT v10's dropout: attention weights, attention output and FFN output.
# Spatial dropout on a (B, T, C) sequence drops whole channels for every position: the mask of
# locked (variational) dropout, so one run ("locked") stands for both.
STRUCTURED_SITES: dict[str, dict] = {
    "none": {},
    "standard": {"dropout": STRUCTURED_RATE},
    "dropconnect": {"ffn_kind": "dropconnect", "ffn_dropout": STRUCTURED_RATE},
    "locked": {
        "embd_kind": "locked",
        "embd_dropout": STRUCTURED_RATE,
        "resid_kind": "locked",
        "resid_dropout": STRUCTURED_RATE,
        "ffn_kind": "locked",
        "ffn_dropout": STRUCTURED_RATE,
    },
    "token": {"embd_kind": "token", "embd_dropout": STRUCTURED_RATE},
    "droppath": {
        "resid_kind": "droppath",
        "resid_dropout": STRUCTURED_RATE,
        "ffn_kind": "droppath",
        "ffn_dropout": STRUCTURED_RATE,
    },
    "drophead": {"attn_kind": "drophead", "attn_dropout": STRUCTURED_RATE},
    "layerdrop": {"layerdrop": STRUCTURED_RATE},
}


def structured_runs(profile: str) -> dict[str, RunSpec]:
    """The runs of ``structured-dropout`` under ``profile``, by name (see the module doc)."""
    return {
        name: data_constrained(profile, model=dict(sites))
        for name, sites in STRUCTURED_SITES.items()
    }


@experiment("structured-dropout")
def _structured_dropout(profile: str) -> dict[str, RunSpec]:
    """babyGPT in the data-constrained setting with each structured variant alone at its
    natural site, against standard dropout at the same rate and against no dropout.

    Rate 0.2 everywhere. Sites (:data:`STRUCTURED_SITES`): DropConnect on both FFN weight
    matrices; locked dropout (= spatial dropout on ``(B, T, C)``) on the embedding, attention
    output and FFN output; embedding dropout of whole token types; DropPath on both residual
    branches; DropHead on the attention heads; LayerDrop over the blocks. The variants do not
    drop the same number of units, so this compares them as one would use them, not unit for
    unit. Profiles as :func:`~dropoutlib.experiments.data_constrained`.
    """
    return structured_runs(profile)


@experiment("structured-dropout-seeds")
def _structured_dropout_seeds(profile: str) -> dict[str, RunSpec]:
    """The ``"standard"`` run of ``structured-dropout`` again with the seeds :data:`SEEDS` (the
    initial weights, the batches and the masks all change): with the original, three runs of
    one setting, whose spread is the noise floor of the comparison."""
    spec = structured_runs(profile)["standard"]
    return {
        f"standard, seed {seed}": dataclasses.replace(
            spec, train=dataclasses.replace(spec.train, seed=seed)
        )
        for seed in SEEDS
    }
