"""Layer statistics of feature sets larger than memory: per-class Gram matrices in chunks.

`gram_statistics(features, labels)` reads `features` (an array or a memory-mapped
.npy, any float or integer dtype) class by class: each class's rows, in ascending row
order, in chunks of at most `chunk_rows` rows, converted to float64 and accumulated
into `repflat.analysis.moments.Moments` (count, shifted sum, shifted Gram). So memory holds one
chunk and one n_features × n_features matrix per worker, never the whole array; a
memory-mapped .npy is read from its file with positional reads (`RowReader`), so its
pages never count in the process's resident memory.

From each class's moments:

- the spectrum: √ of the eigenvalues of its centred scatter (or of Σ x xᵀ when
  uncentred); when a class has fewer rows than features and fits one chunk, of its
  n_k × n_k Gram instead (same non-zero eigenvalues, a smaller eigenproblem);
- its mean and count, and its scatter added into the within-class scatter;
- the pooled spectrum: all rows' scatter, assembled exactly from the class moments,
  W + Σ_k n_k (μ_k − μ)(μ_k − μ)ᵀ.

Classes are independent, so they run on a pool of threads (LAPACK's symmetric
eigensolver barely gains from BLAS threads; classes side by side do), each call with a
single BLAS thread; results are combined in class order, so the numbers do not depend
on the number of workers.
"""
from __future__ import annotations

import mmap
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from threadpoolctl import threadpool_limits

from repflat.analysis.moments import (DENSE_MAX_FEATURES, Factor, LayerStats, Moments, clean_spectrum,
                                      factored, psd_singular_values)
from repflat.analysis.inputs import check_magnitude, not_finite

CHUNK_BYTES = 64 << 20     # float64 bytes of one chunk of rows (per worker)
RELEASE_BYTES = 64 << 20   # bytes read through a mapping between two releases of it


