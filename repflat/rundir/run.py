"""A run directory as a whole: the run record the analysis reads, and the writer of its
non-feature files.

`read_run` reads a directory once into a `RunInfo`: its identity (arm, strategy, seed,
swept values), config.yaml (as written, and as a RunConfig), run.json (status and
results), its features (the manifest) and, when first asked for, metrics.csv as a frame.
A directory written by `repflat extract` reads as the run its extract.yaml names (arm,
strategy, seed; repflat.rundir.label), and one holding only `features/manifest.json`
(features written by another tool to the documented contract) as a run of unknown
strategy and seed. Features held in memory are runs too (`RunInfo.in_memory`).

`RunWriter` writes config.yaml, run.json and metrics.csv, and keeps what it wrote, so the
line a finished run says is made without reading them back.
"""
from __future__ import annotations

import csv
import io
import json
import shutil
import time
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from repflat.config import RunConfig
from repflat.errors import UserError, expected
from repflat.files import is_regular, numeric_columns, read_csv, read_json, read_yaml_file, write_text
from repflat.safenames import safe_label
from repflat.rundir.features import Features, FeatureSet
from repflat.rundir.label import RunLabel
from repflat.rundir.names import (CHECKPOINT_FILE, CONFIG_FILE, EPOCH, FORMAT, METRIC_COLUMNS, SECONDS,
                                  METRICS_FILE, RUN_FILE, UNKNOWN, RunState, Status)
from repflat.strict import dump_yaml, parse
from repflat.version import __version__

INFO_LIMIT = 1 << 20
"""Largest run.json read (bytes): a few hundred in practice."""


def _run_json(path: Path) -> dict | None:
    """run.json of `path` as a dict; None when there is none or it is not repflat's JSON.
    A link, a FIFO or a device there is refused, unread."""
    info_path = path / RUN_FILE
    if not info_path.exists() and not info_path.is_symlink():
        return None
    if info_path.is_symlink() or not is_regular(info_path):
        read_json(info_path, RUN_FILE)  # raises, naming what it is, without reading it
    try:
        info = read_json(info_path, RUN_FILE, limit=INFO_LIMIT)
    except UserError:
        return None
    return info if isinstance(info, dict) else None


def _status(info: dict | None) -> Status:
    status = info.get("status") if info is not None else None
    return Status(status) if status in {s.value for s in Status} else Status.UNKNOWN


def read_status(path: str | Path) -> Status:
    """run.json's status ("running", "complete"), or "unknown" when there is no run.json
    or it is not repflat's JSON; a link, a FIFO or a device there is refused, unread."""
    return _status(_run_json(Path(path)))


def read_metrics(path: str | Path):
    """metrics.csv of the run directory `path` as a DataFrame, its known columns checked to
    be numbers (epoch an integer); None when the run has none (or an empty one)."""
    path = Path(path) / METRICS_FILE
    if not path.exists() and not path.is_symlink():
        return None
    where = f"run {path.parent}: {METRICS_FILE}"
    frame = numeric_columns(read_csv(path, where), METRIC_COLUMNS, path, where)
    if frame.empty:
        return None
    if EPOCH not in frame.columns or frame[EPOCH].isna().any() or not (
            frame[EPOCH] == frame[EPOCH].round()).all():
        raise UserError(f"{path} needs an integer epoch column, one value per row", argument=where)
    return frame.assign(**{EPOCH: frame[EPOCH].astype(int)})


class RunWriter:
    """Writes the non-feature files of a run: config, status and metrics.

    `state` is NEW, RESTART (an unfinished run of the same config, started over:
    its files are removed) or RESUME (continued from its checkpoint: files kept, the
    metrics rewritten from the checkpoint's rows by `restore`). `threads` (the CPU
    thread count) is recorded because bit-exact repeats on the CPU depend on it.
    `info` (run.json) and `rows` (metrics.csv) hold what was written.
    """

    def __init__(self, path: str | Path, config: dict, state: str, threads: int | None = None):
        self.path = Path(path)
        if state is RunState.RESTART:
            for child in ("features", METRICS_FILE, CHECKPOINT_FILE, RUN_FILE):
                target = self.path / child
                shutil.rmtree(target) if target.is_dir() else target.unlink(missing_ok=True)
        self.path.mkdir(parents=True, exist_ok=True)
        self.info = {"format": FORMAT, "repflat": __version__, "status": Status.RUNNING.value,
                     "name": config.get("name"), "strategy": config["mixing"]["strategy"],
                     "seed": config.get("seed"), "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
                     "threads": threads}
        self.rows: list[dict] = []
        self._written = -float("inf")
        write_text(self.path / CONFIG_FILE, dump_yaml(config))
        self._write_info()

    def _write_info(self) -> None:
        write_text(self.path / RUN_FILE, json.dumps(self.info, indent=1))

    def _write_rows(self) -> None:
        out = io.StringIO()
        # every key of every row: a run resumed from a checkpoint written by an older
        # version has rows without the columns added since (those cells stay blank)
        fields = list(dict.fromkeys(k for r in self.rows for k in r)) or [EPOCH]
        writer = csv.DictWriter(out, fieldnames=fields, restval="")
        writer.writeheader()
        writer.writerows(self.rows)
        write_text(self.path / METRICS_FILE, out.getvalue())
        self._written = time.monotonic()

    def restore(self, rows: list[dict]) -> None:
        """Continue after a checkpoint: its rows replace whatever was logged after it."""
        self.rows = list(rows)
        self._write_rows()

    def log_epoch(self, row: dict, *, flush: bool = False) -> None:
        """Add an epoch's row; metrics.csv is rewritten when `flush` (checkpoints, captures,
        the last epoch) or a second after the last write, not every epoch: a small run's
        epochs are short enough for the rewrite to show (benchmarks/write_costs.py), and
        the checkpoint holds the rows anyway."""
        self.rows.append(row)
        if flush or time.monotonic() - self._written >= 1.0:
            self._write_rows()

    def finish(self, seconds: float, results: dict | None = None) -> None:
        self.info |= {"status": Status.COMPLETE.value, "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
                      SECONDS: round(seconds, 3), **(results or {})}
        self._write_info()


