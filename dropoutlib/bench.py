"""What dropout costs, measured: ``python -m dropoutlib bench`` (or ``make bench``).

Five parts, each written to ``results/bench-<device>.json`` and printed as markdown tables:

1. **Throughput.** Forward + backward of every variant on a (B, T, C) activation at two sizes.
   An elementwise dropout has to read x and write y in forward, read dy and write dx in backward:
   ``4 * numel * itemsize`` bytes at the least. GB/s is that count over the measured time. The
   bandwidth reference ("copy") does exactly that traffic with two plain copies,
   ``x.clone(); dy.clone()``, so ``fraction_of_copy = t_copy / t_variant`` says how close a
   variant gets to the memory-bandwidth limit (1.0 = as fast as copying).
2. **Memory.** Bytes saved for backward per input element, counted with
   ``torch.autograd.graph.saved_tensors_hooks``: every tensor autograd packs during the variant's
   forward, deduplicated by storage, leaving out parameters and the input itself (whether the
   input is kept is reported on its own: the surrounding graph often keeps it anyway).
3. **babyGPT training step** (tokens/s): one AdamW step on random tokens, for per-head against
   fused attention, dropout 0.2 against 0, dropout modules at p = 0 against no modules, and
   LearnedDropout against standard dropout at the same width.
4. **On a GPU:** the v11 preset on tiny Shakespeare for 5000 iterations, wall time and val loss.
5. **Per site** (``sites``): the babyGPT step with dropout at one site at a time (embedding,
   attention weights, attention output, FFN output), per-head and fused attention: step time
   and the bytes autograd keeps for backward per token, each against the model without dropout.

Method: every figure is the median over ``rounds`` timings taken after ``warmup`` calls; the
cases of one comparison are timed side by side, interleaved round by round (the order rotates
each round), so a change of machine load hits them alike; every ratio is a quotient of two such
medians from the same run. The benchmark prints figures and never fails on speed.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import datetime
import json
import math
import os
import platform
import re
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

SCHEMA_VERSION = 1
P = 0.2  # the drop rate of every variant (babyGPT v10's)
N_HEAD = 6  # heads for DropHead's (B, H, T, D) view and LearnedDropout (v11: 384 / 6 = 64)

# (B, T, C): v11's residual stream for 8 sequences (3 MB in float32) and for its whole batch of
# 64 (25 MB); the second no longer fits in a CPU's caches.
SIZES = ((8, 256, 384), (64, 256, 384))
QUICK_SIZES = ((2, 8, 12), (2, 16, 12))

# Goals of the performance issue: (label, kind, bound). kind "max": value <= bound is met.
GOALS = {
    "dropout_vs_native": ("dropoutlib.Dropout / nn.Dropout, fwd+bwd time", "max", 1.05),
    "seeded_vs_native": ("SeededDropout / nn.Dropout, fwd+bwd time (CPU)", "max", 1.2),
    "seeded_bytes": ("SeededDropout bytes saved per element", "max", 0.0),
    "native_bytes": ("nn.Dropout bytes saved per element", "min", 1.0),
    "seeded_triton_copy": ("SeededDropout fraction of copy bandwidth (GPU)", "min", 0.8),
    "p0_vs_none": ("step time, dropout modules at p=0 / no modules", "max", 1.02),
    "heads_vs_fused_256": ("step time, heads / fused attention at block_size 256", "min", 1.5),
    "learned_vs_standard": ("step time, LearnedDropout / standard dropout", "max", 1.3),
}
GPU_HEADS_VS_FUSED = 3.0


# ------------------------------------------------------------------------------------------------
# Timing


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_side_by_side(
    fns: dict[str, Callable[[], object]],
    *,
    device: torch.device | str = "cpu",
    rounds: int = 15,
    warmup: int = 3,
    min_time: float = 0.02,
) -> dict[str, dict]:
    """Median seconds per call of each function, timed interleaved in ``rounds`` rounds.

    After ``warmup`` calls of each, one more call sets how many calls (``number``) one timing
    makes so that it lasts at least ``min_time`` seconds; a timing's value is its elapsed time
    divided by ``number``. Round r times the functions in the order rotated by r.
    """
    device = torch.device(device)
    names = list(fns)
    for name in names:
        for _ in range(warmup):
            fns[name]()
    number = {}
    for name in names:
        _sync(device)
        t0 = time.perf_counter()
        fns[name]()
        _sync(device)
        number[name] = max(1, math.ceil(min_time / max(time.perf_counter() - t0, 1e-9)))
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            fn, n = fns[name], number[name]
            _sync(device)
            t0 = time.perf_counter()
            for _ in range(n):
                fn()
            _sync(device)
            times[name].append((time.perf_counter() - t0) / n)
    return {
        name: {"median_s": statistics.median(ts), "number": number[name], "times_s": ts}
        for name, ts in times.items()
    }


def ratio(results: dict[str, dict], a: str, b: str) -> float:
    """median(a) / median(b) of a :func:`time_side_by_side` result."""
    return results[a]["median_s"] / results[b]["median_s"]


# ------------------------------------------------------------------------------------------------
# The variants


def variant_cases(n_embd: int, *, p: float = P, n_head: int = N_HEAD, device="cpu", dtype=None):
    """name -> function of a (B, T, C) tensor, for every activation dropout of the library.

    Modules with parameters (LearnedDropout, ConcreteDropout) are built here, on ``device`` and
    in ``dtype``. DropHead sees the activation reshaped to (B, H, T, C / H). DropConnect and
    EmbeddingDropout act on weights and embedding tables, not activations, and are left out.
    """
    from dropoutlib import functional as DF
    from dropoutlib.layers import ConcreteDropout, Dropout
    from dropoutlib.learned import LearnedDropout
    from dropoutlib.seeded import SeededDropout

    def on(module: nn.Module) -> nn.Module:
        return module.to(device=device, dtype=dtype).train()

    def drop_head(x):
        B, T, C = x.shape
        return DF.drop_head(x.view(B, n_head, T, C // n_head), p).reshape(B, T, C)

    gen = torch.Generator(device).manual_seed(0)
    learned, concrete = on(LearnedDropout(n_embd, n_head)), on(ConcreteDropout(p))
    return {
        "nn.Dropout (native)": on(nn.Dropout(p)),
        "dropoutlib.Dropout": on(Dropout(p)),
        "SeededDropout": on(SeededDropout(p)),
        "dropout (generator)": lambda x: DF.dropout(x, p, generator=gen),
        "spatial_dropout": lambda x: DF.spatial_dropout(x, p),
        "locked_dropout": lambda x: DF.locked_dropout(x, p),
        "drop_path": lambda x: DF.drop_path(x, p),
        "drop_head": drop_head,
        "gaussian_dropout": lambda x: DF.gaussian_dropout(x, p),
        "alpha_dropout": lambda x: DF.alpha_dropout(x, p),
        "ConcreteDropout": concrete,
        "LearnedDropout": learned,
    }


def _fwd_bwd(fn, x: torch.Tensor, grad: torch.Tensor) -> Callable[[], None]:
    leaf = x.detach().requires_grad_()

    def run():
        leaf.grad = None
        fn(leaf).backward(grad)

    return run


def bench_throughput(
    sizes, *, device, dtype, p=P, rounds=15, warmup=3, min_time=0.02, seed=0
) -> list[dict]:
    """Part 1: fwd+bwd time of every variant and of the copy reference, per size."""
    out = []
    for shape in sizes:
        gen = torch.Generator(device="cpu").manual_seed(seed)
        x = torch.randn(shape, generator=gen).to(device=device, dtype=dtype)
        grad = torch.randn(shape, generator=gen).to(device=device, dtype=dtype)
        fns: dict[str, Callable[[], object]] = {
            "copy (reference)": lambda x=x, g=grad: (x.clone(), g.clone())
        }
        for name, fn in variant_cases(shape[-1], p=p, device=device, dtype=dtype).items():
            fns[name] = _fwd_bwd(fn, x, grad)
        if device.type == "cuda":
            from dropoutlib.seeded import _SeededDropoutFunction

            fns["SeededDropout (torch ops)"] = _fwd_bwd(
                lambda t: _SeededDropoutFunction.apply(t, p, 1234, False), x, grad
            )
        res = time_side_by_side(fns, device=device, rounds=rounds, warmup=warmup, min_time=min_time)
        bytes_moved = 4 * x.numel() * x.element_size()
        t_copy = res["copy (reference)"]["median_s"]
        t_native = res["nn.Dropout (native)"]["median_s"]
        rows = []
        for name, r in res.items():
            rows.append(
                {
                    "name": name,
                    **r,
                    "gb_per_s": bytes_moved / r["median_s"] / 1e9,
                    "fraction_of_copy": t_copy / r["median_s"],
                    "ratio_to_native": r["median_s"] / t_native,
                }
            )
        out.append(
            {
                "shape": list(shape),
                "numel": x.numel(),
                "dtype": str(dtype).replace("torch.", ""),
                "bytes_moved": bytes_moved,
                "rows": rows,
            }
        )
    return out


def saved_bytes(fn, x: torch.Tensor, params=()) -> dict:
    """Bytes autograd saves for backward while ``fn(x)`` runs, per element of ``x``.

    Tensors are counted once per storage; parameters (``params``) and ``x``'s own storage are
    left out, the latter reported as ``saves_input``.
    """
    leaf = x.detach().requires_grad_()
    skip = {t.untyped_storage().data_ptr() for t in params}
    input_ptr = leaf.untyped_storage().data_ptr()
    storages: dict[int, int] = {}
    saves_input = False

    def pack(t):
        nonlocal saves_input
        ptr = t.untyped_storage().data_ptr()
        if ptr == input_ptr:
            saves_input = True
        elif ptr not in skip:
            storages[ptr] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn(leaf)
    return {
        "bytes_per_element": sum(storages.values()) / leaf.numel(),
        "saves_input": saves_input,
        "tensors": len(storages),
    }


def bench_memory(shape, *, device, dtype, p=P, seed=0) -> dict:
    """Part 2: bytes saved for backward per input element, for every variant."""
    gen = torch.Generator(device="cpu").manual_seed(seed)
    x = torch.randn(shape, generator=gen).to(device=device, dtype=dtype)
    rows = []
    for name, fn in variant_cases(shape[-1], p=p, device=device, dtype=dtype).items():
        params = list(fn.parameters()) if isinstance(fn, nn.Module) else []
        rows.append({"name": name, **saved_bytes(fn, x, params)})
    return {"shape": list(shape), "dtype": str(dtype).replace("torch.", ""), "rows": rows}


def bench_p0_call(*, device, dtype, rounds=15, warmup=3, min_time=0.01) -> dict:
    """Forward time of a dropout module at p = 0 against ``nn.Identity``: the call overhead."""
    from dropoutlib.layers import Dropout
    from dropoutlib.seeded import SeededDropout

    x = torch.randn(8, 256, 384, device=device, dtype=dtype)
    mods = {
        "nn.Identity": nn.Identity(),
        "nn.Dropout(0)": nn.Dropout(0.0),
        "dropoutlib.Dropout(0)": Dropout(0.0),
        "SeededDropout(0)": SeededDropout(0.0),
    }
    res = time_side_by_side(
        {k: (lambda m=m: m(x)) for k, m in mods.items()},
        device=device,
        rounds=rounds,
        warmup=warmup,
        min_time=min_time,
    )
    return {
        "shape": list(x.shape),
        "rows": [
            {
                "name": k,
                **r,
                "returns_input": mods[k](x) is x,
                "ratio_to_identity": ratio(res, k, "nn.Identity"),
            }
            for k, r in res.items()
        ],
    }


# ------------------------------------------------------------------------------------------------
# babyGPT training steps


VOCAB = 65  # tiny Shakespeare's character vocabulary


def step_configs(quick: bool = False) -> dict[str, dict]:
    """Part 3's model settings: name -> (GPTConfig overrides, batch size, case names)."""
    if quick:
        tiny = {"n_embd": 12, "n_head": 2, "n_layer": 1}
        return {
            "v10": {"overrides": {**tiny, "block_size": 8}, "batch_size": 2},
            "block256": {"overrides": {**tiny, "block_size": 16}, "batch_size": 2},
        }
    return {
        # babyGPT v10 as published: batch 32, block 8, 32 wide, 4 heads, 3 layers
        "v10": {"overrides": {}, "batch_size": 32},
        # the same model with gpt.py's context of 256 tokens, batch 16
        "block256": {"overrides": {"block_size": 256}, "batch_size": 16},
    }


