"""Your own points: a NumPy .npz file or a CSV table, checked strictly before any run.

Everything a file holds is treated as hostile: it is read through the safe readers
(a regular file, bounded size), an .npz without pickles and with its unpacked size
bounded too, and every array checked for shape, finite values and integer labels
0..K−1 (K >= 2), so a bad file is one UserError naming what is wrong, before anything
is written. numpy and pandas only.
"""
from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass

import numpy as np

from repflat.config import ArraysData, CsvData
from repflat.errors import UserError, expected, first_line
from repflat.files import check_table, read_bytes, read_text

POINTS_LIMIT = 256 << 20
"""Largest points file read (bytes), and largest total of an .npz's unpacked arrays."""
NPZ_KEYS = ("x", "y", "x_test", "y_test", "class_names")


@dataclass(frozen=True)
class Points:
    """Checked arrays: inputs (n, d) float32, labels (n,) int64 in 0..K−1."""

    x: np.ndarray
    y: np.ndarray
    x_test: np.ndarray | None
    y_test: np.ndarray | None
    n_classes: int
    class_names: tuple[str, ...] | None


def _inputs(a: np.ndarray, where: str) -> np.ndarray:
    if a.dtype.kind not in "fiu":
        raise expected(where, "numbers (a float or integer array)", f"dtype {a.dtype}")
    if a.ndim != 2 or a.shape[0] < 1 or a.shape[1] < 1:
        raise expected(where, "an array of shape (n_samples, n_features)", a.shape)
    if not np.isfinite(a).all():
        bad = np.argwhere(~np.isfinite(a))[0]
        raise expected(where, "finite values", f"{a[tuple(bad)]} at row {bad[0]}")
    return a.astype(np.float32)


def _labels(a: np.ndarray, n: int, where: str) -> np.ndarray:
    if a.dtype.kind not in "iu":
        raise expected(where, "integer labels", f"dtype {a.dtype}")
    if a.ndim != 1 or len(a) != n:
        raise expected(where, f"one label per row, shape ({n},)", a.shape)
    if len(a) and a.min() < 0:
        raise expected(where, "labels >= 0", int(a.min()))
    return a.astype(np.int64)


def check_points(x, y, x_test=None, y_test=None, class_names=None, *, where: str) -> Points:
    """The arrays checked (see the module docstring); a UserError `where: ...` otherwise."""
    x = _inputs(np.asarray(x), f"{where}: x")
    y = _labels(np.asarray(y), len(x), f"{where}: y")
    if (x_test is None) != (y_test is None):
        raise UserError(f"x_test and y_test come together; got only "
                        f"{'x_test' if y_test is None else 'y_test'}", argument=where)
    present = np.unique(y)
    if len(present) < 2:
        raise expected(f"{where}: y", "at least two classes", f"only class {present.tolist()}")
    k = int(present[-1]) + 1
    if len(present) != k:
        missing = sorted(set(range(k)) - set(present.tolist()))[:5]
        raise expected(f"{where}: y", f"labels 0..{k - 1}, each present", f"no row of class {missing}")
    if x_test is not None:
        x_test = _inputs(np.asarray(x_test), f"{where}: x_test")
        if x_test.shape[1:] != x.shape[1:]:
            raise expected(f"{where}: x_test", f"rows of {x.shape[1]} features like x", x_test.shape)
        y_test = _labels(np.asarray(y_test), len(x_test), f"{where}: y_test")
        if y_test.max() >= k:
            raise expected(f"{where}: y_test", f"labels of the training classes 0..{k - 1}",
                           int(y_test.max()))
    names = None
    if class_names is not None:
        c = np.asarray(class_names)
        if c.dtype.kind != "U" or c.shape != (k,) or len(set(c.tolist())) != k or not all(c.tolist()):
            raise expected(f"{where}: class_names", f"{k} distinct non-empty strings", f"{c.dtype} {c.shape}")
        names = tuple(str(s) for s in c.tolist())
    return Points(x, y, x_test, y_test, k, names)


