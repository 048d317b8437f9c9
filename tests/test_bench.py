"""The benchmark machinery at tiny sizes: it runs, its JSON has the documented schema, and every
derived figure (GB/s, fractions, ratios, goals) is computed from the measured medians.
No assertion here is about speed."""

import datetime
import json
import math
import statistics

import pytest
import torch
from torch import nn

from dropoutlib import bench
from dropoutlib.__main__ import main as cli_main

VARIANTS = {
    "nn.Dropout (native)",
    "dropoutlib.Dropout",
    "SeededDropout",
    "dropout (generator)",
    "spatial_dropout",
    "locked_dropout",
    "drop_path",
    "drop_head",
    "gaussian_dropout",
    "alpha_dropout",
    "ConcreteDropout",
    "LearnedDropout",
}


@pytest.fixture(scope="module")
def results():
    return bench.run(quick=True, device="cpu")


def close(a, b):
    return math.isclose(a, b, rel_tol=1e-12, abs_tol=0.0)


def test_time_side_by_side_counts_calls_and_takes_medians():
    calls = {"a": 0, "b": 0}

    def make(name):
        def fn():
            calls[name] += 1

        return fn

    res = bench.time_side_by_side(
        {"a": make("a"), "b": make("b")}, rounds=5, warmup=2, min_time=0.0
    )
    for name in ("a", "b"):
        r = res[name]
        assert r["number"] == 1 and len(r["times_s"]) == 5
        assert calls[name] == 2 + 1 + 5  # warm-up, calibration, timed rounds
        assert r["median_s"] == statistics.median(r["times_s"])
    assert bench.ratio(res, "a", "b") == res["a"]["median_s"] / res["b"]["median_s"]


def test_saved_bytes_counts_what_autograd_keeps():
    x = torch.randn(10, 10)
    assert bench.saved_bytes(lambda t: t * t, x) == {
        "bytes_per_element": 0.0,
        "saves_input": True,
        "tensors": 0,
    }
    # exp saves its float32 output: 4 bytes per element
    assert bench.saved_bytes(lambda t: t.exp(), x)["bytes_per_element"] == 4.0
    lin = nn.Linear(10, 10)  # saves its input and weight; the weight is a parameter
    got = bench.saved_bytes(lin, x, list(lin.parameters()))
    assert got["bytes_per_element"] == 0.0 and got["saves_input"]


def test_environment_and_settings(results):
    env = results["env"]
    assert results["schema"] == bench.SCHEMA_VERSION
    assert env["device"] == "cpu" and env["quick"] is True
    assert env["torch_version"] == torch.__version__
    assert isinstance(env["threads"], int) and env["threads"] >= 1
    datetime.datetime.fromisoformat(env["date"])
    assert results["settings"]["p"] == bench.P


def test_throughput_figures_come_from_the_medians(results):
    assert [s["shape"] for s in results["throughput"]] == [list(s) for s in bench.QUICK_SIZES]
    for size in results["throughput"]:
        rows = {r["name"]: r for r in size["rows"]}
        assert set(rows) == VARIANTS | {"copy (reference)"}
        assert size["bytes_moved"] == 4 * size["numel"] * 4  # float32
        t_copy = rows["copy (reference)"]["median_s"]
        t_native = rows["nn.Dropout (native)"]["median_s"]
        for r in rows.values():
            assert r["median_s"] > 0 and r["median_s"] == statistics.median(r["times_s"])
            assert close(r["gb_per_s"], size["bytes_moved"] / r["median_s"] / 1e9)
            assert close(r["fraction_of_copy"], t_copy / r["median_s"])
            assert close(r["ratio_to_native"], r["median_s"] / t_native)


def test_memory_table(results):
    rows = {r["name"]: r for r in results["memory"]["rows"]}
    assert set(rows) == VARIANTS
    assert rows["SeededDropout"]["bytes_per_element"] == 0.0
    assert rows["nn.Dropout (native)"]["bytes_per_element"] >= 1.0
    # per-channel and per-sample masks are smaller than the activation
    for name in ("spatial_dropout", "locked_dropout", "drop_path", "drop_head"):
        assert rows[name]["bytes_per_element"] < rows["nn.Dropout (native)"]["bytes_per_element"]


def test_p0_call_rows(results):
    rows = {r["name"]: r for r in results["p0_call"]["rows"]}
    t_id = rows["nn.Identity"]["median_s"]
    for r in rows.values():
        assert r["returns_input"] is True  # p = 0 is the identity, no copy
        assert close(r["ratio_to_identity"], r["median_s"] / t_id)


