"""An experiment directory, as `repflat run` writes it and the analysis reads it.

    OUT/experiment.yaml        the experiment file as given (marks the directory)
    OUT/runs/<arm>-seed<s>/    one run directory per arm and seed (`run_path`)
    OUT/analysis/              the analysis of its runs

`ExperimentDir` is the directory with its experiment parsed: read once from disk
(`read_experiment_dir`), or made from the experiment a command already holds, so a
command that trains and then analyses never reads back the file it wrote.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from repflat.config import AnalysisConfig, Experiment, RunConfig, parse_experiment, read_yaml
from repflat.config.grid import GridPoint
from repflat.files import no_links
from repflat.rundir.names import EXPERIMENT_FILE, RUNS_DIR, run_dirname


def run_path(out: str | Path, run: RunConfig) -> Path:
    """Where the experiment directory `out` keeps `run`: OUT/runs/<arm>-seed<seed>."""
    return Path(out) / RUNS_DIR / run_dirname(run.name, run.seed)


@dataclass(frozen=True)
class ExperimentDir:
    """An experiment directory and its experiment: name, analysis settings,
    description, grid points and where each run is."""

    path: Path
    experiment: Experiment

    @property
    def name(self) -> str:
        return self.experiment.name

    @property
    def analysis(self) -> AnalysisConfig:
        return self.experiment.analysis

    @property
    def description(self) -> str | None:
        return self.experiment.description

    @property
    def points(self) -> dict[str, GridPoint]:
        """{arm: GridPoint} of the arms its `grid` made."""
        return self.experiment.points

    @property
    def run_paths(self) -> list[Path]:
        """Each run's directory, in the experiment's order (arms, then seeds); a UserError
        if `runs/` or a run directory is a symbolic link (it would lead anywhere)."""
        return [no_links(self.path, run_path("", r), "paths") for r in self.experiment.runs]


def is_experiment_dir(path: str | Path) -> bool:
    return (Path(path) / EXPERIMENT_FILE).is_file()


def read_experiment_dir(path: str | Path) -> ExperimentDir:
    """The experiment directory `path`, its experiment.yaml read (never through a link)
    and parsed once."""
    path = Path(path)
    return ExperimentDir(path, parse_experiment(read_yaml(path / EXPERIMENT_FILE, follow=False)))
