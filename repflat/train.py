"""One training run, from a RunConfig to a complete run directory.

`setup` builds and checks everything (data, model, layer names, mixer, optimiser)
before a single file is written; `train` runs the loop, which reads top to bottom.

Randomness: generators derived from the run seed drive initialisation, batch order,
mixing and input noise; dropout, which cannot take a generator, draws from the global
torch generator, seeded from the run seed at the start. The same seed therefore gives
the same run on the CPU, bit for bit.

Under `torchrun` (DDP): every rank draws the same batch order, takes rows
rank, rank + W, … of each batch, and mixes within its rows with a mixing generator of
its own; gradients are averaged by DDP. Rank 0 writes the run directory; all ranks
write their rows of the captured features.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from repflat.capture import capture, forward_features
from repflat.config import RunConfig
from repflat.data import Data, load_data
from repflat.distributed import Dist, from_env, local_device, resolve_device
from repflat.layers import check_layers, default_layers, layer_names
from repflat.mixing import build_mixer
from repflat.models import build_model
from repflat.rundir import RunWriter, prepare_run_dir
from repflat.store import FeatureWriter, atomic_path
from repflat.typed import to_plain


@dataclass(frozen=True)
class Seeds:
    init: int
    shuffle: int
    mixing: int
    noise: int
    dropout: int

    @classmethod
    def from_seed(cls, seed: int) -> Seeds:
        # Independent streams from one seed, so e.g. adding noise does not shift the mixing draws.
        children = np.random.SeedSequence(seed).spawn(5)
        return cls(*(int(c.generate_state(1, dtype=np.uint64)[0] >> 1) for c in children))


def generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@dataclass
class Setup:
    cfg: RunConfig
    data: Data
    model: nn.Module
    mixer: object
    optimizer: torch.optim.Optimizer
    seeds: Seeds
    device: torch.device
    capture_layers: tuple[str, ...]
    capture_epochs: frozenset[int]
    plane: str | None


def setup(cfg: RunConfig) -> Setup:
    """Build every part of a run and check it against the config; writes nothing."""
    seeds = Seeds.from_seed(cfg.seed)
    device = local_device(resolve_device(cfg.train.device))
    data = load_data(cfg.data)
    model = build_model(cfg.model, data.input_shape, data.n_classes, seed=seeds.init).to(device)
    mixer = build_mixer(cfg.mixing, model, generator(seeds.mixing))
    layers = check_layers(model, cfg.capture.layers or default_layers(model), "capture.layers")
    plane = cfg.capture.plane
    if plane is not None and plane in layer_names(model) and data.arrays is not None:
        # Panels d and e need a 2D layer; one probe pass tells its width for any model.
        probe = forward_features(model, data.arrays["train"][:2], (plane,), device=device)
        plane = plane if probe[plane].shape[1] == 2 else None
    else:
        plane = None
    Optimizer = {"adam": torch.optim.Adam, "sgd": torch.optim.SGD}[cfg.train.optimizer]
    extra = {"momentum": cfg.train.momentum} if cfg.train.optimizer == "sgd" else {}
    optimizer = Optimizer(model.parameters(), lr=cfg.train.lr, weight_decay=cfg.train.weight_decay,
                          **extra)
    epochs = frozenset(cfg.capture.epochs) | {cfg.train.epochs}
    return Setup(cfg, data, model, mixer, optimizer, seeds, device, layers, epochs, plane)


def soft_target_loss(kind: str, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean loss against soft targets (rows summing to 1)."""
    if kind == "cross_entropy":
        return F.cross_entropy(logits, targets)
    return (torch.softmax(logits, dim=1) - targets).pow(2).sum(dim=1).mean()


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


def load_batches(data: Data, split: str, batches: list[torch.Tensor], device: torch.device,
                 workers: int = 0):
    """(x, y) for each batch of row indices: sliced from memory or read by a DataLoader."""
    if data.arrays is not None:
        ds = data.datasets[split]
        x, y = ds.tensors[0].to(device), ds.tensors[1].to(device)
        for idx in batches:
            idx = idx.to(device)
            yield x[idx], y[idx]
        return
    for xb, yb in DataLoader(data.datasets[split], batch_sampler=[b.tolist() for b in batches],
                             num_workers=workers, pin_memory=device.type == "cuda"):
        yield xb.to(device, non_blocking=True), yb.to(device, non_blocking=True)


