"""The report's verdict: per layer, one sentence a researcher can quote.

Each arm is read against its baseline (a sweep's effects: the baseline trained at the
same swept values) on Corollary 1's scale-free measure, the spread along the
discriminative directions ÷ the class separation (repflat.analysis.discriminative), or,
for features saved without discriminative summaries, on the effective rank; then placed
in one of these, in this order:

- *flattening*: the spread along reads 0 (corollary.FLAT_TOL) and the premise holds
  (final excess mixup loss within corollary.PREMISE_TOL of its minimum): the geometry
  Corollary 1 says a minimiser has;
- *collapse*: most classes collapsed to points (allowed by the corollary);
- *less* / *more spread along* than the baseline: the seed-paired 95% interval of the
  difference excludes 0;
- *a change of scale only*: the interval of the scale-free measure includes 0 while one
  of the raw statistics' (σ₁, Σ σ₂…, which move with the layer's scale, a gauge of the
  loss) excludes it;
- *no detectable change*: every interval includes 0 (inside the noise);
- *no interval*: fewer than three seeds shared with the baseline.

The sentence ends with the premise: whether the arms that mix are near a minimiser of
their mixup loss (then the reading tests the corollary) or far from one (then it is an
observation), and which arms are compared at a layer before the one they mix at (where
the corollary says nothing). Built from the tables alone, like every sentence of the
report.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from repflat.analysis.report.corollary import (ACROSS, ALONG, COLLAPSED, arm_mean, excludes_zero,
                                               families, interval,
                                               linear_head_floors, premise, premise_reading,
                                               short_names, signed, state)
from repflat.analysis.report.tables import mean_std, number
from repflat.analysis.tidy import final_epoch
from repflat.progress import counted
from repflat.rundir.names import INPUT

SHAPE = "effective_rank"
SCALE = ("sum_other_singular_values", "largest_singular_value")
"""The paper's raw statistics: they move with the layer's scale (the gauge)."""
VERDICT_INTRO = ("Per layer, each arm against its baseline on Corollary 1's scale-free measure "
                 "(the spread along the discriminative directions ÷ the class separation; the "
                 "effective rank where the features carry no discriminative summaries), "
                 "seed-paired 95% intervals, and whether the arms that mix reached the "
                 "corollary's premise. The evidence is under What this shows.")
LISTED = 3
"""Arms of one reading named one by one; more are summarised by their range."""

ORDER = ("flattening", "collapse", "less", "less shape", "more", "more shape", "scale", "none",
         "no interval")
PHRASES = {
    "flattening": "flattening at a minimiser of the mixup loss, as Corollary 1 says",
    "collapse": "collapse, every class a point (which Corollary 1 allows)",
    "less": "less spread along the discriminative directions than {base}",
    "more": "more spread along the discriminative directions than {base}",
    "less shape": "a lower effective rank than {base} (flatter in shape)",
    "more shape": "a higher effective rank than {base} (less flat in shape)",
    "scale": "a change of scale only (the raw σ move, the scale-free measure does not)",
    "none": "no detectable change (inside the noise)",
    "no interval": "no interval (fewer than three seeds shared with {base})",
}


@dataclass(frozen=True)
class Reading:
    arm: str
    template: str
    kind: str
    evidence: str
    diff: float
    clear: bool | None
    before_mixing: bool


def _first_mixed(analysis) -> dict[str, int | None]:
    """Per arm that mixes, the position in the layer order of the first layer it mixes at
    (input: -1; None where its layers are not known: features labelled with a strategy
    alone); arms that do not mix are left out."""
    from repflat.analysis.report.interpret import mixed_layers

    order = list(analysis.layer_order)
    out = {}
    for arm, layers in mixed_layers(analysis).items():
        if layers:
            at = [-1 if l == INPUT else order.index(l) for l in layers if l == INPUT or l in order]
            out[arm] = min(at) if at else None
    return out


def read_arm(arm: str, shown: str, template: str, effects: pd.DataFrame, measure: str, found: str,
             near: bool, before: bool) -> Reading:
    """One arm's reading at one layer (module docstring), from its effects rows there;
    `shown` is its name in the sentence. At a layer before the one it mixes at, the
    corollary says nothing, so only the comparison with the baseline is read."""
    def row(metric):
        key = (metric, arm)
        return effects.loc[key] if key in effects.index else None

    main = row(measure)
    clear = excludes_zero(main)
    name = "Δ along" if measure == ALONG else "Δ effective rank"
    evidence = f"{name} {interval(main)}" if main is not None else ""
    diff = float(main["diff"]) if main is not None else float("nan")
    if found == "flattening" and near and not before:
        kind = "flattening"
    elif found == "collapse" and not before:
        kind = "collapse"
    elif clear is None:
        kind = "no interval"
    elif clear:
        kind = ("less" if diff < 0 else "more") + ("" if measure == ALONG else " shape")
    else:
        moved = [(m, row(m)) for m in SCALE if excludes_zero(row(m))]
        kind = "scale" if moved else "none"
        if moved:
            m, r = moved[0]
            evidence += f"; {'Σ σ₂…' if m == SCALE[0] else 'σ₁'} {r['relative']:+.0%}"
    return Reading(shown, template, kind, evidence, diff, clear, before)


def _templates(analysis) -> dict[str, str]:
    """Each swept arm's template (the arm of the experiment file it was made from)."""
    effects = analysis.effects
    if effects.empty or "template" not in effects:
        return {}
    pairs = effects.dropna(subset=["template"]).drop_duplicates("arm")
    return dict(zip(pairs["arm"], pairs["template"].astype(str)))


