"""The spirals reproduction end to end, timed: `repflat run experiments/spirals.yaml`.

Three strategies × the experiment's seeds, training, capture, analysis, figures and
report, in a fresh temporary directory, as a subprocess (so interpreter start-up and
imports count too, as they do for a user). Target: under 60 s on a 2-core machine.

    python benchmarks/spirals_e2e.py [--repeats 1]
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
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--experiment", default=str(ROOT / "experiments/spirals.yaml"))
    args = parser.parse_args()
    times = []
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "repflat", "run", args.experiment, "--out",
                            tmp, "--quiet"], check=True, cwd=ROOT)
            times.append(time.perf_counter() - start)
            assert (Path(tmp) / "analysis/figure1.png").is_file()
    best = min(times)
    print(f"spirals end to end ({os.cpu_count()} cores): "
          + ", ".join(f"{t:.1f} s" for t in times)
          + f"; best {best:.1f} s, target < 60 s: {'met' if best < 60 else 'NOT met'}")


if __name__ == "__main__":
    main()
