"""dropoutlib.train: configuration, evaluation in eval mode, the run cache, checkpoints and resume.

Every run here is a tiny babyGPT on tiny Shakespeare (vocabulary 65) for a few dozen steps; the
run cache goes to a temporary directory (``DROPOUTLIB_CACHE``), never the user's.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import dropoutlib
import dropoutlib.data
import dropoutlib.model
import dropoutlib.train as T
from dropoutlib.data import get_batch
from dropoutlib.model import BabyGPT, GPTConfig
from dropoutlib.train import CacheWarning, RunResult, TrainConfig, train

ROOT = Path(__file__).resolve().parents[1]
V = 65  # tiny Shakespeare's vocabulary
TINY = dict(block_size=8, n_embd=16, n_head=2, n_layer=2, dropout=0.3)


def tiny_model(**overrides) -> GPTConfig:
    return GPTConfig(**{"vocab_size": V, **TINY, **overrides})


def tiny_train(**overrides) -> TrainConfig:
    base = dict(
        max_iters=12,
        eval_interval=5,
        eval_iters=3,
        batch_size=4,
        learning_rate=1e-2,
        seed=7,
        device="cpu",
        checkpoint_interval=0,
        prompts=("\n",),
        max_new_tokens=10,
    )
    return TrainConfig(**{**base, **overrides})


@pytest.fixture(autouse=True)
def run_cache(tmp_path, monkeypatch):
    cache = tmp_path / "runs"
    monkeypatch.setenv("DROPOUTLIB_CACHE", str(cache))
    return cache


def splits():
    _, train_data, val_data = T.batches.corpus_tensors("shakespeare")
    return {"train": train_data, "val": val_data}


# --- configuration ---------------------------------------------------------------------------


def test_presets_match_babygpt_and_gpt_py():
    v10 = TrainConfig.v10()
    assert (v10.max_iters, v10.eval_interval, v10.eval_iters) == (5000, 200, 100)
    assert (v10.batch_size, v10.learning_rate, v10.seed) == (32, 1e-2, 42)
    assert v10.prompts == ("春江", "往事") and v10.max_new_tokens == 100
    # AdamW's defaults, as babyGPT calls torch.optim.AdamW(params, lr=...) and nothing else.
    assert v10.weight_decay == torch.optim.AdamW([torch.zeros(1)]).defaults["weight_decay"]
    v11 = TrainConfig.v11()
    assert (v11.learning_rate, v11.batch_size, v11.eval_interval) == (3e-4, 64, 200)
    gpt = TrainConfig.gpt()
    assert (gpt.learning_rate, gpt.batch_size, gpt.eval_interval, gpt.eval_iters) == (
        3e-4,
        64,
        500,
        200,
    )
    assert (gpt.max_iters, gpt.seed) == (5000, 1337)
    assert TrainConfig.v10(max_iters=3).max_iters == 3


def test_train_config_json_round_trip():
    tc = TrainConfig.v10(penalty_schedule={"rate": 0.01, "max": 0.5})
    text = json.dumps(tc.to_dict())
    assert TrainConfig.from_dict(json.loads(text)) == tc
    with pytest.raises(ValueError, match="unknown TrainConfig fields"):
        TrainConfig.from_dict({"max_iter": 3})


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("max_iters", -1, "max_iters must be an integer >= 0"),
        ("max_iters", 2.5, "max_iters"),
        ("eval_interval", 0, "eval_interval must be an integer >= 1"),
        ("eval_iters", 0, "eval_iters"),
        ("batch_size", True, "batch_size"),
        ("learning_rate", 0.0, "learning_rate must be a positive finite number"),
        ("learning_rate", float("nan"), "learning_rate"),
        ("weight_decay", -0.1, "weight_decay"),
        ("seed", -3, "seed"),
        ("dtype", "half", "dtype must be one of"),
        ("compile", "yes", "compile"),
        ("checkpoint_interval", -5, "checkpoint_interval"),
        ("prompts", "春江", "prompts must be a sequence of strings"),
        ("prompts", ("",), "prompts must be non-empty"),
        ("penalty", 3, "penalty"),
        ("penalty_coeff", -1.0, "penalty_coeff"),
        ("penalty_schedule", [1], "penalty_schedule"),
    ],
)
def test_train_config_rejects_bad_values(field, value, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**{field: value})


def test_train_rejects_wrong_vocab_corpus_and_prompt():
    with pytest.raises(ValueError, match="vocab_size must be the vocabulary size"):
        train(tiny_model(vocab_size=64), tiny_train(), "shakespeare", progress=False)
    with pytest.raises(ValueError, match="corpus must be one of"):
        train(tiny_model(), tiny_train(), "wikipedia", progress=False)
    with pytest.raises(ValueError, match="cannot encode"):
        train(tiny_model(), tiny_train(prompts=("春江",)), "shakespeare", progress=False)


# --- devices and precision --------------------------------------------------------------------


def test_amp_settings_choose_bf16_or_fp16_with_scaler(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert T.amp_settings("cuda") == (torch.bfloat16, False)
    assert T.amp_settings("cuda", "float16") == (torch.float16, True)
    assert T.amp_settings("cuda", "float32") == (None, False)
    # A T4 (Colab): no bf16, so fp16 autocast and a GradScaler.
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert T.amp_settings("cuda") == (torch.float16, True)
    with pytest.raises(ValueError, match="no bf16"):
        T.amp_settings("cuda", "bfloat16")
    assert T.amp_settings("cpu") == (None, False)
    assert T.amp_settings("mps") == (None, False)
    assert T.amp_settings("cpu", "bfloat16") == (torch.bfloat16, False)
    with pytest.raises(ValueError, match="not supported on 'cpu'"):
        T.amp_settings("cpu", "float16")
    with pytest.raises(ValueError, match="dtype must be one of"):
        T.amp_settings("cpu", "fp8")


def test_resolve_device(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert T.resolve_device("auto") == torch.device("cpu")
    with pytest.raises(ValueError, match="CUDA is not available"):
        T.resolve_device("cuda")
    with pytest.raises(ValueError, match="device must be"):
        T.resolve_device("tpu")
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert T.resolve_device("auto") == torch.device("mps")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert T.resolve_device("auto", local_rank=1) == torch.device("cuda", 1)
    assert T.resolve_device("cuda:0", local_rank=1) == torch.device("cuda", 0)


def test_stream_seeds_are_distinct_and_stable():
    seeds = {T.stream_seed(42, s, r) for s in ("dropout", "batch", "eval") for r in range(4)}
    assert len(seeds) == 12
    assert T.stream_seed(42, "batch", 1) == T.stream_seed(42, "batch", 1)
    assert all(0 <= s < 2**63 for s in seeds)


# --- evaluation: eval mode, every site, both attention paths ---------------------------------

SITE_CONFIGS = {
    "heads-standard": dict(),
    "fused-standard": dict(attention="fused"),
    "heads-drophead": dict(attn_kind="drophead"),
    "fused-drophead": dict(attention="fused", attn_kind="drophead"),
    "heads-gaussian-attn": dict(attn_kind="gaussian"),
    "embd-standard": dict(embd_dropout=0.3),
    "embd-locked": dict(embd_dropout=0.3, embd_kind="locked", attention="fused"),
    "embd-gaussian": dict(embd_dropout=0.3, embd_kind="gaussian"),
    "resid-locked": dict(resid_kind="locked"),
    "resid-droppath": dict(resid_kind="droppath", attention="fused"),
    "resid-gaussian": dict(resid_kind="gaussian"),
    "ffn-locked": dict(ffn_kind="locked"),
    "ffn-droppath": dict(ffn_kind="droppath"),
    "ffn-gaussian": dict(ffn_kind="gaussian", attention="fused"),
    "ffn-learned": dict(ffn_kind="learned"),
    "ffn-learned-fused": dict(ffn_kind="learned", attention="fused"),
    "layerdrop": dict(layerdrop=0.5),
    "per-layer-rates": dict(dropout=[0.1, 0.5], attention="fused"),
}


@pytest.mark.parametrize("name", list(SITE_CONFIGS))
def test_evaluation_runs_in_eval_mode_and_matches_direct_computation(name, monkeypatch):
    mc = tiny_model(**SITE_CONFIGS[name])
    tc = tiny_train(max_iters=6, eval_interval=3, eval_iters=2, prompts=())
    seen = {"eval_calls": 0, "modes": set(), "train_steps": 0}
    original = T.estimate_loss

    def checked_estimate_loss(model, *args, **kwargs):
        # Record the mode of every module during every forward of the evaluation.
        hooks = [
            m.register_forward_pre_hook(lambda mod, inp: seen["modes"].add(mod.training))
            for m in model.modules()
        ]
        try:
            out = original(model, *args, **kwargs)
        finally:
            for h in hooks:
                h.remove()
        seen["eval_calls"] += 1
        assert model.training, "estimate_loss must give the model back in train mode"
        return out

    def in_training(step, model):
        assert all(m.training for m in model.modules()), "training steps must run in train mode"
        seen["train_steps"] += 1

    monkeypatch.setattr(T.loop, "estimate_loss", checked_estimate_loss)
    result = train(mc, tc, "shakespeare", progress=False, callback=in_training)
    assert seen["eval_calls"] == 3  # steps 0, 3, 6
    assert seen["modes"] == {False}, "some module ran in train mode during evaluation"
    assert seen["train_steps"] == 6
    assert result.steps == [0, 3, 6]

    # The reported losses are plain cross-entropy of the eval-mode model on the eval batches
    # (the eval generator is reseeded at every evaluation): recompute them by hand.
    model = result.load_model()
    gen = torch.Generator().manual_seed(T.stream_seed(tc.seed, "eval", 0))
    direct = {}
    with torch.no_grad():
        for split, data in splits().items():
            losses = []
            for _ in range(tc.eval_iters):
                x, y = get_batch(data, mc.block_size, tc.batch_size, gen)
                logits = model(x)[0]
                losses.append(torch.nn.functional.cross_entropy(logits.flatten(0, 1), y.flatten()))
            direct[split] = torch.stack(losses).mean().item()
    assert result.final["train_loss"] == pytest.approx(direct["train"], rel=1e-6, abs=0)
    assert result.final["val_loss"] == pytest.approx(direct["val"], rel=1e-6, abs=0)


def test_estimate_loss_is_deterministic_while_training_mode_is_not():
    """Non-vacuity check: with p = 0.5 the train-mode loss varies from call to call, the
    eval-mode estimate does not."""
    torch.manual_seed(0)
    model = BabyGPT(tiny_model(dropout=0.5))
    data = splits()

    def estimate():
        gen = torch.Generator().manual_seed(1)
        return T.estimate_loss(model, data, block_size=8, batch_size=4, eval_iters=2, generator=gen)

    assert estimate() == estimate()
    x, y = get_batch(data["val"], 8, 4, torch.Generator().manual_seed(1))
    model.train()
    assert model(x, y)[1].item() != model(x, y)[1].item()
    assert model.training


def test_learned_dropout_penalty_is_in_the_objective_not_the_reported_loss(monkeypatch):
    import dropoutlib.learned as learned

    mc = tiny_model(ffn_kind="learned", dropout=0.0)
    calls = []
    original = learned.penalty_loss

    def spy(model, step, **kwargs):
        calls.append((step, kwargs))
        return original(model, step, **kwargs)

    monkeypatch.setattr(learned, "penalty_loss", spy)
    tc = tiny_train(max_iters=4, eval_interval=2, prompts=(), penalty_coeff=0.5)
    with_penalty = train(mc, tc, "shakespeare", progress=False)
    assert [c[0] for c in calls] == [0, 1, 2, 3]
    assert calls[0][1] == {"kind": "squared", "coeff": 0.5, "schedule": None}
    assert "mask_stats" in with_penalty.history[1]
    assert 0.0 <= with_penalty.history[1]["mask_stats"]["ones"] <= 1.0
    assert "mask_stats" not in with_penalty.history[0]  # the initial model has not run yet

    calls.clear()
    no_penalty = train(mc, dataclasses.replace(tc, penalty=None), "shakespeare", progress=False)
    assert calls == []
    # Same seed, same batches: only the penalty differs, so the weights do.
    a, b = with_penalty.load_model(), no_penalty.load_model()
    assert not torch.equal(a.lm_head.weight, b.lm_head.weight)
    # The penalty never leaks into the reported loss: step 0 (before any update) is identical.
    assert with_penalty.history[0] == no_penalty.history[0]


# --- results and the run cache ----------------------------------------------------------------


def test_result_contents_and_json_round_trip():
    torch.manual_seed(123)
    before = torch.get_rng_state()
    r = train(tiny_model(), tiny_train(), "shakespeare", progress=False)
    assert torch.equal(torch.get_rng_state(), before)  # the caller's RNG is left alone
    assert r.steps == [0, 5, 10, 12]
    assert all(set(h) == {"step", "epoch", "train_loss", "val_loss"} for h in r.history)
    # At step 0 the model is untrained: cross-entropy near ln(65) = 4.17 nats.
    assert abs(r.history[0]["val_loss"] - torch.log(torch.tensor(65.0)).item()) < 0.3
    assert r.num_params == BabyGPT(tiny_model()).num_params()
    assert r.tokens_per_sec > 0 and r.wall_time_s > 0
    assert r.device.startswith("cpu") and r.world_size == 1 and r.amp_dtype is None
    assert r.torch_version == torch.__version__ and r.dropoutlib_version == dropoutlib.__version__
    assert list(r.samples) == ["\n"] and len(r.samples["\n"]) == 11
    assert r.model_config == dataclasses.asdict(tiny_model())
    assert TrainConfig.from_dict(r.train_config) == tiny_train()
    back = RunResult.from_json(r.to_json())
    assert back == r and back.history == r.history
    # The entry on disk is the same result, with a checksum, and no temporary file is left.
    entry = json.loads((r.run_dir / "result.json").read_text(encoding="utf-8"))
    assert RunResult.from_dict(entry["result"]) == r and len(entry["sha256"]) == 64
    assert sorted(p.name for p in r.run_dir.iterdir()) == ["model.pt", "result.json"]
    assert T.load_run(r.run_dir) == r


def test_same_run_again_comes_from_the_cache_without_training(monkeypatch):
    first = train(tiny_model(), tiny_train(), "shakespeare", progress=False)

    def no_training(*args, **kwargs):
        raise AssertionError("a cached run must not build a model")

    monkeypatch.setattr(dropoutlib.model.BabyGPT, "__init__", no_training)
    again = train(tiny_model(), tiny_train(checkpoint_interval=7), "shakespeare", progress=False)
    assert again == first
    with pytest.raises(AssertionError, match="must not build"):  # a different run does train
        train(tiny_model(), tiny_train(learning_rate=2e-2), "shakespeare", progress=False)


def test_run_key_covers_what_determines_a_run(monkeypatch):
    mc, tc = tiny_model(), tiny_train()
    key = T.run_key(mc, tc, "shakespeare")
    assert key == T.run_key(tiny_model(), tiny_train(), "shakespeare")
    different = {
        T.run_key(tiny_model(dropout=0.0), tc, "shakespeare"),
        T.run_key(tiny_model(attention="fused"), tc, "shakespeare"),
        T.run_key(mc, tiny_train(seed=8), "shakespeare"),
        T.run_key(mc, tiny_train(max_new_tokens=11), "shakespeare"),
        T.run_key(mc, tiny_train(penalty_coeff=0.2), "shakespeare"),
        T.run_key(GPTConfig(vocab_size=6045, **TINY), tc, "song_ci"),
        T.run_key(mc, tc, "shakespeare", device_type="cuda", amp_dtype=torch.bfloat16),
        T.run_key(mc, tc, "shakespeare", world_size=2),
    }
    assert key not in different and len(different) == 8
    # Checkpointing does not change what is computed, so it is not part of the key.
    assert T.run_key(mc, tiny_train(checkpoint_interval=3), "shakespeare") == key
    monkeypatch.setattr(dropoutlib, "__version__", "99.0")
    assert T.run_key(mc, tc, "shakespeare") != key
    monkeypatch.setattr(dropoutlib.data, "corpus_sha256", lambda name: "0" * 64)
    assert T.run_key(mc, tc, "shakespeare") != key


def _damage_truncate(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    path.write_text(text[: len(text) // 2], encoding="utf-8")


def _damage_checksum(path: Path) -> None:
    entry = json.loads(path.read_text(encoding="utf-8"))
    entry["result"]["history"][-1]["val_loss"] = 0.123  # a tempting lie
    path.write_text(json.dumps(entry), encoding="utf-8")


def _damage_foreign(path: Path) -> None:
    entry = json.loads(path.read_text(encoding="utf-8"))
    entry["result"]["key"] = "f" * 64
    body = entry["result"]
    entry["sha256"] = T.store.sha256(T.store.canonical(body))  # a valid entry, of another run
    path.write_text(json.dumps(entry), encoding="utf-8")


@pytest.mark.parametrize("damage", [_damage_truncate, _damage_checksum, _damage_foreign])
def test_damaged_cache_entry_is_reported_and_the_run_redone(damage):
    first = train(tiny_model(), tiny_train(), "shakespeare", progress=False)
    path = first.run_dir / "result.json"
    damage(path)
    if damage is not _damage_foreign:  # a foreign entry is intact, just not this run's
        with pytest.raises(ValueError, match="damaged"):
            T.load_run(path)
    built = []
    with pytest.warns(CacheWarning, match="damaged run cache entry"):
        again = train(
            tiny_model(),
            tiny_train(),
            "shakespeare",
            progress=False,
            callback=lambda step, model: built.append(step),
        )
    assert built, "the damaged entry was used instead of training"
    assert again.history == first.history  # retrained, deterministically
    assert again.history[-1]["val_loss"] != 0.123
    assert T.load_run(path) == again  # and the entry was rewritten intact


def test_stored_weights_rebuild_the_model_and_are_verified():
    r = train(tiny_model(), tiny_train(), "shakespeare", progress=False)
    stored = T.load_run(r.run_dir)  # no model in memory: rebuilt from model.pt
    model = stored.load_model()
    assert not model.training
    for (name, a), b in zip(r.load_model().state_dict().items(), model.state_dict().values()):
        assert torch.equal(a, b), name
    weights = r.run_dir / "model.pt"
    weights.write_bytes(weights.read_bytes()[:-10])
    with pytest.raises(ValueError, match="sha256"):
        T.load_run(r.run_dir).load_model()


# --- checkpoints and resume --------------------------------------------------------------------


class Interrupt(Exception):
    pass


def _interrupt_at(k):
    def callback(step, model):
        if step == k:
            raise Interrupt

    return callback


def test_interrupted_run_resumes_to_identical_losses(tmp_path, monkeypatch):
    mc = tiny_model()
    tc = tiny_train(max_iters=20, eval_interval=4, checkpoint_interval=6)
    monkeypatch.setenv("DROPOUTLIB_CACHE", str(tmp_path / "straight"))
    straight = train(mc, tc, "shakespeare", progress=False)

    monkeypatch.setenv("DROPOUTLIB_CACHE", str(tmp_path / "interrupted"))
    with pytest.raises(Interrupt):
        train(mc, tc, "shakespeare", progress=False, callback=_interrupt_at(15))
    ckpt = torch.load(
        T.cache_dir() / straight.key / "checkpoint.pt", map_location="cpu", weights_only=True
    )
    assert ckpt["step"] == 12 and [h["step"] for h in ckpt["history"]] == [0, 4, 8, 12]
    resumed = train(mc, tc, "shakespeare", progress=False)
    assert resumed.resumed_at == [12]
    assert resumed.history == straight.history  # exactly, not approximately
    assert resumed.samples == straight.samples
    a, b = straight.load_model(), resumed.load_model()
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(x, y), name
    assert not (resumed.run_dir / "checkpoint.pt").exists()  # removed once the run is stored


def test_resume_false_and_damaged_checkpoint_start_from_scratch(monkeypatch):
    mc, tc = tiny_model(), tiny_train(max_iters=10, checkpoint_interval=3)
    with pytest.raises(Interrupt):
        train(mc, tc, "shakespeare", progress=False, callback=_interrupt_at(8))
    ckpt = T.cache_dir() / T.run_key(mc, tc, "shakespeare") / "checkpoint.pt"
    assert ckpt.is_file()
    fresh = train(mc, tc, "shakespeare", progress=False, resume=False)
    assert fresh.resumed_at == []

    with pytest.raises(Interrupt):
        train(mc, tc, "shakespeare", cache=False, progress=False, callback=_interrupt_at(8))
    ckpt.write_bytes(ckpt.read_bytes()[:100])
    with pytest.warns(CacheWarning, match="ignoring checkpoint"):
        redone = train(mc, tc, "shakespeare", cache=False, progress=False)
    assert redone.resumed_at == [] and redone.history == fresh.history


def _cli(cache: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "DROPOUTLIB_CACHE": str(cache), "PYTHONPATH": str(ROOT)}
    env["OMP_NUM_THREADS"] = "1"
    args = [sys.executable, "-m", "dropoutlib", "train", "--preset", "v10"]
    args += ["--corpus", "shakespeare", "--dropout", "0.3", "--seed", "3", "--device", "cpu"]
    args += ["--model", "n_embd=16", "--model", "n_head=2", "--model", "n_layer=2"]
    args += ["--batch-size", "4", "--eval-iters", "2", "--eval-interval", "50", "--quiet"]
    args += list(extra)
    return subprocess.Popen(
        args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def test_killed_process_resumes_to_exactly_the_uninterrupted_losses(tmp_path):
    """SIGKILL a real training process after its checkpoint at step >= 10, start it again, and
    compare with the same run never interrupted: the histories must be bit-for-bit equal."""
    max_iters = 200
    cache = tmp_path / "killed"
    proc = _cli(cache, "--max-iters", str(max_iters), "--checkpoint-interval", "5")
    killed_at = None
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            for path in cache.glob("*/checkpoint.pt"):
                try:
                    step = torch.load(path, map_location="cpu", weights_only=True)["step"]
                except Exception:  # replaced under us: read it next time
                    continue
                if step >= 10:
                    proc.send_signal(signal.SIGKILL)
                    killed_at = step
                    break
            if killed_at is not None:
                break
            time.sleep(0.01)
    finally:
        if proc.poll() is None and killed_at is None:
            proc.kill()
        out, err = proc.communicate()
    assert killed_at is not None, f"no checkpoint past step 10 before the run ended:\n{err}"
    assert proc.returncode == -signal.SIGKILL
    assert not list(cache.glob("*/result.json")), "the killed run must not have finished"

    rerun = _cli(cache, "--max-iters", str(max_iters), "--checkpoint-interval", "5")
    out, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, err
    path = Path(out.strip().splitlines()[-1].removeprefix("results: "))
    resumed = T.load_run(path)
    assert resumed.resumed_at and resumed.resumed_at[0] >= killed_at

    mc = GPTConfig.v10(V, dropout=0.3, n_embd=16, n_head=2, n_layer=2)
    tc = TrainConfig.v10(
        max_iters=max_iters, batch_size=4, eval_iters=2, eval_interval=50, seed=3,
        device="cpu", prompts=("\n",),
    )  # fmt: skip
    straight = train(mc, tc, "shakespeare", progress=False, out_dir=tmp_path / "straight")
    assert straight.key == resumed.key  # the shell and Python describe the same run
    # bit for bit: same machine, same operations, one thread in both processes
    assert resumed.history == straight.history
    assert resumed.samples == straight.samples
    assert resumed.weights_sha256 == straight.weights_sha256


# --- data parallel -----------------------------------------------------------------------------


def test_torchrun_two_gloo_ranks(tmp_path):
    """Two CPU processes under torchrun: same weights after training, different dropout masks,
    losses averaged over ranks, and only rank 0 writes."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           str(ROOT / "tests" / "ddp_worker.py"), str(tmp_path)]  # fmt: skip
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-4000:]

    r0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    r1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    for name, w in r0["weights"].items():  # exact: two ranks all-reduce a + b = b + a alike
        assert torch.equal(w, r1["weights"][name]), f"{name} differs between ranks"
    # Same weights, same input: eval outputs agree, train-mode outputs differ (the masks).
    assert torch.equal(r0["eval_out"], r1["eval_out"])
    assert not torch.equal(r0["train_out"], r1["train_out"])
    assert not torch.equal(r0["first_batch"], r1["first_batch"])  # different data too

    result = RunResult.from_json(r0["result"])
    assert RunResult.from_json(r1["result"]) == result  # every rank returns rank 0's result
    assert result.world_size == 2
    # Reported losses are the mean of the two ranks' own estimates.
    mean_val = (r0["own_val_loss"] + r1["own_val_loss"]) / 2
    assert result.final["val_loss"] == pytest.approx(mean_val, rel=1e-6, abs=0)
    assert r0["own_val_loss"] != r1["own_val_loss"]  # each rank evaluated other batches

    assert (tmp_path / "cache-rank0" / result.key / "result.json").is_file()
    assert not (tmp_path / "cache-rank1").exists(), "rank 1 wrote files"
    assert r0["checkpoint_seen"] and not r1["checkpoint_seen"]
