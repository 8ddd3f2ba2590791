"""One writer per directory: an exclusive lock held while a command writes into it.

The lock is `fcntl.flock` on DIR/.repflat.lock, which the kernel releases when its
holder exits, however it exits: a lock left by a killed process is therefore simply
taken by the next one, with no stale-pid guessing. The file keeps the holder's pid so a
refusal can say who holds it. Taking the lock also clears the temporary files a killed
writer left behind.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from repflat.errors import UserError

LOCK_FILE = ".repflat.lock"


@contextlib.contextmanager
def exclusive(directory: str | Path, argument: str = "--out") -> Iterator[None]:
    """Hold DIRECTORY's lock (creating the directory) or refuse with a UserError."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            raise UserError(f"{argument}: {directory} is in use by another repflat process "
                            f"(pid {holder}); wait for it to finish or choose another directory") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        remove_stale_temporaries(directory)
        yield
    finally:
        os.close(fd)  # closing releases the flock


def visible_entries(directory: Path) -> list[Path]:
    """The directory's entries other than its lock file (an empty directory may hold one)."""
    return [p for p in directory.iterdir() if p.name != LOCK_FILE]


def remove_stale_temporaries(directory: Path) -> list[Path]:
    """Delete the temporary files a killed writer left (`.<name>.<pid>.tmp`, see
    repflat.store.atomic_path). Whoever holds the lock is the only writer, so every
    such file under the directory belongs to a process that is gone."""
    stale = [p for p in directory.rglob(".*.tmp") if p.is_file()]
    for p in stale:
        p.unlink(missing_ok=True)
    return stale
