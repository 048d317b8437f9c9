"""The training features of TrainConfig: train_tokens, label_smoothing, grad_clip,
dropout_schedule, r_drop_alpha, token_mask_rate, init_from, lora; and the Su Shi corpora."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F

import dropoutlib.data
import dropoutlib.train as T
from dropoutlib.data import CharTokenizer, load_corpus, vocab_corpus
from dropoutlib.model import BabyGPT, GPTConfig
from dropoutlib.schedules import LinearDecay
from dropoutlib.train import RunResult, TrainConfig, train
from dropoutlib.train.batches import mask_tokens
from dropoutlib.train.objective import training_loss

V = 65
TINY = dict(block_size=8, n_embd=16, n_head=2, n_layer=2, dropout=0.2)
pytestmark = pytest.mark.usefixtures("isolated_run_cache")


def tiny_model(**overrides) -> GPTConfig:
    return GPTConfig(**{"vocab_size": V, **TINY, **overrides})


def tiny_train(**overrides) -> TrainConfig:
    base = dict(
        max_iters=12,
        eval_interval=4,
        eval_iters=3,
        batch_size=4,
        learning_rate=1e-2,
        seed=7,
        device="cpu",
        checkpoint_interval=0,
    )
    return TrainConfig(**{**base, **overrides})


def run(model=None, **train_overrides) -> RunResult:
    return train(
        model or tiny_model(), tiny_train(**train_overrides), "shakespeare", progress=False
    )


# --- validation -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("train_tokens", 1, "train_tokens must be an integer >= 2"),
        ("train_tokens", 2.5, "train_tokens must be an integer"),
        ("label_smoothing", 1.0, "label_smoothing must be in \\[0, 1\\)"),
        ("label_smoothing", -0.1, "label_smoothing"),
        ("grad_clip", -1.0, "grad_clip must be a finite number >= 0"),
        ("grad_clip", math.inf, "grad_clip"),
        ("r_drop_alpha", -0.5, "r_drop_alpha must be a finite number >= 0"),
        ("token_mask_rate", 1.0, "token_mask_rate must be in \\[0, 1\\)"),
        ("dropout_schedule", {"p": 0.1}, 'must be a dict with a "name"'),
        ("dropout_schedule", {"name": "step", "p": 0.1}, "name must be one of"),
        ("dropout_schedule", {"name": "linear", "q": 0.1}, "'linear' takes"),
        ("dropout_schedule", {"name": "linear", "p": 1.5}, "dropout_schedule: p must be in"),
        ("dropout_schedule", {"name": "linear", "p": 0.1, "every": "batch"}, '"every" must be'),
        ("init_from", "xyz", "init_from must be the key of a finished run"),
        ("init_from", "abc", "at least its first 8 characters"),
        ("lora", {"rank": 4}, "lora has unknown option"),
        ("lora", {"r": 0}, "lora\\['r'\\] must be an integer >= 1"),
        ("lora", {"dropout": 1.0}, "lora\\['dropout'\\] must be in"),
        ("lora", {"target_modules": "query"}, "lora\\['target_modules'\\] must be"),
        ("lora", [4], "lora must be a dict"),
    ],
)
def test_bad_feature_values_are_rejected(field, value, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**{field: value})


def test_features_are_in_the_run_key_only_when_set():
    mc, tc = tiny_model(), tiny_train()
    base = T.run_key(mc, tc, "shakespeare")
    assert T.run_key(mc, dataclasses.replace(tc, label_smoothing=0.0), "shakespeare") == base
    keys = {base}
    for field, value in [
        ("train_tokens", 5000),
        ("label_smoothing", 0.1),
        ("grad_clip", 1.0),
        ("dropout_schedule", {"name": "linear", "p": 0.1}),
        ("r_drop_alpha", 1.0),
        ("token_mask_rate", 0.1),
        ("init_from", "a" * 64),
        ("lora", {"r": 4}),
    ]:
        keys.add(T.run_key(mc, dataclasses.replace(tc, **{field: value}), "shakespeare"))
    assert len(keys) == 9


def test_results_version_is_part_of_the_key(monkeypatch):
    mc, tc = tiny_model(), tiny_train()
    key = T.run_key(mc, tc, "shakespeare")
    monkeypatch.setattr(T.store, "RESULTS_VERSION", T.RESULTS_VERSION + 1)
    assert T.run_key(mc, tc, "shakespeare") != key


# --- train_tokens and epochs ----------------------------------------------------------------


def test_data_constrained_run_repeats_its_tokens_for_several_epochs(monkeypatch):
    lengths = []
    real = dropoutlib.data.get_batch

    def spy(data, *args, **kwargs):
        lengths.append(len(data))
        return real(data, *args, **kwargs)

    monkeypatch.setattr(dropoutlib.data, "get_batch", spy)
    r = run(train_tokens=100, max_iters=20, eval_interval=5)
    _, full_train, full_val = T.batches.corpus_tensors("shakespeare")
    assert r.train_tokens == 100
    assert set(lengths) == {100, len(full_val)}  # training windows; validation stays whole
    per_step = 4 * 8  # batch_size * block_size
    assert [h["epoch"] for h in r.history] == [s * per_step / 100 for s in r.steps]
    assert r.final["epoch"] == pytest.approx(6.4)  # several passes over the same tokens
    assert r.epochs == [h["epoch"] for h in r.history]
    assert len(full_train) > 100


def test_full_data_runs_record_their_epochs_too():
    r = run()
    _, full_train, _ = T.batches.corpus_tensors("shakespeare")
    assert r.train_tokens == len(full_train)
    assert r.final["epoch"] == 12 * 4 * 8 / len(full_train)


@pytest.mark.parametrize("n, message", [(10**9, "at most"), (8, "must exceed block_size")])
def test_train_tokens_must_fit_the_split_and_a_window(n, message):
    with pytest.raises(ValueError, match=message):
        run(train_tokens=n)


# --- the objective --------------------------------------------------------------------------


def _batch(seed=0, B=4, T_=8):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(V, (B, T_), generator=g), torch.randint(V, (B, T_), generator=g)


def test_label_smoothing_is_cross_entropys_and_reported_losses_stay_plain():
    torch.manual_seed(0)
    model = BabyGPT(tiny_model(dropout=0.0))
    x, y = _batch()
    tc = tiny_train(label_smoothing=0.1)
    logits, plain = model(x, y)
    smoothed = training_loss(model, x, y, tc, step=1)
    # the same call on the same logits: exact
    assert torch.equal(
        smoothed, F.cross_entropy(logits.flatten(0, 1), y.flatten(), label_smoothing=0.1)
    )
    assert smoothed > plain
    r = train(tiny_model(), tc, "shakespeare", progress=False)
    gen = torch.Generator().manual_seed(T.stream_seed(tc.seed, "eval"))
    _, tr, va = T.batches.corpus_tensors("shakespeare")
    again = T.estimate_loss(
        r.load_model(),
        {"train": tr, "val": va},
        block_size=8,
        batch_size=4,
        eval_iters=3,
        generator=gen,
    )
    assert again["val"] == r.final["val_loss"]  # plain cross-entropy, same batches and ops


def test_r_drop_is_mean_cross_entropy_plus_symmetric_kl():
    from dropoutlib.uncertainty import r_drop_loss

    torch.manual_seed(0)
    model = BabyGPT(tiny_model(dropout=0.3))
    x, y = _batch()
    tc = tiny_train(r_drop_alpha=2.0)
    torch.manual_seed(5)
    loss = training_loss(model, x, y, tc, step=1)
    torch.manual_seed(5)  # the same masks: one forward of the doubled batch
    logits, _ = model(torch.cat([x, x]))
    a, b = logits.chunk(2)
    ce = 0.5 * sum(F.cross_entropy(z.flatten(0, 1), y.flatten()) for z in (a, b))
    assert torch.equal(loss, ce + r_drop_loss(a, b, 2.0))
    assert not torch.equal(a, b)  # the two halves drew different masks
    model.eval()  # no dropout: the two passes agree and the KL term vanishes
    no_drop = training_loss(model, x, y, tc, step=1)
    assert torch.allclose(no_drop, F.cross_entropy(model(x)[0].flatten(0, 1), y.flatten()))


def test_grad_clip_clips_the_global_norm(monkeypatch):
    norms = []
    real = torch.nn.utils.clip_grad_norm_

    def spy(params, max_norm, *args, **kwargs):
        params = list(params)
        total = real(params, max_norm, *args, **kwargs)
        after = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in params]))
        norms.append((float(total), float(after), max_norm))
        return total

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", spy)
    run(grad_clip=0.05)
    assert len(norms) == 12
    assert all(m == 0.05 for _, _, m in norms)
    assert any(before > 0.05 for before, _, _ in norms)  # clipping did something
    # after clipping the norm is max_norm (up to clip_grad_norm_'s own 1e-6 in the divisor)
    assert all(after <= 0.05 * (1 + 1e-4) for _, after, _ in norms)
    norms.clear()
    run()
    assert norms == []  # grad_clip=0: never called


# --- token masking ----------------------------------------------------------------------------


def test_mask_tokens_replaces_inputs_at_the_rate():
    g = torch.Generator().manual_seed(0)
    x = torch.zeros(200, 500, dtype=torch.long)
    assert mask_tokens(x, 0.0, V, g) is x
    out = mask_tokens(x, 0.2, V, g)
    assert out.shape == x.shape and out.dtype == x.dtype and torch.equal(x, torch.zeros_like(x))
    changed = (out != 0).double().mean().item()
    want = 0.2 * (1 - 1 / V)  # a replacement may draw the same token again
    assert abs(changed - want) < 6 * math.sqrt(want * (1 - want) / x.numel())
    again = mask_tokens(x, 0.2, V, torch.Generator().manual_seed(0))
    assert torch.equal(out, again)  # reproducible from the generator


def test_token_masking_changes_inputs_never_targets(monkeypatch):
    seen = []
    real = T.loop.training_loss

    def spy(model, x, y, tc, **kwargs):
        seen.append((x.clone(), y.clone()))
        return real(model, x, y, tc, **kwargs)

    monkeypatch.setattr(T.loop, "training_loss", spy)
    run(token_mask_rate=0.3, max_iters=6)
    masked = seen[:]
    seen.clear()
    run(max_iters=6)
    for (xm, ym), (x, y) in zip(masked, seen):
        assert torch.equal(ym, y)  # same batches, targets untouched
        assert not torch.equal(xm, x)
        assert torch.equal(xm[:, 1:][xm[:, 1:] == x[:, 1:]], x[:, 1:][xm[:, 1:] == x[:, 1:]])


# --- dropout schedules ----------------------------------------------------------------------


def test_dropout_schedule_sets_every_site_and_is_recorded():
    r = run(dropout_schedule={"name": "linear", "p": 0.4})
    want = LinearDecay(0.4)
    assert [h["dropout_p"] for h in r.history] == [want(s, 12) for s in r.steps]
    model = r.load_model()
    assert all(m.p == want(12, 12) for m in model.modules() if isinstance(m, torch.nn.Dropout))


def test_schedule_can_select_sites_by_name():
    r = run(dropout_schedule={"name": "constant", "p": 0.05, "sites": "*ffwd*"})
    drops = {n: m.p for n, m in r.load_model().named_modules() if isinstance(m, torch.nn.Dropout)}
    assert {n for n, p in drops.items() if p == 0.05} == {n for n in drops if "ffwd" in n}
    assert all(p == 0.2 for n, p in drops.items() if "ffwd" not in n)
    with pytest.raises(ValueError, match="sites"):
        TrainConfig(dropout_schedule={"name": "constant", "p": 0.1, "sites": 3})


def test_epoch_schedule_changes_only_at_epoch_boundaries():
    # 32 tokens a step, 100 training tokens: epochs start at steps 4, 7, 10 (floor(32 s / 100)).
    r = run(
        train_tokens=100,
        max_iters=12,
        eval_interval=1,
        dropout_schedule={"name": "linear", "p": 0.3, "every": "epoch"},
    )
    epochs = math.ceil(12 * 32 / 100)  # seed 000's loop runs over 4 epochs, the last partial
    for h in r.history:
        started = math.floor(h["step"] * 32 / 100)
        assert h["dropout_p"] == pytest.approx(0.3 * (1 - started / epochs))


def test_resume_continues_the_schedule_exactly(tmp_path):
    tc = tiny_train(
        max_iters=10,
        checkpoint_interval=4,
        dropout_schedule={"name": "cosine", "p": 0.3},
        token_mask_rate=0.1,
    )
    whole = train(tiny_model(), tc, "shakespeare", progress=False, out_dir=tmp_path / "whole")

    class Stop(Exception):
        pass

    def crash(step, model):
        if step == 6:  # after the checkpoint at step 4
            raise Stop

    with pytest.raises(Stop):
        train(
            tiny_model(),
            tc,
            "shakespeare",
            progress=False,
            out_dir=tmp_path / "cut",
            callback=crash,
        )
    resumed = train(tiny_model(), tc, "shakespeare", progress=False, out_dir=tmp_path / "cut")
    assert resumed.resumed_at == [4]
    assert resumed.history == whole.history
    assert resumed.weights_sha256 == whole.weights_sha256


# --- fine-tuning --------------------------------------------------------------------------------


def test_fine_tuning_starts_from_the_parents_weights():
    parent = run(max_iters=8)
    child = run(model=tiny_model(dropout=0.0), init_from=parent.key[:10], max_iters=8)
    assert child.train_config["init_from"] == parent.key  # the prefix became the full key
    # Step 0 of the child is the parent's final model on the same evaluation batches.
    assert child.history[0]["val_loss"] == parent.final["val_loss"]
    assert child.history[0]["train_loss"] == parent.final["train_loss"]
    other_parent = run(max_iters=8, seed=8)
    sibling = run(model=tiny_model(dropout=0.0), init_from=other_parent.key, max_iters=8)
    assert sibling.key != child.key  # the parent is part of the key


def test_missing_parent_and_other_architecture_are_clear_errors():
    with pytest.raises(ValueError, match="no finished run with key 'deadbeef00'.*Train the parent"):
        run(init_from="deadbeef00")
    parent = run(max_iters=4)
    with pytest.raises(ValueError, match=r"n_embd \(parent 16, this run 32\)"):
        run(model=tiny_model(n_embd=32), init_from=parent.key)
    ok = run(model=tiny_model(attention="fused", dropout=0.1), init_from=parent.key, max_iters=2)
    assert ok.history[0]["val_loss"] == pytest.approx(parent.final["val_loss"], abs=1e-5)


def test_lora_trains_only_the_adapters_and_loads_back():
    pytest.importorskip("peft")
    parent = run(max_iters=6)
    lora = {"r": 2, "alpha": 4, "dropout": 0.1, "target_modules": ["query", "value"]}
    child = run(init_from=parent.key, lora=lora, max_iters=6)
    assert child.train_config["lora"]["target_modules"] == ["query", "value"]
    heads = TINY["n_layer"] * TINY["n_head"] * 2  # query and value of every head
    head_size = TINY["n_embd"] // TINY["n_head"]
    assert child.trainable_params == heads * 2 * (TINY["n_embd"] + head_size)
    assert child.num_params == parent.num_params + child.trainable_params

    model, base = child.load_model(), parent.load_state_dict()
    state = model.state_dict()
    for name, weight in base.items():  # frozen: every base weight is the parent's, bit for bit
        lora_name = name.replace(".weight", ".base_layer.weight")
        assert torch.equal(state[lora_name if lora_name in state else name], weight), name
    assert all(("lora_" in n) == p.requires_grad for n, p in model.named_parameters())
    assert any(not torch.equal(v, torch.zeros_like(v)) for n, v in state.items() if "lora_B" in n)
    # PEFT's lora_dropout is an nn.Dropout on the adapter's input: a dropout site of the model
    drops = [n for n, m in model.named_modules() if isinstance(m, torch.nn.Dropout)]
    assert any("lora_dropout" in n for n in drops)
    x, _ = _batch()
    assert torch.equal(model(x)[0], child._model.eval()(x)[0])  # stored == trained model


def test_lora_target_modules_must_exist():
    pytest.importorskip("peft")
    with pytest.raises(ValueError, match="its linear layers are named"):
        run(lora={"target_modules": ["c_attn"]})


# --- the Su Shi corpora -----------------------------------------------------------------------


def test_su_shi_corpora_partition_song_ci_and_share_its_vocabulary():
    full, su, rest = (
        load_corpus(n) for n in ("song_ci", "song_ci_su_shi", "song_ci_without_su_shi")
    )
    assert len(su) == 28_769 and len(rest) == 1_954_966 and len(su) + len(rest) == len(full)
    assert su.count("\n\n") == 362 and rest.count("\n\n") == 20_688
    assert vocab_corpus("song_ci_su_shi") == vocab_corpus("song_ci_without_su_shi") == "song_ci"
    assert T.vocab_size("song_ci_su_shi") == T.vocab_size("song_ci") == 6045
    tokenizer = CharTokenizer(full)
    assert tokenizer.decode(tokenizer.encode(su)) == su  # every Su Shi character is in it
    assert "大江东去，浪淘尽" in su and "大江东去，浪淘尽" not in rest  # 念奴娇·赤壁怀古
    with pytest.raises(ValueError, match="name must be one of"):
        vocab_corpus("su_shi")


def test_on_eval_sees_every_history_entry():
    seen = []
    r = train(tiny_model(), tiny_train(), "shakespeare", progress=False, on_eval=seen.append)
    assert seen == r.history