def step_cases(setting: str) -> dict[str, dict]:
    """The models of one setting: name -> GPTConfig overrides (plus ``strip``: dropout modules
    replaced by ``nn.Identity``, the "no dropout at all" reference)."""
    fused = {"attention": "fused"}
    learned = {"ffn_kind": "learned"}
    cases = {
        "heads, dropout 0.2": {"attention": "heads", "dropout": 0.2},
        "fused, dropout 0.2": {**fused, "dropout": 0.2},
        "heads, dropout 0": {"attention": "heads", "dropout": 0.0},
        "fused, dropout 0": {**fused, "dropout": 0.0},
        "fused, no dropout modules": {**fused, "dropout": 0.0, "strip": True},
        "fused, LearnedDropout FFN": {**fused, "dropout": 0.2, **learned},
    }
    if setting == "v10":  # the faithful per-head model with LearnedDropout too
        cases["heads, LearnedDropout FFN"] = {"attention": "heads", "dropout": 0.2, **learned}
    return cases


def _strip_dropout(model: nn.Module) -> nn.Module:
    """The model with every nn.Dropout / DropoutModule replaced by nn.Identity (same weights)."""
    from dropoutlib._base import DropoutModule

    model = copy.deepcopy(model)
    for name, module in list(model.named_modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, (nn.modules.dropout._DropoutNd, DropoutModule)):
                if getattr(child, "p", 0.0) != 0.0:
                    raise ValueError(
                        f"{name}.{child_name} has p={child.p}; strip only p = 0 models"
                    )
                if module.__class__.__name__ == "FusedAttention" and child_name == "attn_dropout":
                    continue  # read for SDPA's dropout_p, never called
                setattr(module, child_name, nn.Identity())
    return model


