"""Chapters 08 and 09: their experiments, the per-site benchmark and their figures."""

from __future__ import annotations

import dataclasses
import json
import math
import types
from pathlib import Path

import matplotlib
import pytest
import torch

matplotlib.use("Agg")

from render import render_strictly  # noqa: E402

import dropoutlib.experiments as E  # noqa: E402
from dropoutlib import bench, viz  # noqa: E402
from dropoutlib.experiments.dropout_at_scale import REGULARISERS  # noqa: E402
from dropoutlib.viz import LANGS  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _skip_zh_without_font(lang):
    if lang == "zh" and not viz.has_cjk_font():
        pytest.skip("Noto Sans CJK SC is not installed (Debian package fonts-noto-cjk)")


# --------------------------------------------------------------------------------------------
# Experiments


@pytest.mark.parametrize("profile", ["smoke", "cpu", "gpu"])
def test_learned_dropout_data_constrained_shares_the_setting(profile):
    specs = E.specs("learned-dropout-data-constrained", profile)
    assert list(specs) == ["no dropout", "dropout 0.2", "LearnedDropout"]
    base = E.data_constrained(profile)
    assert specs["no dropout"] == base  # the very run of the shared setting (same cache key)
    assert specs["dropout 0.2"] == E.data_constrained(profile, model={"dropout": 0.2})
    learned = specs["LearnedDropout"]
    assert learned.train == base.train
    assert learned.model.ffn_kind == "learned" and learned.model.dropout == 0.0
    assert dataclasses.replace(learned.model, ffn_kind="standard") == base.model


@pytest.mark.parametrize("profile", ["smoke", "cpu", "gpu"])
def test_regularisers_switch_on_one_field_each(profile):
    specs = E.specs("regularisers-data-constrained", profile)
    assert list(specs) == list(REGULARISERS)
    base = E.data_constrained(profile)
    assert specs["none"] == base
    assert specs["dropout 0.2"] == E.data_constrained(profile, model={"dropout": 0.2})
    for label, (model, train) in REGULARISERS.items():
        spec = specs[label]
        changed_train = {
            f.name
            for f in dataclasses.fields(spec.train)
            if getattr(spec.train, f.name) != getattr(base.train, f.name)
        }
        changed_model = {
            f.name
            for f in dataclasses.fields(spec.model)
            if getattr(spec.model, f.name) != getattr(base.model, f.name)
        }
        assert changed_train == set(train) and changed_model == set(model), label


# --------------------------------------------------------------------------------------------
# The per-site benchmark


def test_site_cases_put_dropout_at_one_site_each():
    cases = bench.site_cases()
    assert list(cases) == [
        "no dropout",
        "embd only",
        "attn only",
        "resid only",
        "ffn only",
        "all four",
    ]
    from dropoutlib.model import GPTConfig

    for name, case in cases.items():
        config = dataclasses.replace(GPTConfig.v10(65), **case)
        rates = {site: config.rates(site)[0] for site in ("attn", "resid", "ffn")}
        rates["embd"] = config.embd_dropout
        on = {site for site, r in rates.items() if r > 0}
        want = {"no dropout": set(), "all four": set(bench.SITES)}.get(name, {name.split()[0]})
        assert on == want, name


def test_step_saved_bytes_grows_with_the_attention_weights_dropout():
    from dropoutlib.model import BabyGPT, GPTConfig

    idx = torch.randint(65, (2, 17), generator=torch.Generator().manual_seed(0))
    got = {}
    for name, case in bench.site_cases().items():
        torch.manual_seed(0)
        config = dataclasses.replace(GPTConfig.v10(65, block_size=16), **case)
        got[name] = bench.step_saved_bytes(BabyGPT(config), idx[:, :-1], idx[:, 1:])
    # CPU dropout keeps its float32 noise: 4 bytes per dropped-or-kept element
    C, H, T, L = 32, 4, 16, 3
    assert got["resid only"] - got["no dropout"] == pytest.approx(4 * C * L)
    assert got["ffn only"] - got["no dropout"] == pytest.approx(4 * C * L)
    assert got["embd only"] - got["no dropout"] == pytest.approx(4 * C)
    assert got["attn only"] - got["no dropout"] >= 4 * H * T * L  # (T, T) weights per query
    assert got["all four"] > max(v for k, v in got.items() if k != "all four")


