"""Tests of dropoutlib.model: babyGPT v10, its dropout sites, the fused path, generation."""

import dataclasses
import json
import math

import pytest
import torch
import torch.nn.functional as F
from tolerance import assert_close_eps
from torch import nn

import dropoutlib
from dropoutlib.data import CharTokenizer, load_corpus
from dropoutlib.model import (
    BabyGPT,
    Block,
    FeedForward,
    FusedAttention,
    GPTConfig,
    Head,
    MultiHeadAttention,
    convert_attention,
)

V = 11  # vocabulary of the tiny test models


def tiny(**overrides) -> GPTConfig:
    """A model small enough for many forwards per test: 2 layers, 4 heads of size 4."""
    base = dict(vocab_size=V, block_size=8, n_embd=16, n_head=4, n_layer=2, dropout=0.3)
    return GPTConfig(**{**base, **overrides})


def tokens(batch=4, T=8, seed=0, vocab=V):
    return torch.randint(vocab, (batch, T), generator=torch.Generator().manual_seed(seed))


# ------------------------------------------------------------------------------------------------
# Parameter counts (models.md 1.6) on the two corpora


@pytest.fixture(scope="module")
def corpus_vocab():
    return {
        name: CharTokenizer(load_corpus(name)).vocab_size for name in ("shakespeare", "song_ci")
    }


def formula(cfg: GPTConfig) -> int:
    # Per block: q/k/v 3C^2 (no bias) + proj C^2 + C + FFN 8C^2 + 5C + two LayerNorms 4C.
    C, L = cfg.n_embd, cfg.n_layer
    per_block = 12 * C * C + 10 * C
    return L * per_block + cfg.block_size * C + 2 * C + cfg.vocab_size * (2 * C + 1)


@pytest.mark.parametrize("attention", ["heads", "fused"])
def test_parameter_counts_of_presets_on_both_corpora(corpus_vocab, attention):
    assert corpus_vocab == {"shakespeare": 65, "song_ci": 6045}
    for vocab in corpus_vocab.values():
        v10 = BabyGPT(GPTConfig.v10(vocab, attention=attention))
        assert v10.num_params() == 38_144 + 65 * vocab == formula(v10.config)
        v11 = BabyGPT(GPTConfig.v11(vocab, attention=attention))
        assert v11.num_params() == 10_738_944 + 769 * vocab == formula(v11.config)
    # gpt.py prints 10.788929 M on tiny Shakespeare.
    assert BabyGPT(GPTConfig.v11(65)).num_params() == 10_788_929


def test_presets_and_overrides():
    c = GPTConfig.v10(100)
    assert (c.n_embd, c.n_head, c.n_layer, c.block_size, c.dropout) == (32, 4, 3, 8, 0.2)
    assert c == GPTConfig(vocab_size=100)  # the dataclass defaults are v10
    c = GPTConfig.v11(100, dropout=0.0, attention="fused")
    assert (c.n_embd, c.n_head, c.n_layer, c.block_size) == (384, 6, 6, 256)
    assert (c.dropout, c.attention) == (0.0, "fused")
    # v10 defaults: the three sites use the global rate, no embedding dropout, no LayerDrop.
    assert c.attn_dropout is None and c.resid_dropout is None and c.ffn_dropout is None
    assert GPTConfig.v10(5).embd_dropout == 0.0 and GPTConfig.v10(5).layerdrop == 0.0


def test_config_json_round_trip():
    c = tiny(attn_dropout=(0.1, 0.2), ffn_dropout={"base": 0.1, "step": 0.1}, resid_kind="locked")
    d = json.loads(json.dumps(dataclasses.asdict(c)))
    assert GPTConfig.from_dict(d) == c
    assert d["attn_dropout"] == [0.1, 0.2]  # tuples are stored as lists
    assert tiny(dropout=0, ffn_dropout=[1, 0]) == tiny(dropout=0.0, ffn_dropout=(1.0, 0.0))
    assert type(tiny(dropout=0).dropout) is float
    learned = tiny(ffn_kind="learned", learned_dropout={"shift_init": 0.5, "input": "embed"})
    d = json.loads(json.dumps(dataclasses.asdict(learned)))
    assert GPTConfig.from_dict(d) == learned
    with pytest.raises(ValueError, match="unknown GPTConfig field.*n_embed"):
        GPTConfig.from_dict({**d, "n_embed": 32})


