"""The Learned Dropout reproduction: experiment specs, the optimizer's decay rule, the results
table and its figure, and one smoke-scale run end to end."""

import dataclasses
import math

import matplotlib
import pytest
import torch

matplotlib.use("Agg")

from dropoutlib import experiments, reports, viz  # noqa: E402
from dropoutlib.learned import LearnedDropout  # noqa: E402
from dropoutlib.model import BabyGPT, GPTConfig  # noqa: E402
from dropoutlib.train import RunResult, TrainConfig, optimizer_param_groups, run_key  # noqa: E402

NAME = "learned-dropout-shakespeare"
LABELS = [
    "LearnedDropout shift 0",
    "LearnedDropout shift 0, no penalty",
    "LearnedDropout shift pi/2",
    "LearnedDropout shift pi",
    "baseline dropout 0",
    "baseline dropout 0.2",
    "baseline dropout 0.3",
    "baseline dropout 0.4",
]


# --- the experiment ------------------------------------------------------------------------------


@pytest.mark.parametrize("profile", experiments.PROFILES)
def test_runs_and_configs(profile):
    specs = experiments.specs(NAME, profile)
    assert list(specs) == LABELS
    shifts = {"0": 0.0, "pi/2": math.pi / 2, "pi": math.pi}
    for label, spec in specs.items():
        mc, tc = spec.model, spec.train
        assert spec.corpus == "shakespeare"
        assert (tc.weight_decay, tc.weight_decay_rule, tc.seed) == (0.1, "nanogpt", 1337)
        assert mc.attention == "fused" and mc.init == "gpt2" and mc.bias is False
        if label.startswith("LearnedDropout"):
            assert mc.ffn_kind == "learned" and mc.ffn_dropout is None
            # every other site off, as in the published LearnedDropout runs
            assert mc.dropout == 0.0 and mc.embd_dropout == 0.0
            shift = label.removeprefix("LearnedDropout shift ").split(",")[0]
            assert mc.learned_dropout == {"shift_init": shifts[shift]}
            assert tc.penalty == (None if label.endswith("no penalty") else "squared")
            assert tc.penalty_coeff == 0.1 and tc.penalty_schedule is None
        else:
            p = float(label.removeprefix("baseline dropout "))
            assert mc.ffn_kind == "standard" and mc.learned_dropout == {}
            assert mc.dropout == p and mc.embd_dropout == p  # all four published sites
            for site in ("attn", "resid", "ffn"):
                assert mc.rates(site) == [p] * mc.n_layer
    # one model size and one training setup for every run but the knob being studied
    learned, base = specs["LearnedDropout shift 0"], specs["baseline dropout 0.2"]
    assert specs["LearnedDropout shift pi"].train == learned.train == base.train
    assert specs["LearnedDropout shift 0, no penalty"].model == learned.model
    same = ("n_layer", "n_head", "block_size", "vocab_size")
    assert all(getattr(learned.model, k) == getattr(base.model, k) for k in same)


def test_seed_experiment_shares_the_tables_runs():
    table = experiments.specs(NAME, "cpu")
    seeds = experiments.specs(NAME + "-seeds", "cpu")
    assert list(seeds) == [
        f"{label}, seed {seed}"
        for label in ("LearnedDropout shift 0", "baseline dropout 0")
        for seed in (1337, 1, 2)
    ]
    assert seeds["LearnedDropout shift 0, seed 1337"] == table["LearnedDropout shift 0"]
    other = seeds["baseline dropout 0, seed 2"]
    assert other.train == dataclasses.replace(table["baseline dropout 0"].train, seed=2)
    assert other.model == table["baseline dropout 0"].model


def test_profile_scales():
    cpu = experiments.specs(NAME, "cpu")["LearnedDropout shift 0"]
    gpu = experiments.specs(NAME, "gpu")["LearnedDropout shift 0"]
    smoke = experiments.specs(NAME, "smoke")["LearnedDropout shift 0"]
    # gpu: babyGPT v11's size (Karpathy's gpt.py), several thousand steps
    v11 = GPTConfig.v11(65)
    assert (gpu.model.n_embd, gpu.model.n_head, gpu.model.n_layer, gpu.model.block_size) == (
        v11.n_embd,
        v11.n_head,
        v11.n_layer,
        v11.block_size,
    )
    assert gpu.train.max_iters >= 5000 and gpu.train.batch_size == 64
    assert smoke.model.n_embd < cpu.model.n_embd < gpu.model.n_embd
    assert smoke.train.max_iters < cpu.train.max_iters < gpu.train.max_iters


