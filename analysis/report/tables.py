"""The report's tables, as frames of text cells: the flattening and accuracy tables,
every metric (known or not), the arms' configs, Corollary 1 class by class, and the
paper's numbers beside repflat's. Numbers are written once here (`mean_std`)."""
from __future__ import annotations

import json

import numpy as np

import pandas as pd

from repflat.analysis.paper import FIRST_HIDDEN, TRAINING, PaperEntry, arm_for
from repflat.analysis.registry import table_titles, title
from repflat.analysis.runs import lowest_seed
from repflat.analysis.tidy import arm_order, class_names_in, final_epoch, order_rows, over_seeds
from repflat.rundir.names import CLASS, MEAN
from repflat.errors import UserError
from repflat.files import is_regular, read_yaml_file
from repflat.rundir.names import EXTRACT_FILE
from repflat.rundir.run import RunInfo
from repflat.config.loading import dump_yaml

MISSING = "—"


# ---------------------------------------------------------------- the main tables

ROUND_OFF = 1e-10
"""Below this a value from a float64 SVD of float32 features is round-off: it reads 0
(a residual share of 3e-49 where the subspace holds everything is exactly 0)."""


def is_scientific(x: float) -> bool:
    return abs(x) >= 1e6 or 0 < abs(x) < 1e-4


def _decimals(x: float, digits: int) -> int:
    """Decimal places that show `digits` significant digits of x (none past the point)."""
    return max(0, digits - 1 - int(np.floor(np.log10(abs(x)))))


def number(x: float, digits: int = 4) -> str:
    """x with `digits` significant digits, in plain notation from 1e-4 to 1e6 (else
    scientific), round-off as 0, whole numbers without decimals: 0.0552, 6.20, 308, 0."""
    if x is None or not np.isfinite(x):
        return "—"
    if abs(x) < ROUND_OFF:
        return "0"
    if float(x).is_integer() and abs(x) < 1e6:
        return str(int(x))
    if is_scientific(x):
        return f"{x:.{digits - 1}e}"
    return f"{x:.{_decimals(x, digits)}f}"


def mean_std(mean: float, std: float, n: int) -> str:
    """'m ± s', the std to 2 significant digits and the mean to the same decimal place
    (6.20 ± 0.23, 16.0 ± 1.3, 310 ± 120); 'm ± 0' (4 significant digits) where the
    seeds agree, so a column over seeds reads the same in every row; just the mean for
    one run; NA where the value is undefined (a vacuous Corollary 1), never 0."""
    if mean is None or np.isnan(mean):
        return "NA"
    if n < 2 or not np.isfinite(std):
        return number(mean)
    if abs(std) < ROUND_OFF:
        return f"{number(mean)} ± 0"
    if is_scientific(std) or is_scientific(mean):
        return f"{mean:.2e} ± {std:.1e}"
    place = uncertainty_place(std)
    return f"{at_place(mean, place)} ± {at_place(std, place)}"


def uncertainty_place(spread: float) -> int:
    """The decimal place of `spread`'s second significant digit (negative: tens, ...):
    where a number known to ± spread stops meaning anything."""
    return 1 - int(np.floor(np.log10(abs(spread))))


def at_place(x: float, place: int) -> str:
    """x rounded to decimal `place` (from `uncertainty_place`): 6.20, 310, −2.8."""
    if not np.isfinite(x):
        return "—"
    if place < 0:  # above the point: round to tens, hundreds, ...
        return f"{round(x, place):.0f}"
    return f"{x:.{place}f}"


TABLE_METRICS = table_titles()
"""{summary metric: column title} of the main flattening table (repflat.analysis.registry)."""


