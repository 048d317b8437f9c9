"""LearnedDropout inside babyGPT: the FFN-output site of dropoutlib.model and the trainer."""

import dataclasses
import json
import math

import pytest
import torch

from dropoutlib.learned import LearnedDropout, mask_stats, penalty_loss
from dropoutlib.model import BabyGPT, GPTConfig

VOCAB = 17


def learned_config(**learned):
    # dropout 0 at the other sites, as in the published LearnedDropout model
    return GPTConfig.v10(VOCAB, dropout=0.0, ffn_kind="learned", learned_dropout=learned)


def tokens(seed=0, batch=8, time=8):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, VOCAB, (batch, time), generator=g)


def learned_modules(model):
    return [m for m in model.modules() if isinstance(m, LearnedDropout)]


def test_one_learned_dropout_per_block_with_the_configured_options():
    cfg = learned_config(shift_init=math.pi / 2, rounding="sigmoid_detach", detach_input=True)
    model = BabyGPT(cfg)
    mods = learned_modules(model)
    assert len(mods) == cfg.n_layer
    for block, mod in zip(model.blocks, mods):
        assert block.ffwd.dropout is mod
        assert (mod.n_embd, mod.n_head) == (cfg.n_embd, cfg.n_head)
        assert mod.rounding == "sigmoid_detach" and mod.detach_input
        assert bool((mod.shift == math.pi / 2).all())
    # each module adds the fused Q/K/V weights and the shift vector: 3 C^2 + C parameters
    plain = BabyGPT(GPTConfig.v10(VOCAB, dropout=0.0))
    assert model.num_params() - plain.num_params() == cfg.n_layer * (3 * 32 * 32 + 32)


def test_config_round_trips_through_json_with_learned_options():
    cfg = learned_config(shift_init=math.pi, rounding=None, input="embed")
    back = GPTConfig.from_dict(json.loads(json.dumps(dataclasses.asdict(cfg))))
    assert back == cfg
    mod = learned_modules(BabyGPT(back))[0]
    assert mod.rounding is None and mod.input == "embed" and mod.shift_init == math.pi


def test_bad_learned_options_fail_when_the_model_is_built():
    with pytest.raises(ValueError, match="shift_init"):
        BabyGPT(learned_config(shift_init=4.0))
    with pytest.raises(ValueError, match="rounding"):
        BabyGPT(learned_config(rounding="round"))


@pytest.mark.parametrize("attention", ["heads", "fused"])
def test_placement_at_the_ffn_output_before_the_residual_add(attention):
    """Block: x + sa(ln1(x)), then + LearnedDropout(FFN(ln2(.))), the mask read from FFN(.)."""
    cfg = GPTConfig.v10(
        VOCAB,
        dropout=0.0,
        attention=attention,
        ffn_kind="learned",
        learned_dropout={"shift_init": math.pi / 2},
    )
    torch.manual_seed(0)
    model = BabyGPT(cfg).eval()
    seen = {}

    def keep(name):
        def hook(module, args, output):
            seen[name] = (args, output)

        return hook

    for i, block in enumerate(model.blocks):
        block.register_forward_hook(keep(f"block{i}"))
        block.ffwd.net.register_forward_hook(keep(f"net{i}"))
        block.ffwd.dropout.register_forward_hook(keep(f"mask{i}"))
    with torch.no_grad():
        model(tokens())
        for i, block in enumerate(model.blocks):
            x_in = seen[f"block{i}"][0][0]
            h = seen[f"net{i}"][1]  # FFN output (after the second Linear)
            mask_args, masked = seen[f"mask{i}"]
            assert mask_args[0] is h  # LearnedDropout takes the FFN output itself
            mask = (block.ffwd.dropout.mask_probs(h) >= 0.5).float()
            assert 0 < mask.mean() < 1
            # mask computed from h, eval threshold (exact: the module's own ops on the same h)
            assert torch.equal(masked, h * mask)
            x_mid = x_in + block.sa(block.ln1(x_in))
            assert torch.allclose(block.ffwd.net(block.ln2(x_mid)), h)
            # the masked FFN output is added to the residual stream, nothing after it
            assert torch.allclose(seen[f"block{i}"][1], x_mid + masked, atol=1e-6)


def test_embed_input_reads_the_embedding():
    torch.manual_seed(0)
    model = BabyGPT(learned_config(input="embed", shift_init=math.pi / 2)).eval()
    got = []
    for block in model.blocks:
        block.ffwd.dropout.register_forward_hook(lambda mod, args, out: got.append(args))
    idx = tokens()
    with torch.no_grad():
        model(idx)
        embed = model.token_embedding_table(idx) + model.position_embedding_table(
            torch.arange(idx.shape[1])
        )
    assert len(got) == 3
    for args in got:
        assert torch.equal(args[1], embed)


