"""Finding the runs to analyse: run directories, experiment directories, feature sets.

A source is a run directory, an experiment directory (standing for all its runs), a
`FeatureSet` object (`Features` of a run directory, or `MemoryFeatures` held in memory,
e.g. from `repflat.extract(..., out=None)`), or a mapping {name: FeatureSet} naming each
set (the name is its run in the tables, and its arm unless the set says another).

A feature set that says which run it is (`fs.run`, a repflat.rundir.label.RunLabel from
`extract(..., arm=, strategy=, seed=, values=)`, from a directory's extract.yaml, or
from `fs.labelled(...)`) takes the path a repflat run takes: its arm, strategy and seed
are the run's, it is named `<arm>-seed<seed>` as `repflat run` names its runs, and its
swept values are an experiment grid's. One that does not reads as a run of unknown
strategy and seed. Features held in memory have no config and no training metrics.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from pathlib import Path

import pandas as pd

from repflat.config import AnalysisConfig
from repflat.config.grid import GridPoint
from repflat.errors import UserError, expected
from repflat.rundir.features import Features, FeatureSet
from repflat.rundir.label import RunLabel
from repflat.rundir.experiment import ExperimentDir, is_experiment_dir, read_experiment_dir
from repflat.rundir.run import RunInfo, read_run
from repflat.rundir.names import EXPERIMENT_FILE, MANIFEST, UNKNOWN, Status


def sources(paths) -> list:
    """`paths` as a list of sources: one path or FeatureSet alone, an iterable of them,
    or a mapping {name: FeatureSet} (as (name, FeatureSet) pairs); an experiment
    directory as its ExperimentDir, its experiment.yaml read once here."""
    if isinstance(paths, (str, Path, FeatureSet, ExperimentDir)):
        paths = [paths]
    if isinstance(paths, Mapping):
        for name, fs in paths.items():
            if not isinstance(name, str) or not isinstance(fs, FeatureSet):
                raise expected("paths", "a mapping of names to FeatureSet objects "
                               "(Features, MemoryFeatures)", f"{name!r}: {type(fs).__name__}")
        return list(paths.items())
    if not isinstance(paths, Iterable):
        raise expected("paths", "run or experiment directories, or FeatureSet objects",
                       type(paths).__name__)
    return [read_experiment_dir(p) if isinstance(p, (str, Path)) and Path(p).is_dir()
            and is_experiment_dir(p) and not (Path(p) / MANIFEST).is_file() else p
            for p in paths]


def memory_run(features: FeatureSet, name: str) -> RunInfo:
    """A set of features that is not a run directory, as a run named `name`: unknown
    strategy and seed, no config; its `path` is only the name (nothing is read there)."""
    if not name or Path(name).name != name or name in (".", ".."):
        raise expected("paths", "a name for the features without '/' (a run name in the "
                       "tables)", name)
    return RunInfo(Path(name), name, UNKNOWN, UNKNOWN, Status.UNKNOWN, None, features)


def with_label(run: RunInfo, label: RunLabel | None) -> RunInfo:
    """`run` with what `label` says of it (arm, strategy, seed, swept values) put first."""
    if label is None:
        return run
    return dataclasses.replace(
        run, name=label.arm or run.name,
        strategy=label.strategy if label.strategy != UNKNOWN else run.strategy,
        seed=label.seed if label.seed is not None else run.seed, values=label.values or run.values)


def label_points(runs: Iterable[RunInfo]) -> dict[str, GridPoint]:
    """{arm: GridPoint} of the runs whose labels give swept values: the arm varies its
    strategy (as an experiment's arm varies its template), or itself when that is
    unknown."""
    return {r.name: GridPoint(r.strategy if r.strategy != UNKNOWN else r.name, dict(r.values))
            for r in runs if r.values}


def nested(values: dict) -> dict:
    """Dotted swept keys as a config's nesting ({"mixing.alpha": 2} → {"mixing": {"alpha":
    2}}), so a labelled run matches its baseline as a run's config does."""
    out: dict = {}
    for key, value in values.items():
        *path, last = key.split(".")
        node = out
        for part in path:
            node = node.setdefault(part, {})
        if isinstance(node, dict):
            node[last] = value
    return out


def on_disk(run: RunInfo) -> bool:
    """Whether `run` is a run directory (else features held in memory)."""
    return isinstance(run.features, Features)