# ------------------------------------------------------------------------------------------------
# Faithfulness to babyGPT v10


def test_v10_structure_is_babygpt():
    m = BabyGPT(GPTConfig.v10(V))
    assert len(m.blocks) == 3
    for block in m.blocks:
        assert isinstance(block, Block)
        assert isinstance(block.sa, MultiHeadAttention) and isinstance(block.ffwd, FeedForward)
        assert len(block.sa.heads) == 4
        for head in block.sa.heads:
            assert isinstance(head, Head)
            assert all(lin.bias is None for lin in (head.key, head.query, head.value))
            assert head.key.out_features == 8
            assert type(head.dropout) is nn.Dropout and head.dropout.p == 0.2  # site 1
        assert type(block.sa.dropout) is nn.Dropout and block.sa.dropout.p == 0.2  # site 2
        assert type(block.ffwd.dropout) is nn.Dropout and block.ffwd.dropout.p == 0.2  # site 3
        assert block.sa.proj.bias is not None
        assert [type(x) for x in block.ffwd.net] == [nn.Linear, nn.ReLU, nn.Linear]
        assert block.ffwd.net[0].out_features == 4 * 32
    assert isinstance(m.embd_dropout, nn.Identity)  # v10 has no embedding dropout
    assert m.lm_head.bias is not None
    # 3 layers x (4 heads + proj + FFN) dropout modules, nothing else.
    assert sum(isinstance(x, nn.Dropout) for x in m.modules()) == 3 * 6


def babygpt_order_weights(cfg: GPTConfig, seed: int) -> list[torch.Tensor]:
    """The initial weights babyGPT v10 draws after torch.manual_seed(seed): its modules
    created in its order (embeddings; per block: heads' key/query/value, proj, FFN, LayerNorms;
    final LayerNorm; lm_head), with default PyTorch init."""
    torch.manual_seed(seed)
    C, D = cfg.n_embd, cfg.n_embd // cfg.n_head
    mods = [nn.Embedding(cfg.vocab_size, C), nn.Embedding(cfg.block_size, C)]
    for _ in range(cfg.n_layer):
        for _ in range(cfg.n_head):
            mods += [nn.Linear(C, D, bias=False) for _ in range(3)]
        mods += [nn.Linear(C, C), nn.Linear(C, 4 * C), nn.Linear(4 * C, C)]
        mods += [nn.LayerNorm(C), nn.LayerNorm(C)]
    mods += [nn.LayerNorm(C), nn.Linear(C, cfg.vocab_size)]
    return [p for m in mods for p in m.parameters()]


def test_seeded_init_matches_babygpt_creation_order():
    cfg = GPTConfig.v10(V)
    expected = babygpt_order_weights(cfg, seed=42)
    torch.manual_seed(42)
    got = list(BabyGPT(cfg).parameters())
    assert len(got) == len(expected)
    for a, b in zip(got, expected):
        assert torch.equal(a, b)


def test_forward_logits_loss_and_context_crop():
    torch.manual_seed(0)
    m = BabyGPT(tiny()).eval()
    x, y = tokens(T=8), tokens(T=8, seed=1)
    logits, loss = m(x, y)
    assert logits.shape == (4, 8, V)
    assert torch.allclose(loss, F.cross_entropy(logits.reshape(-1, V), y.reshape(-1)))
    assert m(x)[1] is None
    # A longer input is cropped to its last block_size tokens (targets too), as in babyGPT.
    long_x, long_y = tokens(T=13, seed=2), tokens(T=13, seed=3)
    logits_long, loss_long = m(long_x, long_y)
    logits_crop, loss_crop = m(long_x[:, -8:], long_y[:, -8:])
    assert logits_long.shape == (4, 8, V)
    # exact: the model's own crop is this very slice, so both run the same operations on it
    assert torch.equal(logits_long, logits_crop) and torch.equal(loss_long, loss_crop)


