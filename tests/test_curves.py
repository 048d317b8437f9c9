"""dropoutlib.curves: reading a run's history (the lowest validation loss, where it overfits)."""

import types

import pytest

from dropoutlib.curves import best_entry, evaluation_wiggle, overfitting_step, run_summary


def history(val, train=None, every=60):
    train = train or [4.0 - 0.2 * i for i in range(len(val))]
    return [
        {"step": i * every, "epoch": i * 0.5, "train_loss": t, "val_loss": v}
        for i, (v, t) in enumerate(zip(val, train))
    ]


def test_overfitting_run_overfits_from_its_lowest_validation_loss():
    h = history([4.1, 2.9, 2.8, 2.78, 2.81, 2.85, 2.89])
    assert best_entry(h)["step"] == 180
    assert overfitting_step(h) == 180
    assert isinstance(overfitting_step(h), int)


@pytest.mark.parametrize(
    "val, train, min_rise",
    [
        ([4.1, 2.9, 2.8, 2.7, 2.65], None, 0.02),  # still falling: underfitting
        ([4.1, 2.9, 2.8, 2.805, 2.81], None, 0.02),  # a rise below min_rise: noise
        ([4.1, 2.9, 2.8, 2.85], None, 0.1),  # min_rise is honoured
        ([4.1, 2.9, 2.8, 2.95, 2.81], None, 0.02),  # came back: the LAST evaluation counts
        ([4.1, 2.9, 2.8, 2.9], [4.1, 2.8, 2.6, 2.7], 0.02),  # training loss rose too
        ([4.1], None, 0.02),  # one evaluation
        ([], None, 0.02),
    ],
)
def test_runs_that_do_not_overfit(val, train, min_rise):
    assert overfitting_step(history(val, train), min_rise=min_rise) is None


def test_the_lowest_minimum_not_the_first_bump_and_ties_take_the_first():
    h = history([4.1, 3.0, 3.1, 2.7, 2.6, 2.9], every=10)
    assert overfitting_step(h) == 40
    tied = history([4.1, 2.6, 2.7, 2.6, 2.9])
    assert best_entry(tied)["step"] == 60 and overfitting_step(tied) == 60
    assert overfitting_step(history([4.1, 2.8, 2.85]), min_rise=0.05) == 60  # rise == min_rise
    assert best_entry([]) is None


def test_bad_input_names_the_argument():
    with pytest.raises(ValueError, match="min_rise must be a finite number >= 0, got -0.1"):
        overfitting_step(history([4.0, 3.0]), min_rise=-0.1)
    with pytest.raises(ValueError, match="min_rise"):
        overfitting_step(history([4.0, 3.0]), min_rise=True)
    with pytest.raises(TypeError, match="history must be a list of dicts"):
        overfitting_step("loss")
    with pytest.raises(ValueError, match=r"history\[1\] lacks \['train_loss', 'val_loss'\]"):
        overfitting_step([{"step": 0, "train_loss": 1, "val_loss": 1}, {"step": 1, "val": 1}])


def test_run_summary_reads_a_result():
    h = history([4.1, 2.9, 2.8, 2.85], train=[4.1, 2.5, 2.2, 2.0])
    result = types.SimpleNamespace(
        history=h,
        model_config={"dropout": 0.2, "n_embd": 64},
        train_tokens=10_000,
        num_params=123,
    )
    s = run_summary(result)
    assert s == {
        "p": 0.2,
        "n_embd": 64,
        "train_tokens": 10_000,
        "epochs": 1.5,
        "final_train": 2.0,
        "final_val": 2.85,
        "gap": pytest.approx(0.85),
        "best_val": 2.8,
        "best_step": 120,
        "overfit_step": 120,
        "num_params": 123,
    }
    assert run_summary(result, min_rise=0.1)["overfit_step"] is None
    with pytest.raises(ValueError, match="empty history"):
        run_summary(
            types.SimpleNamespace(history=[], model_config={}, train_tokens=None, num_params=0)
        )


def test_evaluation_wiggle_is_the_median_step_to_step_change():
    a = history([4.0, 3.0, 2.9, 3.0, 2.95])  # steps 0..240; changes 1.0, 0.1, 0.1, 0.05
    b = history([4.0, 3.5, 3.3])  # changes 0.5, 0.2
    assert evaluation_wiggle([a]) == pytest.approx(0.1)
    assert evaluation_wiggle([a], after=120) == pytest.approx(0.075)  # 0.1 and 0.05
    assert evaluation_wiggle([a, b], after=60) == pytest.approx(0.1)  # 0.05, 0.1, 0.1, 0.2
    with pytest.raises(ValueError, match="no two consecutive evaluations at step >= 600"):
        evaluation_wiggle([a], after=600)
