"""The stale-cache guard: fixed smoke runs must compute what tests/golden_runs.json recorded.

If this fails, a change to the library now computes something else, and the run cache would
serve results made by the old code under the same keys. Bump RESULTS_VERSION in
dropoutlib/train/store.py, then re-record:
    python -m dropoutlib.train.golden --write tests/golden_runs.json
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dropoutlib.train import RESULTS_VERSION
from dropoutlib.train.golden import GOLDEN_RUNS, LOSS_TOL, compare, fingerprint

RECORDED = json.loads((Path(__file__).with_name("golden_runs.json")).read_text(encoding="utf-8"))
HOW = (
    "bump RESULTS_VERSION in dropoutlib/train/store.py, then re-record with "
    "`python -m dropoutlib.train.golden --write tests/golden_runs.json`"
)


def test_every_golden_run_is_recorded():
    assert set(RECORDED) == set(GOLDEN_RUNS)


@pytest.mark.parametrize("name", sorted(GOLDEN_RUNS))
def test_golden_run_computes_what_was_recorded(name):
    recorded = RECORDED[name]
    assert recorded["results_version"] == RESULTS_VERSION, (
        f"tests/golden_runs.json was recorded for RESULTS_VERSION "
        f"{recorded['results_version']}, the code says {RESULTS_VERSION}: re-record it with "
        "`python -m dropoutlib.train.golden --write tests/golden_runs.json`"
    )
    problems = compare(recorded, fingerprint(name))
    assert not problems, (
        f"golden run {name!r} no longer computes what was recorded, so cached runs would be "
        f"stale: {HOW}.\n" + "\n".join(problems)
    )


def test_compare_sees_a_change_and_forgives_rounding():
    rec = {
        "num_params": 10,
        "steps": [0, 10],
        "epochs": [0.0, 0.5],
        "dropout_p": [None, None],
        "train_loss": [4.0, 3.0],
        "val_loss": [4.1, 3.2],
    }
    assert compare(rec, dict(rec)) == []
    noisy = dict(rec, val_loss=[4.1 + LOSS_TOL / 2, 3.2 - LOSS_TOL / 2])
    assert compare(rec, noisy) == []
    moved = dict(rec, val_loss=[4.1, 3.2 + 3 * LOSS_TOL])
    assert "val_loss" in compare(rec, moved)[0]
    assert "num_params" in compare(rec, dict(rec, num_params=11))[0]
    assert compare(rec, dict(rec, train_loss=[4.0]))  # a missing evaluation is a change