def test_bench_sites_quick_has_every_setting_and_attention():
    results = bench.run(quick=True, device="cpu", parts=("sites",))
    sites = results["sites"]
    assert [(s["setting"], s["attention"]) for s in sites] == [
        ("v10", "heads"),
        ("v10", "fused"),
        ("block256", "heads"),
        ("block256", "fused"),
    ]
    for s in sites:
        rows = {r["name"]: r for r in s["rows"]}
        assert list(rows) == list(bench.site_cases())
        none = rows["no dropout"]
        assert none["extra_s"] == 0.0 and none["ratio_to_none"] == 1.0
        for r in rows.values():
            assert math.isclose(r["extra_s"], r["median_s"] - none["median_s"])
            assert math.isclose(
                r["extra_bytes_per_token"],
                r["saved_bytes_per_token"] - none["saved_bytes_per_token"],
            )
    text = bench.markdown(results)
    assert "Dropout 0.2 at one site, v10 (heads attention)" in text
    assert "goals" in results  # no goal needs the sites part


def test_committed_site_results_name_their_device():
    path = ROOT / "results" / "bench-sites-cpu.json"
    if not path.exists():
        pytest.skip("results/bench-sites-cpu.json not committed yet")
    results = json.loads(path.read_text(encoding="utf-8"))
    assert results["env"]["device"] == "cpu" and not results["env"]["quick"]
    assert results["env"]["device_name"] and results["env"]["torch_version"]
    assert len(results["sites"]) == 4


# --------------------------------------------------------------------------------------------
# Figures


def _run(model_config, train_config=None, val=(3.0, 2.5, 2.6), ones=None):
    history = []
    for i, v in enumerate(val):
        h = {"step": 60 * i, "train_loss": v - 0.1 * i, "val_loss": v}
        if ones is not None:
            h["mask_stats"] = {"ones": ones[i], "near_zero": 0.1, "near_one": 0.5}
        history.append(h)
    tc = {
        "max_iters": 600,
        "batch_size": 16,
        "train_tokens": 10_000,
        "weight_decay": 0.01,
        "label_smoothing": 0.0,
        "grad_clip": 0.0,
        "token_mask_rate": 0.0,
        "penalty": "squared",
        **(train_config or {}),
    }
    mc = {"block_size": 32, "dropout": 0.0, "ffn_kind": "standard", **model_config}
    return types.SimpleNamespace(
        history=history, model_config=mc, train_config=tc, num_params=1000, wall_time_s=1.0
    )


@pytest.mark.parametrize("lang", LANGS)
def test_plot_data_constrained(lang):
    _skip_zh_without_font(lang)
    results = {
        "no dropout": _run({}),
        "dropout 0.2": _run({"dropout": 0.2}),
        "LearnedDropout": _run({"ffn_kind": "learned"}, ones=(1.0, 0.8, 0.6)),
    }
    fig = viz.plot_data_constrained(results, lang)
    ax, ax_m = fig.axes
    names = [t.get_text() for t in ax.get_legend().get_texts()]
    assert names == [
        viz.label("run_none", lang),
        viz.label("run_dropout", lang, p=0.2),
        viz.label("run_learned", lang),
    ]
    assert len(ax_m.get_lines()) == 1 and list(ax_m.get_lines()[0].get_ydata()) == [1.0, 0.8, 0.6]
    assert "10" in fig._suptitle.get_text()
    render_strictly(fig)


@pytest.mark.parametrize("lang", LANGS)
def test_plot_regularisers_names_each_run(lang):
    _skip_zh_without_font(lang)
    results = {
        "none": _run({}),
        "dropout 0.2": _run({"dropout": 0.2}, val=(3.0, 2.4, 2.45)),
        "weight decay 0.1": _run({}, {"weight_decay": 0.1}),
        "label smoothing 0.1": _run({}, {"label_smoothing": 0.1}),
        "gradient clipping 1.0": _run({}, {"grad_clip": 1.0}),
        "token masking 0.1": _run({}, {"token_mask_rate": 0.1}),
    }
    fig = viz.plot_regularisers(results, lang)
    ax, ax_b = fig.axes
    names = [t.get_text() for t in ax_b.get_yticklabels()]
    assert names[0] == viz.label("reg:none", lang)
    assert names[1] == viz.label("reg:dropout", lang, value=0.2)
    assert names[2] == viz.label("reg:weight_decay", lang, value=0.1)
    assert names[5] == viz.label("reg:token_mask_rate", lang, value=0.1)
    assert len(ax.get_lines()) == 6
    render_strictly(fig)


def _fake_sites():
    rows = []
    for k, name in enumerate(bench.site_cases()):
        rows.append(
            {
                "name": name,
                "median_s": 0.01 * (1 + k),
                "ratio_to_none": 1.0 + k,
                "extra_s": 0.01 * k,
                "saved_bytes_per_token": 1000.0 + 100 * k,
                "extra_bytes_per_token": 100.0 * k,
            }
        )
    settings = [
        {"setting": s, "attention": a, "config": {"block_size": b}, "batch_size": 2, "rows": rows}
        for s, b in (("v10", 8), ("block256", 256))
        for a in ("heads", "fused")
    ]
    env = {"device_name": "CPU", "torch_version": "2.13.0", "date": "2026-01-01T00:00:00"}
    return {"env": env, "settings": {"p": 0.2}, "sites": settings}


