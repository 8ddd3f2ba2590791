"""Which directories repflat writes into: those it made (`claimed_by`), one writer at a
time (`exclusive`, a lock held while a command writes).

A directory is repflat's when it is new or empty, or holds repflat's owner marker of the
kind the command writes and nothing repflat did not write (repflat.rundir.owner; an
older repflat's directory: its command's marker file, config.yaml, extract.yaml,
experiment.yaml, and nothing else); any other folder is refused before anything is
written (`claimed_by`), whatever the names of the files in it.

The lock is `fcntl.flock` on DIR/.repflat.lock, which the kernel releases when its
holder exits, however it exits: a lock left by a killed process is therefore simply
taken by the next one, with no stale-pid guessing. The file keeps the holder's pid so a
refusal can say who holds it.

Taking the lock is also where a directory is checked before repflat writes into it
(the directory may have come from someone else): the lock file must be a regular file
(a planted link would have repflat truncate whatever it points at), and nothing below
the directory may be a link or a special file, so every later write lands inside it.
Then the temporary files a killed writer of this directory left behind are removed:
repflat's own (`.<name>.<pid>.<token>.repflat-tmp` of a process that is gone), in this directory and its
subdirectories except those claimed by a lock of their own.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path

from repflat.errors import UserError, expected
from repflat.files import TEMPORARY, is_regular, read_yaml_file, single_link
from repflat.rundir.names import LOCK_FILE, OWNER_FILE
from repflat.rundir.owner import MARKER_KIND, check_owned, claim_owner



@contextlib.contextmanager
def exclusive(directory: str | Path, argument: str = "out", *,
              derived: bool = False, kind: str | None = None) -> Iterator[None]:
    """Hold DIRECTORY's lock (creating the directory) or refuse with a UserError.

    `kind`: what the holder writes there (run, extract, experiment, analysis); the
    directory's owner marker is written if it has none (the caller checked the directory
    with `claimed_by` or `check_owned` first).

    `derived`: the directory was not named by the user but found inside another one
    (an experiment's `analysis/`, its `runs/...`); it may then not be a link either.
    """
    directory = Path(directory)
    if derived and directory.is_symlink():
        raise UserError(f"{directory} is a symbolic link; repflat writes only into "
                        "directories it made, never through links", argument=argument)
    directory.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(directory / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW
                     | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0), 0o644)
    except OSError as err:
        if err.errno != errno.ELOOP:
            raise
        raise UserError(f"{directory / LOCK_FILE} is a symbolic link; refusing to "
                        "write through it (remove it if the directory is yours)",
                        argument=argument) from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise UserError(f"{directory / LOCK_FILE} is not a regular file; "
                            "refusing to use it as a lock", argument=argument)
        single_link(fd, directory / LOCK_FILE, argument, "write the lock into")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            raise UserError(f"{directory} is in use by another repflat process "
                            f"(pid {holder}); wait for it to finish or choose another directory",
                            argument=argument) from None
        check_tree(directory, argument)
        if kind is not None:
            claim_owner(directory, kind, argument)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        remove_stale_temporaries(directory)
        yield
    finally:
        os.close(fd)  # closing releases the flock


def holder(directory: str | Path) -> str | None:
    """The pid written by the process holding DIRECTORY's lock now, or None when nobody
    holds it (or there is no lock file). Takes nothing: a lock found free is let go at once."""
    path = Path(directory) / LOCK_FILE
    if path.is_symlink() or not path.is_file():
        return None
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
        return None
    finally:
        os.close(fd)  # releases the shared lock if it was taken


def check_tree(directory: Path, argument: str = "out") -> None:
    """Refuse a directory holding a link or a special file anywhere below it."""
    for parent, dirs, files in os.walk(directory, followlinks=False):
        for name in dirs + files:
            path = Path(parent) / name
            mode = os.lstat(path).st_mode
            if stat.S_ISLNK(mode) or not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                what = "a symbolic link" if stat.S_ISLNK(mode) else "a special file"
                raise UserError(f"{path} is {what}; repflat writes only into "
                                "directories holding plain files and folders", argument=argument)


def visible_entries(directory: Path) -> list[Path]:
    """The directory's entries other than repflat's own bookkeeping: its lock file and
    what a killed writer may have left (temporaries, a staging directory), which a
    directory repflat made and never finished may hold."""
    return [p for p in directory.iterdir() if p.name not in (LOCK_FILE, OWNER_FILE)
            and not TEMPORARY.match(p.name)]


def _gone(pid: int) -> bool:
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, someone else's
        return False
    return False


def remove_stale_temporaries(directory: Path) -> list[Path]:
    """Delete what killed writers of `directory` left: temporary files and staging
    directories named with the pid of a process that no longer runs. Subdirectories
    with a lock of their own are another writer's and are left alone."""
    stale = []
    for parent, dirs, files in os.walk(directory, followlinks=False):
        here = Path(parent)
        for name in list(dirs):
            if (here / name / LOCK_FILE).exists():
                dirs.remove(name)  # claimed separately: cleaned when its own lock is taken
            elif (m := TEMPORARY.match(name)) and _gone(int(m.group(1))):
                dirs.remove(name)  # a staging directory (os.walk lists no link among dirs)
                shutil.rmtree(here / name, ignore_errors=True)
                stale.append(here / name)
        for name in files:
            m = TEMPORARY.match(name)
            if m and _gone(int(m.group(1))):
                (here / name).unlink(missing_ok=True)
                stale.append(here / name)
    return stale


NEW = object()
"""What `claimed_by` returns for a directory that is absent or empty."""


def claimed_by(path: Path, marker: str, written_by: str, argument: str = "out"):
    """What a directory's marker file (config.yaml, extract.yaml, experiment.yaml) holds,
    as parsed YAML (None if unreadable), or NEW if the directory is absent or empty.

    Refuses, changing nothing, a path that is a file, or a non-empty directory that is
    not repflat's of this kind (`repflat.rundir.owner.check_owned`): repflat writes only
    into directories it made.
    """
    if path.exists() and not path.is_dir():
        raise expected(argument, "a directory", f"{path} (a file)")
    if not path.exists() or not visible_entries(path):
        return NEW
    if (path / marker).is_symlink():
        read_yaml_file(path / marker, argument)  # refused, saying it is a link
    check_owned(path, MARKER_KIND[marker], written_by, argument,
                legacy=(path / marker).is_file() and not (path / marker).is_symlink())
    if not (path / marker).exists() and not (path / marker).is_symlink():
        return None  # repflat's, its marker not written yet: the caller says what it expected
    try:
        return read_yaml_file(path / marker, argument)
    except UserError:
        if (path / marker).is_symlink() or not is_regular(path / marker):
            raise  # a link or a special file: not a directory repflat made
        return None  # repflat's, but unreadable: the caller says what it expected


def first_difference(on_disk: object, here: object, where: str = "") -> str:
    """The first field (dotted, in sorted order) where two descriptions differ, as
    `field: HERE here, ON_DISK on disk`: what a refusal to reuse a directory tells."""
    if isinstance(on_disk, dict) and isinstance(here, dict):
        for key in sorted(set(on_disk) | set(here), key=str):
            if on_disk.get(key) != here.get(key):
                return first_difference(on_disk.get(key), here.get(key),
                                        f"{where}.{key}" if where else str(key))
    return f"{where or 'config'}: {here!r} here, {on_disk!r} on disk"