def make_step(model: nn.Module, batch_size: int, block_size: int, *, device, seed=0, lr=1e-3):
    """One training step of ``model`` (AdamW, random tokens, LearnedDropout penalty if any)."""
    from dropoutlib.learned import has_learned_dropout, penalty_loss

    gen = torch.Generator(device="cpu").manual_seed(seed)
    vocab = model.config.vocab_size if hasattr(model, "config") else VOCAB
    idx = torch.randint(vocab, (batch_size, block_size + 1), generator=gen).to(device)
    x, y = idx[:, :-1], idx[:, 1:]
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    learned = has_learned_dropout(model)
    model.train()

    def step():
        _, loss = model(x, y)
        if learned:
            loss = loss + penalty_loss(model, 0)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss

    return step


def bench_steps(*, device, quick=False, rounds=9, warmup=2, min_time=0.0, seed=0) -> list[dict]:
    """Part 3: median step time and tokens/s of each model of each setting, side by side."""
    from dropoutlib.model import BabyGPT, GPTConfig

    out = []
    for setting, spec in step_configs(quick).items():
        fns, models = {}, {}
        for name, case in step_cases(setting).items():
            case = dict(case)
            strip = case.pop("strip", False)
            torch.manual_seed(seed)
            config = GPTConfig.v10(VOCAB, **{**spec["overrides"], **case})
            model = BabyGPT(config).to(device)
            if strip:
                model = _strip_dropout(model)
            models[name] = model
            fns[name] = make_step(
                model, spec["batch_size"], config.block_size, device=device, seed=seed
            )
        res = time_side_by_side(fns, device=device, rounds=rounds, warmup=warmup, min_time=min_time)
        tokens = spec["batch_size"] * models[next(iter(models))].config.block_size
        rows = [
            {
                "name": k,
                **r,
                "tokens_per_s": tokens / r["median_s"],
                "num_params": models[k].num_params(),
            }
            for k, r in res.items()
        ]
        pairs = {
            "heads / fused (dropout 0.2)": ("heads, dropout 0.2", "fused, dropout 0.2"),
            "heads / fused (dropout 0)": ("heads, dropout 0", "fused, dropout 0"),
            "dropout 0.2 / 0 (fused)": ("fused, dropout 0.2", "fused, dropout 0"),
            "dropout 0.2 / 0 (heads)": ("heads, dropout 0.2", "heads, dropout 0"),
            "p = 0 modules / no modules (fused)": ("fused, dropout 0", "fused, no dropout modules"),
            "LearnedDropout / standard (fused)": (
                "fused, LearnedDropout FFN",
                "fused, dropout 0.2",
            ),
        }
        if setting == "v10":
            pairs["LearnedDropout / standard (heads)"] = (
                "heads, LearnedDropout FFN",
                "heads, dropout 0.2",
            )
        out.append(
            {
                "setting": setting,
                "config": dataclasses.asdict(GPTConfig.v10(VOCAB, **spec["overrides"])),
                "batch_size": spec["batch_size"],
                "tokens_per_step": tokens,
                "rows": rows,
                "ratios": {label: ratio(res, a, b) for label, (a, b) in pairs.items()},
            }
        )
    return out


