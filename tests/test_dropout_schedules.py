"""Chapter 06's library: rates per block on any model (set_layerwise_p), the schedule experiments
and their figures."""

from __future__ import annotations

import dataclasses

import matplotlib
import pytest
import torch
from torch import nn

import dropoutlib.experiments as E
from dropoutlib import viz
from dropoutlib.experiments.dropout_schedules import CUTOFF, SCHEDULES, P, layerwise_specs
from dropoutlib.model import BabyGPT, GPTConfig
from dropoutlib.schedules import find_blocks, layerwise_rates, set_layerwise_p
from dropoutlib.sites import dropout_sites

matplotlib.use("Agg")


def rates_by_block(model, blocks):
    out = {}
    for site in dropout_sites(model):
        if site.name.startswith(blocks + "."):
            i = int(site.name[len(blocks) + 1 :].split(".")[0])
            out.setdefault(i, set()).add(site.p)
    return [sorted(out[i]) for i in sorted(out)]


# ------------------------------------------------------------------------------------------------
# set_layerwise_p and find_blocks


@pytest.mark.parametrize("attention", ["heads", "fused"])
def test_babygpt_blocks_get_their_rates(attention):
    model = BabyGPT(GPTConfig(vocab_size=11, n_layer=3, attention=attention, embd_dropout=0.1))
    assert find_blocks(model)[0] == "blocks"
    counts = set_layerwise_p(model, layerwise_rates(3, 0.1, 0.1))
    assert counts == [len(dropout_sites(model.blocks[0]))] * 3
    got = rates_by_block(model, "blocks")
    assert got == [[pytest.approx(0.1)], [pytest.approx(0.2)], [pytest.approx(0.3)]]
    assert model.embd_dropout.p == 0.1  # outside the blocks: left alone


def test_the_same_as_a_gptconfig_rate_spec():
    spec = {"base": 0.1, "step": 0.1}
    built = BabyGPT(GPTConfig(vocab_size=11, n_layer=3, dropout=spec))
    set_later = BabyGPT(GPTConfig(vocab_size=11, n_layer=3, dropout=0.0))
    set_layerwise_p(set_later, layerwise_rates(3, 0.1, 0.1))
    assert rates_by_block(built, "blocks") == rates_by_block(set_later, "blocks")


def test_layerdrop_blocks_are_found_inside_the_container():
    model = BabyGPT(GPTConfig(vocab_size=11, n_layer=2, layerdrop=0.1))
    name, blocks = find_blocks(model)
    assert name == "blocks.blocks" and len(blocks) == 2
    set_layerwise_p(model, [0.0, 0.3])
    assert rates_by_block(model, name) == [[0.0], [0.3]]


def test_errors_name_the_argument_and_change_nothing():
    model = BabyGPT(GPTConfig(vocab_size=11, n_layer=3, dropout=0.2))
    with pytest.raises(ValueError, match="one rate per block: 'blocks' has 3 blocks, got 2"):
        set_layerwise_p(model, [0.1, 0.2])
    with pytest.raises(ValueError, match=r"rates\[2\]"):
        set_layerwise_p(model, [0.1, 0.2, 1.5])
    with pytest.raises(TypeError, match="rates must be a sequence"):
        set_layerwise_p(model, 0.1)
    with pytest.raises(ValueError, match="blocks='layers' is not an nn.ModuleList"):
        set_layerwise_p(model, [0.1] * 3, blocks="layers")
    with pytest.raises(ValueError, match="no nn.ModuleList of blocks"):
        find_blocks(nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.1)))
    assert all(site.p == 0.2 for site in dropout_sites(model))


def test_a_module_that_refuses_p_one_refuses_before_any_change():
    model = BabyGPT(GPTConfig(vocab_size=11, n_layer=2, resid_kind="gaussian", dropout=0.2))
    with pytest.raises(ValueError, match=r"rates\[1\] = 1.0 cannot be set"):
        set_layerwise_p(model, [0.5, 1.0])
    assert all(site.p == 0.2 for site in dropout_sites(model))


@pytest.fixture(scope="module")
def T():
    transformers = pytest.importorskip("transformers")
    transformers.logging.set_verbosity_error()
    return transformers