def flattening_table(summary: pd.DataFrame, layer_order: list[str]) -> pd.DataFrame:
    """Rows (layer, arm) at each run's final analysed epoch; cells mean ± std over seeds."""
    final = final_epoch(summary, by="arm")
    final = final[final["metric"].isin(TABLE_METRICS)]
    cell = final.assign(text=[mean_std(m, s, n) for m, s, n in
                              zip(final["mean"], final["std"], final["n_runs"])])
    wide = cell.pivot_table(index=["layer", "arm"], columns="metric", values="text",
                            aggfunc="first", sort=False)
    wide = wide[[m for m in TABLE_METRICS if m in wide.columns]].rename(columns=TABLE_METRICS)
    seeds = final.groupby("arm")["n_runs"].max()
    wide = wide.reset_index()
    wide.columns.name = None  # else the HTML table grows an empty "metric" header cell
    wide.insert(2, "seeds", wide["arm"].map(seeds))
    return order_rows(wide, layer_order)


def accuracy_table(metrics: pd.DataFrame) -> pd.DataFrame:
    """Per arm: final and best test accuracy and final test NLL, mean ± std over seeds."""
    last = final_epoch(metrics)
    best = metrics.groupby(["arm", "run"])["test_accuracy"].max().reset_index()
    rows = []
    for arm in arm_order(last["arm"]):
        a, b = last[last["arm"] == arm], best[best["arm"] == arm]
        n = len(a)
        rows.append({"arm": arm, "strategy": a["strategy"].iloc[0], "seeds": n,
                     "epochs": int(a["epoch"].max()),
                     "test accuracy (final)": mean_std(a["test_accuracy"].mean(), a["test_accuracy"].std(), n),
                     "test accuracy (best)": mean_std(b["test_accuracy"].mean(), b["test_accuracy"].std(), n),
                     "test NLL (final)": mean_std(a["test_nll"].mean(), a["test_nll"].std(), n)})
    return pd.DataFrame(rows)


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
    return order_rows(wide, layer_order).fillna(MISSING)


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
            cfg = lowest_seed(own).config
            out[arm] = {k: v for k, v in cfg.items() if k != "seed"}
    return out


def extraction_configs(runs: list[RunInfo]) -> dict[str, dict]:
    """What `repflat extract` recorded (extract.yaml) for each run that has it."""
    out = {}
    for run in runs:
        path = run.path / EXTRACT_FILE
        if is_regular(path):
            try:
                data = read_yaml_file(path, "extraction")
            except UserError:
                continue
            if isinstance(data, dict):
                out[run.run_id] = data
    return out


def beta_std(alpha: float) -> float:
    """Standard deviation of λ ~ Beta(α, α): √(αα / ((2α)²(2α + 1))) = √(1 / (4(2α + 1)))."""
    return float(np.sqrt(1.0 / (4.0 * (2.0 * alpha + 1.0))))


def _number_or_nan(value: object) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    return float(value) if ok else np.nan


def mixing_table(runs: list[RunInfo]) -> pd.DataFrame:
    """Per arm and eligible layer: batches mixed there (summed over seeds), and λ's standard
    deviation as drawn beside the one α implies (λ's mean is ½ for every α, so it cannot
    show that α was applied; its spread does), from each run's run.json and config; empty
    when no run recorded mixing."""
    rows = []
    for run in runs:
        mixing = run.results.get("mixing")  # run.json, as the run record read it
        if not isinstance(mixing, dict) or not isinstance(mixing.get("batches_mixed"), dict):
            continue
        alpha = run.cfg.mixing.alpha if run.cfg is not None else np.nan
        for layer, count in mixing["batches_mixed"].items():
            if isinstance(count, int):
                rows.append({"arm": run.name, "layer": str(layer), "batches": count, "alpha": alpha,
                             "lambda": _number_or_nan(mixing.get("mean_lambda")),
                             "spread": _number_or_nan(mixing.get("lambda_std"))})
    if not rows:
        return pd.DataFrame()
    frame = pd.DataFrame(rows)
    out = (frame.groupby(["arm", "layer"], sort=False)
           .agg(batches=("batches", "sum"), runs=("batches", "size"), alpha=("alpha", "first"),
                mean_lambda=("lambda", "mean"), spread=("spread", "mean"))
           .reset_index())
    totals = out.groupby("arm")["batches"].transform("sum")
    out["share of batches"] = [f"{b / t:.1%}" if t else MISSING for b, t in zip(out["batches"], totals)]
    out["α"] = [number(a, 3) for a in out["alpha"]]
    out["λ std, drawn"] = [number(v, 3) for v in out["spread"]]
    out["λ std of Beta(α, α)"] = [number(beta_std(a), 3) if np.isfinite(a) and a > 0 else MISSING
                                  for a in out["alpha"]]
    out["mean λ"] = [number(v, 3) for v in out["mean_lambda"]]
    return order_rows(out)[["arm", "layer", "batches", "share of batches", "runs", "α",
                            "λ std, drawn", "λ std of Beta(α, α)", "mean λ"]]


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
    return dump_yaml(config)


