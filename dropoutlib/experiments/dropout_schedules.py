"""Chapter 06, dropout schedules: rates that change over training and over depth, compared in the
two regimes the early/late dropout paper (Liu et al., ICML 2023) separates.

* ``schedules-data-constrained``: the course's data-constrained setting
  (:func:`~dropoutlib.experiments.data_constrained`), where the model overfits. No dropout,
  constant dropout, seed 000's decay, cosine decay, early, late and curriculum dropout, and two
  rules over depth (seed 000's rising ``base + i * step`` and a falling linear one).
* ``schedules-single-epoch``: the same model on the whole of tiny Shakespeare for less than one
  epoch, where it underfits: no dropout, constant, early and late dropout.
* ``schedules-seeds``: the noise floor of the comparisons: the runs they rest on again with
  other seeds (:data:`SEEDS`).

Every schedule peaks at the same rate :data:`P`, and the two rules over depth average it, so the
runs differ in *when* (or *where*) they drop, not in how much at most.
"""

from __future__ import annotations

import dataclasses

from dropoutlib.experiments.core import RunSpec, data_constrained, experiment, resolve_profile

__all__ = [
    "CUTOFF",
    "LAYERWISE_SPREAD",
    "P",
    "SCHEDULES",
    "SEEDS",
    "layerwise_specs",
    "seed_groups",
]

P = 0.2  # the peak rate of every schedule: the constant rate that holds the data-constrained run
# The switching point of early and late dropout, as a fraction of training: the published
# recipes of facebookresearch/dropout switch at epoch 50 of 300 (--cutoff_epoch 50).
CUTOFF = 50 / 300
LAYERWISE_SPREAD = 0.2  # the rules over depth run from P - 0.1 to P + 0.1 (mean P)
SEEDS = (1, 2)  # other seeds than the setting's 1337, for the spread of a single run

# label -> dropout_schedule of the TrainConfig (None: the model's own constant rate, no schedule).
SCHEDULES: dict[str, dict | None] = {
    "constant": None,
    "seed 000 decay": {"name": "linear", "p": P, "every": "epoch"},
    "cosine decay": {"name": "cosine", "p": P},
    "early": {"name": "early", "p": P, "cutoff": CUTOFF, "schedule": "linear"},
    "late": {"name": "late", "p": P, "cutoff": CUTOFF},
    "curriculum": {"name": "curriculum", "p": P},
}


def layerwise_specs(n_layer: int) -> dict[str, dict]:
    """The two rules over depth as :class:`~dropoutlib.model.GPTConfig` rate specs, both with
    mean :data:`P`: seed 000's rule rising with depth (``{"base", "step"}``: layer ``i`` gets
    ``base + i * step``, as its ``LayerwiseAdaptiveRegularization``) and a linear rule falling
    with depth (``{"first", "last"}``), the direction seed 000 argues against."""
    low, high = P - LAYERWISE_SPREAD / 2, P + LAYERWISE_SPREAD / 2
    step = (high - low) / max(1, n_layer - 1)
    return {
        "layer-wise, seed 000's rule (rising)": {"base": round(low, 10), "step": round(step, 10)},
        "layer-wise, linear (falling)": {"first": round(high, 10), "last": round(low, 10)},
    }


def _with(spec: RunSpec, *, dropout=0.0, schedule=None, note: str = "") -> RunSpec:
    model = dataclasses.replace(spec.model, dropout=dropout)
    train = dataclasses.replace(spec.train, dropout_schedule=schedule)
    return dataclasses.replace(spec, model=model, train=train, note=note or spec.note)


@experiment("schedules-data-constrained")
def _schedules_data_constrained(profile: str) -> dict[str, RunSpec]:
    """The schedules on the data-constrained setting (the model overfits: ~31 epochs on the cpu
    profile). "no dropout" and "constant" are the shared runs ``data_constrained(profile)`` and
    ``data_constrained(profile, model={"dropout": P})``; each schedule run builds the model with
    rate ``P`` at every site and lets the schedule set the rate at each step (seed 000's decay
    once per epoch, as its loop does). The two layer-wise runs keep their rates fixed over
    training."""
    base = data_constrained(profile)
    runs = {"no dropout": base, "constant": data_constrained(profile, model={"dropout": P})}
    for label, schedule in SCHEDULES.items():
        if schedule is not None:
            runs[label] = _with(base, dropout=P, schedule=schedule)
    for label, rule in layerwise_specs(base.model.n_layer).items():
        runs[label] = _with(base, dropout=rule)
    return runs


