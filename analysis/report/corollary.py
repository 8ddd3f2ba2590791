"""Corollary 1 measured as stated, read off the tables: a table and a reading per arm.

From the corollary-matched, scale-free measures (repflat.analysis.discriminative): the
class spread along the discriminative directions and across them, each relative to the
class separation, and the share of collapsed classes; from the premise: the excess mixup
loss at the final epoch (metrics.csv). The corollary says what a *minimiser* of the
mixup loss looks like, so every reading has two parts:

- the state, one of three (the corollary allows the first two, forbids the third):
  *flattening* (spread along < FLAT_TOL · separation, across not: each class a sheet
  across the discriminative directions), *collapse* (most classes' whole spread below
  the collapse tolerance: points), or *neither*;
- the premise: *near a minimiser* when the final excess is within PREMISE_TOL of the
  smallest excess any network can reach (0, or the closed-form minimum of a linear head,
  repflat.analysis.theory.linear_head_excess), else *far from one*: then the state is an
  observation, not a test of the corollary.

Beside them, each arm's spread along against its baseline (a seed-paired interval) and
ρ, Spearman's rank correlation of the spread along with the excess over every analysed
epoch of its runs: positive when the spread along falls as the loss nears its minimum,
the trend the corollary implies.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from repflat.analysis.report.tables import mean_std, number
from repflat.analysis.tidy import arm_order, final_epoch, per_run
from repflat.progress import counted
from repflat.rundir.names import EXCESS_MIXUP_LOSS, FINAL, INPUT

ALONG, ACROSS, COLLAPSED, ALONG_SHARE = "along_spread", "across_spread", "collapsed", "along_share"
RAW = "sum_other_singular_values"
METRICS = (ALONG, ACROSS, ALONG_SHARE, COLLAPSED, RAW)
FLAT_TOL = 0.05
"""Spread along the discriminative directions, ÷ separation, read as 0 (the collapse
tolerance of repflat.analysis.discriminative, on one side of the class instead of all)."""
PREMISE_TOL = 0.01
"""Excess mixup loss (nats, or squared units) above the attainable minimum read as a
minimiser: 300 mini-batch epochs of the spirals leave 0.01–0.15, 6,000 full-batch epochs
with cosine decay 0.0001–0.001 (README, Corollary 1)."""
MOSTLY = 0.5
MIN_TREND = 5
"""Points (run × epoch) below which no ρ is given."""


def premise(training: pd.DataFrame) -> pd.DataFrame:
    """Per arm, the excess mixup loss at each run's last evaluated epoch: columns arm,
    mean, std, n (empty where no run logged it)."""
    if training.empty or EXCESS_MIXUP_LOSS not in training.columns:
        return pd.DataFrame(columns=["arm", "mean", "std", "n"])
    logged = training.dropna(subset=[EXCESS_MIXUP_LOSS])
    last = logged[logged["epoch"] == logged.groupby("run")["epoch"].transform("max")]
    out = last.groupby("arm", sort=False)[EXCESS_MIXUP_LOSS].agg(["mean", "std", "count"])
    return out.rename(columns={"count": "n"}).reset_index()


def against_premise(flat: pd.DataFrame, training: pd.DataFrame, layer: str) -> pd.DataFrame:
    """Per run and analysed epoch at `layer`: the class-averaged spread along and across
    the discriminative directions beside the excess mixup loss of the latest premise
    evaluation at or before that epoch. Columns run, arm, strategy, seed, epoch,
    along_spread, across_spread, excess_mixup_loss; empty without the measures or the
    premise (epoch 0, before any training, has no premise and is left out)."""
    rows = flat[(flat["layer"] == layer) & flat["metric"].isin([ALONG, ACROSS])]
    if rows.empty or training.empty or EXCESS_MIXUP_LOSS not in training.columns:
        return pd.DataFrame()
    wide = (per_run(rows).pivot_table(index=["run", "arm", "strategy", "seed", "epoch"],
                                      columns="metric", values="value").reset_index())
    logged = training.dropna(subset=[EXCESS_MIXUP_LOSS])[["run", "epoch", EXCESS_MIXUP_LOSS]]
    out = []
    for run, block in wide.groupby("run", sort=False):
        mine = logged[logged["run"] == run].sort_values("epoch")
        if mine.empty:
            continue
        block = block.sort_values("epoch")
        out.append(pd.merge_asof(block, mine.drop(columns="run"), on="epoch", direction="backward"))
    if not out:
        return pd.DataFrame()
    return pd.concat(out, ignore_index=True).dropna(subset=[EXCESS_MIXUP_LOSS])


def trend(points: pd.DataFrame) -> float:
    """Spearman's ρ of the spread along with the excess over `points` (NaN below
    MIN_TREND points or without variation)."""
    from scipy.stats import spearmanr

    points = points.dropna(subset=[ALONG, EXCESS_MIXUP_LOSS])
    if len(points) < MIN_TREND or points[ALONG].nunique() < 2 or points[EXCESS_MIXUP_LOSS].nunique() < 2:
        return float("nan")
    return float(spearmanr(points[ALONG], points[EXCESS_MIXUP_LOSS]).statistic)


def linear_head_floors(runs) -> dict[str, list[tuple[float, float]]]:
    """For runs whose mixed layer feeds a linear head directly (K = 2, cross-entropy, one
    mixed layer that is the model's 2-D bottleneck with no layers after it): per arm, each
    run's (final excess, closed-form minimum of the excess) (theory.linear_head_excess)."""
    from repflat.analysis.theory import linear_head_excess

    found: dict[str, list[tuple[float, float]]] = {}
    for run in runs:
        info, cfg = run.results, run.cfg  # run.json and config.yaml, as the run record read them
        premise_info, excess = info.get("premise"), info.get(FINAL + EXCESS_MIXUP_LOSS)
        model = cfg.model if cfg is not None else None
        if (cfg is None or not isinstance(premise_info, dict) or excess is None
                or premise_info.get("loss") != "cross_entropy" or model.name != "mlp"
                or tuple(model.widths_after) != () or getattr(cfg.data, "n_classes", None) != 2
                or premise_info.get("layers") != ["bottleneck"] or not model.bottleneck):
            continue
        bound = linear_head_excess(float(premise_info["alpha"]), float(premise_info["same_class_share"]))
        found.setdefault(run.name, []).append((float(excess), bound))
    return found


def _above_bound(ratio: float) -> str:
    return f"{ratio:.1f} times it" if ratio >= 2 else f"{ratio - 1:+.1%} above it"


def linear_head_checks(floors: dict[str, list[tuple[float, float]]]) -> list[str]:
    """One sentence per arm of `linear_head_floors`: its final excess against the minimum."""
    out = []
    for arm, pairs in floors.items():
        e, b = np.array(pairs).T
        out.append(f"{arm}: the bottleneck feeds the linear head directly, so the smallest "
                   f"excess any network can reach is known in closed form: {b.mean():.4f} nats "
                   f"(α and the share of same-class mixes of its runs); its runs end at "
                   f"{e.mean():.4f} ± {e.std(ddof=1) if len(e) > 1 else 0:.4f} "
                   f"({_above_bound(float((e / b).mean()))}, {counted(len(e), 'seed')}).")
    return out


def state(along: float, across: float, collapsed: float) -> str:
    """flattening, collapse or neither (module docstring); '' without the spread along."""
    if not np.isfinite(along):
        return ""
    if np.isfinite(collapsed) and collapsed >= MOSTLY:
        return "collapse"
    return "flattening" if along < FLAT_TOL else "neither"


def premise_reading(excess: float, floor: float) -> str:
    if not np.isfinite(excess):
        return "premise not logged"
    if excess - floor <= PREMISE_TOL:
        return "near a minimiser"
    return "far from a minimiser"


def reading(along: float, across: float, collapsed: float, excess: float, floor: float = 0.0) -> str:
    """'flattening, near a minimiser', 'neither, far from a minimiser', …"""
    found = state(along, across, collapsed)
    return f"{found}, {premise_reading(excess, floor)}" if found else ""


def families(analysis) -> dict[str, list[str]]:
    """Arms grouped by the baseline each is compared with (a sweep's effects), the
    baseline first; one family of every arm, behind the baseline arm, without a sweep."""
    from repflat.analysis.stats import baseline_arm

    arms = arm_order(r.name for r in analysis.runs) or arm_order(analysis.summary.get("arm", []))
    effects = analysis.effects
    if len(effects) and "baseline" in effects:
        pairs = effects.dropna(subset=["baseline"]).drop_duplicates(["arm", "baseline"])
        found: dict[str, list[str]] = {}
        for base, block in pairs.groupby("baseline", sort=False):
            found[base] = [base, *dict.fromkeys(a for a in block["arm"] if a != base)]
        if found:
            return found
    if not arms:
        return {}
    base = baseline_arm(per_run(analysis.flat)) if len(analysis.flat) else arms[0]
    return {base: [base, *(a for a in arms if a != base)]}


def short_names(base: str, arms: list[str]) -> dict[str, str]:
    """Within a family, the part of each arm's name its baseline's does not share
    (`manifold_mixup-alpha2` for `manifold_mixup-widths_after_linear_head-alpha2` against
    `erm-widths_after_linear_head`); the strategy's name where nothing else is left."""
    shared = set(base.split("-"))
    return {a: "-".join(t for t in a.split("-") if t not in shared) or a.split("-")[0] for a in arms}


def signed(x: float) -> str:
    """x to 2 significant digits with its sign: +0.056, -0.0081, -104."""
    return ("+" if x > 0 else "") + number(x, 2)


def interval(row) -> str:
    """'Δ [low, high]' of an effects row, each to 2 significant digits; '' for none."""
    if row is None:
        return ""
    if not np.isfinite(row["low"]):
        return signed(row["diff"])
    return f"{signed(row['diff'])} [{signed(row['low'])}, {signed(row['high'])}]"


def _ci(row) -> str:
    if row is not None and not np.isfinite(row["low"]):
        return f"{interval(row)} (no interval, {counted(int(row['n_seeds']), 'seed')})"
    return interval(row)


def _cell(stats: pd.DataFrame, arm: str, metric: str) -> str:
    if (arm, metric) not in stats.index:
        return "—"
    row = stats.loc[(arm, metric)]
    return mean_std(row["mean"], row["std"], int(row["n_runs"]))


def excludes_zero(row) -> bool | None:
    """Whether an effects row's interval excludes 0 (None: no row, or no interval)."""
    if row is None or not np.isfinite(row["low"]):
        return None
    return bool(row["low"] > 0 or row["high"] < 0)


def arm_mean(stats: pd.DataFrame, arm: str, metric: str) -> float:
    return float(stats.loc[(arm, metric), "mean"]) if (arm, metric) in stats.index else float("nan")


def corollary_reading(analysis) -> tuple[pd.DataFrame, list[str]]:
    """(table, sentences): one table row per (layer, arm) with the measures and the
    reading, and one sentence per arm that mixes; both empty without the measures."""
    summary = analysis.summary
    if summary.empty or ALONG not in set(summary["metric"]):
        return pd.DataFrame(), []
    excess = premise(analysis.training).set_index("arm")
    floors = linear_head_floors(analysis.runs)
    floor = {a: float(np.mean([b for _, b in pairs])) for a, pairs in floors.items()}
    groups = families(analysis)
    several = len(groups) > 1
    rows, sentences = [], []
    far: dict[str, float] = {}
    for layer in analysis.layer_order:
        if layer == INPUT:
            continue
        at = final_epoch(summary[summary["layer"] == layer], by="arm")
        stats = at.set_index(["arm", "metric"])
        if ALONG not in set(at["metric"]):
            continue
        points = against_premise(analysis.flat, analysis.training, layer)
        for base, arms in groups.items():
            short = short_names(base, arms) if several else {a: a for a in arms}
            effects = analysis.against(base, (ALONG,))
            effects = effects[(effects["layer"] == layer) & effects["arm"].isin(arms)].set_index("arm")
            for arm in arms:
                if (arm, ALONG) not in stats.index:
                    continue
                e = excess.loc[arm] if arm in excess.index else None
                ex = float(e["mean"]) if e is not None else float("nan")
                mine = points[points["arm"] == arm] if len(points) else points
                rho = trend(mine[mine["epoch"] > 0]) if len(mine) else float("nan")
                said = reading(arm_mean(stats, arm, ALONG), arm_mean(stats, arm, ACROSS),
                               arm_mean(stats, arm, COLLAPSED), ex, floor.get(arm, 0.0))
                row = effects.loc[arm] if arm in effects.index and arm != base else None
                rows.append({"layer": layer, **({"baseline": base} if several else {}), "arm": short[arm],
                             "reading": said,
                             "along ÷ separation": _cell(stats, arm, ALONG),
                             "Δ along [95% CI]": _ci(row) or ("baseline" if arm == base else "—"),
                             "across ÷ separation": _cell(stats, arm, ACROSS),
                             "excess mixup loss": (mean_std(e["mean"], e["std"], int(e["n"]))
                                                   if e is not None else "not logged"),
                             "ρ(along, excess)": number(rho, 2) if np.isfinite(rho) else "—",
                             "collapsed classes": _cell(stats, arm, COLLAPSED),
                             "seeds": int(stats.loc[(arm, ALONG), "n_runs"])})
                if arm == base or not said:
                    continue
                if not said.endswith("near a minimiser"):
                    far.setdefault(arm, ex)
                    continue
                change = (f", {_ci(row)} against {base}" if row is not None else "")
                sentences.append(f"At {layer}, {arm}: {said} (spread along "
                                 f"{number(arm_mean(stats, arm, ALONG), 2)} of the separation, across "
                                 f"{number(arm_mean(stats, arm, ACROSS), 2)}{change}"
                                 + (f"; ρ = {rho:.2f}" if np.isfinite(rho) else "") + ").")
    if far:
        listed = ", ".join(f"{a} {number(e, 2)}" if np.isfinite(e) else f"{a} (not logged)"
                           for a, e in far.items())
        sentences.append(
            ("No arm" if not sentences else "Not every arm") + " that mixes is near a minimiser "
            f"of its mixup loss (final excess: {listed}), so for "
            + ("these" if sentences else "them") + " the table observes the geometry and does "
            "not test Corollary 1. Its premise needs training to convergence: full batch, "
            "decaying rate, thousands of epochs (experiments/corollary1.yaml).")
    table = pd.DataFrame(rows)
    if len(table):  # a column with nothing in it (ρ without several epochs) only widens the page
        table = table[[c for c in table.columns if not (table[c].astype(str) == "—").all()]]
    return table, sentences + linear_head_checks(floors)


INTRO = ("Corollary 1, measured as stated: at a minimiser of the mixup loss each class has no "
         "spread along the discriminative directions (the row space of the Jacobian of the "
         "logits) and any spread across them (flattening), or none at all (collapse); a class "
         f"spread along them is neither. Read as 0: along below {FLAT_TOL:g} of the class "
         f"separation; near a minimiser: a final excess mixup loss within {PREMISE_TOL:g} of the "
         "smallest any network can reach (0, or a linear head's closed form). Per layer and "
         "arm at the final epoch, mean ± std over seeds, class-averaged; Δ along against the "
         "baseline with a seed-paired 95% interval; ρ: Spearman's correlation of the spread "
         "along with the excess over every analysed epoch of the arm's runs (positive: it falls "
         "as the loss nears its minimum).")
