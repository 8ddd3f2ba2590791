"""The report's similarity section: is each arm's representation different from the
baseline's, more than two seeds of the same arm differ? From `Analysis.similarity`
(similarity.csv, repflat.analysis.similarity_table)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from repflat.analysis.report.markup import Heading, Paragraph, Table
from repflat.analysis.results import Analysis
from repflat.analysis.similarity_table import BASELINE, METRICS, SEEDS, TITLES, similarity_summary
from repflat.analysis.tidy import arm_order

INTRO = ("Similarity of the representations at each layer (final epoch, analysed split, same "
         "samples in the same order): each arm against the baseline with the same seed, and the "
         "same arm's seeds against each other, the reference a score is read against (similarity "
         "grows with width and depth). Linear CKA, biased (Kornblith et al. 2019) and debiased "
         "(unbiased HSIC; near 0 for unrelated features), 1 = same up to rotation and scale; "
         "Procrustes and angular shape distances (Williams et al. 2021), 0 = same shape; RSA, the "
         "Spearman correlation of correlation-distance RDMs (Kriegeskorte et al. 2008). Mean over "
         "pairs (their range, min–max: with a few pairs a t interval leaves the scores' bounds, "
         "and seed-to-seed pairs share runs); similarity.csv holds every pair.")


def _cell(row) -> str:
    if pd.isna(row["mean"]):
        return "–"
    if row["n_pairs"] < 2 or pd.isna(row["min"]):
        return f"{row['mean']:.3f}"
    return f"{row['mean']:.3f} ({row['min']:.3f}–{row['max']:.3f})"


def similarity_frame(summary: pd.DataFrame, layers: list[str], baselines: dict[str, str]) -> pd.DataFrame:
    """One row per (layer, arm, comparison), one column per metric, cells 'mean (min–max)'
    over the pairs; `baselines`: each arm's baseline arm."""
    rows = []
    for layer in [l for l in dict.fromkeys([*layers, *summary["layer"]]) if l in set(summary["layer"])]:
        here = summary[summary["layer"] == layer]
        for arm in arm_order(here["arm"]):
            for comparison in (BASELINE, SEEDS):
                g = here[(here["arm"] == arm) & (here["comparison"] == comparison)]
                if g.empty:
                    continue
                by = {r["metric"]: r for _, r in g.iterrows()}
                rows.append({"layer": layer, "arm": arm,
                             "against": (f"{baselines.get(arm, '?')} (same seed)" if comparison == BASELINE
                                         else "its own seeds"),
                             "pairs": int(g["n_pairs"].max()),
                             **{TITLES[m]: _cell(by[m]) if m in by else "–" for m in METRICS}})
    return pd.DataFrame(rows)


def _reading(summary: pd.DataFrame, baselines: dict[str, str], metric: str = "cka_debiased") -> list[str]:
    """One sentence per arm: at which layers its debiased CKA with its baseline falls below
    both seed-to-seed references (its own and the baseline's)."""
    s = summary[summary["metric"] == metric].set_index(["layer", "arm", "comparison"])["mean"]
    out = []
    for arm in arm_order(summary["arm"]):
        baseline = baselines.get(arm)
        if baseline is None:
            continue
        below, within = [], []
        for layer in dict.fromkeys(summary["layer"]):
            value = s.get((layer, arm, BASELINE))
            refs = [s.get((layer, arm, SEEDS)), s.get((layer, baseline, SEEDS))]
            refs = [r for r in refs if r is not None and np.isfinite(r)]
            if value is None or not np.isfinite(value) or not refs:
                continue
            (below if value < min(refs) else within).append(f"{layer} ({value:.2f} vs {min(refs):.2f})")
        if below or within:
            out.append(f"{arm} against {baseline}, debiased CKA vs the lower seed-to-seed reference: "
                       + (f"less similar than two seeds at {', '.join(below)}" if below else
                          "at no layer less similar than two seeds")
                       + (f"; as similar as two seeds or more at {', '.join(within)}" if within else "")
                       + ".")
    return out


def similarity_blocks(analysis: Analysis) -> list:
    """The section's blocks; none when similarity.csv is empty or absent (an older
    analysis, or runs without seeds to pair)."""
    frame = analysis.similarity
    if frame is None or frame.empty:
        return []
    summary = similarity_summary(frame)
    against = frame[frame["comparison"] == BASELINE].drop_duplicates("arm")
    baselines = dict(zip(against["arm"].astype(str), against["other_arm"].astype(str)))
    return [Heading("Similarity between arms"), Paragraph(INTRO),
            *map(Paragraph, _reading(summary, baselines)),
            Table(similarity_frame(summary, analysis.layer_order, baselines), name="similarity", wrap=2)]