@torch.no_grad()
def evaluate(model: nn.Module, data: Data, split: str, device: torch.device,
             batch_size: int = 1024) -> tuple[float, float]:
    """Accuracy and mean negative log-likelihood (nats) of `model` on a split."""
    was_training = model.training
    model.eval()
    n = len(data.labels[split])
    correct, nll = 0.0, 0.0
    chunks = [torch.arange(i, min(i + batch_size, n)) for i in range(0, n, batch_size)]
    for xb, yb in load_batches(data, split, chunks, device):
        logits = model(xb)
        correct += (logits.argmax(dim=1) == yb).sum().item()
        nll += F.cross_entropy(logits.float(), yb, reduction="sum").item()
    model.train(was_training)
    return correct / n, nll / n


def train(cfg: RunConfig, out: str | Path, *, progress: bool = True) -> str:
    """Train `cfg` into run directory `out`; return "trained" or "complete" (already done)."""
    s = setup(cfg)
    plain = to_plain(cfg)
    state = prepare_run_dir(out, plain)
    if state == "complete":
        return "complete"
    dist = from_env(s.device)
    started = time.perf_counter()
    run = RunWriter(out, plain, state) if dist.main else None
    dist.barrier()
    model, opt, K, tc = s.model, s.optimizer, s.data.n_classes, cfg.train
    net = model
    if dist.world > 1:
        net = nn.parallel.DistributedDataParallel(
            model, device_ids=[s.device.index] if s.device.type == "cuda" else None)
        s.mixer = build_mixer(cfg.mixing, model, generator(s.seeds.mixing + dist.rank))
    features = FeatureWriter(out)
    shuffle, noise = generator(s.seeds.shuffle), generator(s.seeds.noise + dist.rank)
    torch.manual_seed(s.seeds.dropout + dist.rank)

    def save_features(epoch: int) -> None:
        capture(model, s.data, cfg.capture, s.capture_layers, epoch, features, device=s.device,
                plane=s.plane, uniform_seed=getattr(cfg.data, "seed", 0), dist=dist)

    if 0 in s.capture_epochs:
        save_features(0)
    bar = tqdm(range(1, tc.epochs + 1), desc=f"{cfg.name} seed {cfg.seed}", unit="epoch",
               disable=not (progress and dist.main), leave=False, dynamic_ncols=True)
    n_train = len(s.data.labels["train"])
    model.train()
    for epoch in bar:
        t0, loss_sum, count = time.perf_counter(), torch.zeros((), device=s.device), 0
        batches = epoch_batches(n_train, tc.batch_size, shuffle, dist)
        for xb, yb in load_batches(s.data, "train", batches, s.device):
            if tc.input_noise > 0:
                xb = xb + tc.input_noise * torch.randn(xb.shape, generator=noise).to(s.device)
            logits, targets = s.mixer(net, xb, F.one_hot(yb, K).float())
            loss = soft_target_loss(tc.loss, logits, targets)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_sum += loss.detach() * len(xb)
            count += len(xb)
        total = torch.stack([loss_sum, torch.tensor(float(count), device=s.device)])
        if dist.world > 1:
            torch.distributed.all_reduce(total)
        train_loss = (total[0] / total[1]).item()
        if dist.main:
            accuracy, nll = evaluate(model, s.data, "test", s.device)
            run.log_epoch({"epoch": epoch, "train_loss": train_loss, "test_accuracy": accuracy,
                           "test_nll": nll, "seconds": round(time.perf_counter() - t0, 4)})
            bar.set_postfix(loss=f"{train_loss:.3f}", acc=f"{accuracy:.3f}", refresh=False)
        if epoch in s.capture_epochs:
            save_features(epoch)
    if dist.main:
        with atomic_path(Path(out) / "checkpoint.pt", durable=True) as tmp:
            torch.save({"format": 1, "epoch": tc.epochs, "config": plain,
                        "input_shape": list(s.data.input_shape), "n_classes": K,
                        "model": model.state_dict()}, tmp)
        run.finish(time.perf_counter() - started)
    dist.barrier()
    return "trained"