def test_causal_attention_ignores_future_tokens():
    torch.manual_seed(0)
    for attention in ("heads", "fused"):
        m = BabyGPT(tiny(attention=attention)).eval()
        x = tokens(T=8)
        x2 = x.clone()
        x2[:, 5:] = (x2[:, 5:] + 1) % V
        # Exact: positions < 5 see the same rows through the same operations, and the masked
        # future adds exact zeros (exp(-inf) = 0 weights times finite values).
        assert torch.equal(m(x)[0][:, :5], m(x2)[0][:, :5])
        assert not torch.allclose(m(x)[0][:, 5:], m(x2)[0][:, 5:])


def test_bad_forward_inputs():
    m = BabyGPT(tiny())
    with pytest.raises(ValueError, match="idx must be a 2-D tensor of integer"):
        m(torch.zeros(4, 8))
    with pytest.raises(ValueError, match="idx must be a 2-D tensor"):
        m(torch.zeros(8, dtype=torch.long))
    with pytest.raises(ValueError, match="targets must have the shape of idx"):
        m(tokens(T=8), tokens(T=7))
    with pytest.raises(ValueError, match="at least one token"):
        m(torch.zeros(2, 0, dtype=torch.long))
    with pytest.raises(TypeError, match="config must be a GPTConfig"):
        BabyGPT({"vocab_size": 3})


# ------------------------------------------------------------------------------------------------
# Every site and kind: eval mode = every rate 0, train mode is random

# Each entry configures one site (or LayerDrop) away from the default, with rate 0.3.
SITE_CASES = {
    "v10": {},
    "embd-standard": dict(embd_dropout=0.3),
    "embd-locked": dict(embd_dropout=0.3, embd_kind="locked"),
    "embd-gaussian": dict(embd_dropout=0.3, embd_kind="gaussian"),
    "attn-drophead": dict(attn_kind="drophead"),
    "attn-gaussian": dict(attn_kind="gaussian"),
    "resid-locked": dict(resid_kind="locked"),
    "resid-droppath": dict(resid_kind="droppath"),
    "resid-gaussian": dict(resid_kind="gaussian"),
    "ffn-locked": dict(ffn_kind="locked"),
    "ffn-droppath": dict(ffn_kind="droppath"),
    "ffn-gaussian": dict(ffn_kind="gaussian"),
    "layerdrop": dict(layerdrop=0.5),
    "per-layer": dict(attn_dropout=[0.1, 0.4], resid_dropout={"base": 0.1, "step": 0.2}),
    "everything": dict(
        embd_dropout=0.3,
        embd_kind="locked",
        attn_kind="drophead",
        resid_kind="droppath",
        ffn_kind="gaussian",
        layerdrop=0.3,
    ),
}
CASES = [
    pytest.param(attention, name, id=f"{attention}-{name}")
    for attention in ("heads", "fused")
    for name in SITE_CASES
    if not (attention == "fused" and SITE_CASES[name].get("attn_kind") == "gaussian")
]


def zero_rates(cfg: GPTConfig) -> GPTConfig:
    return dataclasses.replace(
        cfg,
        dropout=0.0,
        attn_dropout=None,
        resid_dropout=None,
        ffn_dropout=None,
        embd_dropout=0.0,
        layerdrop=0.0,
    )


