"""Finding the runs to analyse: run directories, experiment directories, or both."""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from repflat.config import AnalysisConfig, parse_experiment, read_yaml
from repflat.errors import UserError, expected
from repflat.rundir import EXPERIMENT_FILE, RunInfo, read_run
from repflat.store import MANIFEST


def experiment_runs(path: Path) -> tuple[list[Path], AnalysisConfig, str]:
    """The run directories an experiment directory lists, its analysis settings and name."""
    exp = parse_experiment(read_yaml(path / EXPERIMENT_FILE, follow=False))
    return [path / "runs" / exp.run_dirname(r) for r in exp.runs], exp.analysis, exp.name


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
            raise expected("RUN", "an existing run or experiment directory", str(path))
        if (path / MANIFEST).is_file():
            runs.append(read_run(path))
        elif (path / EXPERIMENT_FILE).is_file():
            dirs, cfg, exp_name = experiment_runs(path)
            missing = [d.name for d in dirs if not (d / MANIFEST).is_file()]
            if missing:
                raise UserError(f"RUN: experiment {path} has runs without features: "
                                f"{', '.join(missing)}; run `repflat run` on it to finish them")
            runs += [read_run(d) for d in dirs]
            settings, name = settings or cfg, name or exp_name
        else:
            raise expected("RUN", f"a run directory (with {MANIFEST}) or an experiment "
                           f"directory (with {EXPERIMENT_FILE})", str(path))
    ids = [r.run_id for r in runs]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise UserError(f"RUN: two runs share the directory name {dupes[0]!r}; "
                        "rename one so tables can tell them apart")
    return runs, settings, name


def run_columns(run: RunInfo) -> dict:
    """The columns that identify a run in every tidy table."""
    return {"run": run.run_id, "arm": run.name, "strategy": run.strategy, "seed": run.seed}


def training_metrics(runs: list[RunInfo]) -> pd.DataFrame:
    """Every run's metrics.csv, stacked, with the run columns; empty if none has one."""
    frames = [pd.read_csv(r.path / "metrics.csv").assign(**run_columns(r))
              for r in runs if (r.path / "metrics.csv").is_file()]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
