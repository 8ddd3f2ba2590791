"""The report's figure builders, gathered for `build`, which imports this module only
when a report draws a figure: matplotlib, seaborn and scikit-learn take about 2 s to
import, which a report without figures (`--figures none`) should not pay."""
from __future__ import annotations

import contextlib
import warnings
from pathlib import Path

import matplotlib.pyplot as plt

from repflat.analysis.report.figures import (constant_note, constant_panels, epochs_figure,
                                             heatmap_figure, spectra_figure)
from repflat.analysis.report.plotting.corollary import corollary_figure
from repflat.analysis.report.plotting.embeddings import plot_embeddings
from repflat.analysis.report.plotting.style import figure_style
from repflat.analysis.report.sweep import sweep_blocks
from repflat.errors import RepflatWarning
from repflat.analysis.report.toy import boundaries, dataset_grid, figure1, planes

__all__ = ["boundaries", "constant_note", "corollary_figure", "constant_panels", "dataset_grid", "epochs_figure",
           "figure1", "figure_style", "heatmap_figure", "planes", "library_warnings_hidden", "plot_embeddings", "save",
           "spectra_figure", "sweep_blocks"]

SMOOTH = ("boundaries.png", "datasets.png", "datasets_entropy.png")


def save(fig, out: Path, name: str) -> Path:
    """`fig` written to out/name and closed. Smooth boundary maps compress badly: at 100
    dpi the PNG is about half its size at the style's 150 (benchmarks/design_choices.py)."""
    fig.savefig(out / name, **({"dpi": 100} if name in SMOOTH else {}))
    plt.close(fig)
    return out / name


@contextlib.contextmanager
def library_warnings_hidden():
    """While a report draws: matplotlib's, seaborn's and scikit-learn's warnings (a glyph
    the font lacks, a layout that does not fit, t-SNE's changing defaults) are not the
    user's to act on, so they do not reach stderr; repflat's own still do. Local: the
    filters are restored on leaving, nothing changes for a library user's session."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        warnings.simplefilter("default", RepflatWarning)
        yield