def default_workers() -> int:
    """The CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _mapping(x: np.ndarray) -> mmap.mmap | None:
    """The mmap behind a memory-mapped array (or a view of one), else None."""
    base = x
    while base is not None:
        if isinstance(base, mmap.mmap):
            return base
        base = getattr(base, "_mmap", None) or getattr(base, "base", None)
    return None


def _file_rows(x: np.ndarray) -> tuple[str, int] | None:
    """(file, byte offset of row 0) of a whole C-ordered memory-mapped .npy, as np.load maps it."""
    if (isinstance(x, np.memmap) and isinstance(x.base, mmap.mmap) and x.flags.c_contiguous
            and getattr(x, "filename", None) and hasattr(os, "pread")):
        return x.filename, int(x.offset)
    return None


class RowReader:
    """Rows of a 2-D array by index, as a new float64 array, in bounded resident memory.

    A memory-mapped .npy is read with positional reads (`os.pread`) from its file, not
    through the mapping: a mapped page counts in the process's resident memory until
    released, and the kernel may map file pages in large folios, so scattered rows can map
    far more than they hold (benchmarks/spectra_memmap.py measures the resident memory of
    the whole path). Other memory-mapped arrays
    (views) go through the mapping, read in batches of rows after each of which the
    mapping's pages are dropped (madvise MADV_DONTNEED; the file stays in the page
    cache). In-memory arrays are indexed directly.
    """

    def __init__(self, x: np.ndarray, release_bytes: int = RELEASE_BYTES):
        self.x = x
        self.release_bytes = release_bytes
        source = _file_rows(x)
        self.fd = os.open(source[0], os.O_RDONLY) if source else None
        self.offset = source[1] if source else 0
        self.row_bytes = x.shape[1] * x.dtype.itemsize
        self.map = None if source or not hasattr(mmap, "MADV_DONTNEED") else _mapping(x)

    def __call__(self, idx: np.ndarray) -> np.ndarray:
        if self.fd is not None:
            return self._pread(idx).astype(np.float64)
        if self.map is None:
            return self._take(idx).astype(np.float64, copy=True)
        # through a mapping: a batch maps at most ~release_bytes, a 2 MiB folio per row at worst
        step = len(idx) if self._contiguous(idx) else max(1, self.release_bytes >> 21)
        step = max(1, min(step, self.release_bytes // self.row_bytes))
        out = np.empty((len(idx), self.x.shape[1]))
        for start in range(0, len(idx), step):
            out[start:start + step] = self._take(idx[start:start + step])
            self.release()
        return out

    @staticmethod
    def _contiguous(idx: np.ndarray) -> bool:
        return bool(idx[-1] - idx[0] + 1 == len(idx))

    def _take(self, idx: np.ndarray) -> np.ndarray:
        return self.x[idx[0]:idx[-1] + 1] if self._contiguous(idx) else self.x[idx]

    def _pread(self, idx: np.ndarray) -> np.ndarray:
        out = np.empty((len(idx), self.x.shape[1]), dtype=self.x.dtype)
        raw = out.view(np.uint8).reshape(len(idx), self.row_bytes)
        cuts = np.flatnonzero(np.diff(idx) != 1) + 1  # runs of consecutive rows: one read each
        for a, b in zip(np.r_[0, cuts].tolist(), np.r_[cuts, len(idx)].tolist()):
            where = self.offset + int(idx[a]) * self.row_bytes
            if hasattr(os, "preadv"):
                got = os.preadv(self.fd, [raw[a:b]], where)
            else:
                data = os.pread(self.fd, (b - a) * self.row_bytes, where)
                raw[a:b] = np.frombuffer(data, np.uint8).reshape(-1, self.row_bytes)
                got = len(data)
            if got != (b - a) * self.row_bytes:
                raise OSError(f"short read from {self.x.filename} at byte {where}")
        return out

    def release(self) -> None:
        if self.map is not None:
            try:
                self.map.madvise(mmap.MADV_DONTNEED)
            except (OSError, ValueError):  # a closed or unusual mapping: memory is then the OS's call
                self.map = None

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        self.release()


def bounded_map(fn: Callable, items: Iterable, workers: int) -> Iterator:
    """fn over items, results in order, at most 2·workers in flight (bounded memory).

    BLAS runs one thread per call whatever `workers` is, so each item is computed the
    same way by any number of workers (and a busy shared machine cannot stall a
    multi-threaded BLAS call on a core it does not get).
    """
    with threadpool_limits(limits=1, user_api="blas"):
        if workers <= 1:
            yield from map(fn, items)
            return
        with ThreadPoolExecutor(workers) as pool:
            pending: deque = deque()
            try:
                for item in items:
                    pending.append(pool.submit(fn, item))
                    if len(pending) >= 2 * workers:
                        yield pending.popleft().result()
                while pending:
                    yield pending.popleft().result()
            finally:
                for f in pending:
                    f.cancel()


def class_moments(read: Callable[[np.ndarray], np.ndarray], idx: np.ndarray, *, center: bool,
                  chunk_rows: int, spectrum: bool, scatter: bool):
    """Mean, centred scatter (if `scatter`) and spectrum (if `spectrum`) of rows `idx`.

    NaN or Inf in a row reaches the mean (or the shifted sum), which is computed anyway;
    only then are the rows scanned, to name the row. Overflowing squares are refused by
    their own message, without numpy's warning first.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        return _class_moments(read, idx, center=center, chunk_rows=chunk_rows,
                              spectrum=spectrum, scatter=scatter)


def _class_moments(read, idx, *, center, chunk_rows, spectrum, scatter):
    n = len(idx)
    if n <= chunk_rows:
        x = read(idx)
        d = x.shape[1]
        mean = x.mean(axis=0)
        if not np.isfinite(mean).all():
            raise not_finite(x, idx)
        check_magnitude(x, idx)
        small = spectrum and 2 <= n < d  # the n × n Gram: same non-zero eigenvalues, smaller
        raw = x @ x.T if small and not center else None
        x -= mean  # in place: the exact mean as shift, i.e. the two-pass centred Gram
        if scatter and factored(n, d):  # wide: keep the centred rows, never the d × d scatter
            s_mat = Factor(x)
        else:
            s_mat = _finite(x.T @ x, read, idx) if scatter or (spectrum and n >= d) else None
        sigma = None
        if spectrum and n >= 2:
            if small:
                m = _finite(x @ x.T if center else raw, read, idx)
            else:
                m = s_mat if center else s_mat + n * np.outer(mean, mean)
            sigma = clean_spectrum(psd_singular_values(m, min(n, d)), n, center, mean)
        return mean, s_mat, sigma
    m = None
    for start in range(0, n, chunk_rows):
        part = idx[start:start + chunk_rows]
        rows = read(part)
        check_magnitude(rows, part)
        if m is None:
            m = Moments.of(rows)
        else:
            m.add(rows)
        if not np.isfinite(m.total).all():
            raise not_finite(rows, part)
    _finite(m.gram, read, idx)
    sigma = None
    if spectrum:
        sigma = clean_spectrum(psd_singular_values(m.scatter(center), min(n, len(m.shift))), n,
                               center, m.mean)
    return m.mean, (m.scatter() if scatter else None), sigma