@pytest.mark.parametrize("profile", experiments.PROFILES)
def test_baselines_are_widened_to_the_learned_models_size(profile):
    specs = experiments.specs(NAME, profile)
    learned = specs["LearnedDropout shift 0"].model
    base = specs["baseline dropout 0"].model
    n_learned = experiments.count_params(learned)
    n_base = experiments.count_params(base)
    assert base.n_embd % base.n_head == 0
    assert n_base >= n_learned
    # the smallest such width: one step narrower is smaller than the LearnedDropout model
    narrower = dataclasses.replace(base, n_embd=base.n_embd - base.n_head)
    assert experiments.count_params(narrower) < n_learned


def test_count_params_is_exact_and_draws_no_random_numbers():
    config = GPTConfig(vocab_size=65, block_size=16, n_embd=32, n_head=4, n_layer=2)
    config = dataclasses.replace(config, dropout=0.0, ffn_kind="learned")
    state = torch.get_rng_state()
    n = experiments.count_params(config)
    assert torch.equal(torch.get_rng_state(), state)
    assert n == BabyGPT(config).num_params()


# --- the optimizer's weight-decay rule -----------------------------------------------------------


def _learned_model():
    config = GPTConfig(vocab_size=65, block_size=16, n_embd=32, n_head=4, n_layer=2)
    return BabyGPT(dataclasses.replace(config, dropout=0.0, ffn_kind="learned"))


def test_param_groups_nanogpt_rule():
    model = _learned_model()
    groups = optimizer_param_groups(model, 0.1, "nanogpt")
    assert [g["weight_decay"] for g in groups] == [0.1, 0.0]
    decay, no_decay = ({id(p) for p in g["params"]} for g in groups)
    params = dict(model.named_parameters())
    assert decay | no_decay == {id(p) for p in params.values()} and not decay & no_decay
    for name, p in params.items():
        assert (id(p) in decay) == (p.dim() >= 2), name
    shifts = [m.shift for m in model.modules() if isinstance(m, LearnedDropout)]
    layer_norms = [p for n, p in params.items() if ".ln" in n or n.startswith("ln_final")]
    biases = [p for n, p in params.items() if n.endswith(".bias")]
    assert shifts and layer_norms and biases
    for p in shifts + layer_norms + biases:
        assert id(p) in no_decay
    assert id(model.token_embedding_table.weight) in decay


def test_param_groups_all_rule_is_plain_adamw():
    model = _learned_model()
    groups = optimizer_param_groups(model, 0.01, "all")
    assert len(groups) == 1 and groups[0]["weight_decay"] == 0.01
    assert [id(p) for p in groups[0]["params"]] == [id(p) for p in model.parameters()]


def test_decay_rule_config_and_cache_key():
    with pytest.raises(ValueError, match="weight_decay_rule"):
        TrainConfig(weight_decay_rule="some")
    with pytest.raises(ValueError, match="rule"):
        optimizer_param_groups(_learned_model(), 0.1, "most")
    config = GPTConfig.v10(65)
    # the default rule leaves existing run keys as they were; the other rule is another run
    plain = TrainConfig(max_iters=5)
    key = run_key(config, plain, "shakespeare")
    legacy = {k: v for k, v in plain.to_dict().items() if k != "weight_decay_rule"}
    assert key == run_key(config, TrainConfig.from_dict(legacy), "shakespeare")
    assert key != run_key(
        config, dataclasses.replace(plain, weight_decay_rule="nanogpt"), "shakespeare"
    )


# --- the table -----------------------------------------------------------------------------------


def _fake(label, *, learned, val, train=1.5, ones=None, penalty="squared", shift=0.0, p=0.0):
    """A RunResult as the trainer writes it, with made-up losses and mask statistics."""
    mc = GPTConfig(vocab_size=65, block_size=16, n_embd=32, n_head=4, n_layer=2, dropout=p)
    if learned:
        mc = dataclasses.replace(
            mc, dropout=0.0, ffn_kind="learned", learned_dropout={"shift_init": shift}
        )
    tc = TrainConfig(max_iters=20, penalty=penalty)
    history = [{"step": 0, "train_loss": 4.2, "val_loss": 4.2}]
    for step, frac in ((10, 0.9), (20, ones)):
        entry = {"step": step, "train_loss": train + 0.1, "val_loss": val + 0.1}
        if learned:
            entry["mask_stats"] = {"ones": frac, "near_zero": 0.05, "near_one": frac - 0.05}
        history.append(entry)
    history[-1].update(train_loss=train, val_loss=val)
    return RunResult(
        key=label,
        corpus="shakespeare",
        corpus_sha256="0" * 64,
        model_config=dataclasses.asdict(mc),
        train_config=tc.to_dict(),
        history=history,
        num_params=1000 if learned else 1100,
        tokens_per_sec=1.0,
        wall_time_s=2.0,
        device="cpu",
        world_size=1,
        amp_dtype=None,
        torch_version=torch.__version__,
        dropoutlib_version="0",
        date="2026-01-01",
    )


