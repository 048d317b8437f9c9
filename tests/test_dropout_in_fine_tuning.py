"""Chapter 07's library: a run's loss on another corpus (loss_on_corpus), the fine-tuning
experiment, its table and figure."""

from __future__ import annotations

import dataclasses

import matplotlib
import pytest
import torch

import dropoutlib.experiments as E
from dropoutlib import viz
from dropoutlib.experiments.dropout_in_fine_tuning import (
    ADAPTIVE_LABEL,
    GENERAL,
    LORA_RATES,
    PARENT,
    R_DROP_LABEL,
    TARGET,
    fine_tuning_table,
)
from dropoutlib.model import GPTConfig
from dropoutlib.train import TrainConfig, estimate_loss, loss_on_corpus, train, vocab_size
from dropoutlib.train.batches import corpus_tensors

matplotlib.use("Agg")
pytestmark = pytest.mark.usefixtures("isolated_run_cache")


def tiny_run(corpus="song_ci_su_shi", **train_fields):
    config = GPTConfig(vocab_size=vocab_size(corpus), n_layer=1, n_embd=8, n_head=2, block_size=8)
    tc = TrainConfig(
        max_iters=2, eval_interval=2, eval_iters=1, batch_size=2, checkpoint_interval=0,
        **train_fields,
    )  # fmt: skip
    return train(config, tc, corpus, progress=False)


def test_loss_on_corpus_is_estimate_loss_on_that_split():
    result = tiny_run()
    got = loss_on_corpus(result, GENERAL, eval_iters=3, batch_size=4, seed=5)
    _, train_data, val_data = corpus_tensors(GENERAL)
    want = estimate_loss(
        result.load_model(),
        {"val": val_data},
        block_size=8,
        batch_size=4,
        eval_iters=3,
        generator=torch.Generator().manual_seed(5),
    )["val"]
    assert got == want
    assert loss_on_corpus(result, GENERAL, eval_iters=3, batch_size=4, seed=5) == got  # paired
    assert loss_on_corpus(result, GENERAL, "train", eval_iters=3, batch_size=4, seed=5) != got
    # defaults: the run's own eval_iters (1) and batch size (2)
    assert loss_on_corpus(result, TARGET) == loss_on_corpus(
        result, TARGET, eval_iters=1, batch_size=2
    )


def test_loss_on_corpus_from_the_stored_weights():
    result = tiny_run()
    fresh = dataclasses.replace(result)  # no model trained in this process: read model.pt
    assert getattr(fresh, "_model", None) is None
    kwargs = dict(eval_iters=2, batch_size=3, seed=1)
    assert loss_on_corpus(fresh, GENERAL, **kwargs) == loss_on_corpus(result, GENERAL, **kwargs)


def test_loss_on_corpus_refuses_what_cannot_be_compared():
    result = tiny_run()
    with pytest.raises(ValueError, match="vocabulary of 'shakespeare'"):
        loss_on_corpus(result, "shakespeare")
    with pytest.raises(ValueError, match="split must be one of"):
        loss_on_corpus(result, GENERAL, "test")
    with pytest.raises(ValueError, match="corpus must be one of"):
        loss_on_corpus(result, "wikitext")
    with pytest.raises(ValueError, match="eval_iters must be an integer >= 1"):
        loss_on_corpus(result, GENERAL, eval_iters=0)


def test_loss_on_corpus_of_a_lora_run_uses_its_adapters():
    parent = tiny_run()
    lora = tiny_run(init_from=parent.key, lora={"r": 2, "target_modules": ["query", "value"]})
    fresh = dataclasses.replace(lora)
    kwargs = dict(eval_iters=2, batch_size=3, seed=1)
    assert loss_on_corpus(fresh, GENERAL, **kwargs) == loss_on_corpus(lora, GENERAL, **kwargs)


@pytest.mark.parametrize("profile", ["smoke", "cpu", "gpu"])
def test_fine_tuning_runs_share_the_parent_and_its_architecture(profile):
    runs = E.specs("fine-tuning-su-shi", profile)
    parent = runs[PARENT]
    assert parent.corpus == GENERAL and parent.parent is None
    assert parent.model.dropout == 0.0
    children = {k: v for k, v in runs.items() if k != PARENT}
    assert len(children) == 8
    for label, spec in children.items():
        assert spec.parent == PARENT and spec.corpus == TARGET
        shape = dataclasses.replace(spec.model, dropout=parent.model.dropout)
        assert shape == parent.model, label
    lora = [v for k, v in children.items() if k.startswith("LoRA")]
    assert [s.train.lora["dropout"] for s in lora] == list(LORA_RATES)
    assert all(s.model.dropout == 0.0 for s in lora)
    schedule = children[ADAPTIVE_LABEL].train.dropout_schedule
    assert schedule == {"name": "linear", "p": 0.2, "every": "epoch"}
    assert children[R_DROP_LABEL].train.r_drop_alpha > 0
    assert children[R_DROP_LABEL].model.dropout > 0


def test_cpu_fine_tuning_sees_several_epochs_of_su_shi():
    spec = E.specs("fine-tuning-su-shi", "cpu")["full, dropout 0"]
    n_train = len(corpus_tensors(TARGET)[1])
    epochs = spec.train.max_iters * spec.train.batch_size * spec.model.block_size / n_train
    assert 2.5 < epochs < 12  # a few passes: enough to overfit (the best step comes early)


def test_smoke_experiment_table_and_figure():
    results = E.run("fine-tuning-su-shi", "smoke", progress=False)
    assert list(results)[0] == PARENT
    for label, result in results.items():
        if label != PARENT:
            assert result.train_config["init_from"] == results[PARENT].key
    rows = fine_tuning_table(results, eval_iters=2, batch_size=4)
    by = {r["label"]: r for r in rows}
    assert by[PARENT]["forgetting"] is None
    first_child = results["full, dropout 0"]
    assert by[PARENT]["target_loss"] == first_child.history[0]["val_loss"]
    lora = by["LoRA, lora_dropout 0"]
    assert lora["trainable"] < by["full, dropout 0"]["total"] < lora["total"]  # + adapters
    full = by["full, dropout 0"]
    assert full["trainable"] == full["total"]
    assert full["forgetting"] == pytest.approx(full["general_loss"] - by[PARENT]["general_loss"])
    assert full["general_loss"] == loss_on_corpus(first_child, GENERAL, eval_iters=2, batch_size=4)
    for lang in ("en", "ru", "zh"):
        fig = viz.plot_fine_tuning(results, rows, lang)
        assert len(fig.axes) == 2
        table = viz.fine_tuning_markdown(rows, lang)
        assert table.count("\n") == len(rows) + 1
    assert "\u202f" in viz.fine_tuning_markdown(rows, "ru") or all(
        r["trainable"] < 1000 for r in rows
    )
    with pytest.raises(ValueError, match="at least one fine-tuning run"):
        viz.plot_fine_tuning({PARENT: results[PARENT]}, rows, "en")