def tiny_gpt2(T):
    torch.manual_seed(0)
    config = T.GPT2Config(n_layer=3, n_embd=32, n_head=2, vocab_size=64, n_positions=32)
    return T.GPT2LMHeadModel(config)


def tiny_llama(T, attention_dropout=0.0):
    torch.manual_seed(0)
    config = T.LlamaConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=3,
        num_attention_heads=2,
        num_key_value_heads=2,
        vocab_size=64,
        max_position_embeddings=32,
        attention_dropout=attention_dropout,
    )
    return T.LlamaForCausalLM(config)


def test_seed_000_layerwise_wrapper_fails_on_gpt2_and_the_fix_works(T):
    model = tiny_gpt2(T)
    with pytest.raises(AttributeError, match="'GPT2Attention' object has no attribute 'dropout'"):
        for i, layer in enumerate(model.transformer.h):  # seed 000's wrapper, its logic
            layer.attn.dropout.p = 0.1 + i * 0.02
            layer.mlp.dropout.p = 0.1 + i * 0.02
    assert find_blocks(model)[0] == "transformer.h"
    assert set_layerwise_p(model, layerwise_rates(3, 0.1, 0.02)) == [3, 3, 3]
    for i, layer in enumerate(model.transformer.h):
        want = pytest.approx(0.1 + i * 0.02)
        assert layer.attn.attn_dropout.p == layer.attn.resid_dropout.p == want
        assert layer.mlp.dropout.p == want
    assert model.transformer.drop.p == 0.1  # the embedding dropout is not in a block


def test_the_same_fix_on_llama_sets_its_float_rate(T):
    model = tiny_llama(T)
    assert not list(m for m in model.modules() if isinstance(m, nn.Dropout))
    assert find_blocks(model)[0] == "model.layers"
    assert set_layerwise_p(model, [0.0, 0.0, 0.3]) == [1, 1, 1]
    rates = [layer.self_attn.attention_dropout for layer in model.model.layers]
    assert rates == [0.0, 0.0, 0.3]
    idx = torch.randint(0, 64, (2, 8), generator=torch.Generator().manual_seed(1))
    model.train()
    with torch.no_grad():
        a, b = model(input_ids=idx).logits, model(input_ids=idx).logits
    assert not torch.equal(a, b)  # the float reaches the attention call
    set_layerwise_p(model, [0.0, 0.0, 0.0])
    with torch.no_grad():
        assert torch.equal(model(input_ids=idx).logits, model(input_ids=idx).logits)


# ------------------------------------------------------------------------------------------------
# the experiments


@pytest.mark.parametrize("profile", ["smoke", "cpu", "gpu"])
def test_schedule_runs_differ_only_in_their_dropout(profile):
    runs = E.specs("schedules-data-constrained", profile)
    base = E.data_constrained(profile)
    assert runs["no dropout"] == base
    assert runs["constant"] == E.data_constrained(profile, model={"dropout": P})
    for spec in runs.values():
        assert spec.corpus == base.corpus and spec.parent is None
        assert spec.train.max_iters == base.train.max_iters
        assert spec.train.train_tokens == base.train.train_tokens
        assert spec.model.n_layer == base.model.n_layer
    for label, schedule in SCHEDULES.items():
        assert runs[label].train.dropout_schedule == schedule
    for label in layerwise_specs(base.model.n_layer):
        rates = runs[label].model.rates("attn")
        assert sum(rates) / len(rates) == pytest.approx(P)
        assert runs[label].train.dropout_schedule is None


def test_layerwise_rules_rise_and_fall():
    rising, falling = (
        GPTConfig(vocab_size=5, n_layer=3, dropout=rule).rates("ffn")
        for rule in layerwise_specs(3).values()
    )
    assert rising == pytest.approx([0.1, 0.2, 0.3]) and falling == pytest.approx([0.3, 0.2, 0.1])
    six = GPTConfig(vocab_size=5, n_layer=6, dropout=list(layerwise_specs(6).values())[0])
    assert six.rates("ffn")[0] == pytest.approx(0.1) and six.rates("ffn")[-1] == pytest.approx(0.3)