def _fake_results(**vals):
    v = dict(main=1.50, no_pen=1.52, half=1.55, full=1.60, b0=1.53, b2=1.49, b3=1.54, b4=1.58)
    v.update(vals)
    return {
        "LearnedDropout shift 0": _fake("a", learned=True, val=v["main"], ones=0.62),
        "LearnedDropout shift 0, no penalty": _fake(
            "b", learned=True, val=v["no_pen"], ones=0.96, penalty=None
        ),
        "LearnedDropout shift pi/2": _fake(
            "c", learned=True, val=v["half"], ones=0.6, shift=math.pi / 2
        ),
        "LearnedDropout shift pi": _fake(
            "d", learned=True, val=v["full"], ones=0.25, shift=math.pi
        ),
        "baseline dropout 0": _fake("e", learned=False, val=v["b0"]),
        "baseline dropout 0.2": _fake("f", learned=False, val=v["b2"], p=0.2),
        "baseline dropout 0.3": _fake("g", learned=False, val=v["b3"], p=0.3),
        "baseline dropout 0.4": _fake("h", learned=False, val=v["b4"], p=0.4),
    }


def test_table_rows():
    results = _fake_results()
    rows = reports.learned_dropout_table(results)
    assert [r["label"] for r in rows] == LABELS
    main, no_pen, half, full, b0, b2 = rows[:6]
    assert (main["kind"], main["penalty"], main["shift_init"]) == ("learned", "squared", 0.0)
    assert no_pen["penalty"] is None and half["shift_init"] == pytest.approx(math.pi / 2)
    assert (main["val_loss"], main["train_loss"], main["step"], main["ones"]) == (
        1.5,
        1.5,
        20,
        0.62,
    )
    assert full["ones"] == 0.25 and main["params"] == 1000
    assert (b2["kind"], b2["dropout"], b2["ones"], b2["penalty"]) == ("baseline", 0.2, None, None)
    assert b0["params"] == 1100
    # the CLI's JSON (runs as dicts with a note) gives the same rows
    doc = {"runs": {k: {"note": "n", **r.to_dict()} for k, r in results.items()}}
    assert reports.learned_dropout_table(doc) == rows


def test_markdown():
    rows = reports.learned_dropout_table(_fake_results())
    md = reports.learned_dropout_markdown(rows)
    lines = md.strip().splitlines()
    assert len(lines) == 2 + len(LABELS)
    assert lines[2].startswith(
        "| LearnedDropout, shift 0, penalty | 1.500 | 1.500 | 0.6200 | 1,000 |"
    )
    assert "| baseline, dropout 0.2 | 1.500 | **1.490** | — | 1,100 |" in md  # best val in bold
    assert md.count("**") == 2 and md.count("—") == 4
    assert "shift π/2" in md and "shift π," in md and "no penalty" in md
    for lang in ("ru", "zh"):
        other = reports.learned_dropout_markdown(rows, lang)
        assert other.count("\n") == md.count("\n") and other != md
    with pytest.raises(ValueError, match="lang"):
        reports.learned_dropout_markdown(rows, "de")
    with pytest.raises(ValueError, match="rows"):
        reports.learned_dropout_markdown([])


def test_findings():
    rows = reports.learned_dropout_table(_fake_results())
    assert reports.learned_dropout_findings(rows) == {
        "penalty_helps": True,
        "shift0_best": True,
        "beats_no_dropout": True,
        "below_dropout_02": True,
    }
    rows = reports.learned_dropout_table(_fake_results(main=1.56, b2=1.60))
    assert reports.learned_dropout_findings(rows) == {
        "penalty_helps": False,  # 1.56 > 1.52
        "shift0_best": False,  # 1.56 > 1.55 (pi/2)
        "beats_no_dropout": False,  # 1.56 > 1.53
        "below_dropout_02": False,  # 1.60 > 1.56
    }
    partial = [r for r in rows if r["kind"] == "learned"]
    assert reports.learned_dropout_findings(partial)["beats_no_dropout"] is None


def test_published_table_has_the_experiments_labels():
    assert list(reports.PUBLISHED) == LABELS
    rows = reports.published_rows()
    assert [r["label"] for r in rows] == LABELS
    assert rows[5]["val_loss"] == 3.354 and rows[5]["dropout"] == 0.2
    assert rows[3]["shift_init"] == pytest.approx(math.pi) and rows[1]["penalty"] is None
    # the README's own findings, as the function reads them
    assert reports.learned_dropout_findings(rows) == {
        "penalty_helps": True,
        "shift0_best": True,
        "beats_no_dropout": True,
        "below_dropout_02": True,
    }


