"""One training run, from a RunConfig to a complete run directory.

`setup` builds and checks everything (data, model, layer names, mixer, optimiser)
before a single file is written; `train` runs the loop, which reads top to bottom.

Randomness: four generators derived from the run seed drive initialisation, batch
order, mixing and input noise; dropout, which cannot take a generator, draws from the
global torch generator, seeded from the run seed at the start. The same seed therefore
gives the same run on the CPU, bit for bit.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from repflat.capture import capture, forward_features
from repflat.config import RunConfig
from repflat.data import Splits, load_data
from repflat.errors import UserError
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


def resolve_device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("train.device: expected a machine with CUDA, got none; use 'cpu' or 'auto'")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


@dataclass
class Setup:
    cfg: RunConfig
    splits: Splits
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
    device = resolve_device(cfg.train.device)
    splits = load_data(cfg.data)
    model = build_model(cfg.model, splits.input_shape, splits.n_classes, seed=seeds.init).to(device)
    mixer = build_mixer(cfg.mixing, model, generator(seeds.mixing))
    layers = check_layers(model, cfg.capture.layers or default_layers(model), "capture.layers")
    plane = cfg.capture.plane
    if plane is not None and plane in layer_names(model):
        # Panels d and e need a 2D layer; one probe pass tells its width for any model.
        probe = forward_features(model, splits.x["train"][:2], (plane,), device=device)
        plane = plane if probe[plane].shape[1] == 2 else None
    else:
        plane = None
    Optimizer = {"adam": torch.optim.Adam, "sgd": torch.optim.SGD}[cfg.train.optimizer]
    extra = {"momentum": cfg.train.momentum} if cfg.train.optimizer == "sgd" else {}
    optimizer = Optimizer(model.parameters(), lr=cfg.train.lr, weight_decay=cfg.train.weight_decay,
                          **extra)
    epochs = frozenset(cfg.capture.epochs) | {cfg.train.epochs}
    return Setup(cfg, splits, model, mixer, optimizer, seeds, device, layers, epochs, plane)


def soft_target_loss(kind: str, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean loss against soft targets (rows summing to 1)."""
    if kind == "cross_entropy":
        return F.cross_entropy(logits, targets)
    return (torch.softmax(logits, dim=1) - targets).pow(2).sum(dim=1).mean()


def batches(x: torch.Tensor, y: torch.Tensor, batch_size: int, generator: torch.Generator):
    order = torch.randperm(len(x), generator=generator).to(x.device)
    for start in range(0, len(x), batch_size):
        idx = order[start:start + batch_size]
        yield x[idx], y[idx]


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """Accuracy and mean negative log-likelihood (nats) of `model` on (x, y)."""
    model.eval()
    logits = model(x)
    model.train()
    accuracy = (logits.argmax(dim=1) == y).float().mean().item()
    return accuracy, F.cross_entropy(logits, y).item()


def train(cfg: RunConfig, out: str | Path, *, progress: bool = True) -> str:
    """Train `cfg` into run directory `out`; return "trained" or "complete" (already done)."""
    s = setup(cfg)
    plain = to_plain(cfg)
    state = prepare_run_dir(out, plain)
    if state == "complete":
        return "complete"
    started = time.perf_counter()
    run = RunWriter(out, plain, state)
    features = FeatureWriter(out)
    model, opt, K, tc = s.model, s.optimizer, s.splits.n_classes, cfg.train
    x = {k: torch.as_tensor(v).to(s.device) for k, v in s.splits.x.items()}
    y = {k: torch.as_tensor(v).to(s.device) for k, v in s.splits.y.items()}
    for split in cfg.capture.splits:
        features.add_labels(split, s.splits.y[split])
    shuffle, noise = generator(s.seeds.shuffle), generator(s.seeds.noise)
    torch.manual_seed(s.seeds.dropout)

    def save_features(epoch: int) -> None:
        capture(model, s.splits, cfg.capture, s.capture_layers, epoch, features,
                device=s.device, plane=s.plane, uniform_seed=cfg.data.seed)

    if 0 in s.capture_epochs:
        save_features(0)
    bar = tqdm(range(1, tc.epochs + 1), desc=f"{cfg.name} seed {cfg.seed}", unit="epoch",
               disable=not progress, leave=False, dynamic_ncols=True)
    model.train()
    for epoch in bar:
        t0, total = time.perf_counter(), torch.zeros((), device=s.device)
        for xb, yb in batches(x["train"], y["train"], tc.batch_size, shuffle):
            if tc.input_noise > 0:
                xb = xb + tc.input_noise * torch.randn(xb.shape, generator=noise).to(s.device)
            logits, targets = s.mixer(model, xb, F.one_hot(yb, K).float())
            loss = soft_target_loss(tc.loss, logits, targets)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.detach() * len(xb)
        train_loss = total.item() / len(x["train"])
        accuracy, nll = evaluate(model, x["test"], y["test"])
        run.log_epoch({"epoch": epoch, "train_loss": train_loss, "test_accuracy": accuracy,
                       "test_nll": nll, "seconds": round(time.perf_counter() - t0, 4)})
        bar.set_postfix(loss=f"{train_loss:.3f}", acc=f"{accuracy:.3f}", refresh=False)
        if epoch in s.capture_epochs:
            save_features(epoch)
    with atomic_path(Path(out) / "checkpoint.pt", durable=True) as tmp:
        torch.save({"format": 1, "epoch": tc.epochs, "config": plain,
                    "model": model.state_dict()}, tmp)
    run.finish(time.perf_counter() - started)
    return "trained"
