"""How often one `repflat run` reads, parses, validates and hashes the same thing.

Runs `repflat run EXPERIMENT --out TMP --figures none` in this process (runs trained
one after another, here) with the functions that do each piece of work wrapped in
counters (in their own module and wherever a repflat module imported them by name) and
an audit hook counting opens of the run directory's files, then prints each count, per
run or per array where that is what it should be once of:

- experiment file: opened, parsed (`parse_experiment`);
- per run: `config.yaml`, `run.json`, `metrics.csv` opened, `features/manifest.json`
  read and written, the config made plain (`to_plain`);
- per saved array: hashed (`sha256_file`), opened;
- per spectrum: validated (`as_spectrum`);
- comparisons of arms against the baseline: computed (`stats.difference`).

    python benchmarks/counters.py [--experiment experiments/spirals.yaml]
"""
from __future__ import annotations

import argparse
import collections
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FILES = ("config.yaml", "run.json", "metrics.csv", "manifest.json")


def functions() -> dict:
    """{function: name} of the functions counted."""
    import repflat.analysis.moments as moments
    import repflat.analysis.stats as stats
    import repflat.config._strict as strict
    import repflat.config.loading as loading
    import repflat.rundir.files as files

    return {files.sha256_file: "sha256_file", moments.as_spectrum: "as_spectrum",
            strict.to_plain: "to_plain", loading.parse_experiment: "parse_experiment",
            stats.difference: "stats.difference"}


def counting(calls: collections.Counter) -> None:
    """Replace each counted function, in every loaded repflat module that holds it, by a
    wrapper that counts its calls (a profile hook slowed training tenfold)."""
    import functools

    import repflat.cli  # noqa: F401 - loads the modules that hold the functions
    import repflat.analysis.pipeline  # noqa: F401
    import repflat.training.loop  # noqa: F401

    for function, name in functions().items():
        @functools.wraps(function)
        def wrapper(*args, _f=function, _name=name, **kwargs):
            calls[_name] += 1
            return _f(*args, **kwargs)

        for module in [m for k, m in sys.modules.items() if k.startswith("repflat")]:
            for attr, value in list(vars(module).items()):
                if value is function:
                    setattr(module, attr, wrapper)


def count(experiment: Path, out: Path) -> tuple[collections.Counter, collections.Counter, int]:
    """(calls, opens, status) of one `repflat run` of `experiment` into `out`."""
    calls: collections.Counter = collections.Counter()
    opens: collections.Counter = collections.Counter()
    name = experiment.name

    def audit(event, args):
        if event != "open" or not isinstance(args[0], (str, bytes, os.PathLike)):
            return
        path = os.fsdecode(args[0])
        base = os.path.basename(path)
        flags = args[2] if isinstance(args[2], int) else 0
        write = bool(flags & (os.O_WRONLY | os.O_RDWR)) or any(c in str(args[1] or "") for c in "wax+")
        if base == name:
            opens["experiment", "write" if write else "read"] += 1
        for f in FILES:  # atomic writes open `.NAME.PID.tmp`
            if base == f or (base.startswith(f".{f}.") and base.endswith(".tmp")):
                opens[f, "write" if write else "read"] += 1
        if base.endswith(".npy"):
            opens["*.npy", "write" if write else "read"] += 1

    counting(calls)
    sys.addaudithook(audit)  # cannot be removed: this process ends after one count
    from repflat.cli import main

    status = main(["run", str(experiment), "--out", str(out), "--quiet", "--figures", "none"])
    return calls, opens, status


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiment", type=Path, default=ROOT / "experiments/spirals.yaml")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        calls, opens, status = count(args.experiment, Path(tmp) / "exp")
        runs = sorted((Path(tmp) / "exp/runs").iterdir())
        arrays = spectra = 0
        for run in runs:
            import json

            manifest = json.loads((run / "features/manifest.json").read_text())
            arrays += len(manifest["entries"]) + len(manifest.get("discriminative", []))
        import pandas as pd

        spectra = len(pd.read_csv(Path(tmp) / "exp/analysis/spectra.csv")
                      .drop_duplicates(["run", "layer", "epoch", "group", "class"]))
    if status != 0:
        raise SystemExit(f"repflat run exited with {status}")
    n = len(runs)
    print(f"{args.experiment.name}: {n} runs, {arrays} saved arrays, {spectra} spectra")
    rows = [("experiment file opened", opens["experiment", "read"], 1),
            ("experiment parsed", calls["parse_experiment"], 1),
            *[(f"{f} read", opens[f, "read"], n) for f in FILES],
            *[(f"{f} written", opens[f, "write"], n) for f in FILES],
            ("config made plain (to_plain)", calls["to_plain"], n),
            ("arrays hashed", calls["sha256_file"], arrays),
            ("spectra validated (as_spectrum)", calls["as_spectrum"], spectra),
            ("arm-against-baseline differences", calls["stats.difference"], None)]
    print(f"{'what':<34} {'count':>7} {'per unit':>9}")
    for what, value, unit in rows:
        per = f"{value / unit:.2f}" if unit else ""
        print(f"{what:<34} {value:>7} {per:>9}")


if __name__ == "__main__":
    main()