# ------------------------------------------------------------------------------------------------
# Part 5: what each dropout site of babyGPT costs

SITES = ("embd", "attn", "resid", "ffn")  # GPTConfig's sites: embedding, attention weights,
# attention output (after the projection), FFN output


def site_cases() -> dict[str, dict]:
    """name -> GPTConfig overrides: no dropout, dropout ``P`` at one site only, at all four."""
    cases = {"no dropout": {"dropout": 0.0}}
    for site in SITES:
        field = "embd_dropout" if site == "embd" else f"{site}_dropout"
        cases[f"{site} only"] = {"dropout": 0.0, field: P}
    cases["all four"] = {"dropout": P, "embd_dropout": P}
    return cases


def step_saved_bytes(model: nn.Module, idx: torch.Tensor, targets: torch.Tensor) -> float:
    """Bytes autograd keeps for backward during one training forward of ``model`` (loss
    included), per token of the batch: every saved tensor counted once per storage, parameters
    left out."""
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    storages: dict[int, int] = {}

    def pack(t):
        ptr = t.untyped_storage().data_ptr()
        if ptr not in params:
            storages[ptr] = t.untyped_storage().nbytes()
        return t

    model.train()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(idx, targets)
    return sum(storages.values()) / idx.numel()


def bench_sites(*, device, quick=False, rounds=9, warmup=2, seed=0) -> list[dict]:
    """Part 5: the step time and the bytes saved for backward of babyGPT with dropout ``P`` at
    one site at a time (:func:`site_cases`), per setting of :func:`step_configs` and per
    attention path (per-head modules, fused SDPA). ``extra_s`` and ``extra_bytes_per_token``
    are each site's cost over the model without dropout."""
    from dropoutlib.model import BabyGPT, GPTConfig

    out = []
    for setting, spec in step_configs(quick).items():
        for attention in ("heads", "fused"):
            fns, saved, models = {}, {}, {}
            for name, case in site_cases().items():
                torch.manual_seed(seed)
                config = GPTConfig.v10(VOCAB, **{**spec["overrides"], "attention": attention})
                config = dataclasses.replace(config, **case)
                model = BabyGPT(config).to(device)
                gen = torch.Generator(device="cpu").manual_seed(seed)
                idx = torch.randint(
                    VOCAB, (spec["batch_size"], config.block_size + 1), generator=gen
                )
                idx = idx.to(device)
                saved[name] = step_saved_bytes(model, idx[:, :-1], idx[:, 1:])
                models[name] = model
                fns[name] = make_step(
                    model, spec["batch_size"], config.block_size, device=device, seed=seed
                )
            res = time_side_by_side(fns, device=device, rounds=rounds, warmup=warmup, min_time=0.0)
            base = res["no dropout"]["median_s"]
            rows = [
                {
                    "name": k,
                    **r,
                    "extra_s": r["median_s"] - base,
                    "ratio_to_none": r["median_s"] / base,
                    "saved_bytes_per_token": saved[k],
                    "extra_bytes_per_token": saved[k] - saved["no dropout"],
                }
                for k, r in res.items()
            ]
            config = models["no dropout"].config
            out.append(
                {
                    "setting": setting,
                    "attention": attention,
                    "config": dataclasses.asdict(config),
                    "batch_size": spec["batch_size"],
                    "tokens_per_step": spec["batch_size"] * config.block_size,
                    "rows": rows,
                }
            )
    return out


