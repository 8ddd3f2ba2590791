"""Process groups under `torchrun`: which rank this is, and how many there are.

Without torchrun (no WORLD_SIZE in the environment) everything runs as rank 0 of 1
and no process group is created. Under torchrun the group uses gloo on the CPU and NCCL
on CUDA; each rank takes the GPU of its LOCAL_RANK.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from repflat.errors import UserError


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()

    def all_true(self, flag: bool) -> bool:
        """True on every rank when `flag` is true on every rank."""
        if self.world == 1:
            return flag
        t = torch.tensor([int(flag)])
        dist.all_reduce(t, op=dist.ReduceOp.MIN)
        return bool(t.item())

    def same(self, value: int) -> bool:
        """True on every rank when every rank holds the same `value` (an int64)."""
        if self.world == 1:
            return True
        t = torch.tensor([value, -value], dtype=torch.int64)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return int(t[0]) == int(-t[1])  # the largest is the smallest: the same answer everywhere


def from_env(device: torch.device) -> Dist:
    """The rank and world size of this process, joining the group torchrun set up."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return Dist()
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Dist(dist.get_rank(), dist.get_world_size())


def resolve_device(name: str) -> torch.device:
    """`cpu`, `cuda`, or `auto` (CUDA when present); asking for absent CUDA is a UserError."""
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("expected a machine with CUDA, got none; use 'cpu' or 'auto'",
                        argument="device")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name not in ("cpu", "cuda"):
        raise UserError(f"expected 'cpu', 'cuda' or 'auto', got {name!r}", argument="device")
    return torch.device(name)


def local_device(device: torch.device) -> torch.device:
    """Under torchrun each rank uses its own GPU."""
    if device.type == "cuda" and device.index is None and "LOCAL_RANK" in os.environ:
        return torch.device("cuda", int(os.environ["LOCAL_RANK"]))
    return device
