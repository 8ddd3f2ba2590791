"""Layer statistics of feature sets larger than memory: per-class Gram matrices in chunks.

`gram_statistics(features, labels)` reads `features` (an array or a memory-mapped
.npy, any float or integer dtype) class by class: each class's rows, in ascending row
order, in chunks of at most `chunk_rows` rows, converted to float64 and accumulated
into `analysis.moments.Moments` (count, shifted sum, shifted Gram). So memory holds one
chunk and one n_features × n_features matrix per worker, never the whole array, and
pages of a memory-mapped file are handed back to the OS as reading goes on (a mapped
page counts in a process's resident memory until it is unmapped or released).

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
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from threadpoolctl import threadpool_limits

from analysis.moments import LayerStats, Moments, not_finite, psd_singular_values, rank_limited

CHUNK_BYTES = 64 << 20     # float64 bytes of one chunk of rows (per worker)
RELEASE_BYTES = 64 << 20   # mapped bytes read between two releases of the mapping


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


class RowReader:
    """Rows of a 2-D array by index, as float64, checked finite.

    For a memory-mapped array it drops the mapping's resident pages every
    `release_bytes` read (madvise MADV_DONTNEED: the file stays in the page cache, the
    process stops holding it), so resident memory stays bounded by the chunks in use.
    A scattered read (rows of one class spread over the file) releases at once: the
    kernel maps up to 64 KiB around every faulted page, so a thousand scattered rows
    can map far more than their own size.
    """

    def __init__(self, x: np.ndarray, release_bytes: int = RELEASE_BYTES):
        self.x = x
        self.map = _mapping(x) if hasattr(mmap, "MADV_DONTNEED") else None
        self.release_bytes = release_bytes
        self._read = 0
        self._lock = threading.Lock()

    def __call__(self, idx: np.ndarray) -> np.ndarray:
        contiguous = idx[-1] - idx[0] + 1 == len(idx)
        block = self.x[idx[0]:idx[-1] + 1] if contiguous else self.x[idx]  # a slice reads sequentially
        rows = np.array(block, dtype=np.float64)
        if not np.isfinite(rows).all():
            raise not_finite(rows, idx)
        if self.map is not None:
            with self._lock:
                self._read += block.nbytes if contiguous else self.release_bytes
                if self._read >= self.release_bytes:
                    self._read = 0
                    self.release()
        return rows

    def release(self) -> None:
        if self.map is not None:
            try:
                self.map.madvise(mmap.MADV_DONTNEED)
            except (OSError, ValueError):  # a closed or unusual mapping: memory is then the OS's call
                self.map = None


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
    """Mean, centred scatter (if `scatter`) and spectrum (if `spectrum`) of rows `idx`."""
    n = len(idx)
    if n <= chunk_rows:
        x = read(idx)
        d = x.shape[1]
        mean = x.mean(axis=0)
        y = x - mean  # the exact mean as shift: the two-pass centred Gram
        s_mat = y.T @ y if scatter or (spectrum and n >= d) else None
        sigma = None
        if spectrum and n >= 2:
            if n < d:
                z = y if center else x
                sigma = psd_singular_values(z @ z.T, n)
            else:
                sigma = psd_singular_values(s_mat if center else s_mat + n * np.outer(mean, mean), d)
            sigma = rank_limited(sigma, n, center)
        return mean, s_mat, sigma
    m = Moments.of(read(idx[:chunk_rows]))
    for start in range(chunk_rows, n, chunk_rows):
        m.add(read(idx[start:start + chunk_rows]))
    sigma = None
    if spectrum:
        sigma = rank_limited(psd_singular_values(m.scatter(center), min(n, len(m.shift))), n, center)
    return m.mean, (m.scatter() if scatter else None), sigma


def gram_statistics(features: np.ndarray, labels: np.ndarray, *, center: bool = True,
                    spectra: bool = True, pooled: bool = True, within: bool = True,
                    chunk_rows: int | None = None, workers: int | None = None) -> LayerStats:
    """`LayerStats` of `features` (n_samples, n_features) by per-class float64 Gram matrices.

    Inputs are assumed checked (`analysis.moments.check_inputs`); NaN or Inf in any row
    read is refused. `chunk_rows` defaults to 64 MiB of float64 rows; `workers` to the
    CPUs available.
    """
    n_features = features.shape[1]
    chunk_rows = chunk_rows or max(1, CHUNK_BYTES // (8 * n_features))
    workers = workers or default_workers()
    classes, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    order = np.argsort(inverse, kind="stable")  # rows grouped by class, ascending within
    bounds = np.r_[0, np.cumsum(counts)]
    read = RowReader(features)
    need_scatter = within or pooled

    def one(k: int):
        return class_moments(read, order[bounds[k]:bounds[k + 1]], center=center,
                             chunk_rows=chunk_rows, spectrum=spectra, scatter=need_scatter)

    means = np.empty((len(classes), n_features))
    w = np.zeros((n_features, n_features)) if need_scatter else None
    per_class: dict[int, np.ndarray] = {}
    try:
        for k, (mean, s_mat, sigma) in enumerate(bounded_map(one, range(len(classes)),
                                                             min(workers, len(classes)))):
            means[k] = mean
            if w is not None:
                w += s_mat
            if sigma is not None:
                per_class[int(classes[k])] = sigma
    finally:
        read.release()
    pooled_sigma = None
    if pooled:
        n = int(counts.sum())
        grand = counts @ means / n
        between = (means - grand) * np.sqrt(counts)[:, None]
        total = w + between.T @ between
        if not center:
            total += n * np.outer(grand, grand)
        pooled_sigma = rank_limited(psd_singular_values(total, min(n, n_features)), n, center)
    return LayerStats(classes, counts, means, center, per_class, pooled_sigma,
                      w if within else None)
