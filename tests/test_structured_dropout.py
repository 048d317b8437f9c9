"""Chapter 04's library: token-type dropout, babyGPT's new kinds (token, dropconnect), LayerDrop's
pruning curve, the mask pictures and the structured-dropout experiment's specs."""

import dataclasses

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

import dropoutlib  # noqa: E402
from dropoutlib import functional as DF  # noqa: E402
from dropoutlib import viz  # noqa: E402
from dropoutlib.model import BabyGPT, GPTConfig  # noqa: E402
from dropoutlib.pruning import PruningPoint, keep_blocks, pruning_curve  # noqa: E402


def gen(seed):
    return torch.Generator().manual_seed(seed)


def tiny(**overrides):
    base = dict(vocab_size=23, block_size=12, n_embd=16, n_head=4, n_layer=3, dropout=0.0)
    return GPTConfig(**{**base, **overrides})


# ------------------------------------------------------------------------------------------------
# token_type_dropout / TokenTypeDropout


def test_token_type_dropout_drops_each_type_everywhere_and_scales():
    ids = torch.randint(0, 7, (50, 40), generator=gen(0))
    x = torch.rand(50, 40, 6, generator=gen(1)) + 0.5
    p = 0.4
    y = DF.token_type_dropout(x, ids, p, num_types=7, generator=gen(2))
    dropped = (y == 0).all(-1)
    kept = (y != 0).all(-1)
    assert bool((dropped | kept).all())  # a vector is dropped whole or kept whole
    for v in range(7):
        fate = dropped[ids == v]
        assert bool(fate.all()) or not bool(fate.any())  # the same fate wherever v occurs
    torch.testing.assert_close(y[kept], x[kept] / (1 - p))


def test_token_type_dropout_matches_embedding_dropout_for_the_same_generator():
    emb = torch.randn(9, 4, generator=gen(3))
    ids = torch.randint(0, 9, (5, 11), generator=gen(4))
    a = DF.embedding_dropout(ids, 0.3, weight=emb, generator=gen(5))
    b = DF.token_type_dropout(emb[ids], ids, 0.3, num_types=9, generator=gen(5))
    torch.testing.assert_close(a, b)


def test_token_type_dropout_edge_cases_and_errors():
    ids = torch.tensor([[0, 1, 2]])
    x = torch.ones(1, 3, 4)
    assert DF.token_type_dropout(x, ids, 0.5, False, num_types=3) is x
    assert DF.token_type_dropout(x, ids, 0.0, num_types=3) is x
    assert torch.equal(DF.token_type_dropout(x, ids, 1.0, num_types=3), torch.zeros_like(x))
    with pytest.raises(ValueError, match="indices must be an int64 or int32 tensor"):
        DF.token_type_dropout(x, ids.float(), 0.5, num_types=3)
    with pytest.raises(ValueError, match=r"x must have shape \(\*indices.shape, C\)"):
        DF.token_type_dropout(torch.ones(1, 4, 4), ids, 0.5, num_types=3)
    with pytest.raises(ValueError, match="num_types must be a positive int"):
        DF.token_type_dropout(x, ids, 0.5, num_types=0)
    with pytest.raises(ValueError, match=r"p must be in \[0, 1\]"):
        DF.token_type_dropout(x, ids, 1.5, num_types=3)


def test_token_type_dropout_module():
    m = dropoutlib.TokenTypeDropout(0.5, 10, generator=gen(6))
    assert "num_types=10" in repr(m)
    ids = torch.randint(0, 10, (4, 8), generator=gen(7))
    x = torch.ones(4, 8, 3)
    assert not torch.equal(m(x, ids), x)
    assert torch.equal(m.eval()(x, ids), x)
    with pytest.raises(ValueError, match="num_types must be a positive int"):
        dropoutlib.TokenTypeDropout(0.5, 0)


# ------------------------------------------------------------------------------------------------
# babyGPT's new kinds


