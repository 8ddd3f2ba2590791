"""One manifold mixup training step against one ERM step: same model, same batch.

The paper says manifold mixup adds no significant computation. Steps of the two kinds
alternate one by one within one process (the order flips every pair), so machine
noise hits both alike; the ratio of the median step times is printed. Target: <= 1.05.

Two models: the spirals MLP of experiments/spirals.yaml (tiny, so per-call Python
overhead is a large share of a step) and the Appendix G MLP (3 × FC-1024 → 12 →
4 × FC-1024) on 8×8 inputs, where the arithmetic dominates.

    python benchmarks/mixing_step.py [--pairs 3000]
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from repflat.training.mixing import Mixup, NoMixing
from repflat.training.models.mlp import MLP
from repflat.rundir.names import INPUT


def one_step(model, optimizer, mixer, x, y, n_classes) -> float:
    start = time.perf_counter()
    logits, targets = mixer(model, x, F.one_hot(y, n_classes).float())
    loss = F.cross_entropy(logits, targets)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return time.perf_counter() - start


def compare(name, model, x, y, n_classes, pairs):
    """Median step time of each mixer over `pairs` ERM/mixup step pairs, order alternating."""
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    mixers = {"erm": NoMixing(),
              "manifold_mixup": Mixup((INPUT, *model.hidden_layers), 2.0,
                                      torch.Generator().manual_seed(0))}
    times = {k: [] for k in mixers}
    for i in range(pairs + pairs // 10):
        for k in (list(mixers) if i % 2 == 0 else list(mixers)[::-1]):
            t = one_step(model, optimizer, mixers[k], x, y, n_classes)
            if i >= pairs // 10:  # the first tenth warms caches and the allocator
                times[k].append(t)
    erm, mm = statistics.median(times["erm"]), statistics.median(times["manifold_mixup"])
    print(f"{name:<30} ERM {erm * 1e6:9.1f} µs/step   manifold mixup {mm * 1e6:9.1f} µs/step"
          f"   ratio {mm / erm:.3f}  (target <= 1.05, {pairs} pairs)")
    return mm / erm


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=3000,
                        help="step pairs for the spirals MLP (a tenth of it for the wide one)")
    args = parser.parse_args()
    torch.set_flush_denormal(True)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch 100")
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    spirals = MLP(2, 2)  # experiments/spirals.yaml's widths: 64, 64, bottleneck 2, 64, 64
    compare("spirals MLP (2-64-64-2-64-64)", spirals, torch.randn(100, 2, generator=g),
            torch.randint(2, (100,), generator=g), 2, args.pairs)
    wide = MLP(64, 10, (1024,) * 3, 12, (1024,) * 4, activation="leaky_relu")
    compare("Appendix G MLP (1024, 12)", wide, torch.randn(100, 64, generator=g),
            torch.randint(10, (100,), generator=g), 10, max(args.pairs // 10, 20))


if __name__ == "__main__":
    main()
