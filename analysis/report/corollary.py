"""Corollary 1 measured as stated, in sentences: the verdict per layer and arm.

From the corollary-matched, scale-free measures (repflat.analysis.discriminative): the
class spread along the discriminative directions and across them, each relative to the
class separation, and the share of collapsed classes; from the premise: the excess mixup
loss at the final epoch (metrics.csv). One of five verdicts per arm against the baseline:

- *collapse*: most classes shrink to points (whole spread < collapse_tol × separation),
  which the corollary allows;
- *flattening*: the spread along falls (interval below 0) while the spread across does
  not fall as much (relatively): fewer directions of variance the loss sees;
- *both spreads fall*: along and across shrink alike: towards collapse, not flattening;
- *a change of scale only*: raw Σ σ₂… falls (interval below 0) but the scale-free spread
  along does not: the gauge, not geometry;
- *no detectable change*: the interval of the spread along includes 0 (inside the noise),
  or *less flat* where it is clearly larger.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from repflat.analysis.tidy import arm_order, final_epoch
from repflat.progress import counted
from repflat.rundir.names import EXCESS_MIXUP_LOSS, RUN_FILE

ALONG, ACROSS, COLLAPSED = "along_spread", "across_spread", "collapsed"
RAW = "sum_other_singular_values"
METRICS = (ALONG, ACROSS, COLLAPSED, RAW)
MOSTLY = 0.5


def _means(summary: pd.DataFrame, layer: str, metric: str) -> pd.Series:
    rows = final_epoch(summary[(summary["layer"] == layer) & (summary["metric"] == metric)], by="arm")
    return rows.set_index("arm")["mean"]


def premise(training: pd.DataFrame) -> pd.DataFrame:
    """Per arm, the excess mixup loss at each run's last evaluated epoch: columns arm,
    mean, std, n (empty where no run logged it)."""
    if training.empty or EXCESS_MIXUP_LOSS not in training.columns:
        return pd.DataFrame(columns=["arm", "mean", "std", "n"])
    logged = training.dropna(subset=[EXCESS_MIXUP_LOSS])
    last = logged[logged["epoch"] == logged.groupby("run")["epoch"].transform("max")]
    out = last.groupby("arm", sort=False)[EXCESS_MIXUP_LOSS].agg(["mean", "std", "count"])
    return out.rename(columns={"count": "n"}).reset_index()


def _value(x: float, digits: int = 2) -> str:
    return f"{x:.{digits}g}" if abs(x) < 0.01 or abs(x) >= 100 else f"{x:.{digits}f}" if abs(x) < 1 else f"{x:.3g}"


def _ci(row) -> str:
    if row is None or not np.isfinite(row["ci_low"]):
        return f"no interval with {counted(int(row['n']), 'seed')}" if row is not None else "no interval"
    return (f"{row['difference']:+.2g}, {row['level']:.0%} CI {row['ci_low']:+.2g} to "
            f"{row['ci_high']:+.2g}, {row['method']} over {counted(int(row['n']), 'seed')}")


def _below(row) -> bool | None:
    if row is None or not np.isfinite(row["ci_low"]):
        return None
    return bool(row["ci_high"] < 0)


def _above(row) -> bool:
    return row is not None and np.isfinite(row["ci_low"]) and bool(row["ci_low"] > 0)


def verdict(arm: str, eff: pd.DataFrame, collapsed: float) -> str:
    """The verdict for `arm` (see the module docstring) from its comparison rows."""
    def get(metric):
        return eff.loc[(metric, arm)] if (metric, arm) in eff.index else None
    along, across, raw = get(ALONG), get(ACROSS), get(RAW)
    if np.isfinite(collapsed) and collapsed >= MOSTLY:
        return "collapse (the classes shrink to points, which the corollary allows)"
    fell = _below(along)
    if fell is None:
        return "undetermined (no interval)"
    if fell:
        rel_along = along["relative"]
        rel_across = across["relative"] if across is not None else np.nan
        if np.isfinite(rel_across) and _below(across) and rel_across <= 0.5 * rel_along:
            return "both spreads fall alike (towards collapse, not flattening alone)"
        return "flattening (less spread along the discriminative directions, the free ones not)"
    if _above(along):
        return "less flat along the discriminative directions than the baseline"
    if _below(raw):
        return "a change of scale only (raw Σ σ₂… falls, the scale-free spread does not)"
    return "no detectable change (the difference is inside the noise)"


def corollary_sentences(layer: str, summary: pd.DataFrame, effects: pd.DataFrame, base: str,
                        training: pd.DataFrame) -> list[str]:
    """One sentence per arm at `layer`: its spread along and across with intervals
    against `base`, the premise, and the verdict; empty without the measures."""
    along = _means(summary, layer, ALONG)
    if along.empty or base not in along.index:
        return []
    across = _means(summary, layer, ACROSS)
    collapsed = _means(summary, layer, COLLAPSED)
    excess = premise(training).set_index("arm")
    eff = effects[effects["layer"] == layer].set_index(["metric", "arm"])

    def prem(arm: str) -> str:
        if arm not in excess.index:
            return "its premise was not logged"
        e = excess.loc[arm]
        std = f" ± {_value(e['std'])}" if e["n"] > 1 and np.isfinite(e["std"]) else ""
        return f"excess mixup loss {_value(e['mean'])}{std}"

    out = [f"Corollary 1 at {layer}, measured as stated (spread relative to the class "
           f"separation along the discriminative directions, class-averaged, final epoch): "
           f"{base} along {_value(along[base])}, across {_value(across.get(base, np.nan))}, "
           f"{prem(base)}."]
    for arm in arm_order(along.index):
        if arm == base:
            continue
        row = eff.loc[(ALONG, arm)] if (ALONG, arm) in eff.index else None
        out.append(f"{arm}: along {_value(along[arm])} ({_ci(row)}), across "
                   f"{_value(across.get(arm, np.nan))}, {prem(arm)}: "
                   f"{verdict(arm, eff, collapsed.get(arm, np.nan))}.")
    return out


def against_premise(flat: pd.DataFrame, training: pd.DataFrame, layer: str) -> pd.DataFrame:
    """Per run and analysed epoch at `layer`: the class-averaged spread along and across
    the discriminative directions beside the excess mixup loss of the latest premise
    evaluation at or before that epoch. Columns run, arm, strategy, seed, epoch,
    along_spread, across_spread, excess_mixup_loss; empty without the measures or the
    premise (epoch 0, before any training, has no premise and is left out)."""
    from repflat.analysis.tidy import per_run

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


def _above_bound(ratio: float) -> str:
    return f"{ratio:.1f} times it" if ratio >= 2 else f"{ratio - 1:+.1%} above it"


def linear_head_checks(runs) -> list[str]:
    """For runs whose mixed layer feeds a linear head directly (K = 2, cross-entropy, one
    mixed layer that is the model's last hidden one): the final excess against its
    closed-form minimum (repflat.analysis.theory.linear_head_excess), per arm."""
    from repflat.analysis.runs import on_disk
    from repflat.analysis.theory import linear_head_excess
    from repflat.rundir.files import read_json

    found: dict[str, list[tuple[float, float]]] = {}
    for run in runs:
        path = run.path / RUN_FILE if on_disk(run) else None
        if path is None or not path.is_file():
            continue
        info = read_json(path, "run.json")
        info = info if isinstance(info, dict) else {}
        cfg = run.config if isinstance(run.config, dict) else {}
        premise_info, excess = info.get("premise"), info.get("final_" + EXCESS_MIXUP_LOSS)
        model = cfg.get("model") or {}
        if (not isinstance(premise_info, dict) or excess is None
                or premise_info.get("loss") != "cross_entropy" or model.get("name") != "mlp"
                or model.get("widths_after") not in ([], ()) or (cfg.get("data") or {}).get("n_classes") != 2
                or premise_info.get("layers") != ["bottleneck"] or not model.get("bottleneck")):
            continue
        bound = linear_head_excess(float(premise_info["alpha"]), float(premise_info["same_class_share"]))
        found.setdefault(run.name, []).append((float(excess), bound))
    out = []
    for arm, pairs in found.items():
        e, b = np.array(pairs).T
        out.append(f"{arm}: the bottleneck feeds the linear head directly, so the smallest "
                   f"excess any network can reach is known in closed form: {b.mean():.4f} nats "
                   f"(α and the share of same-class mixes of its runs); its runs end at "
                   f"{e.mean():.4f} ± {e.std(ddof=1) if len(e) > 1 else 0:.4f} "
                   f"({_above_bound(float((e / b).mean()))}, {counted(len(e), 'seed')}).")
    return out