@pytest.mark.parametrize("attention, name", CASES)
def test_eval_is_deterministic_and_equals_all_rates_zero(attention, name):
    cfg = tiny(attention=attention, **SITE_CASES[name])
    torch.manual_seed(0)
    model = BabyGPT(cfg)
    plain = BabyGPT(zero_rates(cfg))
    plain.load_state_dict(model.state_dict())
    x, y = tokens(), tokens(seed=1)

    model.eval()
    logits, loss = model(x, y)
    again, _ = model(x, y)
    assert torch.equal(logits, again)  # no randomness left in eval
    # With every rate 0 the model is deterministic in train mode too, and equal to eval.
    plain.train()
    ref, ref_loss = plain(x, y)
    torch.testing.assert_close(logits, ref, rtol=0, atol=1e-6)
    torch.testing.assert_close(loss, ref_loss, rtol=0, atol=1e-6)

    # Train mode: random, different from eval, and gradients reach every parameter.
    model.train()
    torch.manual_seed(1)
    outs = [model(x)[0] for _ in range(4)]
    assert any(not torch.equal(outs[0], o) for o in outs[1:])
    assert not all(torch.allclose(o, logits) for o in outs)
    model.zero_grad()
    torch.manual_seed(2)
    _, loss = model(x, y)
    loss.backward()
    # (LayerDrop may skip a whole block, whose parameters then get no gradient.)
    params = model.parameters() if cfg.layerdrop == 0 else model.lm_head.parameters()
    assert all(p.grad is not None for p in params)


def test_site_modules_and_per_layer_rates():
    cfg = tiny(
        attn_dropout=[0.1, 0.4],
        resid_dropout={"base": 0.1, "step": 0.2},
        ffn_dropout={"first": 0.0, "last": 0.5},
        resid_kind="droppath",
        ffn_kind="locked",
        embd_dropout=0.25,
        embd_kind="locked",
        layerdrop=0.2,
    )
    assert cfg.rates("attn") == [0.1, 0.4]
    assert cfg.rates("resid") == pytest.approx([0.1, 0.3])
    assert cfg.rates("ffn") == pytest.approx([0.0, 0.5])
    m = BabyGPT(cfg)
    assert isinstance(m.embd_dropout, dropoutlib.LockedDropout) and m.embd_dropout.p == 0.25
    assert isinstance(m.blocks, dropoutlib.LayerDrop) and m.blocks.p == 0.2
    for i, block in enumerate(m.blocks):
        assert all(h.dropout.p == cfg.rates("attn")[i] for h in block.sa.heads)
        assert isinstance(block.sa.dropout, dropoutlib.DropPath)
        assert block.sa.dropout.p == pytest.approx(cfg.rates("resid")[i])
        assert isinstance(block.ffwd.dropout, dropoutlib.LockedDropout)
        assert block.ffwd.dropout.p == pytest.approx(cfg.rates("ffn")[i])

    fused = BabyGPT(tiny(attention="fused", attn_dropout=[0.1, 0.4], attn_kind="drophead"))
    for i, block in enumerate(fused.blocks):
        assert isinstance(block.sa, FusedAttention)
        assert isinstance(block.sa.head_dropout, dropoutlib.DropHead)
        assert block.sa.head_dropout.p == [0.1, 0.4][i]
        assert block.sa.attn_dropout_p == 0.0  # DropHead replaces dropout on the weights
    heads = BabyGPT(tiny(attn_kind="drophead"))
    assert all(isinstance(h.dropout, nn.Identity) for b in heads.blocks for h in b.sa.heads)


def test_schedulers_find_every_site_and_leave_embedding_off():
    heads = BabyGPT(tiny())
    fused = BabyGPT(tiny(attention="fused"))
    # heads: per layer n_head weight dropouts + resid + ffn; fused: one rate holder + 2.
    assert dropoutlib.set_dropout_p(heads, 0.1) == 2 * (4 + 2)
    assert dropoutlib.set_dropout_p(fused, 0.0) == 2 * 3
    assert isinstance(fused.embd_dropout, nn.Identity)
    assert all(b.sa.attn_dropout_p == 0.0 for b in fused.blocks)


def test_sdpa_gets_dropout_p_only_in_training(monkeypatch):
    seen = []
    sdpa = F.scaled_dot_product_attention

    def recording(*args, **kwargs):
        seen.append(kwargs.get("dropout_p", 0.0))
        return sdpa(*args, **kwargs)

    monkeypatch.setattr(F, "scaled_dot_product_attention", recording)
    m = BabyGPT(tiny(attention="fused", attn_dropout=[0.2, 0.35]))
    x = tokens()
    m.train()
    m(x)
    assert seen == [0.2, 0.35]
    seen.clear()
    m.eval()
    m(x)
    assert seen == [0.0, 0.0]
    seen.clear()
    with torch.no_grad():
        m.generate(x[:, :2], 3)  # generation is evaluation too, even when called in train mode
    assert seen and set(seen) == {0.0}
    seen.clear()
    BabyGPT(tiny(attention="fused", attn_kind="drophead")).train()(x)
    assert seen == [0.0, 0.0]


