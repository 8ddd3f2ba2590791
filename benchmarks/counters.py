"""How often one `repflat run` reads, parses, validates and hashes the same thing.

Runs `repflat run EXPERIMENT --out TMP --figures none` (or `--figures`) in this process (runs trained
one after another, here) with the functions that do each piece of work wrapped in
counters (in their own module and wherever a repflat module imported them by name;
a recursive function counts its outermost calls) and an audit hook counting opens of
the experiment's and the run directory's files, by phase (training, then analysis);
then prints each count per run, per array or per spectrum, where that is what it
should be once of:

- experiment file (the one given, and OUT/experiment.yaml): opened, parsed;
- per run: `config.yaml`, `run.json`, `metrics.csv` read and written,
  `features/manifest.json` read and written, the directory prepared
  (`prepare_run_dir`), the run's config made plain (`to_plain` of its RunConfig);
- per saved array: hashed (`sha256_file` of a .npy file), the most any one array was (in
  all, and while training and while analysing);
- per spectrum: validated (`as_spectrum`);
- comparisons of arms against the baseline: computed (`stats.difference`).

An atomic write opens its temporary file twice (created, then written): "written"
counts are twice the files written.

    python benchmarks/counters.py [--experiment experiments/spirals.yaml] [--json]

tests/test_counters.py runs it on a tiny experiment and holds the counts down.
"""
from __future__ import annotations

import argparse
import collections
import functools
import importlib
import inspect
import json
import os
import re
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FILES = ("config.yaml", "run.json", "metrics.csv", "manifest.json")
COUNTED = ("sha256_file", "to_plain", "parse_experiment", "prepare_run_dir", "as_spectrum",
           "difference")
"""Functions counted, found by name in the modules below (where each lives may move)."""
MODULES = ("repflat.cli", "repflat.cli.commands", "repflat.training.loop", "repflat.training.sweep",
           "repflat.analysis.pipeline", "repflat.analysis.report.outputs",
           "repflat.analysis.report.build", "repflat.analysis.stats", "repflat.analysis.moments",
           "repflat.analysis.spectra")
PHASES = {"run_experiment": "training", "analyze": "analysis"}
"""Functions whose calls are a phase of the command (what is read while each runs)."""


def _load(names) -> None:
    for name in names:
        try:
            importlib.import_module(name)
        except ImportError:
            pass


def _repflat_modules() -> list:
    return [m for k, m in list(sys.modules.items()) if k == "repflat" or k.startswith("repflat.")]


def counting(calls: collections.Counter, hashed: collections.Counter, phase: list,
             settle: bool = False) -> None:
    """Replace each counted function, in every loaded repflat module that holds it, by a
    wrapper that counts its outermost calls (a profile hook slowed training tenfold)."""
    _load(MODULES)
    wrappers: dict = {}
    depth: collections.Counter = collections.Counter()

    def wrap(function, name):
        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            if depth[name] == 0:
                calls[name] += 1
                if name == "to_plain" and args:  # to_plain(RunConfig): making a run's config plain
                    calls[f"to_plain({type(args[0]).__name__})"] += 1
                if name == "sha256_file":
                    where = final_name(args[0] if args else kwargs["path"])
                    hashed[phase[-1] if phase else "setup", where] += 1
            depth[name] += 1
            try:
                return function(*args, **kwargs)
            finally:
                depth[name] -= 1
        return wrapper

    def in_phase(function, name):
        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            if settle and PHASES[name] == "analysis":  # every file written before is settled
                import time

                files = sys.modules.get("repflat.files")  # (a version before it: two seconds)
                time.sleep(getattr(files, "SETTLED_NS", 2_000_000_000) / 1e9 + 0.1)
            phase.append(PHASES[name])
            try:
                return function(*args, **kwargs)
            finally:
                phase.pop()
        return wrapper

    for module in _repflat_modules():
        for attr, value in list(vars(module).items()):
            if not inspect.isfunction(value) or not value.__module__.startswith("repflat"):
                continue
            name = value.__name__
            if name in COUNTED:
                wrappers.setdefault(value, wrap(value, name))
            elif name in PHASES and value.__module__.startswith(("repflat.cli", "repflat.training")):
                wrappers.setdefault(value, in_phase(value, name))
            if value in wrappers:
                setattr(module, attr, wrappers[value])


TEMPORARY = re.compile(r"^\.(?P<name>.+)\.\d+(\.[0-9a-f]{16}\.repflat-tmp|\.tmp)$")
"""A writer's temporary, `.NAME.PID.TOKEN.repflat-tmp` (or `.NAME.PID.tmp`, as written
before repflat.files.TEMPORARY; --against an older revision)."""


def written_as(base: str) -> str:
    """The file name a temporary named `base` becomes (`base` itself otherwise)."""
    match = TEMPORARY.match(base)
    return match["name"] if match else base


def final_name(path) -> str:
    """The file a writer's temporary or partial (`NAME.partial`) becomes."""
    folder, base = os.path.split(os.fspath(path))
    return os.path.join(folder, written_as(base).removesuffix(".partial"))