def test_report_page(tmp_path):
    results = _fake_results(main=1.56, b2=1.60)
    doc = {
        "experiment": NAME,
        "profile": "smoke",
        "command": "python -m dropoutlib experiment x",
        "runs": {k: {"note": "", **r.to_dict()} for k, r in results.items()},
    }
    page = reports.learned_dropout_report(doc)
    assert page.count("| LearnedDropout, shift π, penalty |") == 2  # measured and published
    assert "| 3.354 |" not in page and "**3.354**" in page
    assert "| (a) the penalty lowers the val loss" in page
    assert page.count("| holds | does not hold |") == 4  # README holds, fake results do not
    path = tmp_path / "doc.json"
    path.write_text(__import__("json").dumps(doc))
    out = tmp_path / "page.md"
    assert reports._main([str(path), "--output", str(out)]) == 0
    assert out.read_text() == page


def test_seed_spread():
    vals = {1337: 1.50, 1: 1.53, 2: 1.56}
    results = {
        f"LearnedDropout shift 0, seed {k}": _fake(str(k), learned=True, val=v, ones=0.5)
        for k, v in vals.items()
    }
    results["baseline dropout 0, seed 7"] = _fake("b", learned=False, val=1.6)
    (ld, base) = reports.seed_spread(results)
    assert ld["label"] == "LearnedDropout shift 0" and ld["seeds"] == [1337, 1, 2]
    assert ld["mean"] == pytest.approx(1.53)
    assert ld["std"] == pytest.approx(0.03)  # sqrt((0.03^2 + 0 + 0.03^2) / 2)
    assert ld["range"] == pytest.approx(0.06)
    assert base["std"] is None and base["range"] == 0.0
    with pytest.raises(ValueError, match="seed <n>"):
        reports.seed_spread({"LearnedDropout shift 0": results["baseline dropout 0, seed 7"]})
    doc = {"runs": {k: r.to_dict() for k, r in _fake_results().items()}}
    page = reports.learned_dropout_report(doc, {"command": "c", "runs": results})
    row = "| LearnedDropout shift 0 | 1337, 1, 2 | 1.5000, 1.5300, 1.5600 | 1.5300 | 0.0300 |"
    assert row in page


def test_mask_history_and_bad_input():
    results = _fake_results()
    assert reports.mask_history(results["LearnedDropout shift pi"]) == ([10, 20], [0.9, 0.25])
    assert reports.mask_history(results["baseline dropout 0"]) == ([], [])
    with pytest.raises(ValueError, match="non-empty"):
        reports.learned_dropout_table({})
    with pytest.raises(ValueError, match="RunResult"):
        reports.learned_dropout_table({"x": 3})


def test_plot_mask_stats():
    results = _fake_results()
    fig = viz.plot_mask_stats(results)
    ax, ax_m = fig.axes[:2]
    assert len(ax.get_lines()) == 4 and len(ax_m.get_lines()) == 8  # baselines skipped
    assert list(ax.get_lines()[3].get_ydata()) == [0.9, 0.25]
    assert fig.legends[0].get_texts()[1].get_text() == "LearnedDropout, shift 0, no penalty"
    fig_ru = viz.plot_mask_stats(results, lang="ru")
    assert fig_ru.axes[0].get_ylabel() == viz.LABELS["ru"]["mask_ones"]
    with pytest.raises(ValueError, match="LearnedDropout"):
        viz.plot_mask_stats({"b": results["baseline dropout 0"]})
    with pytest.raises(ValueError, match="lang"):
        viz.plot_mask_stats(results, lang="fr")
    matplotlib.pyplot.close("all")


# --- end to end at smoke scale -------------------------------------------------------------------


def test_smoke_runs_end_to_end(tmp_path, monkeypatch):
    monkeypatch.setenv("DROPOUTLIB_CACHE", str(tmp_path))
    specs = experiments.specs(NAME, "smoke")
    from dropoutlib.train import train

    results = {}
    for label in ("LearnedDropout shift pi", "baseline dropout 0.2"):
        spec = specs[label]
        results[label] = train(spec.model, spec.train, spec.corpus, progress=False)
    learned = results["LearnedDropout shift pi"]
    steps, ones = reports.mask_history(learned)
    assert steps == [10, 20, 30]
    # shift pi starts by dropping almost everything: M ~ 0.5 cos(pi) + 0.5 ~ 0
    assert all(0.0 <= v <= 1.0 for v in ones) and ones[0] < 0.2
    rows = reports.learned_dropout_table(results)
    assert rows[0]["ones"] == ones[-1] and rows[1]["ones"] is None
    assert all(math.isfinite(r["val_loss"]) for r in rows)
    assert rows[1]["params"] >= rows[0]["params"]
    # a second call is served from the run cache: same run, nothing trained
    spec = specs["LearnedDropout shift pi"]
    again = train(spec.model, spec.train, spec.corpus, progress=False)
    assert again.to_dict() == learned.to_dict() and getattr(again, "_model", None) is None
