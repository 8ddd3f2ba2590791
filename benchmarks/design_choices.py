"""The measurements behind choices the code makes, side by side in one run.

Each pair runs the chosen way and the alternative alternately (three repeats), on this
machine as it is, and prints the times and their ratio; the code's comments point here.

- embeddings.embed: t-SNE on one thread against the default thread count;
- spectra.svd_statistics: per-class float64 SVD on one BLAS thread against the default;
- report figures: fixed margins against tight_layout for a spectra grid of 20 log panels;
- report._save: the boundaries figure's PNG size at the style's dpi against 100 dpi.

    python benchmarks/design_choices.py
"""
from __future__ import annotations

import argparse
import io
import time

import numpy as np
from threadpoolctl import threadpool_limits


def timed(fn, repeats: int = 3) -> list[float]:
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def pair(name: str, chosen, other, repeats: int = 3) -> None:
    a, b = [], []
    for _ in range(repeats):  # alternate, so load on the machine hits both alike
        a += timed(chosen, 1)
        b += timed(other, 1)
    print(f"{name}: chosen {min(a):.3f} s, alternative {min(b):.3f} s, "
          f"alternative / chosen = {min(b) / min(a):.2f}")


def tsne() -> None:
    from sklearn.manifold import TSNE

    x = np.random.default_rng(0).normal(size=(500, 64))

    def run():
        TSNE(init="pca", random_state=0, perplexity=30).fit_transform(x)

    def one():
        with threadpool_limits(1):
            run()
    pair("t-SNE, 500 x 64 (1 thread vs default)", one, run)


def svd() -> None:
    rng = np.random.default_rng(0)
    classes = [rng.normal(size=(500, 512)) for _ in range(10)]

    def run():
        for c in classes:
            np.linalg.svd(c - c.mean(0), compute_uv=False)

    def one():
        with threadpool_limits(1, user_api="blas"):
            run()
    pair("per-class SVD, 10 x (500 x 512) (1 BLAS thread vs default)", one, run)


def figure_layout() -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def draw(tight: bool):
        fig, axes = plt.subplots(4, 5, figsize=(16, 11))
        for ax in axes.flat:
            ax.plot(np.arange(30), np.logspace(0, -5, 30))
            ax.set_yscale("log")
        if tight:
            fig.tight_layout()
        else:
            fig.subplots_adjust(left=0.05, right=0.98, bottom=0.05, top=0.93, wspace=0.38, hspace=0.5)
        fig.savefig(io.BytesIO(), format="png")
        plt.close(fig)
    pair("spectra grid of 20 log panels (fixed margins vs tight_layout)", lambda: draw(False), lambda: draw(True))


def png_size() -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(0)
    smooth = np.cumsum(np.cumsum(rng.normal(size=(200, 200, 3)), 0), 1)
    smooth = (smooth - smooth.min()) / np.ptp(smooth)
    sizes = {}
    for dpi in (150, 100):
        fig, axes = plt.subplots(3, 3, figsize=(11.4, 9.9))
        for ax in axes.flat:
            ax.imshow(smooth, interpolation="bilinear")
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=dpi)
        plt.close(fig)
        sizes[dpi] = len(buf.getvalue())
    print(f"boundaries-like figure: {sizes[150] / 1e6:.2f} MB at 150 dpi, {sizes[100] / 1e6:.2f} MB "
          f"at 100 dpi ({sizes[150] / sizes[100]:.2f}x)")


if __name__ == "__main__":
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    tsne()
    svd()
    figure_layout()
    png_size()
