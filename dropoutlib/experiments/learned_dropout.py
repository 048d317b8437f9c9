"""Chapter 08, Learned Dropout (seed 002): its study reproduced at small scale.

* ``learned-dropout-shakespeare``: LearnedDropout with and without its penalty and with three
  shift initialisations, against standard-dropout baselines (results/learned-dropout-cpu.md).
* ``learned-dropout-shakespeare-seeds``: the seed-to-seed spread behind that table.
* ``learned-dropout-data-constrained``: LearnedDropout against no dropout and dropout 0.2 when
  the training text repeats for many epochs (the course's shared data-constrained setting).
"""

from __future__ import annotations

import dataclasses

import torch

from dropoutlib.experiments.core import RunSpec, count_params, data_constrained, experiment
from dropoutlib.train import TrainConfig, vocab_size

LEARNED_SHIFTS = {"0": 0.0, "pi/2": torch.pi / 2, "pi": torch.pi}
LEARNED_BASELINE_RATES = (0.0, 0.2, 0.3, 0.4)


def _matched_width(config) -> int:
    """The smallest width (a multiple of ``n_head``, >= ``n_embd``) at which ``config``'s model
    without LearnedDropout has at least as many parameters as ``config``'s. The published
    baseline was likewise wider than its LearnedDropout model (156 against 144 dims; 15,441,192
    against 15,335,424 parameters)."""
    target = count_params(config)
    width = config.n_embd
    while True:
        plain = dataclasses.replace(config, n_embd=width, ffn_kind="standard", learned_dropout={})
        if count_params(plain) >= target:
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


@experiment("learned-dropout-data-constrained")
def _learned_dropout_data_constrained(profile: str) -> dict[str, RunSpec]:
    """LearnedDropout where the data repeat: the course's data-constrained setting
    (:func:`dropoutlib.experiments.data_constrained`; ``cpu``: 600 steps over 10,000 characters
    of Shakespeare, about 31 epochs, where a model without dropout over-fits), against the same
    model without dropout and with dropout 0.2 at babyGPT's three sites.

    The LearnedDropout run has one LearnedDropout per layer at the FFN output, as published,
    with shift_init 0 and the squared penalty at coefficient 0.1, and no dropout elsewhere. The
    other two runs are the setting's shared runs (also in chapters 03 and 09), so the optimizer
    is the setting's: AdamW with weight decay 0.01 on every parameter, which here includes
    LearnedDropout's shift B (the published code does not decay it; at this learning rate and
    length the decay pulls B towards 0 by about 1 %).
    """
    return {
        "no dropout": data_constrained(profile),
        "dropout 0.2": data_constrained(profile, model={"dropout": 0.2}),
        "LearnedDropout": data_constrained(profile, model={"ffn_kind": "learned"}),
    }
