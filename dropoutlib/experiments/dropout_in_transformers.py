"""Chapter 02, dropout inside a transformer: which site matters.

* ``dropout-site-ablation``: babyGPT in the course's data-constrained setting
  (:func:`~dropoutlib.experiments.core.data_constrained`), with dropout at one site at a time
  (embedding, attention weights, attention output, FFN output), at none, at v10's three and at
  all four.
"""

from __future__ import annotations

from dropoutlib.experiments.core import RunSpec, data_constrained, experiment

# The rate every ablated site gets: babyGPT v10's and gpt.py's 0.2.
SITE_RATE = 0.2

# label -> the GPTConfig fields that put SITE_RATE at those sites (every other rate stays 0).
# "attention output" is the residual dropout after the attention projection (resid_dropout);
# "FFN output" the one after the feed-forward network, both before the residual add.
SITES: dict[str, tuple[str, ...]] = {
    "none": (),
    "embedding": ("embd_dropout",),
    "attention weights": ("attn_dropout",),
    "attention output": ("resid_dropout",),
    "FFN output": ("ffn_dropout",),
    "v10's three": ("dropout",),
    "all": ("dropout", "embd_dropout"),
}


def site_model(fields: tuple[str, ...], p: float = SITE_RATE) -> dict:
    """GPTConfig overrides that put rate ``p`` at the sites ``fields`` and 0 everywhere else.
    ``"dropout"`` is the global rate of babyGPT v10's three sites (attention weights, attention
    output, FFN output), so ``{"dropout": 0.2}`` is the same run as the other chapters' dropout
    0.2 in this setting (one cache entry)."""
    return {field: p for field in fields}


@experiment("dropout-site-ablation")
def _dropout_site_ablation(profile: str) -> dict[str, RunSpec]:
    """Dropout 0.2 at one site at a time, at none, at babyGPT v10's three sites and at all four
    sites, in the data-constrained
    setting (cpu: 10,000 characters of Shakespeare seen about 31 times; gpu: gpt.py's scale on
    250,000 characters). Same seed, data order and initial weights in every run. The "none" run
    is the setting's plain run, shared with chapter 03 and the later chapters."""
    out = {}
    for label, fields in SITES.items():
        spec = data_constrained(profile, model=site_model(fields))
        note = f"{spec.note}; dropout {SITE_RATE} at: {', '.join(fields) or 'no site'}"
        out[label] = RunSpec(spec.model, spec.train, spec.corpus, note)
    return out
