"""Report tables beyond the flattening and accuracy tables of analysis/report.py: every
metric (known or not), the arms' configs, and the paper's numbers beside repflat's."""
from __future__ import annotations

import json

import pandas as pd
import yaml

from repflat.analysis.paper import FIRST_HIDDEN, TRAINING, PaperEntry, arm_for
from repflat.analysis.report.markup import TABLE_METRICS, mean_std
from repflat.analysis.tidy import arm_order
from repflat.rundir.run import RunInfo

MISSING = "—"


def _layer_rank(layers: list[str]) -> dict[str, int]:
    return {l: i for i, l in enumerate(layers)}


def all_metrics_table(summary: pd.DataFrame, layer_order: list[str]) -> pd.DataFrame:
    """Every metric of summary.csv, mean ± std over seeds: rows (layer, arm, epoch), one
    column per metric, the main table's metrics first, then the others by name."""
    cell = summary.assign(text=[mean_std(m, s, n) for m, s, n in
                                zip(summary["mean"], summary["std"], summary["n_runs"])])
    wide = cell.pivot_table(index=["layer", "arm", "epoch"], columns="metric", values="text",
                            aggfunc="first", sort=False)
    known = [m for m in TABLE_METRICS if m in wide.columns]
    wide = wide[known + sorted(set(wide.columns) - set(known))].reset_index()
    wide.columns.name = None
    rank, arms = _layer_rank(layer_order), {a: i for i, a in enumerate(arm_order(wide["arm"]))}
    key = (wide["layer"].map(rank).fillna(len(rank)) * 1e6 + wide["arm"].map(arms) * 1e4
           + pd.to_numeric(wide["epoch"], errors="coerce").fillna(0))
    wide = wide.iloc[key.argsort(kind="stable")].reset_index(drop=True)
    return wide.fillna(MISSING)


def unknown_metrics(summary: pd.DataFrame) -> list[str]:
    """Metrics the main table does not show (new ones are still in every CSV)."""
    return sorted(set(summary["metric"]) - set(TABLE_METRICS))


# ---------------------------------------------------------------- configs

def flatten(data: object, prefix: str = "") -> dict[str, object]:
    """Nested mappings as dotted keys: {"train": {"lr": 0.1}} -> {"train.lr": 0.1}."""
    if not isinstance(data, dict):
        return {prefix: data}
    out: dict[str, object] = {}
    for key, value in data.items():
        out |= flatten(value, f"{prefix}.{key}" if prefix else str(key))
    return out


def arm_configs(runs: list[RunInfo]) -> dict[str, dict]:
    """Each arm's resolved run config (its lowest-seed run's; the seed left out)."""
    out = {}
    for arm in arm_order(r.name for r in runs):
        own = [r for r in runs if r.name == arm and isinstance(r.config, dict)]
        if own:
            cfg = min(own, key=lambda r: str(r.seed)).config
            out[arm] = {k: v for k, v in cfg.items() if k != "seed"}
    return out


def _show(value: object) -> str:
    return json.dumps(value) if isinstance(value, (list, tuple, dict, type(None), bool)) else str(value)


def config_difference_table(configs: dict[str, dict]) -> pd.DataFrame:
    """The settings on which the arms differ: one row per dotted key, one column per arm."""
    flat = {arm: flatten(cfg) for arm, cfg in configs.items()}
    keys = list(dict.fromkeys(k for f in flat.values() for k in f))
    rows = []
    for key in keys:
        values = [_show(f.get(key, MISSING)) for f in flat.values()]
        if key != "name" and len(set(values)) > 1:  # the name is the arm's, shown above
            rows.append({"setting": key, **dict(zip(flat, values))})
    return pd.DataFrame(rows, columns=["setting", *flat])


def config_yaml(config: dict) -> str:
    return yaml.safe_dump(config, sort_keys=False, default_flow_style=None)


# ---------------------------------------------------------------- the paper's numbers

def training_measure(training: pd.DataFrame, quantity: str) -> pd.DataFrame:
    """Per arm, mean / std / count over seeds of a TRAINING quantity, each run's best epoch."""
    column, best, scale, _ = TRAINING[quantity]
    if training.empty or column not in training.columns:
        return pd.DataFrame(columns=["arm", "mean", "std", "n"])
    per_run = training.groupby(["arm", "run"])[column].agg(best)
    per_run = {"error": 100 * (1 - per_run), "percent": 100 * per_run}.get(scale, per_run)
    out = per_run.groupby("arm").agg(mean="mean", std="std", n="count").reset_index()
    out["std"] = out["std"].fillna(0.0)
    return out


def paper_table(entry: PaperEntry, summary: pd.DataFrame, training: pd.DataFrame,
                layer_order: list[str]) -> pd.DataFrame:
    """One row per number of the paper: what it is, the arm, the paper's value, repflat's
    mean ± std over seeds (final epoch for metrics, best epoch for training measures)."""
    first_hidden = next((l for l in layer_order if l != "input"), None)
    arms = list(dict.fromkeys(summary["arm"])) + list(dict.fromkeys(training.get("arm", [])))
    rows = []
    for pv in entry.values:
        arm = arm_for(pv.arm, arms)
        if pv.quantity in TRAINING:
            what = TRAINING[pv.quantity][3]
            found = training_measure(training, pv.quantity)
            found = found[found["arm"] == arm]
            seeds = int(found["n"].iloc[0]) if len(found) else 0
            measured = (mean_std(found["mean"].iloc[0], found["std"].iloc[0], seeds)
                        if len(found) else MISSING)
        else:
            layer = first_hidden if pv.layer is FIRST_HIDDEN else pv.layer
            what = f"{TABLE_METRICS.get(pv.quantity, pv.quantity)} at {layer or '?'} (class mean)"
            found = summary[(summary["arm"] == arm) & (summary["layer"] == layer)
                            & (summary["metric"] == pv.quantity)]
            found = found[found["epoch"] == found["epoch"].max()] if len(found) else found
            seeds = int(found["n_runs"].iloc[0]) if len(found) else 0
            measured = (mean_std(found["mean"].iloc[0], found["std"].iloc[0], seeds)
                        if len(found) else MISSING)
        rows.append({"quantity": what, "arm": arm or pv.arm, "paper": f"{pv.value:g}",
                     "repflat": measured, "seeds": seeds})
    return pd.DataFrame(rows, columns=["quantity", "arm", "paper", "repflat", "seeds"])


# ---------------------------------------------------------------- Corollary 1, class by class

def theory_table(check: pd.DataFrame) -> pd.DataFrame:
    """Rows: each class, then the class average; columns: each arm's numerical rank and
    share of variance beyond dim(H) − K + 1, as mean ± std over seeds."""
    shown = {"numerical_rank": "numerical rank", "residual_variance_share": "variance beyond"}
    sel = check[check["metric"].isin(shown)]
    text = sel.assign(cell=[mean_std(m, s, n) for m, s, n in zip(sel["mean"], sel["std"], sel["n_runs"])])
    arms = arm_order(text["arm"])
    wide = text.pivot_table(index="class", columns=["arm", "metric"], values="cell",
                            aggfunc="first", sort=False)
    columns = [(a, m) for a in arms for m in shown if (a, m) in wide.columns]
    wide = wide[columns]
    wide.columns = [f"{a}: {shown[m]}" for a, m in columns]
    classes = sorted((c for c in wide.index if c != "mean"), key=lambda c: (len(c), c)) + ["mean"]
    return wide.loc[[c for c in classes if c in wide.index]].reset_index()
