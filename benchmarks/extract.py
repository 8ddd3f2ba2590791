"""Feature extraction against a plain forward pass, and its memory as the data grows.

1. Throughput: a torchvision ResNet-18 (10 classes) on 32×32 inputs, capturing
   `layer3` and `layer4` (flattened) with every row written to disk, checksums and
   manifest included (`repflat.capture.engine.capture_split`), against a plain eval
   forward pass over the same batches. Rounds alternate in one process; the ratio of
   the best times is printed. Target: extraction ≥ 0.9 × the plain pass's throughput.
2. In memory, side by side in one process (rounds alternating, best of each): a plain
   forward pass; hand-written forward hooks; torchvision's `create_feature_extractor`;
   repflat's capture as it was at `--against REV` (default 7c9e2c2, before issue 19: its
   `repflat/` taken from git and imported under another name); and repflat's capture now,
   by module names, with an FX function node beside them (one traced copy reads all),
   and from a shuffled DataLoader (the sampler's order, rows' indices kept). Each
   throughput is printed as a ratio to the plain pass, and now against then. Target: now
   within 10% of then, and near the FX extractor.
3. Memory: the same extraction over N and 4N samples of a data set that makes each
   image on demand (so the data itself takes no memory), each in a fresh process; peak
   resident memory (VmHWM) is printed. Target: under 10% growth from N to 4N.

    python benchmarks/extract.py [--n 4096] [--rounds 4] [--memory-n 2048]
                                 [--side-n 1024] [--against REV]
"""
from __future__ import annotations

import argparse
import importlib
import io
import json
import re
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torchvision
from torch.utils.data import DataLoader, Dataset, TensorDataset
from torchvision.models.feature_extraction import create_feature_extractor

from repflat.capture.engine import capture_arrays, capture_split
from repflat.capture.inputs import loader_rows
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


def repflat_at(rev: str):
    """repflat's capture engine as it was at git revision `rev`, imported as
    `repflat_then` (its `repflat/` from `git archive`, imports renamed)."""
    root = Path(__file__).resolve().parent.parent
    archive = subprocess.run(["git", "-C", str(root), "archive", rev, "repflat"], check=True,
                             capture_output=True).stdout
    where = Path(tempfile.mkdtemp(prefix="repflat_then_"))
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(where, filter="data")
    (where / "repflat").rename(where / "repflat_then")
    for path in (where / "repflat_then").rglob("*.py"):
        path.write_text(re.sub(r"\brepflat\b(?=[. ])", "repflat_then", path.read_text()))
    sys.path.insert(0, str(where))
    return importlib.import_module("repflat_then.capture.engine")


def by_hooks(net, x: torch.Tensor, batch_size: int) -> dict[str, np.ndarray]:
    """Hand-written forward hooks: each layer's output, flattened, into preallocated arrays."""
    out = {layer: None for layer in LAYERS}
    row = [0]

    def keep(layer):
        def hook(module, args, output):
            flat = output.reshape(len(output), -1)
            if out[layer] is None:
                out[layer] = np.empty((len(x), flat.shape[1]), np.float32)
            out[layer][row[0]:row[0] + len(flat)] = flat.numpy()
        return hook

    handles = [net.get_submodule(layer).register_forward_hook(keep(layer)) for layer in LAYERS]
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            row[0] = i
            net(x[i:i + batch_size])
    for h in handles:
        h.remove()
    return out


def by_fx(extractor, x: torch.Tensor, batch_size: int) -> dict[str, np.ndarray]:
    """torchvision's create_feature_extractor, its outputs copied into arrays."""
    out: dict[str, np.ndarray] = {}
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            for layer, t in extractor(x[i:i + batch_size]).items():
                flat = t.reshape(len(t), -1).numpy()
                if layer not in out:
                    out[layer] = np.empty((len(x), flat.shape[1]), np.float32)
                out[layer][i:i + len(flat)] = flat
    return out


def side_by_side(n: int, rounds: int, batch_size: int, against: str) -> None:
    net = model()
    x = torch.randn(n, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    dataset = TensorDataset(x, torch.arange(n) % 10)
    shuffled = loader_rows(DataLoader(dataset, batch_size=batch_size, shuffle=True,
                                      generator=torch.Generator().manual_seed(0)), "data")
    then = repflat_at(against)
    then_extract = importlib.import_module("repflat_then.capture.extract").extract
    from repflat.capture.extract import extract
    extractor = create_feature_extractor(net, {layer: layer for layer in LAYERS}).eval()
    cpu = torch.device("cpu")
    cases = {
        "plain forward": lambda: plain_once(net, x, batch_size),
        "hand-written hooks": lambda: by_hooks(net, x, batch_size),
        "torchvision FX extractor": lambda: by_fx(extractor, x, batch_size),
        f"repflat then ({against})": lambda: then.capture_arrays(
            net, dataset, LAYERS, split="train", device=cpu, batch_size=batch_size),
        "repflat now, modules": lambda: capture_arrays(
            net, dataset, LAYERS, split="train", device=cpu, batch_size=batch_size),
        "repflat now, + FX node": lambda: capture_arrays(
            net, dataset, (*LAYERS, "layer4.1.add"), split="train", device=cpu, batch_size=batch_size),
        "repflat now, shuffled loader": lambda: capture_arrays(
            net, shuffled, LAYERS, split="train", device=cpu, batch_size=None),
        f"extract() then ({against})": lambda: then_extract(
            net, LAYERS, dataset, batch_size=batch_size, progress=False),
        "extract() now": lambda: extract(
            net, LAYERS, dataset, splits="train", batch_size=batch_size, progress=False),
    }
    best = {name: float("inf") for name in cases}
    cases["plain forward"]()  # warm-up
    for r in range(rounds):
        for name in (list(cases) if r % 2 == 0 else list(cases)[::-1]):
            start = time.perf_counter()
            cases[name]()
            best[name] = min(best[name], time.perf_counter() - start)
    plain = best["plain forward"]
    print(f"in memory, ResNet-18 32×32, {n} samples, batch {batch_size}, {'+'.join(LAYERS)} "
          f"flattened, best of {rounds} alternating rounds:")
    for name, seconds in best.items():
        print(f"  {name:30s} {n / seconds:8.0f} samples/s   {plain / seconds:.3f} × plain")
    ratio = best[f"repflat then ({against})"] / best["repflat now, modules"]
    loader = best[f"repflat then ({against})"] / best["repflat now, shuffled loader"]
    whole = best[f"extract() then ({against})"] / best["extract() now"]
    fx = best["torchvision FX extractor"] / best["repflat now, modules"]
    print(f"  now / then (throughput): modules {ratio:.3f}, shuffled loader {loader:.3f}, "
          f"extract() {whole:.3f} (target >= 0.9); now / FX extractor {fx:.3f}")


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
    parser.add_argument("--side-n", type=int, default=1024)
    parser.add_argument("--against", default="7c9e2c2", help="git revision to compare with")
    parser.add_argument("--only", choices=("disk", "side", "memory"), help="one part alone")
    parser.add_argument("--memory-child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        memory_child(args.memory_child, args.batch_size)
        return
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    if args.only in (None, "disk"):
        throughput(args.n, args.rounds, args.batch_size)
    if args.only in (None, "side"):
        side_by_side(args.side_n, args.rounds, args.batch_size, args.against)
    if args.only in (None, "memory"):
        memory(args.memory_n, args.batch_size)


if __name__ == "__main__":
    main()