# ------------------------------------------------------------------------------------------------
# Part 4: the v11 run on a GPU


def train_run(
    config,
    text: str,
    *,
    iters: int,
    batch_size: int = 64,
    lr: float = 3e-4,
    eval_iters: int = 200,
    device="cuda",
    seed: int = 1337,
) -> dict:
    """Train ``BabyGPT(config)`` on ``text`` for ``iters`` AdamW steps (gpt.py's recipe: constant
    lr, 90/10 split); return wall time, tokens/s and the final train/val loss (eval mode, mean of
    ``eval_iters`` batches). On CUDA it runs under bf16 autocast (fp16 with loss scaling where the
    GPU has no bf16)."""
    from dropoutlib.data import CharTokenizer, get_batch, train_val_split
    from dropoutlib.model import BabyGPT

    device = torch.device(device)
    tok = CharTokenizer(text)
    data = torch.tensor(tok.encode(text), dtype=torch.long)
    train_data, val_data = train_val_split(data)
    torch.manual_seed(seed)
    model = BabyGPT(config).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    amp_dtype = None
    if device.type == "cuda":
        amp_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)
    gen = torch.Generator().manual_seed(seed)

    def autocast():
        return torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None)

    model.train()
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(iters):
        x, y = get_batch(train_data, config.block_size, batch_size, gen, device)
        with autocast():
            _, loss = model(x, y)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
    _sync(device)
    wall = time.perf_counter() - t0

    model.eval()
    losses = {}
    with torch.no_grad():
        for split, d in (("train", train_data), ("val", val_data)):
            total = 0.0
            for _ in range(eval_iters):
                x, y = get_batch(d, config.block_size, batch_size, gen, device)
                with autocast():
                    total += model(x, y)[1].float().item()
            losses[split] = total / eval_iters
    return {
        "iters": iters,
        "batch_size": batch_size,
        "learning_rate": lr,
        "amp_dtype": str(amp_dtype).replace("torch.", "") if amp_dtype else "float32",
        "wall_time_s": wall,
        "tokens_per_s": iters * batch_size * config.block_size / wall,
        "train_loss": losses["train"],
        "val_loss": losses["val"],
        "num_params": model.num_params(),
        "config": dataclasses.asdict(config),
    }


