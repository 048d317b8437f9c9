"""The named experiments the chapters run, at the scale the machine allows.

A chapter never repeats hyperparameters: it calls ``run("v10-songci-dropout", profile)`` and
gets one :class:`~dropoutlib.train.RunResult` per labelled run. Runs go through the trainer's
cache, so the Russian and Chinese editions, or a notebook re-executed after a Colab disconnect,
reuse what the English edition trained.

Profiles:

* ``"smoke"``: every run a few seconds on two CPU cores; for CI and nbval. The numbers mean
  nothing beyond "the code runs".
* ``"cpu"``: the real babyGPT v10 setting, small enough for a laptop (a chapter in minutes); the
  gpt.py-scale experiments are scaled down and say so in their ``note``.
* ``"gpu"``: the v11 / gpt.py scale (384 dims, 6 layers, context 256) for 5000 steps.
* ``"auto"``: ``$DROPOUTLIB_PROFILE`` if set, else ``"gpu"`` where CUDA is available, else
  ``"cpu"``.

Adding an experiment is one decorated function of the profile::

    @experiment("my-experiment")
    def _my_experiment(profile: str) -> dict[str, RunSpec]:
        return {"label": RunSpec(model_config, train_config, "song_ci", note="...")}
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass

import torch

from dropoutlib.train import RunResult, TrainConfig, train, vocab_size

__all__ = [
    "EXPERIMENTS",
    "PROFILES",
    "RunSpec",
    "experiment",
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
    readers (e.g. that a run is scaled down from the setting it stands for)."""

    model: object  # a dropoutlib.model.GPTConfig
    train: TrainConfig
    corpus: str
    note: str = ""


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
    return EXPERIMENTS[name](resolve_profile(profile))


def run(name: str, profile: str = "auto", *, progress: bool = True) -> dict[str, RunResult]:
    """Train (or fetch from the cache) every run of experiment ``name``; ``{label: RunResult}``
    in the experiment's order, each result's ``note`` set from its spec."""
    results = {}
    for label, spec in specs(name, profile).items():
        result = train(spec.model, spec.train, spec.corpus, progress=progress)
        result.note = spec.note
        results[label] = result
    return results


# --- the experiments ---------------------------------------------------------------------------

DROPOUT_RATES = (0.2, 0.0)


def _label(p: float) -> str:
    return f"dropout {p}"


@experiment("v10-songci-dropout")
def _v10_songci_dropout(profile: str) -> dict[str, RunSpec]:
    """babyGPT v10 on Song ci (32 dims, 4 heads, 3 layers, context 8; lr 1e-2, batch 32), with
    its dropout of 0.2 at the three sites against no dropout. ``cpu`` and ``gpu`` run the
    original 5000 steps (the model is tiny: a GPU does not change the setting); ``smoke`` runs
    60 steps."""
    from dropoutlib.model import GPTConfig

    base = GPTConfig.v10(vocab_size("song_ci"))
    if profile == "smoke":
        tc = TrainConfig.v10(
            max_iters=60, eval_interval=20, eval_iters=5, max_new_tokens=20, checkpoint_interval=0
        )
        note = "smoke profile: 60 steps of babyGPT v10, a check that the code runs"
    else:
        tc = TrainConfig.v10()
        note = "babyGPT v10 as published: 5000 steps"
    return {
        _label(p): RunSpec(dataclasses.replace(base, dropout=p), tc, "song_ci", note)
        for p in DROPOUT_RATES
    }


