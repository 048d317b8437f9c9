"""Chapter 01, standard dropout: babyGPT v10 and gpt.py with and without dropout.

* ``v10-songci-dropout``: babyGPT v10 on Song ci, dropout 0.2 at its three sites against none.
* ``gpt-shakespeare-dropout``: Karpathy's gpt.py on tiny Shakespeare, dropout 0.2 against 0.0.
"""

from __future__ import annotations

import dataclasses

from dropoutlib.experiments.core import RunSpec, experiment
from dropoutlib.train import TrainConfig, vocab_size

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