def bench_gpu_run(*, device, iters=5000, quick=False) -> dict:
    """Part 4: the v11 preset on tiny Shakespeare (CUDA only)."""
    if device.type != "cuda" and not quick:
        return {"skipped": "no GPU: the v11 run for 5000 iterations is measured on CUDA only"}
    from dropoutlib.data import load_corpus
    from dropoutlib.model import GPTConfig

    text = load_corpus("shakespeare")
    vocab = len(set(text))
    if quick:  # the same code path, tiny
        config = GPTConfig.v10(vocab, n_embd=12, n_head=2, n_layer=1, block_size=8)
        return train_run(config, text, iters=3, batch_size=2, eval_iters=2, device=device)
    config = GPTConfig.v11(vocab, attention="fused")
    return train_run(config, text, iters=iters, device=device)


# ------------------------------------------------------------------------------------------------
# Goals, environment, output


def _goal(key: str, value: float, where: str) -> dict:
    label, kind, bound = GOALS[key]
    met = value <= bound if kind == "max" else value >= bound
    return {
        "goal": key,
        "label": label,
        "where": where,
        "value": value,
        "bound": f"{'<=' if kind == 'max' else '>='} {bound}",
        "met": bool(met),
    }


def evaluate_goals(results: dict) -> list[dict]:
    """Each goal of the issue against the measured figure(s) of ``results``."""
    goals = []
    on_gpu = results["env"]["device"] != "cpu"
    for size in results.get("throughput", []):
        rows = {r["name"]: r for r in size["rows"]}
        where = "fwd+bwd " + "x".join(map(str, size["shape"]))
        goals.append(
            _goal("dropout_vs_native", rows["dropoutlib.Dropout"]["ratio_to_native"], where)
        )
        if on_gpu:
            goals.append(
                _goal("seeded_triton_copy", rows["SeededDropout"]["fraction_of_copy"], where)
            )
        else:
            goals.append(_goal("seeded_vs_native", rows["SeededDropout"]["ratio_to_native"], where))
    if "memory" in results:
        rows = {r["name"]: r for r in results["memory"]["rows"]}
        goals.append(_goal("seeded_bytes", rows["SeededDropout"]["bytes_per_element"], "saved"))
        goals.append(
            _goal("native_bytes", rows["nn.Dropout (native)"]["bytes_per_element"], "saved")
        )
    for setting in results.get("steps", []):
        r = setting["ratios"]
        where = f"babyGPT step, {setting['setting']}"
        goals.append(_goal("p0_vs_none", r["p = 0 modules / no modules (fused)"], where))
        if setting["setting"] == "block256":
            for label in ("heads / fused (dropout 0.2)", "heads / fused (dropout 0)"):
                g = _goal("heads_vs_fused_256", r[label], f"{where}, {label}")
                if on_gpu:
                    g["bound"] = f">= {GPU_HEADS_VS_FUSED}"
                    g["met"] = g["value"] >= GPU_HEADS_VS_FUSED
                goals.append(g)
        for label in ("LearnedDropout / standard (fused)", "LearnedDropout / standard (heads)"):
            if label in r:
                goals.append(_goal("learned_vs_standard", r[label], f"{where}, {label}"))
    return goals


def device_slug(device: torch.device) -> str:
    """ "cpu", or the GPU's name as a file-name slug (e.g. "nvidia-h100-80gb-hbm3")."""
    if device.type != "cuda":
        return device.type
    return re.sub(r"[^a-z0-9]+", "-", torch.cuda.get_device_name(device).lower()).strip("-")