@experiment("gpt-shakespeare-dropout")
def _gpt_shakespeare_dropout(profile: str) -> dict[str, RunSpec]:
    """Karpathy's gpt.py on tiny Shakespeare (384 dims, 6 heads, 6 layers, context 256,
    normal(0, 0.02) init, fused attention; lr 3e-4, batch 64, 5000 steps), dropout 0.2 against
    0.0. Under ``cpu`` the model and run are scaled down to nanoGPT's CPU recipe size (4 layers,
    4 heads, 128 dims, context 64, batch 12, lr 1e-3, 2000 steps), and the note says so;
    ``smoke`` is smaller still."""
    from dropoutlib.model import GPTConfig

    # gpt.py's N(0, 0.02) init; fused attention (one QKV + SDPA, dropout on the same attention
    # weights) because per-head modules are several times slower at context 256.
    base = GPTConfig.v11(vocab_size("shakespeare"), init="gpt2", attention="fused")
    if profile == "gpu":
        model, tc = base, TrainConfig.gpt()
        note = "gpt.py scale: 384 dims, 6 layers, context 256, 5000 steps"
    elif profile == "cpu":
        model = dataclasses.replace(base, n_layer=4, n_head=4, n_embd=128, block_size=64)
        tc = TrainConfig.gpt(
            batch_size=12, learning_rate=1e-3, max_iters=2000, eval_interval=250, eval_iters=50
        )
        note = (
            "scaled down for a CPU from gpt.py (384 dims, 6 layers, context 256, 5000 steps) to "
            "128 dims, 4 layers, context 64, batch 12, lr 1e-3, 2000 steps"
        )
    else:
        model = dataclasses.replace(base, n_layer=2, n_head=2, n_embd=32, block_size=32)
        tc = TrainConfig.gpt(
            batch_size=8,
            max_iters=40,
            eval_interval=20,
            eval_iters=5,
            max_new_tokens=40,
            checkpoint_interval=0,
        )
        note = "smoke profile: a 2-layer, 32-dim model for 40 steps, a check that the code runs"
    return {
        _label(p): RunSpec(dataclasses.replace(model, dropout=p), tc, "shakespeare", note)
        for p in DROPOUT_RATES
    }


# --- Learned Dropout (seed 002) at small scale ---------------------------------------------------

LEARNED_SHIFTS = {"0": 0.0, "pi/2": torch.pi / 2, "pi": torch.pi}
LEARNED_BASELINE_RATES = (0.0, 0.2, 0.3, 0.4)


def _count_params(config) -> int:
    """Parameters of ``BabyGPT(config)``, built on the meta device (no memory, no RNG draws)."""
    from dropoutlib.model import BabyGPT

    with torch.random.fork_rng(devices=[]), torch.device("meta"):
        return BabyGPT(config).num_params()


def _matched_width(config) -> int:
    """The smallest width (a multiple of ``n_head``, >= ``n_embd``) at which ``config``'s model
    without LearnedDropout has at least as many parameters as ``config``'s. The published
    baseline was likewise wider than its LearnedDropout model (156 against 144 dims; 15,441,192
    against 15,335,424 parameters)."""
    target = _count_params(config)
    width = config.n_embd
    while True:
        plain = dataclasses.replace(config, n_embd=width, ffn_kind="standard", learned_dropout={})
        if _count_params(plain) >= target:
            return width
        width += config.n_head


