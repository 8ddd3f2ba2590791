"""A run directory as a whole: its config, status, per-epoch metrics and features.

`prepare_run_dir` decides, before anything is written, whether a directory may receive
a run: new or empty (start), the same config (done already, or restart an unfinished
run), or anything else (refused, nothing touched). `read_run` is the analysis side's
entry point; a directory written by `repflat extract` reads as the run its extract.yaml
names (arm, strategy, seed; repflat.rundir.label), and one holding only
`features/manifest.json` (features written by another tool to the documented contract)
as a run of unknown strategy and seed.
"""
from __future__ import annotations

import csv
import io
import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path


from repflat.version import __version__
from repflat.errors import UserError, expected
from repflat.rundir.files import is_regular, read_json, read_yaml_file
from repflat.rundir.lock import visible_entries
from repflat.rundir.features import Features
from repflat.rundir.files import write_text
from repflat.rundir.names import (CHECKPOINT_FILE, CONFIG_FILE, FORMAT, METRICS_FILE, RUN_FILE,
                                  UNKNOWN, RunState, Status)
from repflat.config.loading import dump_yaml



def first_difference(on_disk: object, here: object, where: str = "") -> str:
    """The first field (dotted, in sorted order) where two descriptions differ, as
    `field: HERE here, ON_DISK on disk`: what a refusal to reuse a directory tells."""
    if isinstance(on_disk, dict) and isinstance(here, dict):
        for key in sorted(set(on_disk) | set(here), key=str):
            if on_disk.get(key) != here.get(key):
                return first_difference(on_disk.get(key), here.get(key),
                                        f"{where}.{key}" if where else str(key))
    return f"{where or 'config'}: {here!r} here, {on_disk!r} on disk"


NEW = object()
"""What `claimed_by` returns for a directory that is absent or empty."""


def claimed_by(path: Path, marker: str, written_by: str, argument: str = "out"):
    """What a directory's marker file (config.yaml, extract.yaml, experiment.yaml) holds,
    as parsed YAML (None if unreadable), or NEW if the directory is absent or empty.

    Refuses, changing nothing, a path that is a file or a non-empty directory without
    the marker: repflat writes only into directories it made.
    """
    if path.exists() and not path.is_dir():
        raise expected(argument, "a directory", f"{path} (a file)")
    if not path.exists() or not visible_entries(path):
        return NEW
    if not (path / marker).is_file() and not (path / marker).is_symlink():
        raise expected(argument, f"an empty directory or one written by {written_by}",
                       f"{path} ({len(visible_entries(path))} entries, no {marker})")
    try:
        return read_yaml_file(path / marker, argument)
    except UserError as err:
        if (path / marker).is_symlink() or not is_regular(path / marker):
            raise  # a link or a special file: not a directory repflat made
        return None  # repflat's, but unreadable: the caller says what it expected


def normalized(config: object) -> object:
    """A run config as repflat writes it now (fields that do not apply left out), so a run
    written by an earlier version (ERM with an α, say) is still recognised as the same."""
    from repflat.config import RunConfig
    from repflat.config._strict import parse, to_plain

    try:
        return to_plain(parse(RunConfig, config))
    except (UserError, TypeError, AttributeError):
        return config


def prepare_run_dir(path: str | Path, config: dict, argument: str = "out") -> RunState:
    """Check `path` can take a run of `config`: RunState NEW, RESTART (unfinished) or COMPLETE.

    Raises UserError, changing nothing, if the directory holds a different run or
    something that is not a run.
    """
    path = Path(path)
    on_disk = claimed_by(path, CONFIG_FILE, "`repflat train`", argument)
    if on_disk is NEW:
        return RunState.NEW
    if normalized(on_disk) != normalized(config):
        raise UserError(f"{argument}: {path} already holds a different run "
                        f"({first_difference(on_disk, config)}); choose another directory")
    return RunState.COMPLETE if read_status(path) is Status.COMPLETE else RunState.RESTART


def read_status(path: str | Path) -> Status:
    """run.json's status ("running", "complete"), or "unknown" when there is no run.json
    or it is not repflat's JSON; a link, a FIFO or a device there is refused, unread."""
    info_path = Path(path) / RUN_FILE
    if not info_path.exists() and not info_path.is_symlink():
        return Status.UNKNOWN
    if info_path.is_symlink() or not is_regular(info_path):
        read_json(info_path, RUN_FILE)  # raises, naming what it is, without reading it
    try:
        info = read_json(info_path, RUN_FILE, limit=1 << 20)
    except UserError:
        return Status.UNKNOWN
    status = info.get("status") if isinstance(info, dict) else None
    return Status(status) if status in {s.value for s in Status} else Status.UNKNOWN


class RunWriter:
    """Writes the non-feature files of a run: config, status and metrics.

    `state` is NEW, RESTART (an unfinished run of the same config, started over:
    its files are removed) or RESUME (continued from its checkpoint: files kept, the
    metrics rewritten from the checkpoint's rows by `restore`). `threads` (the CPU
    thread count) is recorded because bit-exact repeats on the CPU depend on it.
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
        writer = csv.DictWriter(out, fieldnames=list(self.rows[0]) if self.rows else ["epoch"])
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
        the last epoch) or a second after the last write. Rewriting it atomically every
        epoch cost a fifth of a small run's time; the checkpoint holds the rows anyway."""
        self.rows.append(row)
        if flush or time.monotonic() - self._written >= 1.0:
            self._write_rows()

    def finish(self, seconds: float, results: dict | None = None) -> None:
        self.info |= {"status": Status.COMPLETE.value, "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
                      "seconds": round(seconds, 3), **(results or {})}
        self._write_info()


@dataclass(frozen=True)
class RunInfo:
    """What the analysis side knows about a run directory (or features in memory)."""

    path: Path
    name: str
    strategy: str
    seed: int | str
    status: str
    config: dict | None
    features: Features
    values: dict = field(default_factory=dict)
    """Swept values a user's label gives (an experiment's come from its grid)."""

    @property
    def run_id(self) -> str:
        return self.path.name


def read_run(path: str | Path) -> RunInfo:
    """Open a run directory (or a bare features directory) for analysis."""
    path = Path(path)
    if not path.is_dir():
        raise expected("run", "an existing run directory", str(path))
    config = None
    if (path / CONFIG_FILE).exists() or (path / CONFIG_FILE).is_symlink():
        config = read_yaml_file(path / CONFIG_FILE, f"run {path}: config.yaml")
    features = Features(path)
    if isinstance(config, dict):
        name = str(config.get("name", path.name))
        mixing = config.get("mixing")
        strategy = str(mixing.get("strategy", UNKNOWN)) if isinstance(mixing, dict) else UNKNOWN
        seed = config.get("seed", UNKNOWN)
        seed = seed if isinstance(seed, int) and not isinstance(seed, bool) else UNKNOWN
    elif features.run is not None:  # extracted by `repflat extract` or extract(out=), labelled
        label = features.run
        name, strategy = label.arm or path.name, label.strategy
        seed = label.seed if label.seed is not None else UNKNOWN
        return RunInfo(path, name, strategy, seed, read_status(path), None, features, label.values)
    else:
        name, strategy, seed = path.name, UNKNOWN, UNKNOWN
    return RunInfo(path, name, strategy, seed, read_status(path), config, features)
