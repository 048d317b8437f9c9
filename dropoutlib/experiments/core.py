"""The plumbing every experiment shares: profiles, run specs, the registry, and running.

A chapter never repeats hyperparameters: it calls ``run("v10-songci-dropout", profile)`` and
gets one :class:`~dropoutlib.train.RunResult` per labelled run. Runs go through the trainer's
cache, so the Russian and Chinese editions, or a notebook re-executed after a Colab disconnect,
reuse what the English edition trained.

Profiles:

* ``"smoke"``: every run a few seconds on two CPU cores; for CI and nbval. The numbers mean
  nothing beyond "the code runs".
* ``"cpu"``: the setting the committed book shows, small enough for a laptop (a chapter's runs
  train in about 2.5 minutes on 2 cores); scaled-down experiments say so in their ``note``.
* ``"gpu"``: the v11 / gpt.py scale (384 dims, 6 layers, context 256) for Colab.
* ``"auto"``: ``$DROPOUTLIB_PROFILE`` if set, else ``"gpu"`` where CUDA is available, else
  ``"cpu"``.

**Parallel runs.** On a CPU the runs of one experiment train side by side in separate processes,
one thread each, as many at a time as ``jobs`` says (default: ``$DROPOUTLIB_JOBS``, else one per
core), the longest first; the processes are kept for the next call
(:mod:`dropoutlib.experiments.workers`). A run trained with one thread gives the same numbers
alone or beside others, so the results do not depend on ``jobs``. A run whose spec names a
``parent`` (fine-tuning) starts once its parent has finished, with ``init_from`` set to the
parent's key.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass

import torch

from dropoutlib.experiments import workers
from dropoutlib.train import RunResult, TrainConfig, lookup, train

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

PROFILES: tuple[str, ...] = ("smoke", "cpu", "gpu")


def resolve_profile(profile: str = "auto") -> str:
    """``"smoke"``, ``"cpu"`` or ``"gpu"``. ``"auto"`` is ``$DROPOUTLIB_PROFILE`` when set, else
    ``"gpu"`` if CUDA is available, else ``"cpu"``."""
    if profile == "auto":
        env = os.environ.get("DROPOUTLIB_PROFILE", "").strip()
        if env and env != "auto":
            if env not in PROFILES:
                raise ValueError(
                    f"DROPOUTLIB_PROFILE must be one of {PROFILES} or 'auto', got {env!r}"
                )
            return env
        return "gpu" if torch.cuda.is_available() else "cpu"
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {PROFILES + ('auto',)}, got {profile!r}")
    return profile


@dataclass(frozen=True)
class RunSpec:
    """One run of an experiment: what :func:`dropoutlib.train.train` gets, plus a note for
    readers (e.g. that a run is scaled down from the setting it stands for) and, for a
    fine-tuning run, the label of its ``parent`` run in the same experiment (its key becomes
    this run's ``init_from``)."""

    model: object  # a dropoutlib.model.GPTConfig
    train: TrainConfig
    corpus: str
    note: str = ""
    parent: str | None = None


ExperimentFn = Callable[[str], dict[str, RunSpec]]
EXPERIMENTS: dict[str, ExperimentFn] = {}


def experiment(name: str) -> Callable[[ExperimentFn], ExperimentFn]:
    """Register ``fn(profile) -> {label: RunSpec}`` as the experiment ``name``."""

    def register(fn: ExperimentFn) -> ExperimentFn:
        if name in EXPERIMENTS:
            raise ValueError(f"experiment {name!r} is already registered")
        EXPERIMENTS[name] = fn
        return fn

    return register


def specs(name: str, profile: str = "auto") -> dict[str, RunSpec]:
    """The labelled run specs of experiment ``name`` under ``profile`` (nothing is trained)."""
    if name not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {name!r}; known: {sorted(EXPERIMENTS)}")
    found = EXPERIMENTS[name](resolve_profile(profile))
    for label, spec in found.items():
        if spec.parent is not None and spec.parent not in found:
            raise ValueError(f"{name}: run {label!r} names parent {spec.parent!r}, not a run")
    return found


def data_constrained(profile: str, *, model: dict | None = None, **train) -> RunSpec:
    """The course's data-constrained setting, shared by every chapter that needs a model that
    overfits (so runs with the same settings are shared through the cache): babyGPT with fused
    attention and GPT-2 init on the first ``train_tokens`` characters of tiny Shakespeare, which
    it sees many times. No dropout anywhere by default; ``model`` overrides GPTConfig fields
    (``{"dropout": 0.2}``), the keyword arguments override TrainConfig fields.

    * ``cpu``: 3 layers, 64 dims, 4 heads, context 32, batch 16, AdamW lr 2e-3, 600 steps,
      10,000 training characters (about 31 epochs); an evaluation every 60 steps over 20
      batches. Without dropout the validation loss reaches its minimum early and then rises;
      each run takes about 15-25 s on one thread.
    * ``gpu``: gpt.py's scale (6 layers, 384 dims, 6 heads, context 256, batch 64, lr 3e-4),
      5000 steps on 250,000 characters (about 330 epochs).
    * ``smoke``: 2 layers, 32 dims, context 16, 30 steps on 2,000 characters.
    """
    from dropoutlib.model import GPTConfig
    from dropoutlib.train import vocab_size

    profile = resolve_profile(profile)
    vocab = vocab_size("shakespeare")
    if profile == "gpu":
        shape = dict(n_layer=6, n_embd=384, n_head=6, block_size=256)
        tc = dict(max_iters=5000, eval_interval=250, eval_iters=100, batch_size=64)
        tc.update(learning_rate=3e-4, train_tokens=250_000)
        note = "data-constrained, gpt.py scale: 250,000 characters, 5000 steps (about 330 epochs)"
    elif profile == "cpu":
        shape = dict(n_layer=3, n_embd=64, n_head=4, block_size=32)
        tc = dict(max_iters=600, eval_interval=60, eval_iters=20, batch_size=16)
        tc.update(learning_rate=2e-3, train_tokens=10_000)
        note = "data-constrained: 10,000 characters of Shakespeare, 600 steps (about 31 epochs)"
    else:
        shape = dict(n_layer=2, n_embd=32, n_head=2, block_size=16)
        tc = dict(max_iters=30, eval_interval=10, eval_iters=4, batch_size=8)
        tc.update(learning_rate=2e-3, train_tokens=2_000)
        note = "smoke profile: a check that the code runs"
    base = dict(vocab_size=vocab, **shape, dropout=0.0, attention="fused", init="gpt2")
    config = GPTConfig(**{**base, **(model or {})})
    defaults = dict(seed=1337, checkpoint_interval=0, prompts=("\n",), max_new_tokens=200)
    tc = TrainConfig(**{**tc, **defaults, **train})
    return RunSpec(config, tc, "shakespeare", note)


def count_params(config) -> int:
    """Parameters of ``BabyGPT(config)``, built on the meta device (no memory, no RNG draws)."""
    from dropoutlib.model import BabyGPT

    with torch.random.fork_rng(devices=[]), torch.device("meta"):
        return BabyGPT(config).num_params()


def resolve_jobs(jobs: int | None, n_runs: int, device: str = "auto") -> int:
    """How many runs train at once: 1 on a GPU (one device, runs queue on it) and for a single
    run; else ``jobs``, or ``$DROPOUTLIB_JOBS``, or the number of cores, at most ``n_runs``."""
    if jobs is None:
        env = os.environ.get("DROPOUTLIB_JOBS", "").strip()
        jobs = int(env) if env else (os.cpu_count() or 1)
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be an integer >= 1, got {jobs!r}")
    on_gpu = device != "cpu" and torch.cuda.is_available()
    return 1 if on_gpu else max(1, min(jobs, n_runs))


@contextlib.contextmanager
def _one_thread(device: str):
    """One intra-op thread while a CPU run trains in this process, as in a worker process, so a
    run's numbers do not depend on ``jobs`` (thread count changes a CPU run's last digits)."""
    if device not in ("auto", "cpu") or (device == "auto" and torch.cuda.is_available()):
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def run(
    name: str, profile: str = "auto", *, progress: bool = True, jobs: int | None = None
) -> dict[str, RunResult]:
    """Train (or fetch from the cache) every run of experiment ``name``; ``{label: RunResult}``
    in the experiment's order, each result's ``note`` set from its spec. On a CPU each run
    trains with one thread, ``jobs`` runs at a time in separate processes (see the module
    docstring); ``jobs=1`` trains them one after another in this process."""
    profile = resolve_profile(profile)
    if jobs is None and profile == "smoke" and not os.environ.get("DROPOUTLIB_JOBS"):
        jobs = 1  # seconds-long runs: starting a process costs more than it saves
    todo = specs(name, profile)
    results: dict[str, RunResult] = {}
    waves = _waves(todo)
    for i, wave in enumerate(waves):
        ready = {}
        for label in wave:
            spec = todo[label]
            if spec.parent is not None:
                init = dataclasses.replace(spec.train, init_from=results[spec.parent].key)
                spec = dataclasses.replace(spec, train=init)
            ready[label] = spec
        missing = {}
        for label, spec in ready.items():  # finished runs need no process
            found = lookup(spec.model, spec.train, spec.corpus)
            if found is None:
                missing[label] = spec
            else:
                results[label] = found
        device = next(iter(ready.values())).train.device
        n_jobs = resolve_jobs(jobs, len(missing), device)
        if n_jobs > 1:
            results.update(
                workers.train_side_by_side(missing, n_jobs, progress=progress, name=name)
            )
        else:
            later = max((len(w) for w in waves[i + 1 :]), default=0)
            if missing and later > 1 and resolve_jobs(jobs, later, device) > 1:
                workers.start(resolve_jobs(jobs, later, device))  # while the parent trains
            for label, spec in missing.items():
                with _one_thread(spec.train.device):
                    results[label] = train(spec.model, spec.train, spec.corpus, progress=progress)
    out = {}
    for label, spec in todo.items():
        results[label].note = spec.note
        out[label] = results[label]
    return out


def _waves(todo: dict[str, RunSpec]) -> list[list[str]]:
    """Labels in waves: parents before the runs that start from them."""
    waves, placed = [], set()
    while len(placed) < len(todo):
        wave = [
            label
            for label, spec in todo.items()
            if label not in placed and (spec.parent is None or spec.parent in placed)
        ]
        if not wave:
            raise ValueError(f"the parents of runs {sorted(set(todo) - placed)} form a cycle")
        waves.append(wave)
        placed.update(wave)
    return waves
