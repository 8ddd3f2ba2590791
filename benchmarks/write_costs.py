"""What writing a run's metrics.csv costs against what an epoch of a small run costs.

RunWriter rewrites metrics.csv atomically (a temporary file, then os.replace) when a
capture or a checkpoint needs it on disk, or a second after its last write, not every
epoch (repflat.rundir.run.RunWriter.log_epoch): the spirals MLP's epochs are short
enough for the rewrite to show.

Prints the median time of one epoch of experiments/spirals.yaml's first arm (training
and its test metrics) and of one atomic rewrite of a 300-row metrics.csv, and their
ratio.

    python benchmarks/write_costs.py [--epochs 30]
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def rewrite_seconds(rows: int, repeats: int = 50) -> float:
    from repflat.rundir.names import RunState
    from repflat.rundir.run import RunWriter

    row = {"epoch": 1, "lr": 0.003, "train_loss": 0.123456789, "test_accuracy": 0.99,
           "test_error": 0.01, "test_nll": 0.0456789, "seconds": 0.0123}
    with tempfile.TemporaryDirectory() as tmp:
        writer = RunWriter(tmp, {"name": "x", "seed": 0, "mixing": {"strategy": "none"}}, RunState.NEW)
        writer.rows = [row] * rows
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            writer._write_rows()
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def epoch_seconds(epochs: int) -> float:
    import dataclasses

    from repflat.config import load_experiment
    from repflat.training.loop import train

    cfg = load_experiment(ROOT / "experiments/spirals.yaml").runs[0]
    cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, epochs=epochs),
                              capture=dataclasses.replace(cfg.capture, epochs=()))
    with tempfile.TemporaryDirectory() as tmp:
        train(cfg, Path(tmp) / "run", progress=False)
        import csv

        with open(Path(tmp) / "run/metrics.csv") as fh:
            return statistics.median(float(r["seconds"]) for r in csv.DictReader(fh))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    args = parser.parse_args()
    epoch, write = epoch_seconds(args.epochs), rewrite_seconds(300)
    print(f"one epoch of spirals (median of {args.epochs}): {epoch * 1e3:.1f} ms")
    print(f"one atomic rewrite of 300 metrics rows:        {write * 1e3:.1f} ms "
          f"({write / epoch:.0%} of an epoch)")


if __name__ == "__main__":
    main()
