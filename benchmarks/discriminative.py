"""The cost of the discriminative capture against plain feature capture.

A training run's capture saves each layer's features (`repflat.capture.engine.
capture_split`: one eval forward pass per batch) and, with `capture.discriminative`
(the default), each layer's per-class Jacobian summary (`repflat.capture.discriminative`:
one forward and K backward passes per batch for all layers together, plus K · d²
float64 accumulated per layer). Both are timed side by side in one process, rounds
alternating, best of the rounds; the ratio (discriminative / plain) is printed for

- the spirals MLP (2 → 64 → 64 → 2 → 64 → 64 → K), layers fc1, fc2, bottleneck, fc3, fc4,
  2,000 rows;
- torchvision's ResNet-18 on 32×32 inputs, layers layer1..layer4 read with reduce avg
  (64–512 features), 512 rows;

at K = 2, 10 and 100. Times are seconds per pass over the rows on this machine's threads.

    python benchmarks/discriminative.py [--rounds 3]
"""
from __future__ import annotations

import argparse
import tempfile
import time

import torch
import torchvision
from torch.utils.data import TensorDataset

from repflat.capture.discriminative import class_jacobian_summaries
from repflat.capture.engine import batch_indices, capture_split, iterate
from repflat.rundir.features import FeatureWriter
from repflat.training.models.mlp import MLP


def cases(K: int):
    g = torch.Generator().manual_seed(0)
    mlp = MLP(2, K)
    yield ("spirals MLP", mlp, ["fc1", "fc2", "bottleneck", "fc3", "fc4"], "flatten",
           TensorDataset(torch.randn(2000, 2, generator=g), torch.randint(0, K, (2000,), generator=g)))
    resnet = torchvision.models.resnet18(num_classes=K)
    yield ("ResNet-18 32×32", resnet, ["layer1", "layer2", "layer3", "layer4"], "avg",
           TensorDataset(torch.randn(512, 3, 32, 32, generator=g), torch.randint(0, K, (512,), generator=g)))


def plain(model, layers, reduce, ds) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        capture_split(model, ds, layers, FeatureWriter(tmp), split="train", epoch=0,
                      device=torch.device("cpu"), batch_size=256, reduce=reduce)
        return time.perf_counter() - t0


def discriminative(model, layers, reduce, ds, K) -> float:
    t0 = time.perf_counter()
    class_jacobian_summaries(model, iterate(ds, batch_indices(len(ds), 256), 0), layers, K,
                             device=torch.device("cpu"), reduce=reduce)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, best of {args.rounds} rounds")
    print(f"{'model':<18} {'K':>3} {'plain s':>9} {'discr. s':>9} {'ratio':>7}")
    for K in (2, 10, 100):
        for name, model, layers, reduce, ds in cases(K):
            model.eval()
            a, b = [], []
            for _ in range(args.rounds):
                a.append(plain(model, layers, reduce, ds))
                b.append(discriminative(model, layers, reduce, ds, K))
            print(f"{name:<18} {K:>3} {min(a):>9.3f} {min(b):>9.3f} {min(b) / min(a):>6.1f}×")


if __name__ == "__main__":
    main()
