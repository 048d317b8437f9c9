"""Chapter 07, dropout in fine-tuning: pre-train babyGPT on Song ci without Su Shi, then fine-tune
it on Su Shi's 362 ci, a corpus small enough to overfit.

* ``fine-tuning-su-shi``: one pre-training run (``song_ci_without_su_shi``, no dropout, under
  one epoch, as LLMs are pre-trained today) and its fine-tuning runs on ``song_ci_su_shi``:
  full fine-tuning with dropout 0, 0.1 and 0.2, seed 000's adaptive decay from 0.2, LoRA through
  PEFT with ``lora_dropout`` 0, 0.05 and 0.1 (no other dropout), and R-Drop (dropout 0.1).

:func:`fine_tuning_table` adds what the runs do not record themselves: each model's loss on the
general corpus's validation split (forgetting) and the trainable parameters.
"""

from __future__ import annotations

import dataclasses

from dropoutlib.experiments.core import RunSpec, experiment, resolve_profile
from dropoutlib.train import TrainConfig, loss_on_corpus, vocab_size

__all__ = [
    "FULL_RATES",
    "GENERAL",
    "LORA",
    "LORA_RATES",
    "PARENT",
    "R_DROP",
    "TARGET",
    "fine_tuning_table",
]

PARENT = "pre-training"
GENERAL = "song_ci_without_su_shi"  # pre-training corpus; its validation split measures forgetting
TARGET = "song_ci_su_shi"  # the small fine-tuning corpus
FULL_RATES = (0.0, 0.1, 0.2)
ADAPTIVE_P = 0.2  # seed 000's decay starts at the highest constant rate
LORA_RATES = (0.0, 0.05, 0.1)  # PEFT's default 0, and the values of its examples and QLoRA's
# LoRA on every linear layer of the blocks (babyGPT's fused attention and FFN names), rank 8,
# alpha 16 (PEFT's default rank with alpha = 2 r).
LORA = {"r": 8, "alpha": 16.0, "target_modules": ("qkv", "proj", "net.0", "net.2")}
R_DROP = {"p": 0.1, "alpha": 1.0}


def _label_full(p: float) -> str:
    return f"full, dropout {p:g}"


def _label_lora(p: float) -> str:
    return f"LoRA, lora_dropout {p:g}"


ADAPTIVE_LABEL = f"full, seed 000 decay from {ADAPTIVE_P:g}"
R_DROP_LABEL = f"R-Drop, dropout {R_DROP['p']:g}"


def _settings(profile: str):
    """(model shape, pre-training TrainConfig fields, fine-tuning TrainConfig fields, LoRA
    learning rate, note) of a profile."""
    if profile == "gpu":
        shape = dict(n_layer=6, n_embd=384, n_head=6, block_size=256)
        pre = dict(max_iters=2000, eval_interval=200, eval_iters=50, batch_size=64)
        pre.update(learning_rate=3e-4)
        fine = dict(max_iters=500, eval_interval=25, eval_iters=20, batch_size=8)
        fine.update(learning_rate=1e-4)
        lora_lr = 1e-3
        note = (
            "gpt.py scale: pre-training 2000 steps of 64 x 256 tokens (about 19 epochs of the "
            "general corpus), fine-tuning 500 steps of 8 x 256 (about 40 epochs of Su Shi)"
        )
    elif profile == "cpu":
        shape = dict(n_layer=3, n_embd=64, n_head=4, block_size=32)
        pre = dict(max_iters=500, eval_interval=100, eval_iters=20, batch_size=16)
        pre.update(learning_rate=2e-3)
        fine = dict(max_iters=150, eval_interval=25, eval_iters=8, batch_size=16)
        fine.update(learning_rate=5e-4)
        lora_lr = 5e-3
        note = (
            "pre-training 500 steps of 16 x 32 characters (0.15 epochs of the general corpus), "
            "fine-tuning 150 steps (about 3 epochs of Su Shi's 25,892 training characters)"
        )
    else:
        shape = dict(n_layer=2, n_embd=32, n_head=2, block_size=16)
        pre = dict(max_iters=20, eval_interval=10, eval_iters=4, batch_size=8)
        pre.update(learning_rate=2e-3)
        fine = dict(max_iters=10, eval_interval=5, eval_iters=2, batch_size=8)
        fine.update(learning_rate=1e-3)
        lora_lr = 5e-3
        note = "smoke profile: a check that the code runs"
    return shape, pre, fine, lora_lr, note