def _open(source) -> list[RunInfo]:
    if isinstance(source, tuple):  # (name, FeatureSet) from a mapping
        name, fs = source
        if isinstance(fs, Features):
            return [with_label(dataclasses.replace(read_run(fs.root), name=name), fs.run)]
        return [with_label(memory_run(fs, name), fs.run)]
    if isinstance(source, Features):
        return [with_label(read_run(source.root), source.run)]
    if isinstance(source, FeatureSet):
        label = source.run
        return [with_label(memory_run(source, label.run_id(source.where) if label else source.where),
                           label)]
    return []


def collect_runs(paths: Iterable[str | Path]) -> tuple[list[RunInfo], AnalysisConfig | None, str | None]:
    """Open every run named by `paths`.

    A path may be a run directory (it has features/manifest.json) or an experiment
    directory written by `repflat run` (it has experiment.yaml and runs/), which stands
    for all of its runs; FeatureSet objects and mappings are taken as the module
    docstring says. Returns the runs, and the analysis settings and name of the first
    experiment directory, if any.
    """
    runs: list[RunInfo] = []
    settings, name = None, None
    for raw in sources(paths):
        if isinstance(raw, (tuple, FeatureSet)):
            runs += _open(raw)
            continue
        if isinstance(raw, ExperimentDir):
            missing = [d.name for d in raw.run_paths if not (d / MANIFEST).is_file()]
            if missing:
                raise UserError(f"experiment {raw.path} has runs without features: "
                                f"{', '.join(missing)}; run `repflat run` on it to finish them",
                                argument="paths")
            runs += [read_run(d) for d in raw.run_paths]
            settings, name = settings or raw.analysis, name or raw.name
            continue
        if not isinstance(raw, (str, Path)):
            raise expected("paths", "a run or experiment directory, or a FeatureSet object",
                           type(raw).__name__)
        path = Path(raw)
        if not path.is_dir():
            raise expected("paths", "an existing run or experiment directory", str(path))
        if (path / MANIFEST).is_file():
            runs.append(read_run(path))
        else:
            raise expected("paths", f"a run directory (with {MANIFEST}) or an experiment "
                           f"directory (with {EXPERIMENT_FILE})", str(path))
    seen: dict[Path, RunInfo] = {}
    for r in runs:  # one directory named twice (through a link, a copy of the path) is one run
        if not r.in_memory and (first := seen.setdefault(r.path.resolve(), r)) is not r:
            raise UserError(f"one run directory given twice ({first.path} and {r.path}): "
                            "it would count as two runs; name it once", argument="paths")
    ids = [r.run_id for r in runs]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise UserError(f"two runs share the name {dupes[0]!r}; rename one (a "
                        "directory), or name feature sets in a mapping {name: features}, "
                        "so tables can tell them apart", argument="paths")
    return runs, settings, name


def lowest_seed(runs: Iterable[RunInfo]) -> RunInfo | None:
    """The run of the lowest seed (numerically: seed 2 before seed 10; unknown seeds last)."""
    return min(runs, key=lambda r: (not isinstance(r.seed, int), r.seed if isinstance(r.seed, int) else 0,
                                    str(r.seed)), default=None)


def run_columns(run: RunInfo) -> dict:
    """The columns that identify a run in every tidy table; the seed is None (NA in the
    tables' nullable integer column) when the run does not say."""
    seed = run.seed if isinstance(run.seed, int) and not isinstance(run.seed, bool) else None
    return {"run": run.run_id, "arm": run.name, "strategy": run.strategy, "seed": seed}


def read_metrics(run: RunInfo) -> pd.DataFrame | None:
    """A run's metrics.csv with its known columns checked to be numbers (epoch an
    integer); None when the run has none (the run record's, read once)."""
    return run.metrics


def training_metrics(runs: list[RunInfo]) -> pd.DataFrame:
    """Every run's metrics.csv, stacked, with the run columns (seed a nullable integer);
    empty if none has one. Features held in memory have none."""
    frames = [m.assign(**run_columns(r)) for r in runs
              if on_disk(r) and (m := read_metrics(r)) is not None]
    if not frames:
        return pd.DataFrame()
    out = pd.concat(frames, ignore_index=True)
    return out.assign(seed=out["seed"].astype("Int64"))