def test_token_kind_drops_token_embeddings_only():
    torch.manual_seed(0)
    model = BabyGPT(tiny(embd_kind="token", embd_dropout=0.5))
    assert isinstance(model.embd_dropout, dropoutlib.TokenTypeDropout)
    seen = {}

    def record(module, args):
        seen["x"] = args[0]  # returns None: the input is not replaced

    handle = model.blocks[0].register_forward_pre_hook(record)
    idx = torch.randint(0, 23, (6, 12), generator=gen(8))
    torch.manual_seed(1)
    model(idx)
    handle.remove()
    pos = model.position_embedding_table.weight[:12]
    tok = seen["x"] - pos  # what the token embedding contributed
    dropped = tok.abs().amax(-1) < 1e-6
    assert bool(dropped.any()) and not bool(dropped.all())
    for v in idx.unique():
        fate = dropped[idx == v]
        assert bool(fate.all()) or not bool(fate.any())
    model.eval()
    logits, _ = model(idx)
    plain = BabyGPT(tiny())
    plain.load_state_dict(model.state_dict())
    torch.testing.assert_close(logits, plain.eval()(idx)[0])


def test_dropconnect_kind_drops_ffn_weights_and_keeps_names_and_init():
    cfg = tiny(ffn_kind="dropconnect", ffn_dropout=0.3)
    torch.manual_seed(0)
    model = BabyGPT(cfg)
    torch.manual_seed(0)
    plain = BabyGPT(tiny())
    assert model.state_dict().keys() == plain.state_dict().keys()
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), plain.parameters()))
    for block in model.blocks:
        assert isinstance(block.ffwd.net[0], dropoutlib.DropConnectLinear)
        assert isinstance(block.ffwd.net[2], dropoutlib.DropConnectLinear)
        assert block.ffwd.net[0].p == 0.3 and isinstance(block.ffwd.dropout, nn.Identity)
    idx = torch.randint(0, 23, (3, 12), generator=gen(9))
    model.eval()
    torch.testing.assert_close(model(idx)[0], plain.eval()(idx)[0])
    model.train()
    assert not torch.equal(model(idx)[0], model(idx)[0])
    # schedulers see the DropConnect layers as dropout sites
    assert dropoutlib.set_dropout_p(model, 0.1, name="*ffwd.net.*") == 6


def test_concrete_kind_learns_a_rate_per_site():
    cfg = tiny(
        embd_kind="concrete",
        embd_dropout=0.2,
        resid_kind="concrete",
        resid_dropout=0.2,
        ffn_kind="concrete",
        ffn_dropout=0.2,
    )
    model = BabyGPT(cfg)
    concrete = [m for m in model.modules() if isinstance(m, dropoutlib.ConcreteDropout)]
    assert len(concrete) == 1 + 2 * cfg.n_layer
    assert all(m.in_features == cfg.n_embd and abs(m.p - 0.2) < 1e-9 for m in concrete)
    with pytest.raises(ValueError, match='resid_kind="concrete" learns its rate'):
        tiny(resid_kind="concrete")  # rate 0
    with pytest.raises(ValueError, match=r"embd_dropout must be in \[0, 1\)"):
        tiny(embd_kind="concrete", embd_dropout=1.0)


def test_setup_concrete_and_training_loss_add_the_regulariser():
    from dropoutlib.train import TrainConfig
    from dropoutlib.train.objective import setup_concrete, training_loss

    cfg = tiny(ffn_kind="concrete", ffn_dropout=0.3)
    model = BabyGPT(cfg)
    found = setup_concrete(model, 500)
    assert len(found) == cfg.n_layer and all(m.dropout_regularizer == 1 / 500 for m in found)
    assert setup_concrete(BabyGPT(tiny()), 500) == []
    x = torch.randint(0, 23, (2, 12), generator=gen(10))
    tc = TrainConfig()
    torch.manual_seed(0)
    with_reg = training_loss(model, x, x, tc, step=1, concrete=found)
    torch.manual_seed(0)
    without = training_loss(model, x, x, tc, step=1)
    reg = sum(m.regularizer() for m in found)
    torch.testing.assert_close(with_reg - without, reg)
    with_reg.backward()
    assert all(m.p_logit.grad is not None for m in found)


# ------------------------------------------------------------------------------------------------
# pruning


def _batches(n=2):
    return [
        (torch.randint(0, 23, (4, 12), generator=gen(20 + i)),) * 2 for i in range(n)
    ]  # x = y is enough for a loss


