""".npy files: their headers checked before anything is read, written atomically or by rows.

Readers check a header against the file's real size and the dtype (an object array
would need pickle) before loading, and an array loaded whole against the memory budget
(repflat.files). Writers save whole arrays atomically (`save_npy`) or fill a
preallocated file row by row (`ArrayStream`), so memory does not grow with the rows.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from repflat.errors import UserError, expected
from repflat.files import (atomic_path, single_link, check_budget, create_new, file_sha256, is_regular,
                           open_regular, sha256_file)

PARTIAL = ".partial"
"""Suffix of an array being written row by row; it takes its final name when complete."""


def save_npy(path: str | Path, array: np.ndarray) -> str:
    """Save `array` atomically as .npy and return the file's sha256."""
    with atomic_path(path, durable=True) as tmp:
        with open(tmp, "wb") as fh:
            np.lib.format.write_array(fh, np.ascontiguousarray(array), allow_pickle=False)
        digest = sha256_file(tmp)
    return digest


# ---------------------------------------------------------------- manifest

def npy_header(path: Path, where: str) -> tuple[tuple[int, ...], np.dtype, int]:
    """(shape, dtype, data offset) of a .npy file, checked against the file's size.

    Read before anything else so a truncated file, an object array (which only pickle
    could load) or a corrupt header is named as such, never unpickled or allocated.
    """
    fd = open_regular(path, where)
    try:
        with os.fdopen(fd, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            version = np.lib.format.read_magic(fh)
            read = {(1, 0): np.lib.format.read_array_header_1_0,
                    (2, 0): np.lib.format.read_array_header_2_0}.get(version)
            if read is None:
                raise ValueError(f"unsupported .npy version {version}")
            shape, fortran, dtype = read(fh, max_header_size=1 << 16)
            offset = fh.tell()
    except Exception as err:  # noqa: BLE001 - numpy's header parser raises many kinds
        # (ValueError, SyntaxError, tokenize.TokenError, ... found by tests/test_fuzz.py);
        # for a file on disk every one of them means the same: not a readable array.
        raise UserError(f"{path} is not a readable .npy array "
                        f"({type(err).__name__}: {err})", argument=where) from None
    if dtype.hasobject:
        raise UserError(f"{path} holds Python objects, which only pickle can load; "
                        "refusing to (features are plain numbers)", argument=where)
    if fortran:
        raise expected(where, "a C-ordered .npy array", f"{path} (Fortran order)")
    expected_size = offset + int(np.prod(shape, dtype=object)) * dtype.itemsize
    if size != expected_size:
        what = "truncated" if size < expected_size else "longer than its header says"
        raise UserError(f"{path} is {what} ({size} bytes, its header needs "
                        f"{expected_size})", argument=where)
    return tuple(shape), dtype, offset


def load_npy(path: Path, sha256: str | None, where: str, mmap: bool) -> np.ndarray:
    """The array in `path` (a regular file, no link), its header checked first and, when
    loaded whole, its size against the memory budget, before its checksum is computed
    (once per process for a file that has not changed since: repflat.files.known_sha256)."""
    try:
        shape, dtype, _ = npy_header(path, where)
        if not mmap:
            check_budget(int(np.prod(shape, dtype=object)) * dtype.itemsize, where,
                         f"{path} (shape {shape}, {dtype})")
        if sha256 is not None and file_sha256(path) != sha256:
            raise UserError(f"checksum mismatch for {path} (the file changed after "
                            "it was written)", argument=where)
        if not is_regular(path):  # swapped for a link since its header was read
            raise expected(where, "a regular file", str(path))
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise UserError(f"{path} is not a readable .npy array ({err})", argument=where) from None


class ArrayStream:
    """A .npy file preallocated at its full size under a `.partial` name, filled by rows.

    Rows go to disk with `os.pwrite` as they are computed, so memory does not grow with
    the number of rows (a memory map would: its dirty pages count as the process's
    resident memory), and several processes may fill disjoint rows of one file.
    `finish()` hashes the file and moves it to its final name.
    """

    def __init__(self, path: str | Path, shape: tuple[int, ...] | None = None,
                 dtype: np.dtype | str | None = None):
        self.path = Path(path)
        self.partial = self.path.with_name(self.path.name + PARTIAL)
        if shape is not None:  # create; an existing partial file (or a link) is replaced
            dtype = np.dtype(dtype)
            self.partial.parent.mkdir(parents=True, exist_ok=True)
            with os.fdopen(create_new(self.partial), "wb") as fh:
                np.lib.format.write_array_header_1_0(fh, {
                    "descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False,
                    "shape": tuple(shape)})
                header = fh.tell()
                fh.truncate(header + int(np.prod(shape)) * dtype.itemsize)  # sparse until written
        # reopen (resume, or another process) from the header; never through a link
        with os.fdopen(open_regular(self.partial, "partial array"), "rb") as fh:
            np.lib.format.read_magic(fh)
            self.shape, _, self.dtype = np.lib.format.read_array_header_1_0(fh)
            self.header = fh.tell()
        self.row_bytes = int(np.prod(self.shape[1:], dtype=np.int64)) * self.dtype.itemsize
        self.fd = os.open(self.partial, os.O_WRONLY | os.O_NOFOLLOW)
        try:
            single_link(self.fd, self.partial, "partial array", "write rows into")
        except UserError:
            os.close(self.fd)
            raise

    def write_rows(self, start: int, rows: np.ndarray) -> None:
        rows = np.ascontiguousarray(rows, dtype=self.dtype)
        if rows.shape[1:] != self.shape[1:] or not 0 <= start <= self.shape[0] - len(rows):
            raise ValueError(f"rows {start}:{start + len(rows)} of shape {rows.shape} do not fit "
                             f"{self.partial} of shape {self.shape}")
        try:
            os.pwrite(self.fd, rows.tobytes(), self.header + start * self.row_bytes)
        except OSError as err:
            raise OSError(err.errno, err.strerror, str(self.partial)) from err

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def finish(self) -> str:
        """Flush, hash and move the complete file into place; return its sha256."""
        os.fsync(self.fd)
        self.close()
        digest = sha256_file(self.partial)
        os.replace(self.partial, self.path)
        return digest
