"""The training loop: babyGPT v10's (and Karpathy's gpt.py's), made reproducible and resumable.

AdamW with PyTorch's defaults and a constant learning rate, random windows of the corpus as
batches, and an estimate of the train and validation loss every ``eval_interval`` steps averaged
over ``eval_iters`` batches per split, with the model in eval mode so that every dropout site is
off. :func:`train` sets a run up (cache lookup, model, optimizer, resume), then runs a short loop
whose steps have names: ``next_batch``, ``training_loss``, ``optimizer_step``, ``evaluate``,
``save_checkpoint``.

Randomness comes in independent streams (:func:`stream_seed`): the weights are initialised from
``seed``; dropout masks come from the global torch RNG, reseeded after initialisation; training
batches, token masking and evaluation batches each have a ``torch.Generator`` of their own (the
evaluation one reseeded identically at every evaluation, so every run with the same seed is
scored on the same batches).
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import io
import os
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from dropoutlib._io import atomic_write
from dropoutlib.train import batches, checkpoint, finetune, store
from dropoutlib.train.config import TrainConfig, make_schedule, model_config_dict
from dropoutlib.train.devices import (
    amp_settings,
    autocast,
    device_name,
    resolve_device,
    synchronize,
)
from dropoutlib.train.distributed import setup_distributed
from dropoutlib.train.evaluate import estimate_loss
from dropoutlib.train.objective import setup_concrete, training_loss

__all__ = ["train", "lookup", "stream_seed", "optimizer_param_groups"]


def stream_seed(seed: int, stream: str, rank: int = 0) -> int:
    """The seed of one random stream (``"dropout"``, ``"batch"``, ``"eval"``, ``"sample"``,
    ``"token_mask"``) of rank ``rank`` in a run seeded with ``seed``: 63 bits of sha256, so
    streams are unrelated."""
    digest = hashlib.sha256(f"dropoutlib/{seed}/{stream}/{rank}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def optimizer_param_groups(model: nn.Module, weight_decay: float, rule: str = "all") -> list[dict]:
    """AdamW parameter groups for ``rule`` (see :attr:`TrainConfig.weight_decay_rule`).

    ``"all"``: one group, every parameter decayed by ``weight_decay`` (what
    ``AdamW(model.parameters(), weight_decay=...)`` does, babyGPT's optimizer). ``"nanogpt"``:
    two groups, ``weight_decay`` for tensors with >= 2 dims (Linear weights, embeddings) and 0
    for the rest (biases, LayerNorm weights, LearnedDropout's shift B), the rule of nanoGPT's
    ``configure_optimizers`` and of the Learned Dropout code. Parameters keep
    ``model.parameters()`` order within a group; frozen parameters (``requires_grad=False``,
    as LoRA leaves the base weights) are left out.
    """
    from dropoutlib.train.config import DECAY_RULES

    if rule not in DECAY_RULES:
        raise ValueError(f"rule must be one of {DECAY_RULES}, got {rule!r}")
    params = [p for p in model.parameters() if p.requires_grad]
    if rule == "all":
        return [{"params": params, "weight_decay": weight_decay}]
    return [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]


def _learned_module(model: nn.Module):
    """dropoutlib.learned when the model has LearnedDropout modules (their penalty and mask
    statistics), else None."""
    import dropoutlib.learned as learned

    return learned if learned.has_learned_dropout(model) else None


def _may_skip_parameters(model: nn.Module) -> bool:
    # LayerDrop skips whole blocks in a step: their parameters get no gradient, which DDP must know.
    return any(type(m).__name__ == "LayerDrop" for m in model.modules())


class _Schedule:
    """A ``dropout_schedule`` on a model: a DropoutScheduler stepped per step or per epoch."""

    def __init__(self, spec: dict, model: nn.Module, max_iters: int, tokens_per_step, n_train):
        from dropoutlib.schedules import DropoutScheduler

        schedule, self.every = make_schedule(spec)
        self.tokens_per_step, self.n_train = tokens_per_step, n_train
        if self.every == "epoch":  # seed 000: rate = f(epoch, epochs), epochs started so far
            total = max(1, -(-max_iters * tokens_per_step // n_train))
        else:
            total = max(1, max_iters)
        self.scheduler = DropoutScheduler(model, schedule, total, name=spec.get("sites"))

    def after_step(self, step: int) -> None:
        if self.every == "step":
            self.scheduler.step()
        elif self._epoch(step) > self._epoch(step - 1):
            self.scheduler.step()

    def _epoch(self, step: int) -> int:
        return step * self.tokens_per_step // self.n_train

    @property
    def p(self) -> float:
        return self.scheduler.p


def _identify(model_config, tc: TrainConfig, corpus: str, *, local_rank=0, world_size=1):
    """What names a run, checked before anything is built: ``(device, autocast dtype, use a
    grad scaler, train config with the parent's full key, parent RunResult or None, run key)``."""
    device = resolve_device(tc.device, local_rank)
    amp_dtype, use_scaler = amp_settings(device.type, tc.dtype)
    tokenizer = batches.corpus_tensors(corpus)[0]
    if model_config.vocab_size != tokenizer.vocab_size:
        raise ValueError(
            f"model_config.vocab_size must be the vocabulary size of corpus {corpus!r}, "
            f"{tokenizer.vocab_size}; got {model_config.vocab_size}"
        )
    for prompt in tc.prompts:
        tokenizer.encode(prompt)  # fail now, not after training, on characters it lacks
    parent = None
    if tc.init_from is not None:
        parent = store.find_run(tc.init_from)
        finetune.check_parent(parent, model_config)
        tc = TrainConfig.from_dict({**tc.to_dict(), "init_from": parent.key})  # the full key
    key = store.run_key(
        model_config,
        tc,
        corpus,
        device_type=device.type,
        amp_dtype=amp_dtype,
        world_size=world_size,
    )
    return device, amp_dtype, use_scaler, tc, parent, key


def lookup(model_config, train_config: TrainConfig, corpus: str) -> store.RunResult | None:
    """The finished run that ``train(model_config, train_config, corpus)`` would return from the
    cache, or None if it would have to train (nothing is built or trained)."""
    from dropoutlib.data import CORPORA

    if corpus not in CORPORA:
        raise ValueError(f"corpus must be one of {CORPORA}, got {corpus!r}")
    key = _identify(model_config, train_config, corpus)[-1]
    return store.read_entry(store.cache_dir() / key / "result.json", key)


def train(
    model_config,
    train_config: TrainConfig | None = None,
    corpus: str = "song_ci",
    *,
    cache: bool = True,
    progress: bool = True,
    out_dir: str | os.PathLike | None = None,
    resume: bool = True,
    callback: Callable[[int, nn.Module], None] | None = None,
    on_eval: Callable[[dict], None] | None = None,
) -> store.RunResult:
    """Train a :class:`~dropoutlib.model.BabyGPT` built from ``model_config`` on ``corpus``.

    ``model_config.vocab_size`` must be the corpus's (:func:`dropoutlib.train.vocab_size`). The
    run lives in ``out_dir`` (default: ``cache_dir() / key``): ``checkpoint.pt`` while it trains,
    then ``result.json`` and ``model.pt``. With ``cache=True`` a finished, intact
    ``result.json`` for the same key is returned without training (``cache=False`` trains anyway
    and overwrites it); with ``resume=True`` a checkpoint of the same run is continued.
    ``progress`` shows a tqdm bar (terminal or notebook) with the latest losses.
    ``callback(step, model)``, if given, is called after every optimizer step (it must not
    consume the global RNG if the run is to stay reproducible); ``on_eval(entry)`` after every
    evaluation, with the history entry just recorded. Run under ``torchrun`` for data
    parallelism; every rank returns rank 0's result.
    """
    from dropoutlib import __version__
    from dropoutlib.data import CORPORA, corpus_sha256, get_batch

    tc = TrainConfig() if train_config is None else train_config
    if not isinstance(tc, TrainConfig):
        raise ValueError(f"train_config must be a TrainConfig, got {type(tc).__name__}")
    mc_dict = model_config_dict(model_config)
    if corpus not in CORPORA:
        raise ValueError(f"corpus must be one of {CORPORA}, got {corpus!r}")

    dist = setup_distributed(tc.device)
    restore = contextlib.ExitStack()
    try:
        # --- set up: device, data, parent, key --------------------------------------------
        device, amp_dtype, use_scaler, tc, parent, key = _identify(
            model_config, tc, corpus, local_rank=dist.local_rank, world_size=dist.world_size
        )
        tokenizer, all_train, val_data = batches.corpus_tensors(corpus)
        block_size = model_config.block_size
        train_data = batches.training_tokens(all_train, tc.train_tokens, block_size)
        run_dir = Path(out_dir) if out_dir is not None else store.cache_dir() / key
        result_path, ckpt_path = run_dir / "result.json", run_dir / "checkpoint.pt"

        # 1. A finished run? (rank 0 looks; everyone gets its answer)
        cached = None
        if cache and dist.is_main:
            found = store.read_entry(result_path, key)
            cached = None if found is None else found.to_dict()
        cached = dist.broadcast(cached)
        if cached is not None:
            found = store.RunResult.from_dict(cached)
            found._run_dir = run_dir
            return found

        # 2. Build: identical initial weights on every rank (the parent's, for fine-tuning;
        # LoRA's adapter init draws from the same seeded RNG), then per-rank random streams.
        # The caller's global RNG state is given back afterwards (fork_rng).
        cuda_devices = [device.index] if device.type == "cuda" else []
        restore.enter_context(torch.random.fork_rng(devices=cuda_devices))
        torch.manual_seed(tc.seed)
        raw_model = finetune.build_model(model_config)
        if parent is not None:
            raw_model.load_state_dict(parent.load_state_dict())
        if tc.lora is not None:
            raw_model = finetune.add_lora(raw_model, tc.lora)
        trainable_params, num_params = finetune.count_parameters(raw_model)
        raw_model.to(device)
        optimizer = torch.optim.AdamW(
            optimizer_param_groups(raw_model, tc.weight_decay, tc.weight_decay_rule),
            lr=tc.learning_rate,
        )
        scaler = torch.amp.GradScaler(device.type, enabled=use_scaler)
        torch.manual_seed(stream_seed(tc.seed, "dropout", dist.rank))
        generators = {
            "batch": torch.Generator().manual_seed(stream_seed(tc.seed, "batch", dist.rank)),
            "token_mask": torch.Generator().manual_seed(
                stream_seed(tc.seed, "token_mask", dist.rank)
            ),
        }
        learned = _learned_module(raw_model)
        concrete = setup_concrete(raw_model, len(train_data))
        tokens_per_step = tc.batch_size * block_size * dist.world_size
        schedule = None
        if tc.dropout_schedule is not None:
            schedule = _Schedule(
                tc.dropout_schedule, raw_model, tc.max_iters, tokens_per_step, len(train_data)
            )

        start, history, resumed_at = 0, [], []
        wall_before, train_time = 0.0, 0.0

        # 3. Resume from a checkpoint of this run (rank 0 checks it; every rank reads it).
        ckpt_ok = False
        if resume and dist.is_main:
            ckpt_ok = checkpoint.read_checkpoint(ckpt_path, key) is not None
        if dist.broadcast(ckpt_ok):
            ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True)
            raw_model.load_state_dict(ckpt["model"])
            optimizer.load_state_dict(ckpt["optimizer"])
            scaler.load_state_dict(ckpt["scaler"])
            if schedule is not None:
                schedule.scheduler.load_state_dict(ckpt["scheduler"])
            checkpoint.set_rng_state(ckpt["rng"][dist.rank], device, generators)
            start, history = ckpt["step"], ckpt["history"]
            resumed_at = ckpt["resumed_at"] + [start]
            wall_before, train_time = ckpt["wall_time_s"], ckpt["train_time_s"]
            del ckpt

        model: nn.Module = raw_model
        if dist.enabled:
            from torch.nn.parallel import DistributedDataParallel as DDP

            model = DDP(
                raw_model,
                device_ids=[device.index] if device.type == "cuda" else None,
                broadcast_buffers=False,
                find_unused_parameters=_may_skip_parameters(raw_model),
            )
        eval_model: nn.Module = raw_model
        if tc.compile:
            model = torch.compile(model)
            eval_model = model if not dist.enabled else torch.compile(raw_model)

        # --- the named steps of the loop ---------------------------------------------------
        def next_batch():
            x, y = get_batch(train_data, block_size, tc.batch_size, generators["batch"], device)
            x = batches.mask_tokens(
                x, tc.token_mask_rate, tokenizer.vocab_size, generators["token_mask"]
            )
            return x, y

        def optimizer_step(loss) -> None:
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if tc.grad_clip > 0:
                scaler.unscale_(optimizer)  # clip the true gradients, not the scaled ones
                torch.nn.utils.clip_grad_norm_(raw_model.parameters(), tc.grad_clip)
            scaler.step(optimizer)
            scaler.update()

        def evaluate(step: int) -> None:
            # Mask statistics first: they describe the last training forward, which the
            # evaluation's forwards would overwrite.
            stats = learned.mask_stats(raw_model) if learned is not None and step > 0 else None
            gen = torch.Generator().manual_seed(stream_seed(tc.seed, "eval", dist.rank))
            losses = estimate_loss(
                eval_model,
                {"train": train_data, "val": val_data},
                block_size=block_size,
                batch_size=tc.batch_size,
                eval_iters=tc.eval_iters,
                generator=gen,
                device=device,
                amp_dtype=amp_dtype,
            )
            tr, va = dist.mean([losses["train"], losses["val"]], device)
            entry = {
                "step": step,
                "epoch": step * tokens_per_step / len(train_data),
                "train_loss": tr,
                "val_loss": va,
            }
            if schedule is not None:
                entry["dropout_p"] = schedule.p
            if stats:
                entry["mask_stats"] = stats
            history.append(entry)
            if on_eval is not None:
                on_eval(entry)

        def save_checkpoint(step: int, wall: float) -> None:
            states = dist.gather(checkpoint.rng_state(device, generators))
            if not dist.is_main:
                return
            ckpt = {
                "key": key,
                "step": step,
                "model": raw_model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scaler": scaler.state_dict(),
                "scheduler": None if schedule is None else schedule.scheduler.state_dict(),
                "rng": states,
                "history": history,
                "resumed_at": resumed_at,
                "wall_time_s": wall,
                "train_time_s": train_time,
            }
            checkpoint.write_checkpoint(ckpt_path, ckpt)

        # 4. The loop. Step s = optimizer updates done; evaluations at 0, every eval_interval, end.
        bar = None
        if progress and dist.is_main:
            from tqdm.auto import tqdm

            bar = tqdm(total=tc.max_iters, initial=start, desc=f"{corpus} {key[:8]}", unit="step")
        t_start = time.perf_counter()
        raw_model.train()
        if start == 0:
            evaluate(0)
        t_train = time.perf_counter()
        for step in range(start + 1, tc.max_iters + 1):
            x, y = next_batch()
            with autocast(device, amp_dtype):
                loss = training_loss(
                    model,
                    x,
                    y,
                    tc,
                    step=step,
                    raw_model=raw_model,
                    learned=learned,
                    concrete=concrete,
                )
            optimizer_step(loss)
            if schedule is not None:
                schedule.after_step(step)
            if callback is not None:
                callback(step, raw_model)

            do_eval = step % tc.eval_interval == 0 or step == tc.max_iters
            do_ckpt = 0 < tc.checkpoint_interval and step % tc.checkpoint_interval == 0
            do_ckpt = do_ckpt and step < tc.max_iters
            if do_eval or do_ckpt:
                synchronize(device)
                train_time += time.perf_counter() - t_train
            if do_eval:
                evaluate(step)
                if bar is not None:
                    last = history[-1]
                    bar.set_postfix(
                        train=f"{last['train_loss']:.4f}", val=f"{last['val_loss']:.4f}"
                    )
            if do_ckpt:
                save_checkpoint(step, wall_before + time.perf_counter() - t_start)
            if do_eval or do_ckpt:
                t_train = time.perf_counter()
            if bar is not None:
                bar.update(1)
        if bar is not None:
            bar.close()
        wall = wall_before + time.perf_counter() - t_start

        # 5. Samples, then the result (rank 0 writes, everyone returns rank 0's).
        samples = {}
        if dist.is_main and tc.prompts and tc.max_new_tokens > 0:
            samples = _generate_samples(raw_model, tokenizer, tc, device)
        result = None
        if dist.is_main:
            state = {k: v.detach().cpu() for k, v in raw_model.state_dict().items()}
            buf = io.BytesIO()
            torch.save(state, buf)
            weights = buf.getvalue()
            result = store.RunResult(
                key=key,
                corpus=corpus,
                corpus_sha256=corpus_sha256(corpus),
                model_config=mc_dict,
                train_config=tc.to_dict(),
                history=history,
                num_params=num_params,
                tokens_per_sec=tc.max_iters * tokens_per_step / train_time if train_time else 0.0,
                wall_time_s=wall,
                device=device_name(device),
                world_size=dist.world_size,
                amp_dtype=None if amp_dtype is None else str(amp_dtype).replace("torch.", ""),
                torch_version=torch.__version__,
                dropoutlib_version=__version__,
                date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                samples=samples,
                resumed_at=resumed_at,
                weights_sha256=store.sha256(weights),
                trainable_params=trainable_params,
                num_threads=torch.get_num_threads(),
                results_version=store.RESULTS_VERSION,
                train_tokens=len(train_data),
            )
            atomic_write(run_dir / "model.pt", lambda f: f.write(weights))
            store.write_entry(result_path, result)
            ckpt_path.unlink(missing_ok=True)
        result = store.RunResult.from_dict(
            dist.broadcast(None if result is None else result.to_dict())
        )
        result._run_dir = run_dir
        result._model = raw_model
        return result
    finally:
        restore.close()
        dist.close()


def _generate_samples(model: nn.Module, tokenizer, tc: TrainConfig, device) -> dict[str, str]:
    """Text continuing each prompt, in eval mode, from a sampling generator of its own (the
    training RNG is untouched)."""
    generator = torch.Generator(device=device).manual_seed(stream_seed(tc.seed, "sample"))
    samples = {}
    for prompt in tc.prompts:
        idx = torch.tensor([tokenizer.encode(prompt)], dtype=torch.long, device=device)
        out = model.generate(idx, tc.max_new_tokens, generator=generator)
        samples[prompt] = tokenizer.decode(out[0].tolist())
    return samples
