"""The experiments of chapters 02 and 03: what each run changes, and which runs they share."""

import dataclasses

import pytest

import dropoutlib.experiments as E
from dropoutlib.experiments import dropout_in_transformers as T
from dropoutlib.experiments import when_dropout_helps as W
from dropoutlib.train import lookup, run_key

PROFILES = ("smoke", "cpu", "gpu")


def key(spec):
    return run_key(spec.model, spec.train, spec.corpus, device_type="cpu", amp_dtype=None)


def differences(a, b):
    """The GPTConfig and TrainConfig fields in which two specs differ."""
    out = set()
    for x, y in ((a.model, b.model), (a.train, b.train)):
        for f in dataclasses.fields(x):
            if getattr(x, f.name) != getattr(y, f.name):
                out.add(f.name)
    return out


@pytest.mark.parametrize("profile", PROFILES)
def test_site_ablation_changes_one_site_at_a_time(profile):
    specs = E.specs("dropout-site-ablation", profile)
    assert list(specs) == list(T.SITES)
    none = specs["none"]
    assert none.model.dropout == 0.0 and none.model.embd_dropout == 0.0
    assert none.model == E.data_constrained(profile).model  # the setting's plain run
    for label, fields in T.SITES.items():
        assert differences(none, specs[label]) == set(fields), label
        built = specs[label].model
        rates = {site: built.rates(site)[0] for site in ("attn", "resid", "ffn")}
        if label == "attention weights":
            assert rates == {"attn": 0.2, "resid": 0.0, "ffn": 0.0}
        if label == "all":
            assert set(rates.values()) == {0.2} and built.embd_dropout == 0.2
    # v10's three sites are the dropout 0.2 run of chapter 03's sweep: one cache entry
    assert key(specs["v10's three"]) == key(E.specs("dropout-rate-sweep", profile)["dropout 0.2"])


@pytest.mark.parametrize("profile", PROFILES)
def test_epochs_fix_the_compute_and_vary_the_text(profile):
    specs = E.specs("dropout-vs-epochs", profile)
    sizes = W.EPOCH_TOKENS[profile]
    assert len(specs) == len(sizes) * len(W.EPOCH_RATES)
    computes = {(s.train.max_iters, s.train.batch_size, s.model.block_size) for s in specs.values()}
    assert len(computes) == 1  # the same steps, batch and context everywhere
    (steps, batch, block) = computes.pop()
    for tokens in sizes:
        for p in W.EPOCH_RATES:
            spec = specs[W.epochs_label(tokens, p)]
            assert spec.train.train_tokens == tokens and spec.model.dropout == p
    if profile != "smoke":
        # the whole corpus is seen about once or less, the smallest text many times
        assert steps * batch * block / 1_003_854 <= 1.05
        assert steps * batch * block / sizes[-1] > 25


@pytest.mark.parametrize("profile", PROFILES)
def test_the_experiments_of_chapter_03_share_runs(profile):
    epochs = E.specs("dropout-vs-epochs", profile)
    sweep = E.specs("dropout-rate-sweep", profile)
    widths = E.specs("dropout-vs-width", profile)
    setting = E.data_constrained(profile)
    few = W.EPOCH_TOKENS[profile][-1]
    for p in W.EPOCH_RATES:
        if profile != "gpu" and f"dropout {p}" in sweep:  # gpu: the epochs' own compute
            assert key(epochs[W.epochs_label(few, p)]) == key(sweep[f"dropout {p}"])
    width = setting.model.n_embd
    for p in W.WIDTH_RATES[profile]:
        if f"dropout {p}" in sweep and width in W.WIDTHS[profile]:
            assert key(widths[f"width {width}, dropout {p}"]) == key(sweep[f"dropout {p}"])
    assert sweep["dropout 0.0"].model == setting.model
    for spec in widths.values():
        assert differences(setting, spec) <= {"n_embd", "dropout"}


def test_cpu_budget_in_runs():
    """Chapter 03 trains each distinct run once: count them (the budget of CHAPTERS.md)."""
    keys = set()
    for name in ("dropout-vs-epochs", "dropout-rate-sweep", "dropout-vs-width"):
        keys |= {key(s) for s in E.specs(name, "cpu").values()}
    ablation = {key(s) for s in E.specs("dropout-site-ablation", "cpu").values()}
    assert len(keys) == 19
    assert len(ablation) == 7 and len(ablation & keys) == 2  # none and v10's three


def test_lookup_does_not_train(isolated_run_cache):
    spec = E.specs("dropout-site-ablation", "smoke")["none"]
    assert lookup(spec.model, spec.train, spec.corpus) is None
