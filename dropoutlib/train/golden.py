"""Golden runs: fixed smoke runs whose results guard the run cache against code changes.

A run key cannot hash the code, so :data:`dropoutlib.train.store.RESULTS_VERSION` stands for it.
The runs here exercise the model (both attention paths, every site, LearnedDropout) and the
training features; ``tests/golden_runs.json`` holds what they computed when the version was last
set. ``tests/test_golden.py`` trains them again: if the numbers moved, the code now computes
something else, and cached runs made before the change would be served as if nothing had
changed. The test then fails and says what to do:

1. bump ``RESULTS_VERSION`` in ``dropoutlib/train/store.py`` (this renames every run);
2. re-record: ``python -m dropoutlib.train.golden --write tests/golden_runs.json``.

Losses are compared with a tolerance (see :data:`LOSS_TOL`): float32 sums run in a different
order on another CPU or thread count, and 30 steps of training amplify the last-bit differences;
every other field is compared exactly.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
from pathlib import Path

import torch

__all__ = ["GOLDEN_RUNS", "LOSS_TOL", "fingerprint", "compare", "main"]

# Measured (python -m dropoutlib.train.golden --spread): the same runs with 1 and 2 threads,
# whose float32 sums run in another order, differ by at most 1e-6 in any loss; another seed
# (another init, batches and masks) moves them by more than 1e-2 (--seed-shift). 2e-3 leaves
# three orders of magnitude for other CPUs and is still well below a real change.
LOSS_TOL = 2e-3

_COMMON_TRAIN = dict(
    max_iters=30,
    eval_interval=10,
    eval_iters=4,
    batch_size=8,
    learning_rate=3e-3,
    seed=3,
    device="cpu",
    checkpoint_interval=0,
    prompts=(),
)
GOLDEN_RUNS: dict[str, tuple[dict, dict, str]] = {
    # babyGPT v10's own three sites, per-head attention, on Song ci (its real vocabulary)
    "v10-heads": (dict(block_size=8, n_embd=32, n_head=4, n_layer=3, dropout=0.2), {}, "song_ci"),
    # fused attention, every other kind at a site, and the training features
    "fused-kinds-features": (
        dict(
            block_size=16,
            n_embd=32,
            n_head=2,
            n_layer=2,
            dropout=0.1,
            attention="fused",
            init="gpt2",
            embd_dropout=0.1,
            embd_kind="locked",
            attn_kind="drophead",
            resid_kind="droppath",
            ffn_kind="gaussian",
            layerdrop=0.1,
        ),
        dict(
            train_tokens=3000,
            label_smoothing=0.1,
            grad_clip=1.0,
            r_drop_alpha=0.5,
            token_mask_rate=0.1,
            dropout_schedule={"name": "cosine", "p": 0.2},
        ),
        "shakespeare",
    ),
    # LearnedDropout with its penalty
    "learned": (
        dict(block_size=16, n_embd=32, n_head=2, n_layer=2, dropout=0.0, ffn_kind="learned"),
        dict(weight_decay_rule="nanogpt"),
        "shakespeare",
    ),
}


def _configs(name: str):
    from dropoutlib.model import GPTConfig
    from dropoutlib.train import TrainConfig, vocab_size

    model, extra, corpus = GOLDEN_RUNS[name]
    return (
        GPTConfig(vocab_size=vocab_size(corpus), **model),
        TrainConfig(**_COMMON_TRAIN, **extra),
        corpus,
    )


def fingerprint(name: str, *, threads: int = 1, seed: int | None = None) -> dict:
    """Train golden run ``name`` (in a temporary folder, never cached) and describe its result."""
    import dataclasses

    from dropoutlib.train import RESULTS_VERSION, train

    model, tc, corpus = _configs(name)
    if seed is not None:
        tc = dataclasses.replace(tc, seed=seed)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            result = train(model, tc, corpus, cache=False, progress=False, out_dir=tmp)
    finally:
        torch.set_num_threads(before)
    history = result.history
    return {
        "results_version": RESULTS_VERSION,
        "num_params": result.num_params,
        "steps": [h["step"] for h in history],
        "epochs": [h["epoch"] for h in history],
        "dropout_p": [h.get("dropout_p") for h in history],
        "train_loss": [h["train_loss"] for h in history],
        "val_loss": [h["val_loss"] for h in history],
    }


def compare(recorded: dict, now: dict, tol: float = LOSS_TOL) -> list[str]:
    """What differs between two fingerprints: exact fields exactly, losses beyond ``tol``."""
    problems = []
    for key in ("num_params", "steps", "epochs", "dropout_p"):
        if recorded.get(key) != now.get(key):
            problems.append(f"{key}: recorded {recorded.get(key)}, now {now.get(key)}")
    for key in ("train_loss", "val_loss"):
        a, b = recorded.get(key, []), now.get(key, [])
        worst = max((abs(x - y) for x, y in zip(a, b)), default=math.inf)
        if len(a) != len(b) or worst > tol:
            problems.append(f"{key}: recorded {a}, now {b} (largest difference {worst:.2e})")
    return problems


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dropoutlib.train.golden", description=__doc__)
    parser.add_argument("--write", type=Path, help="record every golden run into this JSON file")
    parser.add_argument(
        "--spread", action="store_true", help="print the 1-thread vs 2-thread loss differences"
    )
    parser.add_argument(
        "--seed-shift", action="store_true", help="print how far another seed moves the losses"
    )
    args = parser.parse_args(argv)
    if args.spread:
        for name in GOLDEN_RUNS:
            one, two = fingerprint(name, threads=1), fingerprint(name, threads=2)
            diff = max(
                abs(x - y) for key in ("train_loss", "val_loss") for x, y in zip(one[key], two[key])
            )
            print(f"{name}: largest loss difference 1 vs 2 threads {diff:.2e}")
    if args.seed_shift:
        for name in GOLDEN_RUNS:
            one, other = fingerprint(name), fingerprint(name, seed=4)
            diff = min(
                abs(x - y)
                for key in ("train_loss", "val_loss")
                for x, y in list(zip(one[key], other[key]))[1:]
            )
            print(f"{name}: smallest loss difference after step 0, seed 3 vs 4: {diff:.2e}")
    if args.write:
        doc = {name: fingerprint(name) for name in GOLDEN_RUNS}
        args.write.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
        print(f"written: {args.write}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