# ------------------------------------------------------------------------------------------------
# Fused attention = heads attention with the same weights


def roundings_per_logit(cfg: GPTConfig) -> int:
    """Reduction lengths along the longest chain that computes one logit (tests/tolerance.py's
    ``ops``): per block two LayerNorms (C each), q/k/v (C), the scores (head size), softmax and
    weights @ values (T each), the projection (C) and the FFN (C, then 4C); then the final
    LayerNorm and lm_head (C each)."""
    C, T, D = cfg.n_embd, cfg.block_size, cfg.n_embd // cfg.n_head
    return cfg.n_layer * (2 * C + C + D + 2 * T + C + C + 4 * C) + 2 * C


@pytest.mark.parametrize("overrides", [{}, dict(bias=False, init="gpt2"), dict(n_head=2)])
def test_fused_and_heads_give_the_same_eval_output(overrides):
    torch.manual_seed(3)
    heads = BabyGPT(tiny(**overrides)).eval()
    fused = BabyGPT(tiny(attention="fused", **overrides)).eval()
    fused.load_state_dict(heads.state_dict())
    x = tokens(T=8)
    # Same weights, other kernels (one SDPA call against per-head matmuls and softmax): equal up
    # to the roundings along a logit's chain of reductions, each error carried on with gain ~1.
    assert_close_eps(fused(x)[0], heads(x)[0], ops=roundings_per_logit(fused.config))
    # And back: fused -> heads reproduces the original state dict exactly.
    back = BabyGPT(tiny(**overrides)).eval()
    back.load_state_dict(fused.state_dict())
    for key, value in heads.state_dict().items():
        assert torch.equal(back.state_dict()[key], value), key


def test_convert_attention_layout_and_errors():
    heads = BabyGPT(tiny())
    sd = convert_attention(heads.state_dict(), "fused")
    qkv = sd["blocks.0.sa.qkv.weight"]
    assert qkv.shape == (3 * 16, 16)
    # Rows: the query weights of heads 0..3, then the keys, then the values.
    assert torch.equal(qkv[4:8], heads.blocks[0].sa.heads[1].query.weight)
    assert torch.equal(qkv[16 + 12 : 16 + 16], heads.blocks[0].sa.heads[3].key.weight)
    assert torch.equal(qkv[32:36], heads.blocks[0].sa.heads[0].value.weight)
    assert not any("tril" in k or ".heads." in k for k in sd)
    assert convert_attention(sd, "fused").keys() == sd.keys()  # already fused: unchanged
    with pytest.raises(ValueError, match="needs n_head"):
        convert_attention(sd, "heads")
    with pytest.raises(ValueError, match="to must be one of 'heads', 'fused'"):
        convert_attention(sd, "flash")
    with pytest.raises(ValueError, match="expected n_head=2"):
        convert_attention(heads.state_dict(), "fused", n_head=2)


def test_load_state_dict_across_layerdrop_layouts():
    torch.manual_seed(0)
    with_ld = BabyGPT(tiny(layerdrop=0.3)).eval()
    without = BabyGPT(tiny()).eval()
    assert any(k.startswith("blocks.blocks.0.") for k in with_ld.state_dict())
    without.load_state_dict(with_ld.state_dict())
    x = tokens()
    # exact: at eval LayerDrop runs every block, the same operations as the plain stack
    assert torch.equal(without(x)[0], with_ld(x)[0])
    with_ld.load_state_dict(BabyGPT(tiny()).state_dict())  # and the other way


# ------------------------------------------------------------------------------------------------
# LearnedDropout at the FFN output


