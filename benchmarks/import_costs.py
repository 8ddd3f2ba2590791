"""What importing the heavy dependencies costs, each in a fresh interpreter.

repflat imports each of these only where it is used (`run --check` on spirals, `train
--check`, the analysis side never pay for what they do not use); the code says so where
it defers an import and points here for the numbers:

- torchvision: models by name and image data sets (repflat.training.models);
- sklearn.datasets: the toy sets' generators (repflat.config.toy) and digits;
- torch._dynamo: loaded by torch's first optimizer (repflat.training.loop.Setup);
- umap: the UMAP embedding of the report, where it is installed.

Each line: the best of `--repeats` fresh interpreters, minus the same interpreter
importing only what the measured import needs first (torch for torch._dynamo).

    python benchmarks/import_costs.py [--repeats 3]
"""
from __future__ import annotations

import argparse
import subprocess
import sys

CASES = {  # what is measured: (code timed, code run first, untimed)
    "torchvision": ("import torchvision", "import torch"),
    "sklearn.datasets": ("import sklearn.datasets", "import numpy"),
    "torch._dynamo (first optimizer)": ("torch.optim.Adam(torch.nn.Linear(2, 2).parameters())",
                                        "import torch"),
    "umap": ("import umap", "import numpy"),
}
TIMER = ("import time\n{before}\nt = time.perf_counter()\n{code}\n"
         "print(time.perf_counter() - t)")


def seconds(code: str, before: str, repeats: int) -> float | None:
    best = None
    for _ in range(repeats):
        done = subprocess.run([sys.executable, "-c", TIMER.format(before=before, code=code)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            return None  # not installed
        t = float(done.stdout.strip().splitlines()[-1])
        best = t if best is None else min(best, t)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    for name, (code, before) in CASES.items():
        t = seconds(code, before, args.repeats)
        print(f"{name:<34} {'not installed' if t is None else f'{t:.2f} s'}")


if __name__ == "__main__":
    main()
