"""Chapter 03, when dropout helps: one epoch against many, the rate sweep, and model width.

Every run is the course's data-constrained setting
(:func:`~dropoutlib.experiments.core.data_constrained`) with one or two things changed, so the
three experiments share runs with each other, with chapter 02's site ablation and with the later
chapters (the run cache keys a run by everything that determines it):

* ``dropout-vs-epochs``: the same compute (steps, batch, context), the amount of unique training
  text varied from the whole of tiny Shakespeare (under one epoch) down to the setting's 10,000
  characters (about 31 epochs), dropout 0, 0.1 and 0.2 at babyGPT v10's three sites;
* ``dropout-rate-sweep``: the setting itself (many epochs), dropout from 0 to 0.5;
* ``dropout-vs-width``: the setting at several widths (``n_embd``), each with several rates.
"""

from __future__ import annotations

from dropoutlib.experiments.core import RunSpec, data_constrained, experiment, resolve_profile

# Characters of unique training text per profile (None: the whole training split, 1,003,854
# characters of tiny Shakespeare). The last entry is the setting's own amount.
EPOCH_TOKENS = {
    "smoke": (None, 2_000),
    "cpu": (None, 50_000, 10_000),
    "gpu": (None, 200_000, 50_000, 10_000),
}
EPOCH_RATES = (0.0, 0.1, 0.2)
SWEEP_RATES = {
    "smoke": (0.0, 0.2),
    "cpu": (0.0, 0.1, 0.2, 0.3, 0.5),
    "gpu": (0.0, 0.1, 0.2, 0.3, 0.5),
}
WIDTHS = {"smoke": (16, 32), "cpu": (16, 32, 64), "gpu": (96, 192, 384)}
WIDTH_RATES = {"smoke": (0.0, 0.2), "cpu": (0.0, 0.1, 0.2, 0.3), "gpu": (0.0, 0.1, 0.2, 0.3)}


def data_label(tokens: int | None) -> str:
    """``"all"`` for the whole training split, else the number of characters (``"10000"``)."""
    return "all" if tokens is None else str(tokens)


def epochs_label(tokens: int | None, p: float) -> str:
    """The label of a ``dropout-vs-epochs`` run: ``"10000 chars, dropout 0.2"``."""
    return f"{data_label(tokens)} chars, dropout {p}"


def _epochs_base(profile: str, **train) -> RunSpec:
    """The data-constrained setting with the compute of the epochs experiment. cpu and smoke
    keep the setting's compute; gpu uses the gpt.py model (6 layers, 384 dims) with context 128
    and batch 16 for 500 steps, about 1M characters: one pass over the whole corpus, so that
    the largest data set is seen about once as on the cpu (at the setting's own gpu compute the
    whole of tiny Shakespeare would be seen about 80 times)."""
    if profile == "gpu":
        compute = dict(batch_size=16, max_iters=500, eval_interval=50, learning_rate=1e-3)
        model = {"block_size": 128, **train.pop("model", {})}
        return data_constrained(profile, model=model, **compute, **train)
    return data_constrained(profile, **train)


@experiment("dropout-vs-epochs")
def _dropout_vs_epochs(profile: str) -> dict[str, RunSpec]:
    """Fixed compute, unique training text varied, dropout 0 / 0.1 / 0.2 at v10's three sites.
    Labels ``"<characters> chars, dropout <p>"`` (``"all chars, ..."`` for the whole split)."""
    profile = resolve_profile(profile)
    out = {}
    for tokens in EPOCH_TOKENS[profile]:
        for p in EPOCH_RATES:
            spec = _epochs_base(profile, model={"dropout": p}, train_tokens=tokens)
            out[epochs_label(tokens, p)] = spec
    return out


@experiment("dropout-rate-sweep")
def _dropout_rate_sweep(profile: str) -> dict[str, RunSpec]:
    """The data-constrained setting (many epochs) with dropout from 0 to 0.5 at v10's three
    sites. Labels ``"dropout <p>"``."""
    profile = resolve_profile(profile)
    return {
        f"dropout {p}": data_constrained(profile, model={"dropout": p})
        for p in SWEEP_RATES[profile]
    }


@experiment("dropout-vs-width")
def _dropout_vs_width(profile: str) -> dict[str, RunSpec]:
    """The data-constrained setting at several widths (``n_embd``; depth, heads and data fixed),
    each with several dropout rates at v10's three sites: which rate is best as the model
    widens. Labels ``"width <n_embd>, dropout <p>"``."""
    profile = resolve_profile(profile)
    out = {}
    for width in WIDTHS[profile]:
        for p in WIDTH_RATES[profile]:
            spec = data_constrained(profile, model={"n_embd": width, "dropout": p})
            out[f"width {width}, dropout {p}"] = spec
    return out