def _names(arms: list[str]) -> str:
    """Arms named one by one, or counted past LISTED."""
    return ", ".join(arms) if len(arms) <= LISTED else f"{len(arms)} arms ({', '.join(arms)})"


def _group(kind: str, readings: list[Reading], base: str, per_template: dict[str, int]) -> str:
    """One reading's phrase and its arms: named with their evidence up to LISTED, else
    counted, with the range of Δ; `every T arm` when they are all of template T's."""
    phrase = PHRASES[kind].format(base=base)
    if len(readings) <= LISTED:
        named = ", ".join(f"{r.arm} ({r.evidence})" if r.evidence else r.arm for r in readings)
        return f"{phrase} — {named}"
    diffs = np.array([r.diff for r in readings if np.isfinite(r.diff)])
    span = (f", Δ from {signed(diffs.min())} to {signed(diffs.max())}" if len(diffs) else "")
    every = {True: ", every interval excluding 0", False: ", every interval including 0"}
    clears = {r.clear for r in readings}
    tail = every[clears.pop()] if len(clears) == 1 and None not in clears else ""
    templates = {r.template for r in readings}
    if len(templates) == 1 and per_template.get(next(iter(templates))) == len(readings):
        who = f"every {next(iter(templates))} arm ({len(readings)})"
    else:
        who = f"{len(readings)} arms ({', '.join(r.arm for r in readings)})"
    return f"{phrase} — {who}{span}{tail}"


def _premise_clause(arms: list[str], excess: pd.DataFrame, floor: dict[str, float],
                    short: dict[str, str]) -> str:
    """How far the arms that mix are from a minimiser of their mixup loss."""
    logged = {a: float(excess.loc[a, "mean"]) for a in arms if a in excess.index}
    if not logged:
        return "The premise (excess mixup loss) was not logged, so whether Corollary 1 applies is unknown."
    near = [a for a, e in logged.items() if premise_reading(e, floor.get(a, 0.0)) == "near a minimiser"]
    far = [a for a in logged if a not in near]
    values = np.array(list(logged.values()))
    span = (number(values.min(), 2) if values.min() == values.max()
            else f"{number(values.min(), 2)}–{number(values.max(), 2)}")
    if not far:
        return f"Every arm that mixes is near a minimiser of its mixup loss (final excess {span}): a test of Corollary 1."
    if not near:
        return (f"No arm that mixes is near a minimiser of its mixup loss (final excess {span}): "
                "observations, not a test of Corollary 1.")
    if len(near) > LISTED and len(far) <= LISTED:
        return (f"Every other arm that mixes is near a minimiser of its mixup loss; far from "
                f"one: {_names([short[a] for a in far])} (observations, not a test of Corollary 1).")
    return (f"Near a minimiser of the mixup loss: {_names([short[a] for a in near])}; far "
            f"from one: {_names([short[a] for a in far])} (observations, not a test of Corollary 1).")