@dataclass(frozen=True)
class RunInfo:
    """One run, as the analysis sees it: a run directory read once (`read_run`), or
    features held in memory.

    The identity (`name` is the arm, `strategy`, `seed`, swept `values`) is the one a
    labelled feature set carries (`label`, a RunLabel); `config` is config.yaml as
    written (None without one), `cfg` the same as a RunConfig, `results` run.json as
    written, `features` the feature set and `metrics` metrics.csv as a frame.
    """

    path: Path
    name: str
    strategy: str
    seed: int | str
    status: str
    config: dict | None
    features: FeatureSet
    values: dict = field(default_factory=dict)
    """Swept values a user's label gives (an experiment's come from its grid)."""
    results: dict = field(default_factory=dict)
    """run.json as written ({} without one): status, seed, thread count, and once the run
    is complete its results (`final_test_error`, `best_test_error`, `best_epoch`,
    `final_test_nll`, `best_test_nll`, `final_excess_mixup_loss`, `mixing`, `premise`...)."""

    @property
    def run_id(self) -> str:
        return self.path.name

    @property
    def in_memory(self) -> bool:
        """Features held in memory: no directory, no config, no metrics."""
        return not isinstance(self.features, Features)

    @property
    def label(self) -> RunLabel:
        """The run's identity as a labelled feature set carries it (unknown seed: None)."""
        seed = self.seed if isinstance(self.seed, int) and not isinstance(self.seed, bool) else None
        return RunLabel(self.name, self.strategy, seed, dict(self.values))

    @cached_property
    def cfg(self) -> RunConfig | None:
        """config.yaml as a RunConfig; None without one, or when it is not one this
        version reads (written by hand, or by a version with other fields)."""
        if not isinstance(self.config, dict):
            return None
        try:
            return parse(RunConfig, self.config)
        except (UserError, TypeError, AttributeError):
            return None

    @cached_property
    def metrics(self):
        """metrics.csv as a DataFrame (read on first use; see `read_metrics`); None for
        features in memory or a run without one."""
        return None if self.in_memory else read_metrics(self.path)


def read_run(path: str | Path) -> RunInfo:
    """Open a run directory (or a bare features directory) for analysis: each of its
    files read once."""
    path = Path(path)
    if not path.is_dir():
        raise expected("run", "an existing run directory", str(path))
    if not path.name:  # '.' or '..': the run is named by the directory it is
        path = path.resolve()
    if path.name:  # the run's name in every table, figure and line said
        safe_label(path.name, "run")
    config = None
    if (path / CONFIG_FILE).exists() or (path / CONFIG_FILE).is_symlink():
        config = read_yaml_file(path / CONFIG_FILE, f"run {path}: config.yaml")
    features = Features(path)
    info = _run_json(path)
    results = info if info is not None else {}
    if isinstance(config, dict):
        name = safe_label(str(config.get("name", path.name)), f"run {path.name}: config.yaml: name")
        mixing = config.get("mixing")
        strategy = str(mixing.get("strategy", UNKNOWN)) if isinstance(mixing, dict) else UNKNOWN
        safe_label(strategy, f"run {path.name}: config.yaml: mixing.strategy")
        seed = config.get("seed", UNKNOWN)
        seed = seed if isinstance(seed, int) and not isinstance(seed, bool) else UNKNOWN
    elif features.run is not None:  # extracted by `repflat extract` or extract(out=), labelled
        label = features.run
        name, strategy = label.arm or path.name, label.strategy
        seed = label.seed if label.seed is not None else UNKNOWN
        return RunInfo(path, name, strategy, seed, _status(info), None, features, label.values,
                       results)
    else:
        name, strategy, seed = path.name, UNKNOWN, UNKNOWN
    return RunInfo(path, name, strategy, seed, _status(info), config, features, results=results)