def test_keep_blocks_runs_the_chosen_blocks_and_restores():
    torch.manual_seed(0)
    model = BabyGPT(tiny()).eval()
    x = torch.randint(0, 23, (2, 12), generator=gen(11))
    full = model(x)[0]
    with keep_blocks(model, [0, 2]) as m:
        assert len(m.blocks) == 2
        pruned = m(x)[0]
    assert not torch.equal(full, pruned)
    assert len(model.blocks) == 3 and torch.equal(model(x)[0], full)
    # by hand: the same as a 2-block model with blocks 0 and 2
    two = BabyGPT(tiny(n_layer=2)).eval()
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("blocks.1.")}
    state = {k.replace("blocks.2.", "blocks.1."): v for k, v in state.items()}
    two.load_state_dict(state)
    torch.testing.assert_close(two(x)[0], pruned)
    with keep_blocks(model, []):
        assert len(model.blocks) == 0 and model(x)[0].shape == full.shape
    for bad in ([3], [1, 0], [0, 0], "01", [True]):
        with pytest.raises(ValueError, match="keep must"):
            with keep_blocks(model, bad):
                pass
    with pytest.raises(RuntimeError):
        with keep_blocks(model, [1]):
            raise RuntimeError("boom")
    assert len(model.blocks) == 3


def test_keep_blocks_with_layerdrop_container():
    model = BabyGPT(tiny(layerdrop=0.5)).eval()
    assert isinstance(model.blocks, dropoutlib.LayerDrop)
    with keep_blocks(model, [1]):
        assert isinstance(model.blocks, nn.ModuleList) and len(model.blocks) == 1
    assert isinstance(model.blocks, dropoutlib.LayerDrop)


def test_pruning_curve_counts_subsets_and_matches_keep_blocks():
    torch.manual_seed(0)
    model = BabyGPT(tiny()).train()
    batches = _batches()
    curve = pruning_curve(model, batches)
    assert model.training  # mode restored
    assert [pt.removed for pt in curve] == [0, 1, 2, 3]
    assert [len(pt.subsets) for pt in curve] == [1, 3, 3, 1]
    assert curve[0].subsets == ((0, 1, 2),) and curve[3].subsets == ((),)
    with keep_blocks(model.eval(), [0, 2]), torch.no_grad():
        want = sum(float(model(x, y)[1]) for x, y in batches) / len(batches)
    i = curve[1].subsets.index((0, 2))
    assert curve[1].losses[i] == pytest.approx(want, abs=1e-6)
    pt = curve[1]
    assert pt.best <= pt.mean <= pt.worst
    few = pruning_curve(model, batches, max_subsets=2)
    assert [len(p.subsets) for p in few] == [1, 2, 2, 1]
    with pytest.raises(ValueError, match="max_subsets"):
        pruning_curve(model, batches, max_subsets=0)
    with pytest.raises(ValueError, match="batches must hold"):
        pruning_curve(model, [])
    assert PruningPoint(1, ((0,), (1,)), (1.0, 3.0)).mean == 2.0


# ------------------------------------------------------------------------------------------------
# the pictures


@pytest.mark.parametrize("kind", viz.structured_dropout.STRUCTURED_KINDS)
def test_structured_masks_have_each_variants_structure(kind):
    m = viz.structured_masks(kind, 0.4, seed=3)
    std, var = m["standard"], m["variant"]
    assert set(std.unique().tolist()) <= {0.0, 1.0} and set(var.unique().tolist()) <= {0.0, 1.0}
    assert std.shape[0] == 4
    if kind in ("spatial", "locked"):
        assert torch.equal(var, var[:, :1, :].expand_as(var))  # constant over positions
    if kind == "token":
        ids, _ = viz.structured_dropout._toy_ids()
        rows = var[..., 0]
        assert torch.equal(var, rows[..., None].expand_as(var))
        for v in ids.unique():
            fate = rows[ids == v]
            assert bool((fate == fate[0]).all())
    if kind == "drophead":
        heads = var.reshape(4, 8, 4, 4)  # (B, T, H, D)
        assert torch.equal(heads, heads[:, :1, :, :1].expand_as(heads))
        assert bool(heads.flatten(1).any(1).all())  # every sequence keeps a head
    if kind == "droppath":
        blocks = var.reshape(4, 3, 8, 16)
        assert torch.equal(blocks, blocks[:, :, :1, :1].expand_as(blocks))
    if kind == "layerdrop":
        blocks = var.reshape(4, 3, 8, 16)
        assert torch.equal(blocks, blocks[:1, :, :1, :1].expand_as(blocks))  # whole batch
    if kind == "dropconnect":
        assert var.shape == (1, 16, 16)
    # reproducible
    assert torch.equal(viz.structured_masks(kind, 0.4, seed=3)["variant"], var)


