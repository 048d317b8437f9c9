"""Dropout under data parallelism: a shared seed repeats the masks on every rank, a seed per rank
(the trainer's streams) draws independent ones. Two gloo processes on the CPU, a few seconds."""

import math

import pytest
import torch

from dropoutlib.parallel import CASES, mask_streams, rank_seed
from dropoutlib.train import stream_seed

pytestmark = pytest.mark.slow  # two processes start and import torch


@pytest.fixture(scope="module")
def results():
    return mask_streams(world_size=2, p=0.2, seed=0, steps=8, noise_steps=48)


def test_rank_seed_is_the_trainers_stream_or_the_shared_seed():
    assert rank_seed(7, 1) == stream_seed(7, "dropout", 1)
    assert rank_seed(7, 1, "batch") == stream_seed(7, "batch", 1)
    assert rank_seed(7, 0) != rank_seed(7, 1)
    assert rank_seed(7, 0, per_rank=False) == rank_seed(7, 1, per_rank=False) == 7
    with pytest.raises(ValueError, match="rank must be a non-negative integer"):
        rank_seed(7, -1)


def test_every_case_is_reported(results):
    assert list(results) == list(CASES)
    for r in results.values():
        assert r["world_size"] == 2 and r["p"] == 0.2
        assert r["masks"].shape == (2, 8, 32) and r["masks"].dtype == torch.bool
        assert math.isclose(r["independent"], 0.2**2 + 0.8**2)


def test_a_shared_seed_repeats_the_masks(results):
    shared = results["shared seed"]
    assert shared["agreement"] == 1.0
    assert torch.equal(shared["masks"][0], shared["masks"][1])
    assert shared["same_loss_steps"] == 0.0  # the batches still differ


def test_a_seed_per_rank_draws_independent_masks(results):
    own = results["per rank"]
    assert abs(own["agreement"] - own["independent"]) <= 6 * own["independent_se"]
    assert not torch.equal(own["masks"][0], own["masks"][1])
    assert own["same_loss_steps"] == 0.0


def test_one_seed_for_batches_too_makes_the_ranks_duplicate_work(results):
    both = results["shared seed and batches"]
    assert both["agreement"] == 1.0 and both["same_loss_steps"] == 1.0


def test_shared_masks_leave_more_dropout_noise_in_the_averaged_gradient(results):
    assert results["shared seed"]["grad_noise"] > 1.3 * results["per rank"]["grad_noise"]


def test_the_trainer_would_keep_its_own_rng_streams(results):
    # mask_streams ran in child processes: this process's generator is untouched by them
    torch.manual_seed(3)
    state = torch.get_rng_state()
    mask_streams(world_size=2, cases=["per rank"], steps=1, noise_steps=2, batch=2, width=4)
    assert torch.equal(state, torch.get_rng_state())


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"world_size": 1}, "world_size must be an integer >= 2"),
        ({"cases": ["everything"]}, "cases must be a non-empty list"),
        ({"cases": []}, "cases must be a non-empty list"),
        ({"p": 0.0}, "p must be in \\(0, 1\\)"),
        ({"p": 1.5}, "p"),
        ({"steps": 0}, "steps must be an integer >= 1"),
        ({"noise_steps": 1}, "noise_steps must be an integer >= 2"),
    ],
)
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        mask_streams(**kwargs)
