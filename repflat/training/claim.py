"""Whether a directory may take a run of a config: the writer's side of the run directory.

A directory is new or empty (start), holds the same config (done already, or an unfinished
run to continue or start over), or anything else (refused, nothing touched). Configs are
compared as repflat writes them now (`normalized`), so a run written by an earlier version
is still recognised as the same.
"""
from __future__ import annotations

from pathlib import Path

from repflat.config import RunConfig
from repflat.errors import UserError
from repflat.rundir.lock import NEW, claimed_by, first_difference
from repflat.rundir.names import CONFIG_FILE, RunState, Status
from repflat.rundir.run import read_status
from repflat.strict import parse, to_plain


def normalized(config: object) -> object:
    """A run config as repflat writes it now (fields that do not apply left out), so a run
    written by an earlier version (ERM with an α, say) is still recognised as the same."""
    try:
        return to_plain(parse(RunConfig, config))
    except (UserError, TypeError, AttributeError):
        return config


def prepare_run_dir(path: str | Path, config: dict, argument: str = "out") -> RunState:
    """Check `path` can take a run of `config` (plain): RunState NEW, RESTART (unfinished)
    or COMPLETE.

    Raises UserError, changing nothing, if the directory holds a different run or
    something that is not a run.
    """
    path = Path(path)
    on_disk = claimed_by(path, CONFIG_FILE, "`repflat train`", argument)
    if on_disk is NEW:
        return RunState.NEW
    if normalized(on_disk) != normalized(config):
        raise UserError(f"{path} already holds a different run "
                        f"({first_difference(on_disk, config)}); choose another directory",
                        argument=argument)
    return RunState.COMPLETE if read_status(path) is Status.COMPLETE else RunState.RESTART
