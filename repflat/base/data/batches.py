"""Batches of rows, from memory or from disk, and the per-epoch shuffled order.

Training reads items as (epoch, index) pairs through `Seeded`, which seeds the random
augmentation of each item from (seed, epoch, index): the images an epoch sees then
depend on nothing else, not on worker processes, not on where a resumed run restarted.
"""
from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from repflat.base.distributed import Dist


def row_chunks(n: int, batch_size: int) -> list[torch.Tensor]:
    """Consecutive row indices in batches, for evaluation."""
    return [torch.arange(i, min(i + batch_size, n)) for i in range(0, n, batch_size)]


def epoch_batches(n: int, batch_size: int, shuffle: torch.Generator, dist: Dist) -> list[torch.Tensor]:
    """This rank's row indices of each batch of one epoch, in a shuffled order that every
    rank draws alike. A batch smaller than the world size is skipped by every rank
    (DDP needs all ranks in each step)."""
    order = torch.randperm(n, generator=shuffle)
    out = []
    for start in range(0, n, batch_size):
        batch = order[start:start + batch_size]
        if len(batch) >= dist.world:
            out.append(batch[dist.rank::dist.world])
    return out


class Seeded(Dataset):
    """`dataset[i]` with the torch random state seeded from (seed, epoch, i)."""

    def __init__(self, dataset: Dataset, seed: int):
        self.dataset, self.seed = dataset, seed

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]):
        epoch, i = key
        item_seed = int(np.random.SeedSequence([self.seed, epoch, i]).generate_state(1)[0])
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(item_seed)
            return self.dataset[i]


def load_batches(data, split: str, batches: list[torch.Tensor], device: torch.device, *,
                 workers: int = 0, seeded: Seeded | None = None, epoch: int = 0):
    """(x, y) for each batch of row indices: sliced from memory, or read by a DataLoader
    (from `seeded`, the training set with its augmentation, when given)."""
    if data.arrays is not None:
        ds = data.datasets[split]
        x, y = ds.tensors[0].to(device), ds.tensors[1].to(device)
        for idx in batches:
            idx = idx.to(device)
            yield x[idx], y[idx]
        return
    if seeded is not None:
        source, keys = seeded, [[(epoch, i) for i in b.tolist()] for b in batches]
    else:
        source, keys = data.datasets[split], [b.tolist() for b in batches]
    loader = DataLoader(source, batch_sampler=keys, num_workers=workers,
                        pin_memory=device.type == "cuda")
    for xb, yb in loader:
        yield xb.to(device, non_blocking=True), yb.to(device, non_blocking=True)