@pytest.mark.parametrize("attention", ["heads", "fused"])
@pytest.mark.parametrize("source", ["hidden", "embed"])
def test_learned_dropout_site(attention, source):
    from dropoutlib.learned import LearnedDropout

    cfg = tiny(attention=attention, ffn_kind="learned", learned_dropout={"input": source})
    torch.manual_seed(0)
    m = BabyGPT(cfg)
    for block in m.blocks:
        assert isinstance(block.ffwd.dropout, LearnedDropout)
        assert block.ffwd.dropout.input == source
    x, y = tokens(), tokens(seed=1)
    m.eval()
    assert torch.equal(m(x)[0], m(x)[0])  # threshold rule: deterministic
    m.train()
    _, loss = m(x, y)  # input="embed" raises without the embedding, so this proves it arrives
    loss.backward()
    assert m.blocks[0].ffwd.dropout.shift.grad is not None
    assert m.blocks[0].ffwd.dropout.last_m is not None


def test_embedding_reaches_learned_dropout(monkeypatch):
    from dropoutlib.learned import LearnedDropout

    seen = []
    forward = LearnedDropout.forward

    def recording(self, x, embed=None, **kwargs):
        seen.append(embed)
        return forward(self, x, embed, **kwargs)

    monkeypatch.setattr(LearnedDropout, "forward", recording)
    m = BabyGPT(tiny(ffn_kind="learned", learned_dropout={"input": "embed"})).eval()
    x = tokens()
    m(x)
    expected = m.token_embedding_table(x) + m.position_embedding_table(torch.arange(8))
    assert len(seen) == 2
    assert all(torch.equal(e, expected) for e in seen)


# ------------------------------------------------------------------------------------------------
# Generation


def test_generate_crops_context_and_is_reproducible():
    torch.manual_seed(0)
    m = BabyGPT(tiny(dropout=0.5))
    prompt = tokens(batch=2, T=12)
    out1 = m.generate(prompt, 20, generator=torch.Generator().manual_seed(7))
    out2 = m.generate(prompt, 20, generator=torch.Generator().manual_seed(7))
    out3 = m.generate(prompt, 20, generator=torch.Generator().manual_seed(8))
    assert out1.shape == (2, 32) and torch.equal(out1[:, :12], prompt)
    assert torch.equal(out1, out2) and not torch.equal(out1, out3)
    # Only the last block_size tokens matter: changing older ones changes nothing.
    other = prompt.clone()
    other[:, :4] = (other[:, :4] + 3) % V
    out4 = m.generate(other, 20, generator=torch.Generator().manual_seed(7))
    assert torch.equal(out4[:, 12:], out1[:, 12:])
    # Eval semantics even when called in train mode, and the mode is restored.
    assert m.training
    m.eval()
    out5 = m.generate(prompt, 20, generator=torch.Generator().manual_seed(7))
    assert torch.equal(out5, out1) and not m.training


def test_generate_top_k_one_is_greedy_and_temperature_matters():
    torch.manual_seed(0)
    m = BabyGPT(tiny()).eval()
    idx = tokens(batch=2, T=3)
    out = m.generate(idx, 6, top_k=1, generator=torch.Generator().manual_seed(1))
    greedy = idx
    for _ in range(6):
        nxt = m(greedy[:, -8:])[0][:, -1].argmax(-1, keepdim=True)
        greedy = torch.cat([greedy, nxt], dim=1)
    assert torch.equal(out, greedy)
    cold = m.generate(idx, 30, temperature=1e-4, generator=torch.Generator().manual_seed(2))
    hot = m.generate(idx, 30, temperature=100.0, generator=torch.Generator().manual_seed(2))
    assert torch.equal(cold[:, :9], greedy)  # near-zero temperature is greedy
    assert not torch.equal(hot, cold)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(temperature=0.0), "temperature must be a finite number > 0"),
        (dict(temperature=-1.0), "temperature"),
        (dict(temperature=math.nan), "temperature"),
        (dict(top_k=0), r"top_k must be None or an integer in \[1, 11\]"),
        (dict(top_k=12), "top_k"),
        (dict(top_k=2.5), "top_k"),
        (dict(max_new_tokens=-1), "max_new_tokens must be a non-negative integer"),
    ],
)
def test_generate_rejects_bad_arguments(kwargs, match):
    m = BabyGPT(tiny())
    args = {"max_new_tokens": 3, **kwargs}
    with pytest.raises(ValueError, match=match):
        m.generate(tokens(T=2), **args)


