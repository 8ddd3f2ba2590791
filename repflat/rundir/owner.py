"""Which directories are repflat's: the owner marker `.repflat-owner`.

A file named like repflat's (analysis.json, experiment.yaml, config.yaml) proves nothing:
a user's own folder may hold one. A directory is repflat's when it holds the owner
marker, written when repflat first takes the directory's lock (repflat.rundir.lock):

    {"format": "repflat-owner/1", "kind": "analysis", "nonce": "<32 hex digits>",
     "check": "<sha256 of 'repflat-owner/1', kind and nonce, NUL-separated>"}

The check makes a marker something no user file is by accident (a file of that name with
other content is refused, not taken over); it is not a signature: whoever can write a
directory can make it look like repflat's, and then risks only its own files. Even then
a directory is written into only when every entry in it is one repflat writes into a
directory of its kind (`KNOWN`), so a file of the user's put beside repflat's (notes,
a cache) makes the whole directory refused, untouched, whatever its name.

Directories written before the marker existed are adopted (the marker written) when
they hold their command's old marker file and nothing but names repflat knows.
"""
from __future__ import annotations

import hashlib
import json
import os
import secrets
from pathlib import Path

from repflat.errors import UserError
from repflat.files import TEMPORARY, read_text, write_text
from repflat.rundir.names import (ANALYSIS_DIR, ANALYSIS_FILE, ANALYSIS_MARKER, ANALYSIS_TABLES,
                                  CHECKPOINT_FILE, CONFIG_FILE, EXPERIMENT_FILE, EXTRACT_FILE, FIGURES, LOCK_FILE,
                                  METRICS_FILE, OWNER_FILE, REPORT_FILES, RUN_FILE, RUNS_DIR)

FORMAT = "repflat-owner/1"
FEATURES_DIR = "features"
KNOWN: dict[str, frozenset[str]] = {
    "run": frozenset({CONFIG_FILE, RUN_FILE, METRICS_FILE, CHECKPOINT_FILE, FEATURES_DIR,
                      ANALYSIS_DIR}),
    "extract": frozenset({EXTRACT_FILE, FEATURES_DIR, ANALYSIS_DIR}),
    "experiment": frozenset({EXPERIMENT_FILE, RUNS_DIR, ANALYSIS_DIR, "slurm"}),
    "analysis": frozenset({ANALYSIS_FILE, ANALYSIS_MARKER, *ANALYSIS_TABLES, *REPORT_FILES,
                           *(f for files in FIGURES.values() for f in files)}),
}
"""The entries repflat writes at the top of a directory of each kind (besides its lock,
its owner marker and its temporaries)."""
MARKER_KIND = {CONFIG_FILE: "run", EXTRACT_FILE: "extract", EXPERIMENT_FILE: "experiment"}


def _check(kind: str, nonce: str) -> str:
    return hashlib.sha256(f"{FORMAT}\0{kind}\0{nonce}".encode()).hexdigest()


def owner_kind(directory: Path, argument: str = "out") -> str | None:
    """The kind in `directory`'s owner marker, None when it has none; a UserError for a
    marker repflat did not write (not a regular file, another name, other content)."""
    path = directory / OWNER_FILE
    if not path.exists() and not path.is_symlink():
        return None
    text = read_text(path, argument, 4096)  # a regular file with one name, or refused
    try:
        record = json.loads(text)
        kind, nonce = record["kind"], record["nonce"]
        good = (record["format"] == FORMAT and kind in KNOWN and isinstance(nonce, str)
                and record["check"] == _check(kind, nonce))
    except (ValueError, KeyError, TypeError):
        good = False
    if not good:
        raise UserError(f"{path} is not an owner marker written by repflat; refusing to "
                        f"write into {directory}", argument=argument)
    return kind


def is_bookkeeping(name: str) -> bool:
    return name in (LOCK_FILE, OWNER_FILE) or bool(TEMPORARY.match(name))


def foreign_entries(directory: Path, kind: str) -> list[str]:
    """Entries at the top of `directory` repflat does not write into a `kind` directory."""
    return sorted(e.name for e in os.scandir(directory)
                  if not is_bookkeeping(e.name) and e.name not in KNOWN[kind])


def check_owned(directory: Path, kind: str, written_by: str, argument: str = "out", *,
                legacy: bool) -> bool:
    """Whether `directory` (existing, not empty) may be written into as a `kind`
    directory: True, or a UserError changing nothing. `legacy`: it holds the old marker
    of its command (a directory of an older repflat, adopted if nothing else is there)."""
    owner = owner_kind(directory, argument)
    if owner is None and not legacy:
        n = sum(1 for e in os.scandir(directory) if not is_bookkeeping(e.name))
        raise UserError(f"expected an empty directory or one written by {written_by}, got "
                        f"{directory} ({n} entries, no {OWNER_FILE}): repflat writes only "
                        "into directories it made", argument=argument)
    if owner is not None and owner != kind:
        raise UserError(f"{directory} is a repflat {owner} directory, not one written by "
                        f"{written_by}; choose another directory", argument=argument)
    foreign = foreign_entries(directory, kind)
    if foreign:
        shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
        raise UserError(f"{directory} holds files repflat did not write ({shown}); refusing "
                        "to write into it (move them, or choose another directory)",
                        argument=argument)
    return True


def claim_owner(directory: Path, kind: str, argument: str = "out") -> None:
    """Write `directory`'s owner marker if it has none (the caller holds its lock and has
    checked it); refuse one of another kind."""
    owner = owner_kind(directory, argument)
    if owner is None:
        nonce = secrets.token_hex(16)
        write_text(directory / OWNER_FILE, json.dumps(
            {"format": FORMAT, "kind": kind, "nonce": nonce, "check": _check(kind, nonce)}) + "\n")
    elif owner != kind:
        raise UserError(f"{directory} is a repflat {owner} directory, not a {kind} directory",
                        argument=argument)


__all__ = ["FORMAT", "KNOWN", "MARKER_KIND", "check_owned", "claim_owner", "foreign_entries",
           "owner_kind"]
