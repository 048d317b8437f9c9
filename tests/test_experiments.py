"""dropoutlib.experiments: profiles, the registry, and the first named experiments."""

from __future__ import annotations

import dataclasses

import pytest
import torch

import dropoutlib.experiments as E
import dropoutlib.model
from dropoutlib.model import GPTConfig
from dropoutlib.train import TrainConfig

pytestmark = pytest.mark.usefixtures("isolated_run_cache")


def test_resolve_profile(monkeypatch):
    for name in ("smoke", "cpu", "gpu"):
        assert E.resolve_profile(name) == name
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert E.resolve_profile("auto") == "cpu"
    assert E.resolve_profile() == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert E.resolve_profile("auto") == "gpu"
    # The environment overrides "auto" only, never an explicit profile.
    monkeypatch.setenv("DROPOUTLIB_PROFILE", "smoke")
    assert E.resolve_profile("auto") == "smoke"
    assert E.resolve_profile("cpu") == "cpu"
    monkeypatch.setenv("DROPOUTLIB_PROFILE", "auto")
    assert E.resolve_profile("auto") == "gpu"
    monkeypatch.setenv("DROPOUTLIB_PROFILE", "fast")
    with pytest.raises(ValueError, match="DROPOUTLIB_PROFILE must be one of .* got 'fast'"):
        E.resolve_profile("auto")
    with pytest.raises(ValueError, match="profile must be one of .* got 'laptop'"):
        E.resolve_profile("laptop")


def test_registry_and_decorator():
    assert {"v10-songci-dropout", "gpt-shakespeare-dropout"} <= set(E.EXPERIMENTS)
    with pytest.raises(ValueError, match="unknown experiment 'nope'"):
        E.specs("nope", "smoke")
    with pytest.raises(ValueError, match="already registered"):
        E.experiment("v10-songci-dropout")(lambda profile: {})

    @E.experiment("test-only-experiment")
    def _mine(profile):
        return {"only": E.RunSpec(GPTConfig.v10(65), TrainConfig(max_iters=1), "shakespeare")}

    try:
        assert E.specs("test-only-experiment", "smoke")["only"].corpus == "shakespeare"
    finally:
        del E.EXPERIMENTS["test-only-experiment"]


@pytest.mark.parametrize("name", ["v10-songci-dropout", "gpt-shakespeare-dropout"])
@pytest.mark.parametrize("profile", ["smoke", "cpu", "gpu"])
def test_runs_differ_only_in_dropout(name, profile):
    specs = E.specs(name, profile)
    assert list(specs) == ["dropout 0.2", "dropout 0.0"]
    a, b = specs["dropout 0.2"], specs["dropout 0.0"]
    assert (a.model.dropout, b.model.dropout) == (0.2, 0.0)
    assert dataclasses.replace(a.model, dropout=0.0) == b.model
    assert a.train == b.train and a.corpus == b.corpus and a.note == b.note and a.note


def test_v10_profiles_are_babygpt_v10():
    vocab = 6045  # Song ci, counted in the data README
    for profile in ("cpu", "gpu"):
        spec = E.specs("v10-songci-dropout", profile)["dropout 0.2"]
        assert spec.model == GPTConfig.v10(vocab)
        assert spec.train == TrainConfig.v10()
        assert spec.corpus == "song_ci"
    smoke = E.specs("v10-songci-dropout", "smoke")["dropout 0.2"]
    assert smoke.model == GPTConfig.v10(vocab) and smoke.train.max_iters < 100


def test_gpt_shakespeare_scales():
    gpu = E.specs("gpt-shakespeare-dropout", "gpu")["dropout 0.2"]
    assert gpu.model == GPTConfig.v11(65, init="gpt2", attention="fused")
    assert gpu.train == TrainConfig.gpt()
    for profile in ("cpu", "smoke"):
        spec = E.specs("gpt-shakespeare-dropout", profile)["dropout 0.2"]
        assert spec.model.n_embd < 384 and spec.train.max_iters < 5000
        assert "scaled down" in spec.note or "smoke" in spec.note


def test_run_smoke_trains_then_comes_from_the_cache(monkeypatch):
    results = E.run("gpt-shakespeare-dropout", "smoke", progress=False)
    spec = E.specs("gpt-shakespeare-dropout", "smoke")
    assert list(results) == list(spec)
    for label, r in results.items():
        assert r.steps[-1] == spec[label].train.max_iters
        assert r.model_config == dataclasses.asdict(spec[label].model)
        assert r.note == spec[label].note
    # Different dropout, same seed and batches: different trained models.
    assert results["dropout 0.2"].final != results["dropout 0.0"].final

    def no_training(*args, **kwargs):
        raise AssertionError("cached experiment runs must not build a model")

    monkeypatch.setattr(dropoutlib.model.BabyGPT, "__init__", no_training)
    again = E.run("gpt-shakespeare-dropout", "smoke", progress=False)
    assert again == results


