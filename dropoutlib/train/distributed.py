"""Data parallelism: join the process group that ``torchrun`` describes, and talk across ranks.

Under ``torchrun --nproc_per_node=N`` each process is one rank of a DDP run (gloo on the CPU,
nccl on GPUs): identical initial weights, different dropout masks and batches (their seeds are
offset by the rank, :func:`dropoutlib.train.stream_seed`), gradients averaged by DDP, losses
averaged over ranks, and only rank 0 writes checkpoints, cache entries and results.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

__all__ = ["Dist", "setup_distributed"]


@dataclass
class Dist:
    """This process's place in the run: rank, world size, local rank (its GPU)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    owns_group: bool = False  # this call created the process group (and destroys it)

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def broadcast(self, obj):
        """rank 0's ``obj`` on every rank."""
        if not self.enabled:
            return obj
        box = [obj if self.is_main else None]
        torch.distributed.broadcast_object_list(box, src=0)
        return box[0]

    def gather(self, obj) -> list:
        """Every rank's ``obj``, in rank order, on every rank."""
        if not self.enabled:
            return [obj]
        out = [None] * self.world_size
        torch.distributed.all_gather_object(out, obj)
        return out

    def mean(self, values: list[float], device) -> list[float]:
        """The mean over ranks of each value (float64)."""
        if not self.enabled:
            return values
        t = torch.tensor(values, dtype=torch.float64, device=device)
        torch.distributed.all_reduce(t)
        return (t / self.world_size).tolist()

    def close(self) -> None:
        if self.owns_group:
            torch.distributed.destroy_process_group()


def setup_distributed(device_spec: str) -> Dist:
    """Join the process group that torchrun describes in the environment (if any)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return Dist()
    import torch.distributed as dist

    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", rank))
    owns = False
    if not dist.is_initialized():
        use_cuda = device_spec.startswith("cuda") or (
            device_spec == "auto" and torch.cuda.is_available()
        )
        if use_cuda:
            torch.cuda.set_device(local_rank)
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
        owns = True
    return Dist(rank, dist.get_world_size(), local_rank, owns)
