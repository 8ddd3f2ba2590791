"""Finding the runs to analyse: run directories, experiment directories, or both."""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from repflat.analysis.io import numeric_columns, read_csv
from repflat.config import AnalysisConfig, parse_experiment, read_yaml
from repflat.errors import UserError, expected
from repflat.rundir.run import RunInfo, read_run
from repflat.rundir.names import EXPERIMENT_FILE, MANIFEST, RUNS_DIR


def experiment_runs(path: Path) -> tuple[list[Path], AnalysisConfig, str]:
    """The run directories an experiment directory lists, its analysis settings and name."""
    exp = parse_experiment(read_yaml(path / EXPERIMENT_FILE, follow=False))
    return [path / RUNS_DIR / exp.run_dirname(r) for r in exp.runs], exp.analysis, exp.name


def collect_runs(paths: Iterable[str | Path]) -> tuple[list[RunInfo], AnalysisConfig | None, str | None]:
    """Open every run named by `paths`.

    A path may be a run directory (it has features/manifest.json) or an experiment
    directory written by `repflat run` (it has experiment.yaml and runs/), which stands
    for all of its runs. Returns the runs, and the analysis settings and name of the
    first experiment directory, if any.
    """
    runs: list[RunInfo] = []
    settings, name = None, None
    for raw in paths:
        path = Path(raw)
        if not path.is_dir():
            raise expected("paths", "an existing run or experiment directory", str(path))
        if (path / MANIFEST).is_file():
            runs.append(read_run(path))
        elif (path / EXPERIMENT_FILE).is_file():
            dirs, cfg, exp_name = experiment_runs(path)
            missing = [d.name for d in dirs if not (d / MANIFEST).is_file()]
            if missing:
                raise UserError(f"paths: experiment {path} has runs without features: "
                                f"{', '.join(missing)}; run `repflat run` on it to finish them")
            runs += [read_run(d) for d in dirs]
            settings, name = settings or cfg, name or exp_name
        else:
            raise expected("paths", f"a run directory (with {MANIFEST}) or an experiment "
                           f"directory (with {EXPERIMENT_FILE})", str(path))
    ids = [r.run_id for r in runs]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise UserError(f"paths: two runs share the directory name {dupes[0]!r}; "
                        "rename one so tables can tell them apart")
    return runs, settings, name


def lowest_seed(runs: Iterable[RunInfo]) -> RunInfo | None:
    """The run of the lowest seed (numerically: seed 2 before seed 10; unknown seeds last)."""
    return min(runs, key=lambda r: (not isinstance(r.seed, int), r.seed if isinstance(r.seed, int) else 0,
                                    str(r.seed)), default=None)


def run_columns(run: RunInfo) -> dict:
    """The columns that identify a run in every tidy table."""
    return {"run": run.run_id, "arm": run.name, "strategy": run.strategy, "seed": run.seed}


METRICS_FILE = "metrics.csv"
METRIC_COLUMNS = ("epoch", "lr", "train_loss", "test_accuracy", "test_error", "test_nll",
                  "test_ece", "fgsm_accuracy", "seconds")


def read_metrics(run: RunInfo) -> pd.DataFrame | None:
    """A run's metrics.csv with its known columns checked to be numbers (epoch an
    integer); None when the run has none."""
    path = run.path / METRICS_FILE
    if not path.exists() and not path.is_symlink():
        return None
    where = f"run {run.path}: {METRICS_FILE}"
    frame = numeric_columns(read_csv(path, where), METRIC_COLUMNS, path, where)
    if frame.empty:
        return None
    if "epoch" not in frame.columns or frame["epoch"].isna().any() or not (
            frame["epoch"] == frame["epoch"].round()).all():
        raise UserError(f"{where}: {path} needs an integer epoch column, one value per row")
    return frame.assign(epoch=frame["epoch"].astype(int))


def training_metrics(runs: list[RunInfo]) -> pd.DataFrame:
    """Every run's metrics.csv, stacked, with the run columns; empty if none has one."""
    frames = [m.assign(**run_columns(r)) for r in runs if (m := read_metrics(r)) is not None]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
