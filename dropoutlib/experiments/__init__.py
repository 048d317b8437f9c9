"""The named experiments the chapters run, one module per chapter, at the scale the machine allows.

The plumbing (profiles, :class:`RunSpec`, the registry, :func:`run` with parallel one-thread
runs) is in :mod:`dropoutlib.experiments.core`, the processes that train runs side by side in
:mod:`dropoutlib.experiments.workers`; each chapter's experiments live in the module named after
the chapter:

* :mod:`~dropoutlib.experiments.standard_dropout` (chapter 01);
* :mod:`~dropoutlib.experiments.dropout_in_transformers` (chapter 02);
* :mod:`~dropoutlib.experiments.when_dropout_helps` (chapter 03);
* :mod:`~dropoutlib.experiments.structured_dropout` (chapter 04);
* :mod:`~dropoutlib.experiments.noise_and_uncertainty` (chapter 05);
* :mod:`~dropoutlib.experiments.dropout_schedules` (chapter 06);
* :mod:`~dropoutlib.experiments.dropout_in_fine_tuning` (chapter 07);
* :mod:`~dropoutlib.experiments.learned_dropout` (chapter 08);
* :mod:`~dropoutlib.experiments.dropout_at_scale` (chapter 09).

Adding an experiment is one decorated function of the profile, in its chapter's module::

    @experiment("my-experiment")
    def _my_experiment(profile: str) -> dict[str, RunSpec]:
        return {"label": RunSpec(model_config, train_config, "song_ci", note="...")}
"""

from dropoutlib.experiments import (  # noqa: F401 (importing registers the experiments)
    dropout_at_scale,
    dropout_in_fine_tuning,
    dropout_in_transformers,
    dropout_schedules,
    learned_dropout,
    noise_and_uncertainty,
    standard_dropout,
    structured_dropout,
    when_dropout_helps,
)
from dropoutlib.experiments.core import (
    EXPERIMENTS,
    PROFILES,
    RunSpec,
    count_params,
    data_constrained,
    experiment,
    resolve_jobs,
    resolve_profile,
    run,
    specs,
)

__all__ = [
    "EXPERIMENTS",
    "PROFILES",
    "RunSpec",
    "count_params",
    "data_constrained",
    "experiment",
    "resolve_jobs",
    "resolve_profile",
    "run",
    "specs",
]