# ------------------------------------------------------------------------------------------------
# Initialisation


def test_gpt2_init_is_normal_002_with_zero_biases():
    torch.manual_seed(0)
    m = BabyGPT(GPTConfig.v10(500, init="gpt2"))
    weights = torch.cat(
        [x.weight.flatten() for x in m.modules() if isinstance(x, (nn.Linear, nn.Embedding))]
    )
    n = weights.numel()
    # Sample mean SE = 0.02 / sqrt(n), sample std SE ~ 0.02 / sqrt(2n); allow 6 SE.
    assert abs(weights.mean().item()) < 6 * 0.02 / math.sqrt(n)
    assert abs(weights.std().item() - 0.02) < 6 * 0.02 / math.sqrt(2 * n)
    biases = [x.bias for x in m.modules() if isinstance(x, nn.Linear) and x.bias is not None]
    assert biases and all(torch.count_nonzero(b) == 0 for b in biases)
    # PyTorch's default draws embeddings from N(0, 1): far from 0.02.
    assert BabyGPT(GPTConfig.v10(500)).token_embedding_table.weight.std() > 0.9


# ------------------------------------------------------------------------------------------------
# Bad configurations


@pytest.mark.parametrize(
    "overrides, match",
    [
        (dict(n_embd=30), "n_embd must be divisible by n_head"),
        (dict(n_layer=0), "n_layer must be a positive integer, got 0"),
        (dict(block_size=2.0), "block_size must be a positive integer"),
        (dict(vocab_size=True), "vocab_size must be a positive integer"),
        (dict(dropout=1.5), r"dropout must be in \[0, 1\]"),
        (dict(attn_dropout=-0.1), "attn_dropout must be in"),
        (dict(embd_dropout="0.1"), "embd_dropout must be a real number"),
        (dict(layerdrop=2), "layerdrop must be in"),
        (dict(ffn_dropout=[0.1]), r"ffn_dropout must have one rate per layer \(n_layer=2\)"),
        (dict(resid_dropout=[0.1, 1.2]), r"resid_dropout\[1\] must be in"),
        (dict(dropout={"base": 0.9, "step": 0.2}), "dropout: layer 1 gets rate"),
        (dict(ffn_dropout={"start": 0.1}), "a rule must have keys"),
        (dict(ffn_kind="gaussian", ffn_dropout=1.0), r"ffn_dropout must be in \[0, 1\)"),
        (dict(attn_kind="locked"), "attn_kind must be one of 'standard', 'drophead', 'gaussian'"),
        (dict(resid_kind="learned"), "resid_kind must be one of"),
        (dict(embd_kind="droppath"), "embd_kind must be one of"),
        (dict(attention="flash"), "attention must be one of 'heads', 'fused'"),
        (dict(init="xavier"), "init must be one of 'pytorch', 'gpt2'"),
        (dict(bias=1), "bias must be True or False"),
        (dict(attention="fused", attn_kind="gaussian"), 'use attention="heads"'),
        (
            dict(ffn_kind="learned", ffn_dropout=0.1),
            'ffn_dropout must be None with ffn_kind="learned"',
        ),
        (dict(learned_dropout={"shift_init": 1.0}), 'used only with ffn_kind="learned"'),
        (dict(learned_dropout=[1]), "learned_dropout must be a dict"),
        (
            dict(ffn_kind="learned", learned_dropout={"shift": 1.0}),
            r"learned_dropout has unknown option\(s\) \['shift'\]",
        ),
    ],
)
def test_bad_configs_raise_clear_errors(overrides, match):
    with pytest.raises(ValueError, match=match):
        tiny(**overrides)


def test_bad_learned_dropout_options_fail_at_construction():
    cfg = tiny(ffn_kind="learned", learned_dropout={"rounding": "round"})
    with pytest.raises(ValueError, match="rounding"):
        BabyGPT(cfg)
