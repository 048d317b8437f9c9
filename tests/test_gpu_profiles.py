"""Every experiment's gpu profile, trained for a couple of steps on the CPU.

No GPU was available to write this course's GPU paths against, so each gpu profile must be
correct by construction: its specs build, its models train a step with every feature they use,
fine-tuning runs find their parents, and nothing is CUDA-only. The full runs need a GPU (Colab).
"""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

import dropoutlib.experiments as E
from dropoutlib.train import train

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("isolated_run_cache")]


def briefly(spec: E.RunSpec) -> E.RunSpec:
    """The spec with its model and data as they are, trained for 2 steps of 2 sequences."""
    tc = dataclasses.replace(
        spec.train,
        max_iters=2,
        eval_interval=2,
        eval_iters=1,
        batch_size=2,
        device="cpu",
        dtype="auto",
        checkpoint_interval=0,
        max_new_tokens=min(spec.train.max_new_tokens, 4),
    )
    return dataclasses.replace(spec, train=tc)


TRAINED: set[str] = set()  # what a run exercises, across experiments (seeds aside): once is enough


def _exercises(spec: E.RunSpec) -> str:
    train = {k: v for k, v in spec.train.to_dict().items() if k not in ("seed", "prompts")}
    return json.dumps([dataclasses.asdict(spec.model), train, spec.corpus], sort_keys=True)


@pytest.mark.parametrize("name", sorted(E.EXPERIMENTS))
def test_gpu_profile_trains_a_few_steps_on_the_cpu(name):
    specs = E.specs(name, "gpu")
    assert specs, f"{name} has no runs in the gpu profile"
    keys = {}
    for wave in E.core._waves(specs):
        for label in wave:
            spec = briefly(specs[label])
            assert spec.train.device == "cpu"
            if spec.parent is not None:
                spec = dataclasses.replace(
                    spec, train=dataclasses.replace(spec.train, init_from=keys[spec.parent])
                )
            needed_as_parent = any(s.parent == label for s in specs.values())
            if _exercises(spec) in TRAINED and not needed_as_parent:
                continue
            TRAINED.add(_exercises(spec))
            result = train(spec.model, spec.train, spec.corpus, progress=False)
            assert result.steps == [0, 2]
            assert all(torch.isfinite(torch.tensor(result.val_losses)))
            keys[label] = result.key
