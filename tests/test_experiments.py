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
