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
    """Everything a report is built from."""

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

    @property
    def layer_order(self) -> list[str]:
        return list(dict.fromkeys(self.spectra["layer"])) if len(self.spectra) else list(
            dict.fromkeys(self.summary["layer"]))

    @property
    def title(self) -> str:
        arms = ", ".join(dict.fromkeys(self.summary["arm"])) if len(self.summary) else "no runs"
        return f"repflat report: {self.name or arms}"
