"""`Analysis`: every table of an analysis in memory, with the runs and settings behind it.

What `repflat.analysis.compute` returns and what a report is built from: the tidy
spectra, flattening, summary and training frames (the CSVs of an analysis directory),
the runs they came from and the settings they were computed with.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from repflat.config import AnalysisConfig
from repflat.rundir.run import RunInfo


@dataclass
class Analysis:
    """Everything a report is built from.

    What `repflat.analysis.compute` returns (and `repflat report` reads back from an
    analysis directory): the tidy tables, the runs they came from and the settings they
    were computed with. The frames' columns are described in `repflat.analysis.tidy`.

    Parameters
    ----------
    name : str or None
        The experiment's name, if the analysis is of one.
    settings : AnalysisConfig
        The analysis settings (split, layers, epochs, center, scale, rtol, ...).
    runs : list of RunInfo
        The runs analysed: run directories, or feature sets held in memory.
    spectra : DataFrame
        spectra.csv: one row per singular value (run, layer, epoch, group, class, index).
    flat : DataFrame
        flattening.csv: one row per (run, layer, epoch, group, class, metric).
    summary : DataFrame
        summary.csv: class-averaged metrics, mean, std and n_runs over each arm's seeds
        (`repflat.analysis.summarize`).
    training : DataFrame
        training.csv: every run's metrics.csv, stacked; empty when no run has one.
    description : str, optional
        The experiment's description.
    notes : list of str, optional
        Sentences for the reader of the report (unfinished runs, small classes, ...).
    source : Path, optional
        The analysis directory the tables were read from; None when computed from runs.
    effects : DataFrame, optional
        effects.csv: each arm against its baseline with a seed-paired interval, by swept
        value (`repflat.analysis.effects.effects`).
    similarity : DataFrame, optional
        similarity.csv: CKA, shape distances and RSA of each arm against the baseline
        and of seed against seed (`repflat.analysis.similarity_table`).
    """

    name: str | None
    settings: AnalysisConfig
    runs: list[RunInfo]
    spectra: pd.DataFrame
    flat: pd.DataFrame
    summary: pd.DataFrame
    training: pd.DataFrame
    description: str | None = None
    notes: list[str] = field(default_factory=list)
    source: Path | None = None
    """The analysis directory the tables were read from; None when computed from runs."""
    effects: pd.DataFrame = field(default_factory=pd.DataFrame)
    """effects.csv: each arm against its baseline by swept value (repflat.analysis.effects)."""
    similarity: pd.DataFrame = field(default_factory=pd.DataFrame)
    """similarity.csv: each arm against the baseline and seed against seed, per layer
    (repflat.analysis.similarity_table)."""

    def __repr__(self) -> str:
        arms = list(dict.fromkeys(r.name for r in self.runs)) or list(
            dict.fromkeys(self.summary["arm"])) if len(self.summary) or self.runs else []
        epochs = sorted(set(self.flat["epoch"])) if len(self.flat) else []
        lines = [f"Analysis({self.name or 'unnamed'}: {len(self.runs)} runs, arms "
                 f"{', '.join(map(str, arms[:8])) or 'none'}{', …' if len(arms) > 8 else ''})",
                 f"  layers: {', '.join(self.layer_order[:12]) or 'none'}"
                 + (" …" if len(self.layer_order) > 12 else ""),
                 f"  epochs: {', '.join(map(str, epochs[:12])) or 'none'}"
                 + (" …" if len(epochs) > 12 else ""),
                 f"  tables: spectra {len(self.spectra)} rows, flat {len(self.flat)}, "
                 f"summary {len(self.summary)}, training {len(self.training)}"]
        return "\n".join(lines + [f"  note: {n[:120]}" for n in self.notes])

    def against(self, baseline: str, metrics) -> pd.DataFrame:
        """The rows of `effects` comparing an arm with `baseline` on `metrics`: what the
        pipeline computed, read, not computed again. Tables written before effects.csv
        existed have none; their comparisons are computed here, once, from `flat`."""
        effects = self.effects
        if effects.empty and len(self.flat):
            from repflat.analysis.stats import compare
            from repflat.analysis.tidy import per_run

            effects = self.effects = compare(per_run(self.flat))
        if effects.empty:
            return effects
        return effects[(effects["baseline"] == baseline) & effects["metric"].isin(list(metrics))]

    @property
    def layer_order(self) -> list[str]:
        return list(dict.fromkeys(self.spectra["layer"])) if len(self.spectra) else list(
            dict.fromkeys(self.summary["layer"]))

    @property
    def title(self) -> str:
        arms = ", ".join(dict.fromkeys(self.summary["arm"])) if len(self.summary) else "no runs"
        return f"repflat report: {self.name or arms}"
