"""Feature extraction against a plain forward pass, and its memory as the data grows.

1. Throughput: a torchvision ResNet-18 (10 classes) on 32×32 inputs, capturing
   `layer3` and `layer4` (flattened) with every row written to disk, checksums and
   manifest included (`repflat.capture.engine.capture_split`), against a plain eval
   forward pass over the same batches. Rounds alternate in one process; the ratio of
   the best times is printed. Target: extraction ≥ 0.9 × the plain pass's throughput.
2. Memory: the same extraction over N and 4N samples of a data set that makes each
   image on demand (so the data itself takes no memory), each in a fresh process; peak
   resident memory (VmHWM) is printed. Target: under 10% growth from N to 4N.

    python benchmarks/extract.py [--n 4096] [--rounds 4] [--memory-n 2048]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torchvision
from torch.utils.data import Dataset, TensorDataset

from repflat.capture.engine import capture_split
from repflat.rundir.features import FeatureWriter

LAYERS = ("layer3", "layer4")


class OnDemand(Dataset):
    """Image i is drawn from a generator seeded with i: nothing is held in memory."""

    def __init__(self, n: int):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        g = torch.Generator().manual_seed(i)
        return torch.randn(3, 32, 32, generator=g), i % 10


def model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torchvision.models.resnet18(num_classes=10).eval()


def extract_once(net, dataset, batch_size: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        capture_split(net, dataset, LAYERS, FeatureWriter(tmp), split="train", epoch=0,
                      device=torch.device("cpu"), batch_size=batch_size)
        return time.perf_counter() - start


@torch.no_grad()
def plain_once(net, x: torch.Tensor, batch_size: int) -> float:
    start = time.perf_counter()
    for i in range(0, len(x), batch_size):
        net(x[i:i + batch_size])
    return time.perf_counter() - start


def throughput(n: int, rounds: int, batch_size: int) -> None:
    net = model()
    x = torch.randn(n, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    dataset = TensorDataset(x, torch.arange(n) % 10)
    plain_once(net, x[:batch_size], batch_size)  # warm-up
    plain, extract = [], []
    for r in range(rounds):
        for kind in (("plain", "extract") if r % 2 == 0 else ("extract", "plain")):
            if kind == "plain":
                plain.append(plain_once(net, x, batch_size))
            else:
                extract.append(extract_once(net, dataset, batch_size))
    p, e = n / min(plain), n / min(extract)
    print(f"throughput, ResNet-18 32×32, {n} samples, batch {batch_size}, capturing "
          f"{'+'.join(LAYERS)} to disk: plain {p:.0f} samples/s, extraction {e:.0f} samples/s, "
          f"ratio {e / p:.3f} (target >= 0.9)")


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def memory_child(n: int, batch_size: int) -> None:
    extract_once(model(), OnDemand(n), batch_size)
    print(json.dumps({"n": n, "peak_mb": peak_rss_mb()}))


def memory(n: int, batch_size: int) -> None:
    peaks = {}
    for size in (n, 4 * n):
        out = subprocess.run([sys.executable, __file__, "--memory-child", str(size),
                              "--batch-size", str(batch_size)], check=True, capture_output=True,
                             text=True)
        peaks[size] = json.loads(out.stdout.strip().splitlines()[-1])["peak_mb"]
    growth = peaks[4 * n] / peaks[n] - 1
    print(f"peak resident memory: {n} samples {peaks[n]:.0f} MB, {4 * n} samples "
          f"{peaks[4 * n]:.0f} MB, growth {growth * 100:+.1f}% (target < 10%)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=4096)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--memory-n", type=int, default=2048)
    parser.add_argument("--memory-child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        memory_child(args.memory_child, args.batch_size)
        return
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    throughput(args.n, args.rounds, args.batch_size)
    memory(args.memory_n, args.batch_size)


if __name__ == "__main__":
    main()