def test_eval_is_deterministic_and_training_is_not():
    torch.manual_seed(0)
    model = BabyGPT(learned_config(shift_init=math.pi / 2))
    idx = tokens()
    model.eval()
    torch.manual_seed(1)
    a, _ = model(idx)
    torch.manual_seed(2)
    b, _ = model(idx)
    assert torch.equal(a, b)
    model.train()
    c, _ = model(idx)
    d, _ = model(idx)
    assert not torch.equal(c, d)  # Bernoulli masks in training


def test_penalty_reaches_every_shift_and_mask_attention():
    torch.manual_seed(0)
    model = BabyGPT(learned_config(shift_init=math.pi / 2)).train()
    inputs = []
    for mod in learned_modules(model):
        mod.register_forward_hook(lambda m, args, out: inputs.append(args[0].detach()))
    model(tokens())
    pen = penalty_loss(model, step=0, coeff=0.1)
    pen.backward()
    mods = learned_modules(model)
    for mod in mods:
        for p in (mod.shift, mod.qkv.weight):
            assert p.grad is not None and torch.isfinite(p.grad).all()
            assert p.grad.abs().sum() > 0
    # The penalty alone reaches nothing outside the masks' parameters and their inputs
    assert model.lm_head.weight.grad is None

    # Exact value: the gradient of 0.1 * mean_l mean(M_l^2 / 2) with respect to the last shift,
    # recomputed from that module's input (the last block: no later module depends on it).
    last = mods[-1]
    shift = last.shift.detach().clone().requires_grad_()
    probe = LearnedDropout(last.n_embd, last.n_head)
    with torch.no_grad():
        probe.qkv.weight.copy_(last.qkv.weight)
    probe.shift = torch.nn.Parameter(shift)
    m = probe.mask_probs(inputs[-1])
    (0.1 / len(mods) * (m.square() / 2).mean()).backward()
    assert torch.allclose(last.shift.grad, probe.shift.grad, rtol=1e-4, atol=1e-9)


def test_a_few_training_steps_reduce_the_loss_and_move_the_shift():
    torch.manual_seed(0)
    model = BabyGPT(learned_config(shift_init=math.pi / 2)).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    idx = tokens(seed=3, batch=16)
    shift0 = [m.shift.detach().clone() for m in learned_modules(model)]
    losses = []
    for step in range(20):
        _, loss = model(idx[:, :-1], idx[:, 1:])
        total = loss + penalty_loss(model, step)
        opt.zero_grad(set_to_none=True)
        total.backward()
        opt.step()
        losses.append(loss.item())
    assert all(math.isfinite(v) for v in losses)
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5 - 0.1
    for mod, before in zip(learned_modules(model), shift0):
        assert not torch.equal(mod.shift.detach(), before)
    stats = mask_stats(model)
    assert set(stats) >= {"ones", "near_zero", "near_one", "layer0.ones", "layer2.ones"}
    assert 0.0 <= stats["ones"] <= 1.0


def test_layerdrop_with_learned_dropout_trains():
    # LayerDrop skips whole blocks: the penalty must leave out the skipped blocks' stale masks
    torch.manual_seed(0)
    cfg = GPTConfig.v10(VOCAB, dropout=0.0, ffn_kind="learned", layerdrop=0.5)
    model = BabyGPT(cfg).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    idx = tokens(seed=4)
    for step in range(12):
        _, loss = model(idx[:, :-1], idx[:, 1:])
        total = loss + penalty_loss(model, step)
        opt.zero_grad(set_to_none=True)
        total.backward()
        opt.step()
        assert math.isfinite(total.item())


def test_trainer_adds_the_penalty_and_records_mask_stats(tmp_path, monkeypatch):
    train_mod = pytest.importorskip("dropoutlib.train")
    monkeypatch.setenv("DROPOUTLIB_CACHE", str(tmp_path / "cache"))
    vocab = train_mod.vocab_size("shakespeare")
    cfg = GPTConfig.v10(vocab, dropout=0.0, ffn_kind="learned")
    shifts = {}

    def run(name, **penalty):
        tc = train_mod.TrainConfig(
            max_iters=4,
            eval_interval=2,
            eval_iters=2,
            batch_size=4,
            device="cpu",
            checkpoint_interval=0,
            **penalty,
        )

        def grab(step, model):
            shifts[name] = torch.cat([m.shift.detach().clone() for m in learned_modules(model)])

        return train_mod.train(
            cfg,
            tc,
            corpus="shakespeare",
            cache=False,
            progress=False,
            out_dir=tmp_path / name,
            callback=grab,
        )

    result = run("with", penalty="squared", penalty_coeff=1.0)
    assert [h["step"] for h in result.history] == [0, 2, 4]
    assert "mask_stats" not in result.history[0]
    for entry in result.history[1:]:
        stats = entry["mask_stats"]
        assert {"ones", "near_zero", "near_one", "layer0.ones"} <= set(stats)
        assert 0.9 < stats["ones"] <= 1.0  # shift 0 keeps almost everything early on
    run("without", penalty=None)
    # same seed and batches; only the penalty differs, and it moves the shifts
    assert not torch.equal(shifts["with"], shifts["without"])