def test_data_constrained_setting_is_shared_and_overridable():
    a = E.data_constrained("cpu")
    assert a.corpus == "shakespeare" and a.model.dropout == 0.0 and a.train.train_tokens == 10_000
    assert a.train.max_iters * a.train.batch_size * a.model.block_size / 10_000 > 25  # many epochs
    assert E.data_constrained("cpu") == a  # equal specs: equal run keys, one cached run
    b = E.data_constrained("cpu", model={"dropout": 0.2, "n_embd": 96}, train_tokens=50_000)
    assert b.model.dropout == 0.2 and b.model.n_embd == 96 and b.train.train_tokens == 50_000
    assert b.model.block_size == a.model.block_size and b.train.seed == a.train.seed
    assert E.data_constrained("gpu").model.n_embd == 384
    assert E.data_constrained("smoke").train.max_iters <= 50
    with pytest.raises(ValueError, match="profile must be one of"):
        E.data_constrained("laptop")


@pytest.fixture
def family_experiment():
    """Two independent smoke runs and a fine-tuning run that starts from the first."""
    name = "test-family"

    @E.experiment(name)
    def _family(profile):
        base = E.data_constrained(profile)
        child = E.data_constrained(profile, model={"dropout": 0.1}, max_iters=10)
        return {
            "parent": base,
            "other": E.data_constrained(profile, model={"dropout": 0.2}),
            "child": dataclasses.replace(child, parent="parent"),
        }

    yield name
    del E.EXPERIMENTS[name]


@pytest.mark.slow
def test_parallel_runs_equal_sequential_runs(family_experiment, tmp_path, monkeypatch):
    monkeypatch.delenv("DROPOUTLIB_PROFILE", raising=False)
    results = {}
    for jobs in (2, 1):
        monkeypatch.setenv("DROPOUTLIB_CACHE", str(tmp_path / f"jobs{jobs}"))
        results[jobs] = E.run(family_experiment, "smoke", jobs=jobs, progress=False)
    par, seq = results[2], results[1]
    assert list(par) == list(seq) == ["parent", "other", "child"]
    for label in par:
        # one thread each in both cases, the same ops in the same order: bit for bit
        assert par[label].history == seq[label].history, label
        assert par[label].weights_sha256 == seq[label].weights_sha256, label
        assert par[label].num_threads == seq[label].num_threads == 1
    assert par["child"].train_config["init_from"] == par["parent"].key
    assert seq["child"].train_config["init_from"] == seq["parent"].key
    # the child starts from its parent's final model
    assert seq["child"].history[0]["val_loss"] == seq["parent"].final["val_loss"]

    # The workers outlive the call: a second call reuses them, in the environment of the call
    # (a run cache they did not start with), with the same numbers.
    pool = E.workers._POOL
    assert pool is not None and pool[2] == 2
    processes = list(pool[0]._processes.values())
    monkeypatch.setenv("DROPOUTLIB_CACHE", str(tmp_path / "again"))
    again = E.run(family_experiment, "smoke", jobs=2, progress=False)
    assert E.workers._POOL is pool and list(pool[0]._processes.values()) == processes
    assert {label: r.weights_sha256 for label, r in again.items()} == {
        label: r.weights_sha256 for label, r in seq.items()
    }
    assert (tmp_path / "again" / again["child"].key / "result.json").is_file()
    E.workers.shutdown()
    assert E.workers._POOL is None and not any(p.is_alive() for p in processes)


def test_runs_start_longest_first():
    base = E.data_constrained("cpu")
    longer = dataclasses.replace(base, train=dataclasses.replace(base.train, max_iters=1200))
    wider = dataclasses.replace(base, model=dataclasses.replace(base.model, n_embd=128))
    r_drop = dataclasses.replace(base, train=dataclasses.replace(base.train, r_drop_alpha=1.0))
    cost = E.workers.cost
    assert cost(longer) > cost(base) and cost(wider) > cost(base)
    assert 1.5 < cost(r_drop) / cost(base) < 2  # two training passes, the same evaluations
    # fine-tuning's R-Drop child is the longest of chapter 07's runs, and starts first
    runs = E.specs("fine-tuning-su-shi", "cpu")
    children = {label: spec for label, spec in runs.items() if spec.parent}
    assert max(children, key=lambda label: cost(children[label])).startswith("R-Drop")


def test_parents_must_exist_and_not_form_cycles():
    spec = E.data_constrained("smoke")
    assert E.core._waves({"a": spec, "b": dataclasses.replace(spec, parent="a")}) == [["a"], ["b"]]
    with pytest.raises(ValueError, match="form a cycle"):
        E.core._waves(
            {"a": dataclasses.replace(spec, parent="b"), "b": dataclasses.replace(spec, parent="a")}
        )
    E.experiment("test-orphan")(lambda profile: {"x": dataclasses.replace(spec, parent="y")})
    try:
        with pytest.raises(ValueError, match="names parent 'y', not a run"):
            E.specs("test-orphan", "smoke")
    finally:
        del E.EXPERIMENTS["test-orphan"]