def read_npz(path: str, where: str = "data.path") -> Points:
    """The arrays of an .npz (see ArraysData), loaded with allow_pickle=False."""
    raw = read_bytes(path, where, POINTS_LIMIT, follow=True)
    try:
        members = zipfile.ZipFile(io.BytesIO(raw)).infolist()
    except (zipfile.BadZipFile, ValueError, OSError):
        raise expected(where, "a NumPy .npz file (a zip of .npy arrays)", path) from None
    unpacked = sum(m.file_size for m in members)
    if unpacked > POINTS_LIMIT:  # a small file that unpacks to gigabytes
        raise UserError(f"{path} unpacks to {unpacked:,} bytes, more than the "
                        f"{POINTS_LIMIT:,} allowed; refusing to read it", argument=where)
    _check_headers(raw, members, path, where)
    arrays = {}
    try:
        with np.load(io.BytesIO(raw), allow_pickle=False) as npz:
            for key in npz.files:
                if key not in NPZ_KEYS:
                    raise UserError(f"{path} holds an array {key[:40]!r}; expected only "
                                    f"{', '.join(NPZ_KEYS)}", argument=where)
                arrays[key] = npz[key]
    except UserError:
        raise
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, KeyError) as err:
        raise UserError(f"{path} holds an array that cannot be read without pickles "
                        f"({first_line(err, 120)})", argument=where) from None
    for key in ("x", "y"):
        if key not in arrays:
            raise UserError(f"{path} has no array {key!r} (it holds "
                            f"{', '.join(arrays) or 'none'})", argument=where)
    return check_points(arrays["x"], arrays["y"], arrays.get("x_test"), arrays.get("y_test"),
                        arrays.get("class_names"), where=f"{where}: {path}")


def _check_headers(raw: bytes, members: list, path: str, where: str) -> None:
    """Refuse a member whose .npy header promises more bytes than the member holds: numpy
    allocates what a header says before reading (a 1 kB member promising 32 GiB)."""
    with zipfile.ZipFile(io.BytesIO(raw)) as archive:
        for member in members:
            if not member.filename.endswith(".npy"):
                continue
            try:
                with archive.open(member) as fh:
                    version = np.lib.format.read_magic(fh)
                    read = {(1, 0): np.lib.format.read_array_header_1_0,
                            (2, 0): np.lib.format.read_array_header_2_0}.get(version)
                    if read is None:
                        continue  # np.load names what it cannot read
                    shape, _, dtype = read(fh, max_header_size=1 << 16)
                    offset = fh.tell() if hasattr(fh, "tell") else 0
            except Exception:  # noqa: BLE001 - a malformed header: np.load names it below
                continue
            need = offset + int(np.prod(shape, dtype=object)) * dtype.itemsize
            if need > member.file_size:
                raise UserError(f"{path} member {member.filename[:40]!r} promises shape "
                                f"{tuple(shape)} of {dtype} ({need:,} bytes) but holds "
                                f"{member.file_size:,} bytes; refusing to read it",
                                argument=where)


def _csv_columns(path: str, cfg: CsvData, where: str) -> tuple[np.ndarray, np.ndarray]:
    import pandas as pd

    text = read_text(path, where, POINTS_LIMIT, follow=True)
    check_table(text, path, where)
    try:
        frame = pd.read_csv(io.StringIO(text))
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as err:
        raise UserError(f"{path} is not a readable CSV table ({first_line(err, 120)})",
                        argument=where) from None
    for column in (*cfg.features, cfg.label):
        if column not in frame.columns:
            shown = ", ".join(repr(str(c)[:40]) for c in list(frame.columns)[:10])
            raise UserError(f"{path} has no column {column!r} (it has {shown or 'none'})",
                            argument=where)
    x = np.empty((len(frame), 2), dtype=np.float64)
    for i, column in enumerate(cfg.features):
        values = pd.to_numeric(frame[column], errors="coerce")
        bad = values.isna()
        if bad.any():
            raise expected(f"{where}: {path} column {column!r}", "a number in every row",
                           f"{str(frame[column][bad].iloc[0])[:40]!r} in row {int(bad.idxmax()) + 1}")
        x[:, i] = values.to_numpy()
    labels = frame[cfg.label]
    if labels.dtype.kind not in "iu":
        raise expected(f"{where}: {path} column {cfg.label!r}", "integer labels in every row",
                       f"{str(labels.dtype)} values such as {str(labels.iloc[0])[:40]!r}")
    return x, labels.to_numpy()


def read_csv_points(cfg: CsvData, path: str, test_path: str | None) -> Points:
    """The points of a CsvData config (`path` and `test_path` already resolved)."""
    x, y = _csv_columns(path, cfg, "data.path")
    xt = yt = None
    if test_path is not None:
        xt, yt = _csv_columns(test_path, cfg, "data.test_path")
    return check_points(x, y, xt, yt, where=f"data.path: {path}")


def read_points(cfg: ArraysData | CsvData) -> Points:
    """The checked points of a user's file config."""
    if isinstance(cfg, ArraysData):
        return read_npz(cfg.path)
    return read_csv_points(cfg, cfg.path, cfg.test_path)
