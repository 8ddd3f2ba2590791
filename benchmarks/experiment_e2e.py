"""An experiment end to end, timed: `repflat run EXPERIMENT` in a fresh directory.

Training, capture, analysis, figures and report, as a subprocess (so interpreter
start-up and imports count, as they do for a user), with `--jobs auto` as `make demo`
runs it. Defaults: the spirals
reproduction, target under 60 s on a 2-core machine. The digits bottleneck experiment's
target is 10 minutes:

    python benchmarks/experiment_e2e.py
    python benchmarks/experiment_e2e.py --experiment experiments/digits_bottleneck.yaml --target 600
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiment", default=str(ROOT / "experiments/spirals.yaml"))
    parser.add_argument("--target", type=float, default=60.0, help="seconds")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--keep", help="write the results here instead of a temporary directory")
    parser.add_argument("--jobs", default="auto", help="passed to repflat run (make demo uses auto)")
    args = parser.parse_args()
    times = []
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as tmp:
            out = args.keep or tmp
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "repflat", "run", args.experiment, "--out", out,
                            "--jobs", args.jobs, "--quiet"], check=True, cwd=ROOT)
            times.append(time.perf_counter() - start)
            assert (Path(out) / "analysis/report.html").is_file()
    best = min(times)
    print(f"{Path(args.experiment).stem} end to end ({os.cpu_count()} cores): "
          + ", ".join(f"{t:.1f} s" for t in times)
          + f"; best {best:.1f} s, target < {args.target:g} s: "
          + ("met" if best < args.target else "NOT met"))


if __name__ == "__main__":
    main()