# ---------------------------------------------------------------- the paper's numbers

def training_measure(training: pd.DataFrame, quantity: str) -> pd.DataFrame:
    """Per arm, mean / std / count over seeds of a TRAINING quantity, each run's best (or, for
    a `last` quantity, final) epoch."""
    column, best, scale, _ = TRAINING[quantity]
    if training.empty or column not in training.columns:
        return pd.DataFrame(columns=["arm", "mean", "std", "n"])
    if "epoch" in training.columns:  # `last` means the final epoch
        training = training.sort_values("epoch", kind="stable")
    per_run = training.groupby(["arm", "run"])[column].agg(best)
    per_run = {"error": 100 * (1 - per_run), "percent": 100 * per_run}.get(scale, per_run)
    return over_seeds(per_run.rename("value").reset_index(), ["arm"]).rename(columns={"n_runs": "n"})


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
            what = f"{title(pv.quantity)} at {layer or '?'} (class mean)"
            found = summary[(summary["arm"] == arm) & (summary["layer"] == layer)
                            & (summary["metric"] == pv.quantity)]
            found = final_epoch(found, by="arm")
            seeds = int(found["n_runs"].iloc[0]) if len(found) else 0
            measured = (mean_std(found["mean"].iloc[0], found["std"].iloc[0], seeds)
                        if len(found) else MISSING)
        paper = f"{pv.value:g}" + ("" if pv.std is None else f" ± {pv.std:g}")
        rows.append({"quantity": what, "arm": arm or pv.arm, "paper": paper,
                     "repflat": measured, "seeds": seeds})
    return pd.DataFrame(rows, columns=["quantity", "arm", "paper", "repflat", "seeds"])


# ---------------------------------------------------------------- Corollary 1, class by class

def theory_table(check: pd.DataFrame) -> pd.DataFrame:
    """Long format, so any number of arms fits the page: rows (class, arm), each class (by
    name when the features have names) then the class average; columns the spread along
    the discriminative directions ÷ separation and the share of seeds where the class
    collapsed (when measured), the numerical rank and the share of variance beyond
    dim(H) − K + 1, as mean ± std over seeds."""
    shown = {"along_spread": "along ÷ separation", "collapsed": "collapsed",
             "numerical_rank": "numerical rank", "residual_variance_share": "variance beyond"}
    sel = check[check["metric"].isin(shown)]
    classes = class_names_in(sel)
    rows = [classes[k] for k in sorted(classes)] + [MEAN]
    label = [classes[int(k)] if g == CLASS else MEAN for g, k in zip(sel["group"], sel["class"])]
    text = sel.assign(row=label, cell=[mean_std(m, s, n) for m, s, n in
                                       zip(sel["mean"], sel["std"], sel["n_runs"])])
    arms = arm_order(text["arm"])
    wide = text.pivot_table(index=["row", "arm"], columns="metric", values="cell",
                            aggfunc="first", sort=False)
    wide = wide[[m for m in shown if m in wide.columns]].rename(columns=shown)
    order = [(r, a) for r in dict.fromkeys(rows) for a in arms if (r, a) in wide.index]
    wide = wide.loc[order]
    wide.columns.name = None
    return wide.rename_axis(["class", "arm"]).reset_index().fillna(MISSING)