@experiment("schedules-single-epoch")
def _schedules_single_epoch(profile: str) -> dict[str, RunSpec]:
    """The same model without the data constraint, trained for a fraction of an epoch, where it
    underfits: no dropout, constant, early and late dropout (the regimes of Liu et al., 2023).

    * ``cpu``: the whole training split of tiny Shakespeare (1,003,854 characters), 300 steps of
      16 x 32 tokens (half the data-constrained run, to fit the chapter's budget): about 0.15
      epochs.
    * ``gpu``: the gpt.py-sized model of the data-constrained gpu profile with batches of 16 x 256
      tokens for 240 steps: about 0.98 epochs (a full gpu run of 5000 steps would be 80 epochs).
    * ``smoke``: the data-constrained smoke model on the whole split, 30 steps.
    """
    profile = resolve_profile(profile)
    overrides: dict = {"train_tokens": None}
    note = "single epoch: the whole of tiny Shakespeare, less than one pass over it"
    if profile == "gpu":
        overrides.update(batch_size=16, max_iters=240, eval_interval=24)
    elif profile == "cpu":
        overrides.update(max_iters=300, eval_interval=30)
    base = data_constrained(profile, **overrides)
    base = dataclasses.replace(base, note=note)
    runs = {"no dropout": base, "constant": _with(base, dropout=P)}
    for label in ("early", "late"):
        runs[label] = _with(base, dropout=P, schedule=SCHEDULES[label])
    return runs


@experiment("schedules-seeds")
def _schedules_seeds(profile: str) -> dict[str, RunSpec]:
    """How much a change of seed alone moves the runs the chapter's conclusions rest on: "no
    dropout" and "constant" of the data-constrained regime, "no dropout" and "early" of the
    single-epoch regime, each again with the seeds :data:`SEEDS` (the comparisons use 1337).
    The data-constrained ones are ``data_constrained(profile, seed=s)`` and
    ``data_constrained(profile, model={"dropout": P}, seed=s)``, shared through the cache with
    any chapter that measures the seed spread of the shared setting. Labels are
    ``"<regime>: <run>, seed <s>"``."""
    regimes = {
        "data-constrained": _schedules_data_constrained(profile),
        "single epoch": _schedules_single_epoch(profile),
    }
    picks = {
        "data-constrained": ("no dropout", "constant"),
        "single epoch": ("no dropout", "early"),
    }
    runs = {}
    for regime, labels in picks.items():
        for label in labels:
            for seed in SEEDS:
                spec = regimes[regime][label]
                spec = dataclasses.replace(spec, train=dataclasses.replace(spec.train, seed=seed))
                runs[f"{regime}: {label}, seed {seed}"] = spec
    return runs


def seed_groups(results: dict) -> dict[str, dict[str, list]]:
    """The runs of ``schedules-seeds`` grouped as ``{experiment: {run label: [RunResult, ...]}}``,
    e.g. ``{"schedules-data-constrained": {"no dropout": [seed 1's, seed 2's], ...}, ...}``
    (labels ``"<regime>: <run>, seed <n>"``)."""
    experiments = {
        "data-constrained": "schedules-data-constrained",
        "single epoch": "schedules-single-epoch",
    }
    groups: dict[str, dict[str, list]] = {}
    for label, result in results.items():
        regime, colon, rest = label.partition(": ")
        name, sep, seed = rest.rpartition(", seed ")
        if not colon or regime not in experiments or not sep or not seed.isdigit():
            raise ValueError(f"run label {label!r} is not of the form '<regime>: <run>, seed <n>'")
        groups.setdefault(experiments[regime], {}).setdefault(name, []).append(result)
    return groups