@experiment("fine-tuning-su-shi")
def _fine_tuning_su_shi(profile: str) -> dict[str, RunSpec]:
    """Pre-train on Song ci without Su Shi, fine-tune on Su Shi (see the module docstring).

    Model: babyGPT with fused attention and GPT-2 init (cpu: 3 layers, 64 dims, context 32;
    gpu: 6 layers, 384 dims, context 256). Pre-training has no dropout; each fine-tuning run
    starts from its weights with a fresh AdamW (weight decay 0.01, constant learning rate), the
    same seed and batches. Full fine-tuning sets the rate of every site (attention weights,
    attention output, FFN output); seed 000's decay lowers it once per epoch,
    ``0.2 * (1 - epoch / epochs)``; the LoRA runs keep every base rate at 0 and vary only
    ``lora_dropout``, with a higher learning rate, as usual for LoRA; R-Drop adds
    ``alpha * symmetric KL`` of two dropout passes (alpha 1, mean over tokens).
    """
    from dropoutlib.model import GPTConfig

    profile = resolve_profile(profile)
    shape, pre, fine, lora_lr, note = _settings(profile)
    base = GPTConfig(
        vocab_size=vocab_size(GENERAL), **shape, dropout=0.0, attention="fused", init="gpt2"
    )
    common = dict(seed=1337, checkpoint_interval=0, prompts=("\n",), max_new_tokens=48)
    runs = {PARENT: RunSpec(base, TrainConfig(**pre, **common), GENERAL, note)}
    tc = TrainConfig(**fine, **common)

    def child(model=base, train=tc):
        return RunSpec(model, train, TARGET, note, parent=PARENT)

    for p in FULL_RATES:
        runs[_label_full(p)] = child(dataclasses.replace(base, dropout=p))
    schedule = {"name": "linear", "p": ADAPTIVE_P, "every": "epoch"}
    runs[ADAPTIVE_LABEL] = child(
        dataclasses.replace(base, dropout=ADAPTIVE_P),
        dataclasses.replace(tc, dropout_schedule=schedule),
    )
    lora_tc = dataclasses.replace(tc, learning_rate=lora_lr)
    for p in LORA_RATES:
        runs[_label_lora(p)] = child(
            train=dataclasses.replace(lora_tc, lora={**LORA, "dropout": p})
        )
    runs[R_DROP_LABEL] = child(
        dataclasses.replace(base, dropout=R_DROP["p"]),
        dataclasses.replace(tc, r_drop_alpha=R_DROP["alpha"]),
    )
    return runs


def _kind(label: str) -> str:
    if label == PARENT:
        return "pre-training"
    if label.startswith("LoRA"):
        return "lora"
    if label.startswith("R-Drop"):
        return "r-drop"
    return "full"


def fine_tuning_table(
    results: dict,
    *,
    general: str = GENERAL,
    eval_iters: int = 50,
    batch_size: int = 16,
    seed: int = 0,
) -> list[dict]:
    """One row per run of ``fine-tuning-su-shi`` (``{label: RunResult}``, the parent included).

    Each row: ``label``, ``kind`` (pre-training, full, lora, r-drop), ``trainable`` and ``total``
    parameters; ``target_loss``, ``best_target_loss`` and ``best_step``: the final and best
    validation loss on Su Shi as the run logged it (for the pre-training row: the fine-tuning
    runs' loss at step 0, before any fine-tuning); and ``general_loss``: the loss of the final
    model on the validation split of ``general``, from :func:`dropoutlib.train.loss_on_corpus`
    with the same ``eval_iters`` batches of ``batch_size`` windows for every model, with
    ``forgetting``, its increase over the pre-trained model's (None for the pre-training row and
    when the parent is not among the results).
    """
    children = [r for label, r in results.items() if label != PARENT]
    rows = []
    for label, result in results.items():
        row = {
            "label": label,
            "kind": _kind(label),
            "trainable": result.trainable_params or result.num_params,
            "total": result.num_params,
            "general_loss": loss_on_corpus(
                result, general, eval_iters=eval_iters, batch_size=batch_size, seed=seed
            ),
        }
        if label == PARENT:
            before = children[0].history[0]["val_loss"] if children else None
            row.update(target_loss=before, best_target_loss=before, best_step=0)
        else:
            best = result.best
            row.update(
                target_loss=result.final["val_loss"],
                best_target_loss=best["val_loss"],
                best_step=best["step"],
            )
        rows.append(row)
    parent = next((r for r in rows if r["label"] == PARENT), None)
    for row in rows:
        row["forgetting"] = (
            None
            if parent is None or row is parent
            else row["general_loss"] - parent["general_loss"]
        )
    return rows