def count(experiment: Path, out: Path, figures: str = "none", settle: bool = False) -> dict:
    """What one `repflat run` of `experiment` into `out` did, as counters."""
    calls: collections.Counter = collections.Counter()
    hashed: collections.Counter = collections.Counter()
    opens: collections.Counter = collections.Counter()
    phase: list[str] = []
    given = os.path.realpath(experiment)
    written = os.path.realpath(out / "experiment.yaml")

    def audit(event, args):
        if event != "open" or not isinstance(args[0], (str, bytes, os.PathLike)):
            return
        path = os.fsdecode(args[0])
        base = os.path.basename(path)
        flags = args[2] if isinstance(args[2], int) else 0
        mode = "write" if (flags & (os.O_WRONLY | os.O_RDWR)
                           or any(c in str(args[1] or "") for c in "wax+")) else "read"
        now = phase[-1] if phase else "setup"
        final = written_as(base)  # atomic writes open a temporary, then rename it
        if os.path.realpath(path) in (given, written) or (final != base and final == "experiment.yaml"):
            opens["experiment", mode, now] += 1
        if final in FILES:
            opens[final, mode, now] += 1

    counting(calls, hashed, phase, settle)
    sys.addaudithook(audit)  # cannot be removed: this process ends after one count
    from repflat.cli import main

    status = main(["run", str(experiment), "--out", str(out), "--quiet", "--figures", figures])
    runs = sorted((out / "runs").iterdir())
    arrays = 0
    for run in runs:
        manifest = json.loads((run / "features/manifest.json").read_text())
        arrays += len(manifest["entries"]) + len(manifest.get("discriminative", []))
        arrays += len(manifest.get("labels", {})) + len(manifest.get("indices", {}))
    import pandas as pd

    spectra = len(pd.read_csv(out / "analysis/spectra.csv")
                  .drop_duplicates(["run", "layer", "epoch", "group", "class"]))
    npy = {k: n for k, n in hashed.items() if k[1].endswith(".npy")}
    per_array = collections.Counter()
    for (_, path), n in npy.items():
        per_array[path] += n
    return {"status": status, "runs": len(runs), "arrays": arrays, "spectra": spectra,
            "calls": dict(calls), "opens": {"/".join(k): v for k, v in opens.items()},
            "arrays_hashed": sum(npy.values()), "most_hashes_of_one_array": max(per_array.values(), default=0),
            "most_hashes_of_one_array_while": {p: max((n for (ph, _), n in npy.items() if ph == p), default=0)
                                              for p in ("training", "analysis")},
            "other_files_hashed": sum(hashed.values()) - sum(npy.values())}


def rows(c: dict) -> list[tuple[str, int, int | None]]:
    """(what, count, the unit it should be once of) for the table."""
    n, o = c["runs"], c["opens"]

    def opened(what, mode, phase=None):
        return sum(v for k, v in o.items() if k.startswith(f"{what}/{mode}/")
                   and (phase is None or k.endswith("/" + phase)))

    out = [("experiment file opened", opened("experiment", "read"), 1),
           ("experiment parsed", c["calls"].get("parse_experiment", 0), 1)]
    for f in FILES:
        for phase in ("training", "analysis"):
            out.append((f"{f} read while {phase}", opened(f, "read", phase), n))
    out += [(f"{f} written (2 opens a file)", opened(f, "write"), n) for f in FILES]
    out += [("run directories prepared", c["calls"].get("prepare_run_dir", 0), n),
            ("run configs made plain (to_plain)", c["calls"].get("to_plain(RunConfig)", 0), n),
            ("arrays hashed", c["arrays_hashed"], c["arrays"]),
            ("most hashes of one array", c["most_hashes_of_one_array"], None),
            *[(f"  of them while {p}", n, None) for p, n in c["most_hashes_of_one_array_while"].items()],
            ("other files hashed (manifests)", c["other_files_hashed"], n),
            ("spectra validated (as_spectrum)", c["calls"].get("as_spectrum", 0), c["spectra"]),
            ("arm-against-baseline differences", c["calls"].get("difference", 0), None)]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiment", type=Path, default=ROOT / "experiments/spirals.yaml")
    parser.add_argument("--json", action="store_true", help="the counters as one JSON object")
    parser.add_argument("--figures", default="none", help="what `repflat run --figures` draws "
                        "(drawing reads features again)")
    parser.add_argument("--settle", action="store_true", help="wait before the analysis until "
                        "every file written is settled (repflat.files.SETTLED_NS), so what the "
                        "analysis hashes does not depend on how fast training was")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        counted = count(args.experiment, Path(tmp) / "exp", args.figures, args.settle)
    if counted["status"] != 0:
        raise SystemExit(f"repflat run exited with {counted['status']}")
    if args.json:
        print(json.dumps(counted))
        return
    print(f"{args.experiment.name}: {counted['runs']} runs, {counted['arrays']} saved arrays, "
          f"{counted['spectra']} spectra")
    print(f"{'what':<40} {'count':>7} {'per unit':>9}")
    for what, value, unit in rows(counted):
        per = f"{value / unit:.2f}" if unit else ""
        print(f"{what:<40} {value:>7} {per:>9}")


if __name__ == "__main__":
    main()
