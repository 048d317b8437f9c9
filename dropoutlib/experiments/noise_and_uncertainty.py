"""Chapter 05, noise and uncertainty: Concrete dropout, R-Drop and MC dropout on babyGPT in the
course's data-constrained setting (:func:`~dropoutlib.experiments.data_constrained`), and a deep
SELU stack for Alpha dropout.

* ``concrete-dropout``: ConcreteDropout at the embedding, attention-output and FFN-output sites,
  each layer learning its own rate from the start value :data:`CONCRETE_START`.
* ``r-drop``: standard dropout 0.2 (the shared setting's run) against the same with R-Drop.
* ``mc-dropout``: the runs MC dropout is applied to: standard dropout 0.2 and no dropout.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from dropoutlib.experiments.core import RunSpec, data_constrained, experiment

__all__ = ["CONCRETE_START", "R_DROP_ALPHA", "selu_stack_moments"]

CONCRETE_START = 0.2
R_DROP_ALPHA = 1.0
STANDARD_RATE = 0.2


@experiment("concrete-dropout")
def _concrete_dropout(profile: str) -> dict[str, RunSpec]:
    """babyGPT in the data-constrained setting with ConcreteDropout (Gal, Hron, Kendall 2017)
    at three sites per layer: the embedding (one site), the attention output and the FFN
    output; each starts at :data:`CONCRETE_START` and learns its rate. The attention weights have
    no dropout. The trainer adds the dropout term of the regulariser with N = the training
    tokens (:mod:`dropoutlib.train.objective`). The standard-dropout run at the same start rate
    is the reference."""
    p = CONCRETE_START
    concrete = {
        "embd_kind": "concrete",
        "embd_dropout": p,
        "resid_kind": "concrete",
        "resid_dropout": p,
        "ffn_kind": "concrete",
        "ffn_dropout": p,
    }
    return {
        "concrete": data_constrained(profile, model=concrete),
        "standard": data_constrained(profile, model={"dropout": STANDARD_RATE}),
    }


@experiment("r-drop")
def _r_drop(profile: str) -> dict[str, RunSpec]:
    """R-Drop (Liang et al., NeurIPS 2021) against plain dropout: babyGPT with standard dropout
    0.2 at its three sites, trained with and without the symmetric-KL term of weight
    :data:`R_DROP_ALPHA` between two dropout passes (each step then costs two forward passes)."""
    model = {"dropout": STANDARD_RATE}
    return {
        "standard": data_constrained(profile, model=model),
        "r-drop": data_constrained(profile, model=model, r_drop_alpha=R_DROP_ALPHA),
    }


@experiment("mc-dropout")
def _mc_dropout(profile: str) -> dict[str, RunSpec]:
    """The trained models MC dropout studies: babyGPT with standard dropout 0.2 at its three
    sites, and without dropout (where MC sampling has nothing to sample: its passes agree)."""
    return {
        "standard": data_constrained(profile, model={"dropout": STANDARD_RATE}),
        "none": data_constrained(profile),
    }


@torch.no_grad()
def selu_stack_moments(
    kind: str,
    *,
    depth: int = 32,
    width: int = 256,
    n: int = 2048,
    p: float = 0.1,
    seed: int = 0,
) -> list[tuple[float, float]]:
    """Mean and variance of the activations after each layer of a deep self-normalising MLP.

    ``depth`` layers ``x <- drop(selu(W x))`` of ``width`` units, weights LeCun-normal
    (``N(0, 1 / width)``, no bias), as Klambauer et al. (2017) prescribe, on ``n`` inputs drawn
    from ``N(0, 1)``. ``kind`` is the dropout after each SELU, in training mode: ``"none"``,
    ``"standard"`` (inverted Bernoulli dropout) or ``"alpha"`` (Alpha dropout), at rate ``p``.
    Returns ``(mean, variance)`` over all units and inputs after every layer (``depth`` pairs).
    Without dropout and with Alpha dropout both stay near (0, 1); standard dropout moves them.
    """
    from dropoutlib import functional as DF

    if kind not in ("none", "standard", "alpha"):
        raise ValueError(f"kind must be 'none', 'standard' or 'alpha', got {kind!r}")
    for name, value in (("depth", depth), ("width", width), ("n", n)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, width, generator=g)
    out = []
    for _ in range(depth):
        w = torch.randn(width, width, generator=g) / math.sqrt(width)
        x = nn.functional.selu(x @ w.T)
        if kind == "standard":
            x = DF.dropout(x, p, generator=g)
        elif kind == "alpha":
            x = DF.alpha_dropout(x, p, generator=g)
        out.append((float(x.mean()), float(x.var())))
    return out