@pytest.mark.parametrize("profile", ["cpu", "gpu"])
def test_single_epoch_regime_is_under_one_epoch(profile):
    runs = E.specs("schedules-single-epoch", profile)
    assert list(runs) == ["no dropout", "constant", "early", "late"]
    spec = runs["no dropout"]
    assert spec.train.train_tokens is None
    tokens = spec.train.max_iters * spec.train.batch_size * spec.model.block_size
    assert tokens < 1_003_854  # the training split of tiny Shakespeare
    assert runs["early"].train.dropout_schedule["cutoff"] == CUTOFF


def test_schedules_smoke_run_and_figures(isolated_run_cache):
    results = E.run("schedules-single-epoch", "smoke", progress=False)
    ps = [h["dropout_p"] for h in results["late"].history]
    assert ps[0] == 0.0 and ps[-1] == P
    ps = [h["dropout_p"] for h in results["early"].history]
    assert ps[0] == P and ps[-1] == 0.0
    for lang in ("en", "ru", "zh"):
        fig = viz.plot_schedule_runs({"schedules-single-epoch": results}, lang)
        assert len(fig.axes) == 2
        text = viz.schedules_markdown(results, lang)
        assert text.count("\n") == len(results) + 1
        assert viz.run_label("late", lang) in text
    fig = viz.plot_schedules("en", steps=60, epochs=5, n_layer=6)
    left, right = fig.axes
    assert len(left.get_lines()) == len(SCHEDULES)
    assert len(right.get_lines()) == 3
    with pytest.raises(ValueError, match="regimes must map"):
        viz.plot_schedule_runs({}, "en")


def test_schedule_curves_are_the_trainers():
    from dropoutlib.viz.dropout_schedules import _schedule_curve

    seed000 = _schedule_curve(SCHEDULES["seed 000 decay"], P, 10, 5)
    assert seed000[0] == P and seed000[1] == P and seed000[2] == pytest.approx(P * 4 / 5)
    late = _schedule_curve(SCHEDULES["late"], P, 60, 5)
    assert late[9] == 0.0 and late[10] == P  # round(60 / 6) = 10


@pytest.mark.parametrize("profile", ["smoke", "cpu", "gpu"])
def test_seed_runs_are_the_compared_runs_with_other_seeds(profile):
    from dropoutlib.experiments.dropout_schedules import SEEDS

    runs = E.specs("schedules-seeds", profile)
    assert len(runs) == 4 * len(SEEDS)
    single = E.specs("schedules-single-epoch", profile)
    for seed in SEEDS:
        assert runs[f"data-constrained: no dropout, seed {seed}"] == E.data_constrained(
            profile, seed=seed
        )
        constant = E.data_constrained(profile, model={"dropout": P}, seed=seed)
        assert runs[f"data-constrained: constant, seed {seed}"] == constant
        early = runs[f"single epoch: early, seed {seed}"]
        assert early.model == single["early"].model and early.train.seed == seed
        assert dataclasses.replace(early.train, seed=1337) == single["early"].train
    assert all(spec.train.seed in SEEDS for spec in runs.values())


def test_seed_groups_and_the_figure_with_seeds():
    from dropoutlib.experiments.dropout_schedules import seed_groups

    class Run:
        def __init__(self, v):
            self.final = self.best = {"val_loss": v, "train_loss": v, "step": 1}
            self.history = [{"step": 0, "val_loss": 4.0}, {"step": 1, "val_loss": v}]

    groups = seed_groups(
        {
            "data-constrained: no dropout, seed 1": Run(1.0),
            "data-constrained: no dropout, seed 2": Run(1.1),
            "single epoch: early, seed 1": Run(2.0),
        }
    )
    dc = groups["schedules-data-constrained"]
    assert [r.final["val_loss"] for r in dc["no dropout"]] == [1.0, 1.1]
    assert list(groups["schedules-single-epoch"]) == ["early"]
    with pytest.raises(ValueError, match="not of the form"):
        seed_groups({"no dropout, seed 1": Run(1.0)})
    results = {"no dropout": Run(1.05), "constant": Run(0.9)}
    fig = viz.plot_schedule_runs({"schedules-data-constrained": results}, "en", seeds=groups)
    bars = fig.axes[1]
    crosses = [line for line in bars.get_lines() if line.get_marker() == "x"]
    assert len(crosses) == 1 and list(crosses[0].get_xdata()) == [1.0, 1.1]