def _finite(m: np.ndarray, read: Callable, idx: np.ndarray) -> np.ndarray:
    """`m`, a Gram matrix of finite rows, unless squares overflowed float64 (its diagonal says)."""
    if not np.isfinite(m.diagonal()).all():
        raise not_finite(read(idx), idx)
    return m


def gram_statistics(features: np.ndarray, labels: np.ndarray, *, center: bool = True,
                    spectra: bool = True, pooled: bool = True, within: bool = True,
                    chunk_rows: int | None = None, workers: int | None = None) -> LayerStats:
    """`LayerStats` of `features` (n_samples, n_features) by per-class float64 Gram matrices.

    Inputs are assumed checked (`repflat.analysis.moments.check_inputs`); NaN or Inf in any row
    read is refused. `chunk_rows` defaults to 64 MiB of float64 rows; `workers` to the
    CPUs available.
    """
    n_features = features.shape[1]
    chunk_rows = chunk_rows or max(1, CHUNK_BYTES // (8 * n_features))
    workers = workers or default_workers()
    classes, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    if n_features > DENSE_MAX_FEATURES:
        # Wide: a class with fewer rows than features is read whole (its rows are smaller
        # than its d × d Gram), so its scatter stays a Factor; see repflat.analysis.moments.
        narrow = counts[counts < n_features]
        chunk_rows = max(chunk_rows, int(narrow.max()) if len(narrow) else 0)
    order = np.argsort(inverse, kind="stable")  # rows grouped by class, ascending within
    bounds = np.r_[0, np.cumsum(counts)]
    read = RowReader(features)
    need_scatter = within or pooled

    def one(k: int):
        return class_moments(read, order[bounds[k]:bounds[k + 1]], center=center,
                             chunk_rows=chunk_rows, spectrum=spectra, scatter=need_scatter)

    means = np.empty((len(classes), n_features))
    parts: list = []
    per_class: dict[int, np.ndarray] = {}
    try:
        for k, (mean, s_mat, sigma) in enumerate(bounded_map(one, range(len(classes)),
                                                             min(workers, len(classes)))):
            means[k] = mean
            if s_mat is not None:
                parts.append(s_mat)
            if sigma is not None:
                per_class[int(classes[k])] = sigma
    finally:
        read.close()
    w = _sum_scatters(parts, n_features) if need_scatter else None
    pooled_sigma = None
    if pooled:
        n = int(counts.sum())
        grand = counts @ means / n
        between = (means - grand) * np.sqrt(counts)[:, None]
        if not center:
            between = np.vstack([between, np.sqrt(n) * grand])
        if isinstance(w, Factor):  # singular values of the stacked rows: Σ = FᵀF + BᵀB
            pooled_sigma = np.linalg.svd(np.vstack([w.rows, between]), compute_uv=False)[:min(n, n_features)]
        else:
            pooled_sigma = psd_singular_values(w + between.T @ between, min(n, n_features))
        pooled_sigma = clean_spectrum(pooled_sigma, n, center, grand)
    return LayerStats(classes, counts, means, center, per_class, pooled_sigma,
                      w if within else None)


def _sum_scatters(parts: list, n_features: int) -> np.ndarray | Factor:
    """Σ of class scatters: a Factor when every class kept one (wide layers), else dense."""
    if parts and all(isinstance(p, Factor) for p in parts):
        return Factor(np.concatenate([p.rows for p in parts]))
    w = np.zeros((n_features, n_features))
    for p in parts:
        w += p.dense() if isinstance(p, Factor) else p
    return w