def _seeds(stats: pd.DataFrame, arms: list[str], measure: str) -> str:
    n = sorted({int(stats.loc[(a, measure), "n_runs"]) for a in arms if (a, measure) in stats.index})
    if not n:
        return ""
    return counted(n[0], "seed") + (" each" if len(arms) > 1 else "") if len(n) == 1 else \
        f"{n[0]}–{n[-1]} seeds"


def verdict(analysis) -> list[str]:
    """One sentence per (layer, baseline): module docstring. Empty without per-class
    spectra to read."""
    summary = analysis.summary
    if summary.empty:
        return []
    metrics = set(summary["metric"])
    measure = ALONG if ALONG in metrics else SHAPE if SHAPE in metrics else None
    if measure is None:
        return []
    excess = premise(analysis.training).set_index("arm")
    floor = {a: float(np.mean([b for _, b in p])) for a, p in linear_head_floors(analysis.runs).items()}
    first_mixed = _first_mixed(analysis)
    groups = families(analysis)
    out = []
    for layer in analysis.layer_order:
        if layer == INPUT:
            continue
        at = final_epoch(summary[summary["layer"] == layer], by="arm")
        if measure not in set(at["metric"]):
            continue
        stats = at.set_index(["arm", "metric"])
        position = analysis.layer_order.index(layer)
        for base, arms in groups.items():
            arms = [a for a in arms if (a, measure) in stats.index]
            if base not in arms:
                continue
            out.append(_sentence(analysis, layer, base, arms, stats, measure, excess, floor,
                                 {a: first_mixed.get(a) is not None and position < first_mixed[a]
                                  for a in arms},
                                 mixes=set(first_mixed), several=len(groups) > 1))
    return out


def _sentence(analysis, layer, base, arms, stats, measure, excess, floor, before, *, mixes,
              several) -> str:
    what = "spread along" if measure == ALONG else "effective rank"
    unit = " of the class separation" if measure == ALONG else ""
    base_value = mean_std(stats.loc[(base, measure), "mean"], stats.loc[(base, measure), "std"],
                          int(stats.loc[(base, measure), "n_runs"]))
    seeds = _seeds(stats, arms, measure)
    short = short_names(base, arms) if several else {a: a for a in arms}
    if len(arms) == 1:
        found = state(arm_mean(stats, base, ALONG), arm_mean(stats, base, ACROSS), arm_mean(stats, base, COLLAPSED))
        e = float(excess.loc[base, "mean"]) if base in excess.index else float("nan")
        said = f"{found}, {premise_reading(e, floor.get(base, 0.0))}" if found else \
            "no discriminative summaries, so no Corollary 1 reading"
        return (f"Layer {layer}: {base}, {said}: {what} {base_value}{unit} ({seeds}); there is no "
                "other arm to compare with.")
    effects = analysis.against(base, (measure, *SCALE))
    effects = effects[effects["layer"] == layer].set_index(["metric", "arm"])
    templates = _templates(analysis)
    per_template = pd.Series([templates.get(a, a) for a in arms[1:]]).value_counts().to_dict()
    readings = []
    for arm in arms[1:]:
        e = float(excess.loc[arm, "mean"]) if arm in excess.index else float("nan")
        found = state(arm_mean(stats, arm, ALONG), arm_mean(stats, arm, ACROSS), arm_mean(stats, arm, COLLAPSED))
        near = premise_reading(e, floor.get(arm, 0.0)) == "near a minimiser"
        readings.append(read_arm(arm, short[arm], templates.get(arm, arm), effects, measure, found, near, before[arm]))
    kinds = sorted({r.kind for r in readings}, key=ORDER.index)
    parts = [_group(k, [r for r in readings if r.kind == k], base, per_template) for k in kinds]
    text = f"Layer {layer}, against {base} ({what} {base_value}{unit}; {seeds}): " + "; ".join(parts) + "."
    early = [r.arm for r in readings if r.before_mixing]
    names = dict(zip(arms[1:], readings))
    if early:
        text += (f" {_names(early)} {'mixes' if len(early) == 1 else 'mix'} only after this "
                 f"layer: Corollary 1 says nothing of {'it' if len(early) == 1 else 'them'} here.")
    mixing = [a for a in arms[1:] if not names[a].before_mixing and a in mixes]
    if mixing and measure == ALONG:
        text += " " + _premise_clause(mixing, excess, floor, short)
    elif measure != ALONG:
        text += (" These features carry no discriminative summaries, so Corollary 1's own "
                 "measure is missing (repflat extract --discriminative saves them).")
    return text