@experiment("learned-dropout-shakespeare")
def _learned_dropout_shakespeare(profile: str) -> dict[str, RunSpec]:
    """Seed 002's Learned Dropout study at small scale: babyGPT on tiny Shakespeare.

    Runs (labels as in :data:`dropoutlib.reports.PUBLISHED`): LearnedDropout at the FFN output
    with the squared penalty (coefficient 0.1) and without it, shift_init 0, pi/2, pi (with the
    penalty); baselines with standard dropout 0, 0.2, 0.3, 0.4. As in the published runs the
    LearnedDropout models have rate 0 at every other site, and each baseline has its rate at the
    four sites of the published nanoGPT-style baseline (embedding, attention weights, attention
    output, FFN output); the baselines are widened to at least the LearnedDropout model's
    parameter count, as the published baseline was wider (:func:`_matched_width`). Optimizer as
    published where our trainer allows: AdamW, weight decay 0.1 on tensors with >= 2 dims only
    (``weight_decay_rule="nanogpt"``: biases, LayerNorms and LearnedDropout's shift B are not
    decayed), GPT-2 N(0, 0.02) init, no biases, seed 1337.

    Differences from the published study, beyond scale (15M parameters, 26 layers, GPT-2 BPE
    tokens of Wikipedia, 26k steps of 160k tokens): characters instead of BPE tokens; babyGPT's
    ReLU FFN and untied lm_head (published: GELU, weight tying, residual projections initialised
    with std 0.02 / sqrt(2 n_layer)); a constant learning rate
    without warmup and AdamW's default betas (0.9, 0.999) (published: 300 warmup steps, an
    almost constant 9e-4, betas (0.9, 0.95)); no gradient accumulation. Our baselines evaluate
    with every dropout off; the published baselines most likely kept attention-probability
    dropout on during evaluation (their SDPA call passes ``dropout_p`` without checking
    ``self.training``), which raises their val losses.

    Profiles: ``smoke`` (2 layers, 32 dims, 30 steps: the code runs); ``cpu`` (4 layers, 64
    dims, 4 heads, context 64, batch 32, lr 1e-3, 800 steps: about 1.6 passes over the training
    text, far from the published runs' about 109 passes, so it shows what each method costs
    before over-fitting sets in; results/learned-dropout-cpu.md); ``gpu`` (babyGPT v11's size:
    6 layers, 384 dims, 6 heads, context 256, batch 64, lr 3e-4, 5000 steps: about 80 passes,
    the multi-epoch regime of the published study).
    """
    from dropoutlib.model import GPTConfig

    vocab = vocab_size("shakespeare")
    common = dict(attention="fused", init="gpt2", bias=False, dropout=0.0)
    if profile == "gpu":
        shape = dict(n_embd=384, n_head=6, n_layer=6, block_size=256)
        tc = TrainConfig(
            max_iters=5000,
            eval_interval=250,
            eval_iters=100,
            batch_size=64,
            learning_rate=3e-4,
            prompts=("\n",),
            max_new_tokens=300,
        )
        note = "v11 scale: 384 dims, 6 layers, context 256, batch 64, 5000 steps"
    elif profile == "cpu":
        shape = dict(n_embd=64, n_head=4, n_layer=4, block_size=64)
        tc = TrainConfig(
            max_iters=800,
            eval_interval=100,
            eval_iters=25,
            batch_size=32,
            learning_rate=1e-3,
            prompts=("\n",),
            max_new_tokens=200,
        )
        note = (
            "scaled down for a CPU from the published 144 dims, 26 layers, 26k steps to 64 dims, "
            "4 layers, context 64, batch 32, 800 steps"
        )
    else:
        shape = dict(n_embd=32, n_head=2, n_layer=2, block_size=32)
        tc = TrainConfig(
            max_iters=30, eval_interval=10, eval_iters=4, batch_size=8, checkpoint_interval=0
        )
        note = "smoke profile: 2 layers, 32 dims, 30 steps, a check that the code runs"
    tc = dataclasses.replace(tc, weight_decay=0.1, weight_decay_rule="nanogpt", seed=1337)

    learned = GPTConfig(vocab_size=vocab, **common, **shape, ffn_kind="learned")
    runs = {}
    for name, shift in LEARNED_SHIFTS.items():
        model = dataclasses.replace(learned, learned_dropout={"shift_init": shift})
        runs[f"LearnedDropout shift {name}"] = RunSpec(model, tc, "shakespeare", note)
        if name == "0":
            no_penalty = dataclasses.replace(tc, penalty=None)
            runs["LearnedDropout shift 0, no penalty"] = RunSpec(
                model, no_penalty, "shakespeare", note
            )
    plain = GPTConfig(vocab_size=vocab, **common, **{**shape, "n_embd": _matched_width(learned)})
    for p in LEARNED_BASELINE_RATES:
        model = dataclasses.replace(plain, dropout=p, embd_dropout=p)
        runs[f"baseline dropout {p:g}"] = RunSpec(model, tc, "shakespeare", note)
    return runs


LEARNED_SEEDS = (1337, 1, 2)


@experiment("learned-dropout-shakespeare-seeds")
def _learned_dropout_shakespeare_seeds(profile: str) -> dict[str, RunSpec]:
    """The seed-to-seed spread behind the ``learned-dropout-shakespeare`` table: its shift-0
    LearnedDropout run (with the penalty) and its no-dropout baseline, each with seeds 1337 (the
    table's own run, shared through the cache), 1 and 2; everything else as in that experiment."""
    table = _learned_dropout_shakespeare(profile)
    runs = {}
    for label in ("LearnedDropout shift 0", "baseline dropout 0"):
        spec = table[label]
        for seed in LEARNED_SEEDS:
            tc = dataclasses.replace(spec.train, seed=seed)
            runs[f"{label}, seed {seed}"] = dataclasses.replace(spec, train=tc)
    return runs