@pytest.mark.parametrize("lang", ["en", "ru", "zh"])
def test_plot_structured_mask_and_curves_render(lang):
    if lang == "zh" and not viz.has_cjk_font():
        pytest.skip("no CJK font")
    for kind in viz.structured_dropout.STRUCTURED_KINDS:
        fig = viz.plot_structured_mask(kind, lang)
        assert fig._suptitle.get_text()
        plt.close(fig)

    class R:
        def __init__(self, vals):
            self.history = [{"step": 10 * i, "val_loss": v} for i, v in enumerate(vals)]

    fig = viz.plot_val_curves({"none": R([4, 2, 2.5]), "droppath": R([4, 2.2, 2.1])}, lang)
    assert len(fig.axes[0].get_lines()) == 2
    assert viz.label("s04_droppath", lang) in [t.get_text() for t in fig.axes[1].get_yticklabels()]
    plt.close(fig)
    curve = [PruningPoint(0, ((0, 1),), (2.0,)), PruningPoint(1, ((0,), (1,)), (2.5, 3.0))]
    fig = viz.plot_pruning({"layerdrop": curve, "none": curve}, lang)
    assert fig.axes[0].get_xlabel() == viz.label("s04_removed", lang, n=1)
    plt.close(fig)


def test_structured_masks_reject_bad_arguments():
    with pytest.raises(ValueError, match="kind must be one of"):
        viz.structured_masks("dropblock")
    with pytest.raises(ValueError, match=r"p must be in \[0, 1\)"):
        viz.structured_masks("droppath", 1.0)


# ------------------------------------------------------------------------------------------------
# the experiment


def test_structured_experiment_specs():
    import dropoutlib.experiments as E

    for profile in ("smoke", "cpu", "gpu"):
        specs = E.specs("structured-dropout", profile)
        assert list(specs) == list(E.structured_dropout.STRUCTURED_SITES)
        base = E.data_constrained(profile)
        assert specs["none"] == base  # the shared run, so the cache shares it across chapters
        assert specs["standard"] == E.data_constrained(profile, model={"dropout": 0.2})
        for name, spec in specs.items():
            assert spec.train == base.train
            changed = {
                f.name
                for f in dataclasses.fields(spec.model)
                if getattr(spec.model, f.name) != getattr(base.model, f.name)
            }
            assert changed == set(E.structured_dropout.STRUCTURED_SITES[name]), name


# ------------------------------------------------------------------------------------------------
# the loss summary (reports) on real smoke runs


@pytest.mark.usefixtures("isolated_run_cache")
def test_loss_summary_of_smoke_runs():
    import dropoutlib.experiments as E
    from dropoutlib.reports import loss_summary, loss_summary_text

    results = E.run("mc-dropout", "smoke", progress=False)
    rows = loss_summary(results)
    assert [r["label"] for r in rows] == ["standard", "none"]
    for row, result in zip(rows, results.values()):
        later = [h for h in result.history if h["step"] > 0]
        assert row["best_val"] == min(h["val_loss"] for h in later)
        assert row["final_val"] == result.final["val_loss"]
        assert row["gap"] == pytest.approx(row["final_val"] - row["final_train"])
    text = loss_summary_text(rows)
    lines = text.splitlines()
    assert lines[0].split()[:3] == ["run", "best_val", "step"] and len(lines) == 3
    assert lines[1].startswith(min(rows, key=lambda r: r["best_val"])["label"])
    # and the pruning curve of a trained model
    model = results["standard"].load_model()
    x = torch.randint(0, model.config.vocab_size, (2, model.config.block_size), generator=gen(0))
    curve = pruning_curve(model, [(x, x)])
    assert len(curve) == model.config.n_layer + 1
