"""The report's "What this shows": the numbers of an analysis said in sentences.

The verdict comes first (repflat.analysis.report.verdict: a sentence per layer), then
Corollary 1's table (repflat.analysis.report.corollary). Then, per analysed layer, one
sentence on the paper's own statistic: which arm keeps the least class spread (Σ σ₂…),
its difference from the baseline arm with an interval (repflat.analysis.stats: paired t
over shared seeds, Welch otherwise, none below three seeds), called inside the noise
where the interval includes 0, the pooled control beside it, and whether a scale-free
measure (effective rank) agrees. Raw σ and the pooled control both move with the layer's
scale, a gauge of the loss, so the sentences report them and conclude nothing about
flattening from them (GAUGE). Then caveats: too few seeds, where Corollary 1 applies
(layers at or after where mixing happened), the gauge, and that the numerical rank
depends on rtol.

Every sentence is built from the tables alone, so a report read back from its CSVs says
the same thing; a researcher can paste it with its numbers.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from repflat.analysis.report.corollary import METRICS as COROLLARY_METRICS, excludes_zero
from repflat.analysis.results import Analysis
from repflat.analysis.stats import MIN_SEEDS, baseline_arm, count_note
from repflat.analysis.tidy import final_epoch, per_run
from repflat.analysis.report.tables import at_place, is_scientific, number, uncertainty_place
from repflat.rundir.names import INPUT
from repflat.config.strategies import MIXING_STRATEGIES
from repflat.progress import counted

SPREAD = "sum_other_singular_values"
POOLED_SPREAD = "pooled_" + SPREAD
SHAPE = "effective_rank"
RESIDUAL = "residual_variance_share"
METRICS = (SPREAD, POOLED_SPREAD, SHAPE, RESIDUAL, "theory_dimension", *COROLLARY_METRICS)
SIMILAR = 0.5
"""The pooled control 'explains' a per-class change when it changes by at least this
share of the per-class relative change, in the same direction."""


def _pct(x: float) -> str:
    return f"{x:+.0%}" if np.isfinite(x) else "—"


def _shown(row: pd.Series | None):
    """How the numbers of one comparison are written: all to the decimal place its
    interval's half-width allows (2 significant digits of it), as mean ± std are in the
    tables; without an interval, 4 significant digits each."""
    if row is None or not np.isfinite(row["low"]) or row["high"] <= row["low"]:
        return number
    half = (row["high"] - row["low"]) / 2
    values = [half, row["low"], row["high"], row["baseline_mean"], row["arm_mean"]]
    if any(is_scientific(v) for v in values if np.isfinite(v) and v != 0):
        return number
    place = uncertainty_place(half)
    return lambda x, *_: at_place(x, place)


def _ci(row: pd.Series) -> str:
    """'(−2.8, 95% CI −4.9 to −0.7, paired t over 3 seeds)', or why there is no interval."""
    show = _shown(row)
    diff = show(row["diff"], 3)
    seeds = counted(int(row['n_seeds']), "seed")
    if not np.isfinite(row["low"]):
        return f"({diff}; no interval with {seeds})"
    return (f"({diff}, {row['level']:.0%} CI {show(row['low'], 3)} to "
            f"{show(row['high'], 3)}, {row['method']} over {seeds})")


def _arm_means(summary: pd.DataFrame, layer: str, metric: str) -> pd.Series:
    rows = final_epoch(summary[(summary["layer"] == layer) & (summary["metric"] == metric)], by="arm")
    return rows.set_index("arm")["mean"]


def layer_sentences(layer: str, summary: pd.DataFrame, effects: pd.DataFrame, base: str) -> list[str]:
    """One sentence on the paper's statistic at one layer (empty when it is not there):
    the arm with the least Σ σ₂… against the baseline (or, when that is the baseline, the
    next smallest against it), with the interval, said to be inside the noise when it
    includes 0; the pooled control's change; the effective rank's, which ignores scale."""
    spread = _arm_means(summary, layer, SPREAD)
    if spread.empty:
        return []
    least = spread.idxmin()
    if len(spread) == 1:
        return [f"At {layer}, Σ σ₂… (the spread of each class beyond its main direction, "
                f"class-averaged) is {number(spread.iloc[0])} for {least}; there is no other "
                "arm to compare with."]
    if base not in spread.index:  # a model the baseline does not have (a grid over models)
        return [f"At {layer}, Σ σ₂… is smallest under {least} ({number(spread[least])}); the "
                f"baseline, {base}, has no {layer} to compare with."]
    other = least if least != base else spread.drop(base).idxmin()
    eff = effects[(effects["layer"] == layer)].set_index(["metric", "arm"])
    row = eff.loc[(SPREAD, other)] if (SPREAD, other) in eff.index else None
    clear = excludes_zero(row) if row is not None else None
    noise = ": inside the noise" if clear is False else ""
    show = _shown(row)
    ci = f" {_ci(row)}" if row is not None else ""
    if least != base:
        parts = [f"At {layer}, Σ σ₂… is smallest under {least}: {show(spread[least])} against "
                 f"{show(spread[base])} for {base}{ci}{noise}"]
    else:
        parts = [f"At {layer}, Σ σ₂… is smallest under {base}, the baseline: {show(spread[base])}, "
                 f"against {show(spread[other])} for {other}, the next smallest{ci}{noise}"]
    if row is not None and (POOLED_SPREAD, other) in eff.index:
        per_class, control = row["relative"], eff.loc[(POOLED_SPREAD, other)]["relative"]
        if np.isfinite(per_class) and np.isfinite(control):
            parts.append(f"all classes pooled (the paper's control) it changes by {_pct(control)} "
                         f"(per class: {_pct(per_class)})")
    if (SHAPE, other) in eff.index:
        shape = eff.loc[(SHAPE, other)]
        clear = excludes_zero(shape)
        if clear is None:
            how = "with no interval to tell"
        elif not clear:
            how = "no clear change in shape"
        else:
            how = "flatter in shape" if shape["diff"] < 0 else "less flat in shape, not more"
        parts.append(f"the effective rank, which ignores scale, goes from "
                     f"{_shown(shape)(shape['baseline_mean'])} to {_shown(shape)(shape['arm_mean'])} "
                     f"{_ci(shape)}: {how}")
    return ["; ".join(parts) + "."]


GAUGE = ("The paper's statistics, layer by layer: Σ σ₂… and its pooled control are in the "
         "layer's units, which move with its scale, a gauge of the loss (h → c·h with the next "
         "layer ÷ c changes no prediction), so they are reported here and not read as "
         "flattening; Corollary 1's scale-free test is in the table above.")


def mixed_layers(analysis: Analysis) -> dict[str, list[str]]:
    """Each arm's eligible layers, from its runs' configs ([] for arms that do not mix); a
    run labelled with its strategy alone (a user's loop) by that strategy."""
    out = {}
    for run in analysis.runs:
        if run.cfg is not None:
            strategy, layers = run.cfg.mixing.strategy, list(run.cfg.mixing.layers)
        elif run.strategy in MIXING_STRATEGIES:
            strategy, layers = run.strategy, ["layers not recorded"]
        else:
            continue
        layers = [INPUT] if strategy == "input_mixup" else layers
        if strategy == "manifold_mixup" and not layers:
            layers = ["every hidden layer"]
        out.setdefault(run.name, layers if strategy != "none" else [])
    return out


def caveats(analysis: Analysis, effects: pd.DataFrame) -> list[str]:
    out = []
    seeds = analysis.summary.groupby("arm")["n_runs"].max() if len(analysis.summary) else pd.Series()
    few = [a for a, n in seeds.items() if n < MIN_SEEDS]
    if few:
        out.append(f"Fewer than {MIN_SEEDS} seeds ({', '.join(f'{a}: {int(seeds[a])}' for a in few)}): "
                   "there are no intervals for these arms, and their differences may be noise.")
    mixed = mixed_layers(analysis)
    if mixed:
        where = "; ".join(f"{a}: mixed at {', '.join(l)}" for a, l in mixed.items() if l)
        none = [a for a, l in mixed.items() if not l]
        out.append("Corollary 1 describes minimisers of the mixup loss, and only layers at or "
                   "after where mixing happened" + (f" ({where})" if where else "") +
                   (f"; for {', '.join(none)}, which {'does' if len(none) == 1 else 'do'} not "
                    "mix, it does not apply" if none else "")
                   + ".")
    else:
        out.append("Whether these networks were trained with mixing is not known here (no run "
                   "configs): Corollary 1's check is moot unless they were (an ERM or a randomly "
                   "initialised network is no minimiser of the mixup loss).")
    if "along_spread" in set(analysis.summary["metric"]):
        out.append("Raw singular values (σ₁, Σ σ₂…: the paper's statistics) change with the "
                   "layer's scale, which is a gauge of the loss (h → c·h with the next layer "
                   "÷ c changes no prediction), so they are not evidence of flattening by "
                   "themselves, nor is the pooled control; the spreads along and across the "
                   "discriminative directions are scale-free. The residual share (variance "
                   "beyond dim(H) − K + 1) ignores orientation and reads a collapsed class "
                   "as thick: read it beside the collapsed flag.")
    out.append(f"The numerical rank counts singular values above {analysis.settings.rtol:g} · σ₁ "
               "(rtol): another rtol gives another count; the effective rank and the variance "
               "shares do not depend on it.")
    if len(effects):
        out.append(count_note(effects))
    return out


def interpretation(analysis: Analysis) -> tuple[list[str], list[str]]:
    """(findings, caveats): sentences built from the analysis' tables."""
    if analysis.flat.empty or analysis.summary.empty:
        return [], []
    values = per_run(analysis.flat)
    base = baseline_arm(values)
    summary, sweep_note = analysis.summary, None
    others = set(analysis.effects.get("baseline", pd.Series(dtype=object)).dropna()) - {base}
    if others:  # a sweep whose baseline was swept too: compare like with like only
        same = {base, *analysis.effects.loc[analysis.effects["baseline"] == base, "arm"]}
        values, summary = values[values["arm"].isin(same)], summary[summary["arm"].isin(same)]
        sweep_note = (f"The paper's statistics below compare the arms trained at {base}'s swept values with "
                      f"{base}; the others have their own baseline ({', '.join(sorted(others))}) "
                      "and are compared in the sweep section and effects.csv.")
    effects = analysis.against(base, METRICS)
    findings = [sweep_note] if sweep_note else []
    for layer in analysis.layer_order:
        if layer == INPUT:
            continue
        findings += layer_sentences(layer, summary, effects, base)
    return findings, caveats(analysis, effects)
