"""A 16-run sweep: `repflat run --jobs auto` against 16 `repflat train` commands in turn.

The sweep is experiments/spirals.yaml's network with manifold mixup swept over four α
and four seeds (a `grid`). Both sides run as subprocesses, so interpreter start-up and
imports count as they do for a user, and both train into fresh temporary directories;
one sequential side and one parallel side alternate `--repeats` times and the best of
each is compared. Target: a ratio of 1.7 or more on 2 cores. Other processes on the
machine make it noisy: run it on a quiet one.

    python benchmarks/sweep_throughput.py
    python benchmarks/sweep_throughput.py --epochs 100 --repeats 3
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def sweep_file(directory: Path, epochs: int | None) -> Path:
    source = yaml.safe_load((ROOT / "experiments/spirals.yaml").read_text())
    source |= {"name": "sweep_throughput", "seeds": [0, 1, 2, 3],
               "arms": {"manifold_mixup": source["arms"]["manifold_mixup"]},
               "grid": {"arms": ["manifold_mixup"], "params": {"mixing.alpha": [0.5, 1, 2, 4]}}}
    if epochs is not None:
        source["base"]["train"]["epochs"] = epochs
        source["base"]["capture"]["epochs"] = [e for e in source["base"]["capture"]["epochs"] if e <= epochs]
    path = directory / "sweep.yaml"
    path.write_text(yaml.safe_dump(source, sort_keys=False))
    return path


def repflat(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "repflat", *args], check=True, cwd=ROOT,
                   stdout=subprocess.DEVNULL)


def sequential(path: Path, out: Path) -> float:
    """Each run of the sweep as its own `repflat train` command, one after the other."""
    from repflat.config import load_experiment
    from repflat.rundir.names import run_dirname

    exp = load_experiment(path)
    start = time.perf_counter()
    for run in exp.runs:
        repflat("train", str(path), "--arm", run.name, "--seed", str(run.seed),
                "--out", str(out / run_dirname(run.name, run.seed)), "--quiet")
    return time.perf_counter() - start


def parallel(path: Path, out: Path) -> float:
    start = time.perf_counter()
    repflat("run", str(path), "--out", str(out), "--jobs", "auto", "--no-analysis", "--quiet")
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, help="override the spirals' 300 epochs")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--target", type=float, default=1.7, help="speed-up to meet")
    args = parser.parse_args()
    seq, par = [], []
    with tempfile.TemporaryDirectory() as tmp:
        path = sweep_file(Path(tmp), args.epochs)
        for i in range(args.repeats):
            seq.append(sequential(path, Path(tmp) / f"seq{i}"))
            par.append(parallel(path, Path(tmp) / f"par{i}"))
            assert len(list((Path(tmp) / f"par{i}" / "runs").iterdir())) == 16
    ratio = min(seq) / min(par)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"16 spirals runs on {os.cpu_count()} cores (load {load:.1f} at the end): "
          f"16 × repflat train {', '.join(f'{t:.1f}' for t in seq)} s; "
          f"repflat run --jobs auto {', '.join(f'{t:.1f}' for t in par)} s; "
          f"ratio {ratio:.2f}, target ≥ {args.target:g}: "
          + ("met" if ratio >= args.target else "NOT met"))


if __name__ == "__main__":
    main()