@pytest.mark.parametrize("lang", LANGS)
def test_plot_site_costs(lang):
    _skip_zh_without_font(lang)
    fig = viz.plot_site_costs(_fake_sites(), lang)
    ax_t, ax_m = fig.axes
    assert [t.get_text() for t in ax_t.get_yticklabels()][1] == viz.label("site:attn only", lang)
    assert len(ax_t.patches) == 4 * 5
    render_strictly(fig)
    with pytest.raises(ValueError, match="no 'sites' part"):
        viz.plot_site_costs({"env": {}}, lang)


@pytest.mark.parametrize("lang", LANGS)
def test_plot_rank_masks(lang):
    _skip_zh_without_font(lang)
    g = torch.Generator().manual_seed(0)
    m = torch.rand(1, 8, 32, generator=g) > 0.2
    shared = {"masks": m.repeat(2, 1, 1), "agreement": 1.0, "p": 0.2}
    own = {"masks": torch.rand(2, 8, 32, generator=g) > 0.2, "agreement": 0.68, "p": 0.2}
    fig = viz.plot_rank_masks(shared, own, lang)
    assert len(fig.axes) == 4
    render_strictly(fig)


def test_label_tables_stay_in_step():
    for lang in LANGS:
        assert set(viz.LABELS[lang]) == set(viz.LABELS["en"])


# --------------------------------------------------------------------------------------------
# Committed results, also where the package has no checkout (Colab)


def test_load_results_reads_the_checkout_first(monkeypatch):
    from dropoutlib import reports

    monkeypatch.delenv("DROPOUTLIB_RESULTS", raising=False)
    monkeypatch.setattr("dropoutlib.data._fetch", lambda url: pytest.fail("no download"))
    doc = reports.load_results("bench-cpu.json")
    assert doc == json.loads((ROOT / "results" / "bench-cpu.json").read_text(encoding="utf-8"))


def test_load_results_downloads_once_into_the_cache(monkeypatch, tmp_path):
    from dropoutlib import reports

    monkeypatch.setenv("DROPOUTLIB_DATA", str(tmp_path))
    calls = []

    def fetch(url):
        calls.append(url)
        return b'{"schema": 1}'

    monkeypatch.setattr("dropoutlib.data._fetch", fetch)
    assert reports.load_results("not-in-the-checkout.json") == {"schema": 1}
    assert calls == [reports.RESULTS_URL.format(name="not-in-the-checkout.json")]
    assert (tmp_path / "results" / "not-in-the-checkout.json").is_file()
    assert reports.load_results("not-in-the-checkout.json") == {"schema": 1}
    assert len(calls) == 1


def test_load_results_names_what_failed(monkeypatch, tmp_path):
    from dropoutlib import reports

    monkeypatch.setenv("DROPOUTLIB_DATA", str(tmp_path))

    def offline(url):
        raise OSError("offline")

    monkeypatch.setattr("dropoutlib.data._fetch", offline)
    with pytest.raises(FileNotFoundError, match="could not be downloaded .*offline"):
        reports.load_results("missing.json")
    with pytest.raises(ValueError, match="ending in .json"):
        reports.load_results("../secrets.txt")


def test_split_loss_is_the_mean_over_every_window(isolated_run_cache):
    from dropoutlib import reports
    from dropoutlib.train import train
    from dropoutlib.train.batches import corpus_tensors

    spec = E.data_constrained("smoke")
    result = train(spec.model, spec.train, spec.corpus, progress=False)
    model = result.load_model()
    _, train_data, val_data = corpus_tensors("shakespeare")
    block = model.config.block_size
    for split, data in (("val", val_data), ("train", train_data[: spec.train.train_tokens])):
        n = (len(data) - 1) // block
        x = data[: n * block].view(n, block)
        y = data[1 : n * block + 1].view(n, block)
        with torch.no_grad():
            want = model(x, y)[1].item()  # one batch: the mean over every predicted token
        got = reports.split_loss(result, split, batch_size=97, device="cpu")
        assert got == pytest.approx(want, rel=1e-5), split
    assert reports.split_loss(result) == reports.split_loss(result)  # no sampling
    with pytest.raises(ValueError, match="split must be 'val' or 'train'"):
        reports.split_loss(result, "test")
