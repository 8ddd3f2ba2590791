"""`repflat analyze`: runs in, tables, figures and a report out.

Writes into the output directory: spectra.csv, flattening.csv, summary.csv
(class-averaged metrics, mean ± std over seeds); figure1.png and planes.png when the
runs saved 2D grids (a spirals-like experiment); report.md and report.html.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from tqdm.auto import tqdm

from analysis.toy import figure1, planes
from analysis.flattening import analyze_features, plan, summarize
from analysis.report import (Heading, Image, Paragraph, Table, accuracy_table,
                             flattening_table, write_report)
from analysis.runs import collect_runs, training_metrics
from analysis.style import theme
from repflat.config import AnalysisConfig
from repflat.errors import expected
from repflat.store import MANIFEST, write_text


def check_output_dir(out: Path) -> None:
    """Refuse to write analysis outputs into a run directory (it would mix two contracts)."""
    if out.exists() and not out.is_dir():
        raise expected("--out", "a directory", f"{out} (a file)")
    if (out / "config.yaml").is_file() or (out / MANIFEST).is_file():
        raise expected("--out", "a directory for analysis outputs, not a run directory", str(out))


def write_csv(path: Path, frame: pd.DataFrame) -> None:
    write_text(path, frame.to_csv(index=False))


def analyze(paths: Iterable[str | Path], out: str | Path, *,
            overrides: dict | None = None, progress: bool = False) -> list[Path]:
    """Analyse the runs under `paths` into `out`; return the files written.

    Settings come from the experiment directory's `analysis` section when a path is
    one, else the defaults; `overrides` (from the command line) win over both.
    """
    out = Path(out)
    check_output_dir(out)
    runs, settings, name = collect_runs(paths)
    settings = dataclasses.replace(settings or AnalysisConfig(), **(overrides or {}))
    total = len(plan(runs, settings))  # checks every requested array before any output
    with tqdm(total=total, desc="analysis", unit="array", disable=not progress,
              dynamic_ncols=True) as bar:
        spectra, flat = analyze_features(runs, settings, progress=bar.update)
    summary = summarize(flat)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for fname, frame in (("spectra.csv", spectra), ("flattening.csv", flat),
                         ("summary.csv", summary)):
        write_csv(out / fname, frame)
        written.append(out / fname)

    theme()
    title = f"repflat report: {name or ', '.join(sorted({r.name for r in runs}))}"
    blocks = [Paragraph(
        f"{len(runs)} runs: " + ", ".join(f"{a} ({n} seeds)" for a, n in
                                          pd.Series([r.name for r in runs]).value_counts(sort=False).items())
        + f". Features of the {settings.split} split, "
        + ("centred" if settings.center else "uncentred (raw)")
        + f" class-conditional spectra, numerical rank at rtol = {settings.rtol:g} · σ₁.")]
    metrics = training_metrics(runs)
    if not metrics.empty:
        blocks += [Heading("Training"), Table(accuracy_table(metrics))]
    figures = [
        ("figure1.png", "Figure 1", figure1(runs, spectra, layers=settings.spectra_layers,
                                            cls=settings.spectra_class),
         "Figure 1 reproduced: (a, b) input-space confidence, ERM vs manifold mixup; (d, e) the "
         "2D bottleneck with its confidence map, training states by class and hidden states of "
         "uniform inputs (black); (c, f) one class's singular values, mean ± std over seeds."),
        ("planes.png", "Hidden planes", planes(runs),
         "The 2D plane layer of every arm (lowest seed): confidence map, training states by "
         "class, hidden states of uniform inputs in black (the paper's Figure 2 view)."),
    ]
    for fname, heading, fig, caption in figures:
        if fig is None:  # the runs lack what this figure needs (e.g. no 2D grids)
            continue
        fig.savefig(out / fname)
        plt.close(fig)
        written.append(out / fname)
        blocks += [Heading(heading), Image(fname, caption)]
    layer_order = list(dict.fromkeys(spectra["layer"]))
    blocks += [Heading("Flattening"),
               Paragraph("Per-class metrics averaged over classes, then mean ± std over seeds, "
                         "at each run's last analysed epoch. Flattening shows as a smaller "
                         "σ₂… sum, effective rank and numerical rank per class; Corollary 1 "
                         "predicts each class on a (dim(H) − K + 1)-dimensional affine "
                         "subspace at a minimiser of the manifold mixup loss, i.e. no variance "
                         "beyond that dimension. The pooled columns (all classes together) are "
                         "the control."),
               Table(flattening_table(summary, layer_order)),
               Paragraph("Full tables: spectra.csv, flattening.csv, summary.csv beside this file.")]
    written += write_report(out, blocks, title)
    return written
