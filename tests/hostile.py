"""Hostile file-system fixtures: what a directory from someone else may hold.

Each function plants one thing at `path` (its parent must exist) and returns `path`, so a
test reads as a list of plants. Used by the bad-input matrix and the audit tests; the
planted things are the ones the threat model in docs/reliability.md names.
"""
from __future__ import annotations

import os
import stat
from pathlib import Path


def symlink(path: Path, target: Path | str) -> Path:
    """`path` as a symbolic link to `target` (which need not exist)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_symlink() or path.exists():
        path.unlink()
    os.symlink(target, path)
    return path


def fifo(path: Path) -> Path:
    """`path` as a named pipe: opening it for reading blocks until a writer comes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() or path.is_symlink():
        path.unlink()
    os.mkfifo(path)
    return path


def device(path: Path) -> Path:
    """`path` as an endless character device: a real /dev/zero node when allowed
    (root), else a symbolic link to /dev/zero (the same bytes, one more indirection)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() or path.is_symlink():
        path.unlink()
    zero = os.stat("/dev/zero")
    try:
        os.mknod(path, stat.S_IFCHR | 0o644, zero.st_rdev)
    except PermissionError:
        os.symlink("/dev/zero", path)
    return path


def sparse_npy(path: Path, shape: tuple[int, ...], dtype: str = "<i8") -> Path:
    """A .npy whose header promises `shape` and whose data is a hole: no disk blocks,
    but the size a reader checks is right."""
    import numpy as np

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        np.lib.format.write_array_header_1_0(fh, {"descr": dtype, "fortran_order": False,
                                                  "shape": tuple(shape)})
        fh.truncate(fh.tell() + int(np.prod(shape)) * np.dtype(dtype).itemsize)
    return path


def alias_bomb(levels: int = 9, width: int = 9) -> str:
    """A YAML document of a few hundred bytes that expands to width**levels scalars."""
    lines = [f"a0: &a0 [{', '.join(['x'] * width)}]"]
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * width)}]")
    lines.append(f"name: *a{levels - 1}")
    return "\n".join(lines) + "\n"
