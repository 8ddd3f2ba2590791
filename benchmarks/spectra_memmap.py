"""ImageNet-sized features from a memory-mapped file: time and peak memory of the analysis.

Writes 1,000,000 × 2,048 float16 features (4.1 GB) with 1,000 shuffled classes into a
temporary directory, as a bare features directory (`features/manifest.json` and its
arrays, the documented contract, as another framework would write it), then runs
`repflat.analysis.layers.analyze_features` on it in a fresh process, exactly what
`repflat analyze` computes before writing tables: checksum, per-class spectra, every
metric, the pooled control, NC1. The child reports its wall time and its peak resident
memory (VmHWM from /proc/self/status; ru_maxrss elsewhere), which must stay well below
the file's size. The directory is deleted afterwards.

    python benchmarks/spectra_memmap.py [--n 1000000 --d 2048 --classes 1000 --dir /tmp]
"""
from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

CHUNK = 4096  # rows generated at a time (the low-rank part makes a 8·d float32 temporary per row)


def peak_rss_bytes() -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    import resource

    scale = 1 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def write_npy(path: Path, shape: tuple[int, int], dtype: str, chunks) -> str:
    """Stream rows into a .npy file with plain writes (no mapping) and return its sha256."""
    digest = hashlib.sha256()
    with open(path, "wb") as fh:
        header = path.with_suffix(".hdr")
        with open(header, "wb") as h:
            np.lib.format.write_array_header_1_0(h, {"descr": np.dtype(dtype).str,
                                                      "fortran_order": False, "shape": shape})
        data = header.read_bytes()
        header.unlink()
        fh.write(data)
        digest.update(data)
        for block in chunks:
            raw = np.ascontiguousarray(block, dtype=dtype).tobytes()
            fh.write(raw)
            digest.update(raw)
    return digest.hexdigest()


def generate(root: Path, n: int, d: int, k: int) -> None:
    """Class means plus a per-class low-rank part plus isotropic noise, labels shuffled."""
    rng = np.random.default_rng(0)
    labels = rng.integers(0, k, n)
    means = rng.standard_normal((k, d), dtype=np.float32)
    mix = rng.standard_normal((k, 8, d), dtype=np.float32)  # 8 strong directions per class
    split = root / "features" / "train"
    (split / "epoch0001").mkdir(parents=True)

    def rows():
        for start in range(0, n, CHUNK):
            y = labels[start:start + CHUNK]
            z = rng.standard_normal((len(y), 8), dtype=np.float32)
            x = means[y] + np.einsum("nr,nrd->nd", z, mix[y]) \
                + 0.1 * rng.standard_normal((len(y), d), dtype=np.float32)
            yield x

    feat_sha = write_npy(split / "epoch0001" / "penultimate.npy", (n, d), "<f2", rows())
    label_sha = write_npy(split / "labels.npy", (n,), "<i8", [labels])
    manifest = {"format": 1,
                "entries": [{"split": "train", "epoch": 1, "layer": "penultimate",
                             "path": "features/train/epoch0001/penultimate.npy",
                             "shape": [n, d], "dtype": "float16", "sha256": feat_sha}],
                "labels": {"train": "features/train/labels.npy"},
                "labels_sha256": {"train": label_sha}}
    (root / "features" / "manifest.json").write_text(json.dumps(manifest))


def measure(root: str) -> None:
    """In a fresh process: analyse, then print time and peak memory as JSON."""
    from repflat.analysis.layers import analyze_features
    from repflat.analysis.runs import collect_runs

    baseline = peak_rss_bytes()
    start = time.perf_counter()
    runs, _, _ = collect_runs([root])
    spectra, flat = analyze_features(runs)
    seconds = time.perf_counter() - start
    m = flat.set_index(["group", "metric"])["value"]
    print(json.dumps({"seconds": seconds, "peak_rss": peak_rss_bytes(), "rss_after_imports": baseline,
                      "spectra_rows": len(spectra), "flattening_rows": len(flat),
                      "nc1": m["all", "nc1"], "mean_effective_rank":
                      float(flat[(flat["metric"] == "effective_rank") & (flat["group"] == "class")]
                            ["value"].mean())}))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=1_000_000)
    p.add_argument("--d", type=int, default=2048)
    p.add_argument("--classes", type=int, default=1000)
    p.add_argument("--dir", default=None, help="where to put the temporary file (default: the system's)")
    p.add_argument("--measure", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.measure:
        measure(args.measure)
        return
    size = args.n * args.d * 2 + args.n * 8
    free = shutil.disk_usage(args.dir or tempfile.gettempdir()).free
    if free < 1.1 * size:
        print(f"SKIPPED: the benchmark needs {size / 1e9:.1f} GB of free disk in "
              f"{args.dir or tempfile.gettempdir()}, there are {free / 1e9:.1f} GB; pass --dir")
        return
    root = Path(tempfile.mkdtemp(prefix="repflat-bench-", dir=args.dir))
    try:
        start = time.perf_counter()
        generate(root, args.n, args.d, args.classes)
        file_size = (root / "features/train/epoch0001/penultimate.npy").stat().st_size
        print(f"wrote {args.n:,} × {args.d} float16, {args.classes} classes: "
              f"{file_size / 1e9:.2f} GB in {time.perf_counter() - start:.0f} s")
        child = subprocess.run([sys.executable, __file__, "--measure", str(root)],
                               capture_output=True, text=True)
        if child.returncode:
            sys.exit(f"analysis failed:\n{child.stderr}")
        r = json.loads(child.stdout.strip().splitlines()[-1])
        print(f"analyze_features: {r['seconds']:.0f} s; peak resident memory "
              f"{r['peak_rss'] / 2**20:,.0f} MiB ({r['peak_rss'] / file_size:.1%} of the file; "
              f"{r['rss_after_imports'] / 2**20:,.0f} MiB after imports); "
              f"{r['spectra_rows']:,} spectrum rows, {r['flattening_rows']:,} metric rows; "
              f"NC1 {r['nc1']:.3g}, mean class effective rank {r['mean_effective_rank']:.1f}")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
