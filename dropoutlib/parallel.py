"""Dropout under data parallelism: every rank needs a mask stream of its own.

In distributed data parallel training (PyTorch DDP) each of the N ranks holds a copy of the
model, runs forward and backward on its own micro-batch, and the gradients are averaged
across ranks before the optimizer step. Dropout draws its masks from the random number
generator of each process. If every rank seeds that generator with the same number, the ranks
draw the same masks: the N micro-batches of a step share one mask per position instead of N
independent ones, so the dropout noise in the averaged gradient does not shrink as it should
when the N gradients are averaged. If the same seed also drives the sampling of batches, the
ranks also see the same data, compute identical gradients, and N processes do the work of one.

The course's trainer gives each rank its own streams (``stream_seed(seed, "dropout", rank)``,
``stream_seed(seed, "batch", rank)``, :mod:`dropoutlib.train`). :func:`mask_streams` shows the
difference in a few seconds: it starts ``world_size`` CPU processes that join a gloo process
group, wraps a small MLP with dropout in ``DistributedDataParallel`` and measures

* how often the ranks' masks agree element by element (1 for a shared seed; about
  p^2 + (1 - p)^2 for independent masks, 0.68 at p = 0.2);
* on how many steps all ranks computed the same loss (identical data and masks);
* the dropout noise in the gradient that DDP averages: with the weights and each rank's batch
  held fixed, the summed variance of the averaged gradient over repeated masks.
"""

from __future__ import annotations

import math
import numbers
import os
import tempfile
from pathlib import Path

import torch
from torch import nn

from dropoutlib._base import check_p

__all__ = ["CASES", "mask_streams", "rank_seed"]


def rank_seed(seed: int, rank: int, stream: str = "dropout", *, per_rank: bool = True) -> int:
    """The seed of ``stream`` on ``rank``: the trainer's ``stream_seed(seed, stream, rank)`` when
    ``per_rank``, else ``seed`` itself on every rank (the shared-seed mistake)."""
    from dropoutlib.train import stream_seed

    for name, value in (("seed", seed), ("rank", rank)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
            raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    return stream_seed(int(seed), stream, int(rank)) if per_rank else int(seed)


def _probe_model(width: int, p: float) -> nn.Module:
    # Softplus is never 0, so a zero after the dropout can only be a dropped element.
    return nn.Sequential(
        nn.Linear(16, width), nn.Softplus(), nn.Dropout(p), nn.Linear(width, 1, bias=False)
    )


CASES = {
    "per rank": ("per_rank", "per_rank"),
    "shared seed": ("shared", "per_rank"),
    "shared seed and batches": ("shared", "shared"),
}


def _one_case(rank, world_size, seeds, batches, opts) -> dict | None:
    """One seeding of the streams on this rank; rank 0 returns what :func:`mask_streams`
    reports, the other ranks None."""
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel as DDP

    seed, p, width, batch = opts["seed"], opts["p"], opts["width"], opts["batch"]
    torch.manual_seed(seed)  # the same initial weights everywhere (DDP broadcasts them too)
    model = DDP(_probe_model(width, p))
    masks: list[torch.Tensor] = []
    model.module[2].register_forward_hook(lambda m, i, o: masks.append(o != 0))
    data = torch.Generator().manual_seed(
        rank_seed(seed, rank, "batch", per_rank=batches == "per_rank")
    )
    torch.manual_seed(rank_seed(seed, rank, "dropout", per_rank=seeds == "per_rank"))

    # Part 1: training steps, a fresh batch each (no optimizer: the weights stay as they are).
    losses = []
    for _ in range(opts["steps"]):
        x = torch.randn(batch, 16, generator=data)
        loss = model(x).square().mean()
        model.zero_grad(set_to_none=True)
        loss.backward()  # DDP averages the gradients over the ranks here
        losses.append(loss.detach())
    local = torch.stack([m.float() for m in masks]).flatten()
    every = [torch.empty_like(local) for _ in range(world_size)]
    dist.all_gather(every, local)
    losses_all = [torch.empty(len(losses)) for _ in range(world_size)]
    dist.all_gather(losses_all, torch.stack(losses))

    # Part 2: the dropout noise of the averaged gradient, on one fixed batch per rank.
    x = torch.randn(batch, 16, generator=data)
    grads = []
    for _ in range(opts["noise_steps"]):
        model.zero_grad(set_to_none=True)
        model(x).square().mean().backward()
        grads.append(torch.cat([q.grad.flatten() for q in model.parameters()]))
    if rank != 0:
        return None
    grads = torch.stack(grads).double()
    agreement = [(every[0] == e).float().mean().item() for e in every[1:]]
    same = torch.stack(losses_all)
    return {
        "seeds": seeds,
        "batches": batches,
        "agreement": sum(agreement) / len(agreement),
        "same_loss_steps": (same == same[0]).all(dim=0).float().mean().item(),
        "grad_noise": grads.var(dim=0).sum().item(),
        "masks": torch.stack([e.view(opts["steps"], batch, width)[0] for e in every]).bool(),
    }


def _worker(rank: int, world_size: int, init_file: str, out: str, opts: dict) -> None:
    """One rank: join the gloo group and run every case; rank 0 saves the results to ``out``."""
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size
    )
    try:
        results = {name: _one_case(rank, world_size, *CASES[name], opts) for name in opts["cases"]}
        if rank == 0:
            torch.save(results, out)
    finally:
        dist.destroy_process_group()


