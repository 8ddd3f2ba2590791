"""Per-class spectra of CIFAR-sized features: repflat's Gram path against an SVD per class
and against the floor of one pass of per-class Gram products, side by side in one run.

Features: N × D float32 (default 50,000 × 512, the size of a ResNet-18's penultimate
layer on CIFAR), K classes of N/K rows, labels shuffled. Contenders, each a median over
`--rounds` rounds run in alternating order:

- repflat: `repflat.analysis.spectra.class_spectra(x, y, method="gram")`: gathers each class's
  rows, casts to float64, centres, forms the Gram matrix and takes its eigenvalues.
- (a) SVD: what `repflat.analysis.spectra.singular_values` does per class (float64 cast, centre,
  `numpy.linalg.svd` values only), with numpy's default BLAS threads and, because
  multi-threaded LAPACK can crawl on a busy machine, with one BLAS thread.
- (b) floor: Xₖᵀ Xₖ for every class on float64 class blocks gathered and cast in
  advance: N·D² multiply-adds, of which BLAS's syrk does half, by symmetry; run with
  the same workers and BLAS threads as repflat's path, and serially with default BLAS
  threads; the faster of the two is the floor. (b') is the same product as a general
  matrix product (gemm), all N·D² multiply-adds, shown for reference.

Targets (issue 4): at least 3× faster than (a), within 2× of (b).

    python benchmarks/spectra_speed.py [--n 50000 --d 512 --classes 100 10 --rounds 3]
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from threadpoolctl import threadpool_limits

from repflat.analysis.spectra import class_spectra, singular_values
from repflat.analysis.gram import bounded_map, default_workers


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def compare(n: int, d: int, k: int, rounds: int, svd_default_rounds: int) -> dict[str, float]:
    rng = np.random.default_rng(0)
    # a decaying spectrum per class, so the eigenproblems are not trivially flat
    x = (rng.standard_normal((n, d), dtype=np.float32) * np.geomspace(1, 1e-3, d, dtype=np.float32)
         + rng.standard_normal((k, d), dtype=np.float32)[np.arange(n) % k])
    y = rng.permutation(np.arange(n) % k)
    blocks = [x[y == c].astype(np.float64) for c in range(k)]
    pairs = [(b.T.copy(), b) for b in blocks]  # distinct operands: gemm, all N·D² multiply-adds
    workers = default_workers()

    def svd(threads):
        def run():
            with threadpool_limits(limits=threads, user_api="blas"):
                [singular_values(x[y == c]) for c in range(k)]
        return run

    contenders = {
        f"repflat, {workers} workers": lambda: class_spectra(x, y, method="gram", workers=workers),
        "repflat, 1 worker": lambda: class_spectra(x, y, method="gram", workers=1),
        f"(b) floor, {workers} workers": lambda: list(bounded_map(lambda b: b.T @ b, blocks, workers)),
        "(b) floor, 1 thread": lambda: list(bounded_map(lambda b: b.T @ b, blocks, 1)),
        "(b) floor, default BLAS threads": lambda: [b.T @ b for b in blocks],
        "(b') general product, 1 thread": lambda: list(bounded_map(lambda p: p[0] @ p[1], pairs, 1)),
        "(a) svd, 1 BLAS thread": svd(1),
    }
    times = {name: [] for name in contenders}
    for r in range(rounds):
        order = list(contenders) if r % 2 == 0 else list(contenders)[::-1]
        for name in order:
            times[name].append(timed(contenders[name]))
    times["(a) svd, default BLAS threads"] = [timed(svd(None)) for _ in range(svd_default_rounds)]
    med = {name: statistics.median(t) for name, t in times.items()}

    # the numbers agree (to the documented accuracy)
    got, ref = class_spectra(x, y, method="gram"), class_spectra(x, y, method="svd")
    err = max(float(np.max(np.abs(got[c] - ref[c])) / ref[c][0]) for c in ref)

    ours, ours1 = med[f"repflat, {workers} workers"], med["repflat, 1 worker"]
    floor = min(med[f"(b) floor, {workers} workers"], med["(b) floor, default BLAS threads"])
    svd1, svd_default = med["(a) svd, 1 BLAS thread"], med["(a) svd, default BLAS threads"]
    print(f"\n{n:,} × {d} float32, {k} classes of {n // k:,} rows, {workers} workers, "
          f"median of {rounds} rounds (default-thread SVD: {svd_default_rounds})")
    for name, t in med.items():
        print(f"  {name:<34} {t:8.3f} s")
    print(f"  (a) / repflat: default-thread SVD {svd_default / ours:5.1f}×, 1-thread SVD "
          f"{svd1 / ours:4.1f}×, both single-threaded {svd1 / ours1:4.1f}×   (target ≥ 3)")
    print(f"  repflat / (b): {ours / floor:4.2f} (fastest floor), both single-threaded "
          f"{ours1 / med['(b) floor, 1 thread']:4.2f}   (target ≤ 2)")
    gemm = med["(b') general product, 1 thread"]
    print(f"  (b') literally N·D² multiply-adds (gemm, not syrk): repflat single-threaded / it "
          f"{ours1 / gemm:4.2f}")
    print(f"  max |σ_gram − σ_svd| / σ₁: {err:.1e}")
    return med


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=50_000)
    p.add_argument("--d", type=int, default=512)
    p.add_argument("--classes", type=int, nargs="+", default=[100, 10])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--svd-default-rounds", type=int, default=1,
                   help="rounds of the default-thread SVD (slow on a busy machine)")
    args = p.parse_args()
    for k in args.classes:
        compare(args.n, args.d, k, args.rounds, args.svd_default_rounds)


if __name__ == "__main__":
    main()
