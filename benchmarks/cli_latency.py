"""How fast the CLI answers, timed as a user meets it: each command a fresh subprocess, so
interpreter start-up and imports count.

    python benchmarks/cli_latency.py            # all of it (~1-2 minutes on 2 cores)
    python benchmarks/cli_latency.py --no-demo  # the quick answers only
    python benchmarks/cli_latency.py --imports  # what each heavy library costs to import

Measured side by side in one run (this machine may be shared; the reference line is the
same machine's `python -c "import yaml"`):

    YAML typo -> error message          target <= 1.0 s
    run --check on spirals.yaml         target <= 2 s
    analyze --figures none, one run     target <= 2 s
    make demo path (run spirals, auto)  target <= 25 s, with where the time goes:
                                        training, analysis, each figure, the report

and, with --imports, the import time of each library repflat imports only where it is
used (scipy.stats for intervals, scikit-learn for embeddings, umap-learn, matplotlib and
seaborn for figures, torchvision for its models): the measurements behind those choices.
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
SPIRALS = ROOT / "experiments/spirals.yaml"


def timed(*argv: str, expect: int = 0, repeats: int = 3) -> tuple[float, str]:
    """Best wall time of `argv` over `repeats` runs, and the last run's output."""
    best, out = float("inf"), ""
    for _ in range(repeats):
        start = time.perf_counter()
        done = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT,
                              env=os.environ | {"PYTHONDONTWRITEBYTECODE": "1"})
        best = min(best, time.perf_counter() - start)
        out = done.stdout + done.stderr
        if done.returncode != expect:
            sys.exit(f"{' '.join(argv)}: exit {done.returncode}, expected {expect}\n{out}")
    return best, out


def line(what: str, seconds: float, target: float | None = None, reference: float | None = None) -> None:
    extra = f", {seconds / reference:.1f}× the reference" if reference else ""
    verdict = "" if target is None else f"; target <= {target:g} s: " + ("met" if seconds <= target else "NOT met")
    print(f"{what:<38} {seconds:6.2f} s{extra}{verdict}", flush=True)


def repflat(*argv: str, **kw) -> tuple[float, str]:
    return timed(sys.executable, "-m", "repflat", *argv, **kw)


def one_run_experiment(tmp: Path) -> Path:
    """spirals.yaml with one arm and one seed: the run `analyze` is timed on."""
    exp = yaml.safe_load(SPIRALS.read_text())
    exp["seeds"], exp["arms"] = [0], {"erm": exp["arms"]["erm"]}
    path = tmp / "one.yaml"
    path.write_text(yaml.safe_dump(exp))
    return path


def demo_breakdown(tmp: Path) -> None:
    """The demo path end to end, then the same work split into its phases."""
    total, _ = repflat("run", str(SPIRALS), "--out", str(tmp / "demo"), "--jobs", "auto", "--quiet",
                       repeats=1)
    line("make demo path (run spirals, auto)", total, 25)
    train, _ = repflat("run", str(SPIRALS), "--out", str(tmp / "parts"), "--jobs", "auto",
                       "--no-analysis", "--quiet", repeats=1)
    print(f"  training, 9 runs on 2 processes      {train:6.2f} s")
    tables, _ = repflat("analyze", str(tmp / "parts"), "--figures", "none", "--quiet", repeats=1)
    print(f"  analysis, tables and report only     {tables:6.2f} s")
    figures, log = repflat("report", str(tmp / "parts"), repeats=1)
    print(f"  report from the tables, all figures  {figures:6.2f} s")
    for said in re.findall(r"^figures: .*$", log, flags=re.M):  # the drawing itself
        print(f"    {said}")
    print("  (each phase is a new process: imports counted in each, once in the total)")


LAZY_IMPORTS = ("scipy.stats", "sklearn.manifold", "umap", "matplotlib.pyplot", "seaborn",
                "torch", "torchvision")
"""Imported only where used; why: the time each takes, printed by --imports."""


def import_costs(reference: float) -> None:
    for module in LAZY_IMPORTS:
        seconds, _ = timed(sys.executable, "-c", f"import {module}")
        line(f"import {module}", seconds, reference=reference)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-demo", action="store_true", help="skip the end-to-end demo timing")
    parser.add_argument("--imports", action="store_true",
                        help="only the import time of each library imported where it is used")
    args = parser.parse_args()
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        reference, _ = timed(sys.executable, "-c", "import yaml")
        line('reference: python -c "import yaml"', reference)
        if args.imports:
            import_costs(reference)
            return

        typo = tmp / "typo.yaml"
        typo.write_text(SPIRALS.read_text().replace("lr: 0.003", "learning_rat: 0.003"))
        seconds, out = repflat("run", str(typo), "--out", str(tmp / "typo"), expect=2)
        assert re.search(r"typo.yaml:\d+:\d+: .*learning_rat", out), out
        line("YAML typo -> error message", seconds, 1.0, reference)
        broken = tmp / "broken.yaml"
        broken.write_text(SPIRALS.read_text().replace("epochs: 300", "epochs: [300"))
        seconds, out = repflat("run", str(broken), "--out", str(tmp / "broken"), expect=2)
        line("YAML syntax error -> error message", seconds, 1.0, reference)

        seconds, _ = repflat("run", str(SPIRALS), "--check")
        line("run --check spirals.yaml", seconds, 2.0, reference)

        one = one_run_experiment(tmp)
        repflat("run", str(one), "--out", str(tmp / "one"), "--no-analysis", "--quiet", repeats=1)
        run = tmp / "one/runs/erm-seed0"
        seconds, _ = repflat("analyze", str(run), "--figures", "none", "--out", str(tmp / "a"),
                             "--quiet")
        line("analyze --figures none, one run", seconds, 2.0, reference)
        if not args.no_demo:
            demo_breakdown(tmp)


if __name__ == "__main__":
    main()