def mask_streams(
    world_size: int = 2,
    *,
    cases=tuple(CASES),
    p: float = 0.2,
    seed: int = 0,
    steps: int = 16,
    noise_steps: int = 64,
    batch: int = 8,
    width: int = 32,
) -> dict[str, dict]:
    """Run ``world_size`` gloo processes of a DDP model with dropout and compare their masks,
    for each way of seeding the ranks' random streams in ``cases`` (one process group for all).

    Cases (:data:`CASES`): ``"per rank"``: each rank seeds its dropout stream with
    ``rank_seed(seed, rank)`` and its batch stream likewise (what the course's trainer does);
    ``"shared seed"``: every rank calls ``torch.manual_seed(seed)`` for dropout, batches still
    differ (each rank reads its own shard, as with a distributed sampler); ``"shared seed and
    batches"``: one seed for both streams on every rank.

    Args:
        world_size: number of ranks (processes), at least 2.
        cases: names of :data:`CASES`, run in this order.
        p: the drop rate of the probe model's dropout, in (0, 1).
        seed: the run's seed.
        steps: training steps of part 1 (fresh batches; the weights are not updated).
        noise_steps: repeated backward passes of part 2 on one fixed batch per rank.
        batch, width: rows of a micro-batch and hidden units of the probe MLP.

    Returns ``{case: result}``; each result holds ``seeds`` and ``batches`` (``"per_rank"`` or
    ``"shared"``), ``p``; ``agreement``, the mean fraction of mask elements on which rank 0 and
    another rank agree over part 1; ``independent``, what independent masks give,
    p^2 + (1 - p)^2, and ``independent_se``, the standard error of ``agreement`` for independent
    masks; ``same_loss_steps``, the fraction of steps of part 1 on which every rank computed the
    same loss; ``grad_noise``, the sum over parameters of the variance of the DDP-averaged
    gradient across the passes of part 2 (dropout noise only); ``masks``, a bool tensor
    (world_size, batch, width): each rank's mask at the first step.
    """
    if isinstance(world_size, bool) or not isinstance(world_size, int) or world_size < 2:
        raise ValueError(f"world_size must be an integer >= 2, got {world_size!r}")
    if isinstance(cases, str):
        cases = (cases,)
    cases = tuple(cases)
    unknown = [c for c in cases if c not in CASES]
    if unknown or not cases:
        raise ValueError(f"cases must be a non-empty list of {tuple(CASES)}, got {cases!r}")
    p = check_p(p)
    if p in (0.0, 1.0):
        raise ValueError(f"p must be in (0, 1) for masks to differ, got {p}")
    for name, value, low in (
        ("seed", seed, 0),
        ("steps", steps, 1),
        ("noise_steps", noise_steps, 2),
        ("batch", batch, 1),
        ("width", width, 1),
    ):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    import torch.multiprocessing as mp

    opts = dict(
        cases=cases,
        p=p,
        seed=int(seed),
        steps=int(steps),
        noise_steps=int(noise_steps),
        batch=int(batch),
        width=int(width),
    )
    with tempfile.TemporaryDirectory(prefix="dropoutlib-ddp-") as tmp:
        init_file, out = os.path.join(tmp, "store"), os.path.join(tmp, "result.pt")
        mp.start_processes(
            _worker,
            args=(world_size, init_file, out, opts),
            nprocs=world_size,
            join=True,
            start_method="spawn",
        )
        results = torch.load(Path(out), weights_only=True)
    independent = p**2 + (1 - p) ** 2
    se = math.sqrt(independent * (1 - independent) / (steps * batch * width))
    return {
        name: {
            "world_size": world_size,
            "p": p,
            **r,
            "independent": independent,
            "independent_se": se,
        }
        for name, r in results.items()
    }
