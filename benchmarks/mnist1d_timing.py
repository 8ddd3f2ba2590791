"""MNIST-1D experiments timed (not named mnist1d.py: a script of that name, run as
`python benchmarks/...`, would shadow the mnist1d package it imports): what one epoch of each model and strategy costs, side by
side, and what the experiment files then take on this machine.

Each (model, strategy) of the experiment files trains for E epochs on the real data; the
epoch cost is the median of metrics.csv's `seconds` (each epoch's training and
evaluation, as the loop records it) and the rest of the run's time is its fixed part
(start-up, data generation, capture and the discriminative summaries). The
table gives every cost as a ratio to one ERM epoch of the MLP, measured in the same
process a moment apart, so a busy machine moves all rows together. The projection sums,
over every run of a file, its fixed part and epochs × its epoch cost (one job, one thread).
`--full FILE` also runs the file with `repflat run --jobs auto` and sets the measured time
beside the projection. Nothing is asserted about absolute times.

    OMP_NUM_THREADS=1 python benchmarks/mnist1d_timing.py
    python benchmarks/mnist1d_timing.py --full experiments/mnist1d_flattening.yaml
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FILES = ("experiments/mnist1d_baselines.yaml", "experiments/mnist1d_flattening.yaml")


def kind(run) -> tuple[str, str]:
    """What decides a run's epoch cost: its model and whether it mixes."""
    return run.model.name + ("-bottleneck" if getattr(run.model, "bottleneck", None) else ""), \
        "mix" if run.mixing.strategy != "none" else "erm"


def timed(run, epochs: int, where: Path) -> tuple[float, float]:
    """(median seconds of one epoch, seconds of the rest of the run)."""
    import pandas as pd

    from repflat.training.loop import train

    cfg = dataclasses.replace(run, train=dataclasses.replace(run.train, epochs=epochs,
                                                             checkpoint_every=epochs),
                              capture=dataclasses.replace(run.capture, epochs=()))
    start = time.perf_counter()
    train(cfg, where / run.name, progress=False)
    total = time.perf_counter() - start
    seconds = pd.read_csv(where / run.name / "metrics.csv")["seconds"]
    return float(seconds.median()), max(total - float(seconds.sum()), 0.0)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5, help="E: epochs of each timing run")
    parser.add_argument("--full", help="also run this experiment file end to end")
    args = parser.parse_args()
    from repflat.base.data import load_data
    from repflat.config import Mnist1dData, load_experiment

    start = time.perf_counter()
    load_data(Mnist1dData())
    print(f"data generation (5,000 sequences): {time.perf_counter() - start:.2f} s")
    experiments = [load_experiment(ROOT / f) for f in FILES]
    samples = {}
    for exp in experiments:
        for run in exp.runs:
            samples.setdefault(kind(run), run)
    cost = {}
    with tempfile.TemporaryDirectory() as tmp:
        for key, run in samples.items():
            cost[key] = timed(run, args.epochs, Path(tmp))
    unit = cost[("mlp", "erm")][0]
    print(f"\n{'model':<16}{'strategy':<10}{'epoch / MLP ERM epoch':>22}{'fixed part (s)':>16}")
    for (model, strategy), (per_epoch, fixed) in cost.items():
        print(f"{model:<16}{strategy:<10}{per_epoch / unit:>22.2f}{fixed:>16.1f}")
    print(f"(one MLP ERM epoch: {unit * 1e3:.0f} ms; {torch_threads()} torch thread(s), "
          f"{os.cpu_count()} cores)\n")
    for exp in experiments:
        total = sum(cost[kind(r)][1] + r.train.epochs * cost[kind(r)][0] for r in exp.runs)
        print(f"{exp.name}: {len(exp.runs)} runs, projected {total / 60:.1f} min on one job")
    if args.full:
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "repflat", "run", args.full, "--out", tmp,
                            "--jobs", "auto", "--quiet"], check=True, cwd=ROOT)
            print(f"{Path(args.full).stem} end to end, --jobs auto: "
                  f"{(time.perf_counter() - start) / 60:.1f} min")


def torch_threads() -> int:
    import torch

    return torch.get_num_threads()


if __name__ == "__main__":
    main()