def environment(device: torch.device) -> dict:
    from dropoutlib import __version__, seeded

    env = {
        "device": device_slug(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else _cpu_name(),
        "torch_version": torch.__version__,
        "dropoutlib_version": __version__,
        "triton_version": getattr(seeded.triton, "__version__", None),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
    }
    if hasattr(os, "getloadavg"):
        env["loadavg_start"] = list(os.getloadavg())
    return env


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def run(
    *,
    device="auto",
    quick: bool = False,
    parts=("throughput", "memory", "steps", "sites", "gpu_run"),
    rounds: int | None = None,
    threads: int | None = None,
) -> dict:
    """Run the benchmark parts and return the results dict (see the module docstring).

    ``threads`` sets ``torch.set_num_threads`` for the run (default: leave torch's setting).
    """
    if threads is not None:
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
            raise ValueError(f"threads must be an int >= 1 or None, got {threads!r}")
        torch.set_num_threads(threads)
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(device)
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    rounds = rounds or (3 if quick else 15)
    timing = {"rounds": rounds, "warmup": 1 if quick else 3, "min_time": 0.0 if quick else 0.02}
    results = {
        "schema": SCHEMA_VERSION,
        "env": environment(device) | {"quick": quick},
        "settings": {
            "p": P,
            "dtype": str(dtype).replace("torch.", ""),
            **timing,
            "reference": "copy: x.clone() + dy.clone(), the 4*numel*itemsize bytes "
            "an elementwise fwd+bwd must move",
        },
    }
    sizes = QUICK_SIZES if quick else SIZES
    if "throughput" in parts:
        results["throughput"] = bench_throughput(sizes, device=device, dtype=dtype, **timing)
        results["p0_call"] = bench_p0_call(device=device, dtype=dtype, **timing)
    if "memory" in parts:
        results["memory"] = bench_memory(sizes[0], device=device, dtype=dtype)
    if "steps" in parts:
        step_rounds = 3 if quick else max(5, (rounds * 3) // 4)
        results["steps"] = bench_steps(
            device=device, quick=quick, rounds=step_rounds, warmup=timing["warmup"]
        )
    if "sites" in parts:
        site_rounds = 3 if quick else max(5, (rounds * 3) // 4)
        results["sites"] = bench_sites(
            device=device, quick=quick, rounds=site_rounds, warmup=timing["warmup"]
        )
    if "gpu_run" in parts:
        results["gpu_run"] = bench_gpu_run(device=device, quick=quick)
    if hasattr(os, "getloadavg"):
        results["env"]["loadavg_end"] = list(os.getloadavg())
    results["goals"] = evaluate_goals(results)
    return results


def _fmt_time(s: float) -> str:
    return f"{s * 1e3:.3f} ms" if s >= 1e-4 else f"{s * 1e6:.2f} µs"


def markdown(results: dict) -> str:
    """The results as markdown tables."""
    env = results["env"]
    lines = [
        f"# dropoutlib bench: {env['device_name']} ({env['device']}), "
        f"torch {env['torch_version']}, {env['threads']} threads, {env['date']}",
        "",
    ]
    if env.get("loadavg_start"):
        lines += [
            f"load average at start {env['loadavg_start']}, at end {env.get('loadavg_end')}",
            "",
        ]
    for size in results.get("throughput", []):
        lines += [
            f"## Forward + backward, x {tuple(size['shape'])} {size['dtype']}, "
            f"p = {results['settings']['p']}",
            "",
            "| variant | median | GB/s | fraction of copy | / nn.Dropout |",
            "|---|---:|---:|---:|---:|",
        ]
        for r in size["rows"]:
            lines.append(
                f"| {r['name']} | {_fmt_time(r['median_s'])} | {r['gb_per_s']:.2f} | "
                f"{r['fraction_of_copy']:.3f} | {r['ratio_to_native']:.3f} |"
            )
        lines.append("")
    if "p0_call" in results:
        lines += [
            "## Forward call at p = 0 (module overhead)",
            "",
            "| module | median | / nn.Identity | returns its input |",
            "|---|---:|---:|---|",
        ]
        for r in results["p0_call"]["rows"]:
            lines.append(
                f"| {r['name']} | {_fmt_time(r['median_s'])} | "
                f"{r['ratio_to_identity']:.2f} | {r['returns_input']} |"
            )
        lines.append("")
    if "memory" in results:
        m = results["memory"]
        lines += [
            f"## Saved for backward, x {tuple(m['shape'])} {m['dtype']}",
            "",
            "| variant | bytes / element | also keeps x |",
            "|---|---:|---|",
        ]
        for r in m["rows"]:
            lines.append(f"| {r['name']} | {r['bytes_per_element']:.3f} | {r['saves_input']} |")
        lines.append("")
    for s in results.get("steps", []):
        c = s["config"]
        lines += [
            f"## babyGPT training step, {s['setting']}: n_embd {c['n_embd']}, "
            f"n_head {c['n_head']}, n_layer {c['n_layer']}, block_size {c['block_size']}, "
            f"batch {s['batch_size']}",
            "",
            "| model | median step | tokens/s | parameters |",
            "|---|---:|---:|---:|",
        ]
        for r in s["rows"]:
            lines.append(
                f"| {r['name']} | {_fmt_time(r['median_s'])} | {r['tokens_per_s']:,.0f} | "
                f"{r['num_params']:,} |"
            )
        lines += ["", "| ratio of step times | value |", "|---|---:|"]
        lines += [f"| {k} | {v:.3f} |" for k, v in s["ratios"].items()]
        lines.append("")
    for s in results.get("sites", []):
        c = s["config"]
        lines += [
            f"## Dropout {results['settings']['p']} at one site, {s['setting']} "
            f"({s['attention']} attention): block_size {c['block_size']}, batch {s['batch_size']}",
            "",
            "| model | median step | / no dropout | extra | saved for backward / token | extra |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for r in s["rows"]:
            lines.append(
                f"| {r['name']} | {_fmt_time(r['median_s'])} | {r['ratio_to_none']:.3f} | "
                f"{r['extra_s'] * 1e3:+.3f} ms | {r['saved_bytes_per_token']:,.0f} B | "
                f"{r['extra_bytes_per_token']:+,.0f} B |"
            )
        lines.append("")
    g = results.get("gpu_run")
    if g:
        lines += ["## v11 on tiny Shakespeare (GPU)", ""]
        if "skipped" in g:
            lines.append(f"skipped: {g['skipped']}")
        else:
            lines.append(
                f"{g['iters']} iterations, {g['amp_dtype']}: wall {g['wall_time_s']:.1f} s, "
                f"{g['tokens_per_s']:,.0f} tokens/s, train loss {g['train_loss']:.4f}, "
                f"val loss {g['val_loss']:.4f}"
            )
        lines.append("")
    if results.get("goals"):
        lines += [
            "## Goals",
            "",
            "| goal | where | measured | bound | met |",
            "|---|---|---:|---|---|",
        ]
        for r in results["goals"]:
            lines.append(
                f"| {r['label']} | {r['where']} | {r['value']:.3f} | {r['bound']} | "
                f"{'yes' if r['met'] else 'NO'} |"
            )
        lines.append("")
    return "\n".join(lines)


def write(results: dict, path: str | os.PathLike) -> Path:
    """Write ``results`` as JSON (atomically)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


# ------------------------------------------------------------------------------------------------
# Command line (``python -m dropoutlib bench``)

PARTS = ("throughput", "memory", "steps", "sites", "gpu_run")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quick", action="store_true", help="tiny sizes and few rounds (for tests)")
    p.add_argument("--device", default="auto", help="auto (default: cuda if available), cpu, cuda")
    p.add_argument(
        "--output", help="JSON file (default results/bench-<device>.json, -quick.json with --quick)"
    )
    p.add_argument(
        "--parts", default=",".join(PARTS), help=f"comma-separated subset of {','.join(PARTS)}"
    )
    p.add_argument("--rounds", type=int, help="timed rounds per comparison (default 15; quick 3)")
    p.add_argument(
        "--threads", type=int, help="torch.set_num_threads for the run (default: torch's)"
    )


def run_from_args(args: argparse.Namespace) -> int:
    parts = tuple(s.strip() for s in args.parts.split(",") if s.strip())
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        raise SystemExit(f"error: --parts has unknown part(s) {unknown}; choose from {PARTS}")
    if args.rounds is not None and args.rounds < 1:
        raise SystemExit(f"error: --rounds must be >= 1, got {args.rounds}")
    if args.threads is not None and args.threads < 1:
        raise SystemExit(f"error: --threads must be >= 1, got {args.threads}")
    results = run(
        device=args.device, quick=args.quick, parts=parts, rounds=args.rounds, threads=args.threads
    )
    results["env"]["command"] = "python -m dropoutlib bench " + " ".join(sys.argv[2:])
    print(markdown(results))
    # --quick never overwrites the committed full-size results
    default = f"results/bench-{results['env']['device']}{'-quick' if args.quick else ''}.json"
    out = write(results, args.output or default)
    print(f"written: {out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dropoutlib bench", description=__doc__.split("\n")[0])
    add_arguments(parser)
    return run_from_args(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