def test_training_step_ratios_come_from_the_medians(results):
    assert [s["setting"] for s in results["steps"]] == ["v10", "block256"]
    for setting in results["steps"]:
        med = {r["name"]: r["median_s"] for r in setting["rows"]}
        for r in setting["rows"]:
            assert close(r["tokens_per_s"], setting["tokens_per_step"] / r["median_s"])
            assert r["num_params"] > 0
        r = setting["ratios"]
        assert close(
            r["heads / fused (dropout 0.2)"], med["heads, dropout 0.2"] / med["fused, dropout 0.2"]
        )
        assert close(
            r["dropout 0.2 / 0 (fused)"], med["fused, dropout 0.2"] / med["fused, dropout 0"]
        )
        assert close(
            r["heads / fused (dropout 0)"], med["heads, dropout 0"] / med["fused, dropout 0"]
        )
        assert close(
            r["LearnedDropout / standard (fused)"],
            med["fused, LearnedDropout FFN"] / med["fused, dropout 0.2"],
        )
        params = {row["name"]: row["num_params"] for row in setting["rows"]}
        # equal width: LearnedDropout adds only its own Q/K/V and shift parameters
        assert params["fused, dropout 0.2"] == params["heads, dropout 0.2"]
        assert params["fused, LearnedDropout FFN"] > params["fused, dropout 0.2"]


def test_goals_restate_the_measured_values(results):
    goals = results["goals"]
    keys = {g["goal"] for g in goals}
    assert {"dropout_vs_native", "seeded_vs_native", "seeded_bytes", "native_bytes"} <= keys
    assert {"p0_vs_none", "heads_vs_fused_256", "learned_vs_standard"} <= keys
    for g in goals:
        _, kind, bound = bench.GOALS[g["goal"]]
        assert g["met"] == (g["value"] <= bound if kind == "max" else g["value"] >= bound)
    seeded = [g for g in goals if g["goal"] == "seeded_bytes"]
    assert seeded[0]["value"] == 0.0 and seeded[0]["met"]


def test_gpu_run_code_path_runs_tiny_on_cpu(results):
    g = results["gpu_run"]
    assert g["iters"] == 3 and math.isfinite(g["val_loss"]) and math.isfinite(g["train_loss"])
    assert g["wall_time_s"] > 0
    # the full-size part is skipped with a note on a CPU
    assert "skipped" in bench.bench_gpu_run(device=torch.device("cpu"))


def test_json_and_markdown(results, tmp_path):
    path = bench.write(results, tmp_path / "b.json")
    assert json.loads(path.read_text()) == json.loads(json.dumps(results))
    md = bench.markdown(results)
    for name in VARIANTS:
        assert f"| {name} |" in md
    assert "| goal | where | measured | bound | met |" in md


def test_strip_dropout_replaces_modules_and_refuses_nonzero_rates():
    from dropoutlib.model import BabyGPT, GPTConfig

    model = BabyGPT(GPTConfig.v10(65, dropout=0.0))
    stripped = bench._strip_dropout(model)
    assert not any(isinstance(m, nn.Dropout) for m in stripped.modules())
    idx = torch.randint(65, (2, 8), generator=torch.Generator().manual_seed(0))
    # exact: nn.Identity and a p = 0 dropout both return their input, the rest is the same
    assert torch.equal(stripped.eval()(idx)[0], model.eval()(idx)[0])
    with pytest.raises(ValueError, match="p=0.2"):
        bench._strip_dropout(BabyGPT(GPTConfig.v10(65)))


def test_cli_writes_json_and_prints_tables(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert cli_main(["bench", "--quick", "--parts", "memory", "--output", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert "memory" in doc and "throughput" not in doc
    assert doc["env"]["command"].startswith("python -m dropoutlib bench")
    assert "| SeededDropout | 0.000 |" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="unknown part"):
        cli_main(["bench", "--quick", "--parts", "speed"])


def test_plot_bench_draws_every_part_in_every_language(results):
    import matplotlib.pyplot as plt

    from dropoutlib import viz

    for lang in viz.LANGS:
        fig = viz.plot_bench(results, lang)
        axes = fig.get_axes()
        assert len(axes) == 3
        assert axes[1].get_title() == viz.label("bench_memory", fig_lang := viz.figure_lang(lang))
        shown = [t.get_text() for t in axes[0].get_yticklabels()]
        assert "SeededDropout" in shown and "copy (reference)" not in shown
        assert results["env"]["device_name"] in fig.get_suptitle()
        assert fig_lang in viz.LANGS
        plt.close(fig)
    only_memory = {"env": results["env"], "memory": results["memory"]}
    fig = viz.plot_bench(only_memory)
    assert len(fig.get_axes()) == 1
    plt.close(fig)
    with pytest.raises(ValueError, match="nothing to plot"):
        viz.plot_bench({"env": results["env"]})
