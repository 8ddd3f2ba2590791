"""The tidy spectra and flattening frames: their columns, and what is done with them.

Every row says what it describes in three columns, so the frames work in pandas and
seaborn as they are (`flat[flat["class"] == 3]`, `hue="class_name"`):

- `group`: "class" (one class), "pooled" (all classes together: the control; the paper
  finds no clear difference between strategies there), "mean" (averaged over classes)
  or "all" (a metric of the whole layer);
- `class`: the class label, a nullable integer (pandas "Int64"), NA unless group is "class";
- `class_name`: the class's name when the features carry names (`FeatureSet.class_names`),
  else its label as text; NA unless group is "class".

`seed` is a nullable integer too, NA when a run's directory does not say (features from
another tool). Tables written before these columns (text classes mixing labels and
"pooled"/"mean"/"all", seed "unknown") are converted on read (`typed_columns`).

`spectra.csv`: one row per (run, layer, epoch, group, class, index) with its singular
value; group "class" or "pooled".

`flattening.csv`: one row per (run, layer, epoch, group, class, metric) with its value.
The metrics, their groups and where each is computed: repflat.analysis.registry (and
the README's "Flattening metrics" table, with the formulas). Corollary 1's
discriminative rows need the run's discriminative summaries (format 2, captured by
default); they are absent for features without them.

Classes of fewer than two rows get only their n_samples row (they have no spread). The
rows are made by repflat.analysis.layers; here are their columns, the conversion of older
tables, the averages over classes and seeds (`per_run`, `summarize`) and the orders.
"""
from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from repflat.errors import UserError
from repflat.rundir.names import CLASS, MEAN, NOT_A_CLASS, POOLED, STRATEGIES, UNKNOWN

CLASS_COLUMNS = ["group", "class", "class_name"]
RUN_COLUMNS = ["run", "arm", "strategy", "seed", "split", "layer", "epoch"]


def typed_columns(frame: pd.DataFrame, where: str = "table") -> pd.DataFrame:
    """`frame` with `seed` and `class` as nullable integers and the `group` column.

    Converts tables written before the `group` column: a text `class` holding labels
    and the words pooled/mean/all becomes group + numeric class + class_name (the
    label as text), and a seed "unknown" becomes NA. Anything else that is not an
    integer there is refused, naming `where`.
    """
    frame = frame.copy()
    if "class" in frame.columns and "group" not in frame.columns:  # written by repflat 0.1
        text = frame["class"].astype("string").str.strip()
        group = text.where(text.isin(NOT_A_CLASS), CLASS)
        at = frame.columns.get_loc("class")
        frame.insert(at, "group", group.astype(object).to_numpy())
        frame["class"] = frame["class"].where(group == CLASS)
        if "class_name" not in frame.columns:
            frame.insert(at + 2, "class_name", text.where(group == CLASS).astype(object)
                         .where(lambda c: c.notna(), None).to_numpy())
    for column in ("seed", "class"):
        if column not in frame.columns:
            continue
        raw = frame[column]
        if column == "seed":  # older tables say "unknown"
            raw = raw.mask(raw.astype("string").str.strip() == UNKNOWN)
        values = pd.to_numeric(raw, errors="coerce")
        bad = (values.isna() & raw.notna()) | (values.notna() & (values != values.round()))
        if bad.any():
            raise UserError(f"{where}: column {column!r} holds "
                            f"{str(frame[column][bad].iloc[0])[:40]!r}, not an integer")
        frame[column] = values.astype("Int64")
    return frame


def summarize(flat: pd.DataFrame) -> pd.DataFrame:
    """Class-averaged metrics, then mean ± std over the seeds of each arm.

    Per-class metrics are averaged over classes first (σ₁ averaged over classes keeps
    the name `largest_singular_value`: the same number as the flat frame's
    `mean_first_singular_value`, whose group "mean" rows are not carried over);
    pooled-class metrics are kept apart with a `pooled_` prefix. Layer metrics (group
    "all") pass through: one value per run, so the class average is that value.

    Parameters
    ----------
    flat : DataFrame
        A tidy flattening frame (`Analysis.flat`, flattening.csv) with columns run, arm,
        strategy, seed, layer, epoch, group, metric and value, one row per (run, layer,
        epoch, group, class, metric).

    Returns
    -------
    DataFrame
        Columns arm, strategy, layer, epoch, metric, mean, std (ddof 1; 0 for a single
        run) and n_runs: one row per (arm, strategy, layer, epoch, metric).
    """
    return over_seeds(per_run(flat), ["arm", "strategy", "layer", "epoch", "metric"])


def per_run(flat: pd.DataFrame) -> pd.DataFrame:
    """One value per (run, layer, epoch, metric): per-class metrics averaged over the
    classes, pooled ones as `pooled_<metric>`, layer metrics as they are; what
    `summarize` takes mean ± std of, and what paired comparisons pair (by seed).

    Parameters
    ----------
    flat : DataFrame
        A tidy flattening frame, as for `summarize`.

    Returns
    -------
    DataFrame
        Columns run, arm, strategy, seed, layer, epoch, metric, value.
    """
    per_class = flat[~flat["group"].isin([POOLED, MEAN])]
    pooled = flat[flat["group"] == POOLED].assign(metric=lambda d: "pooled_" + d["metric"])
    keys = ["run", "arm", "strategy", "seed", "layer", "epoch", "metric"]
    return pd.concat([per_class.groupby(keys, sort=False, dropna=False)["value"].mean().reset_index(),
                      pooled[keys + ["value"]]], ignore_index=True)


# ---------------------------------------------------------------- ordering and selection

# Strategies first (in the paper's order), then the regularizers, then anything else.
def arm_order(arms: Iterable[str]) -> list[str]:
    """The declared strategies and regularizer arms first, in their order (repflat.config.
    strategies.STRATEGIES: ERM, the regularizers, input then manifold mixup; an alias
    such as `erm` where its strategy stands), then other arms as they came."""
    arms = list(dict.fromkeys(arms))
    rank = {a: i for i, s in enumerate(STRATEGIES) for a in (s.name, *s.aliases)}
    return sorted(arms, key=lambda a: (rank.get(a, len(STRATEGIES)), arms.index(a)))


def class_order(labels) -> list[int]:
    """The class labels present (NA left out), ascending, as Python ints."""
    return sorted({int(c) for c in pd.Series(labels, dtype="Int64").dropna()})


def class_names_in(frame: pd.DataFrame) -> dict[int, str]:
    """{label: class_name} of the class rows of a tidy frame (the label as text when the
    frame has no names)."""
    rows = frame[frame["group"] == CLASS] if "group" in frame.columns else frame
    if "class_name" not in rows.columns:
        return {int(k): str(k) for k in rows["class"].dropna().unique()}
    rows = rows.dropna(subset=["class"]).drop_duplicates("class")
    return {int(k): str(n) if pd.notna(n) else str(k) for k, n in zip(rows["class"], rows["class_name"])}


def final_epoch(data: pd.DataFrame, by: str | list[str] = "run") -> pd.DataFrame:
    """The rows of the last epoch of each `by` group: each run's (tables of runs), or each
    arm's (`by="arm"`, tables already over seeds)."""
    if data.empty:
        return data
    return data[data["epoch"] == data.groupby(by)["epoch"].transform("max")]


def over_seeds(data: pd.DataFrame, by: list[str], value: str = "value") -> pd.DataFrame:
    """Mean, standard deviation (ddof 1; 0 for a single run) and count (`n_runs`) of
    `value` over the rows sharing `by`: over the seeds when `data` has one row per run."""
    out = (data.groupby(by, sort=False, dropna=False)[value]  # NA keys (a seed, no class) count
           .agg(mean="mean", std="std", n_runs="count").reset_index())
    out["std"] = out["std"].fillna(0.0)
    return out


def order_rows(frame: pd.DataFrame, layers: list[str] | None = None) -> pd.DataFrame:
    """Rows in reading order: layers as given (others after, as they came), arms in the
    fixed arm order, epochs ascending; a stable sort on ordered categories."""
    keys = []
    work = frame.copy()
    if "layer" in work and layers is not None:
        seen = list(dict.fromkeys([*layers, *work["layer"]]))
        work["_layer"] = pd.Categorical(work["layer"], categories=seen, ordered=True)
        keys.append("_layer")
    if "arm" in work:
        work["_arm"] = pd.Categorical(work["arm"], categories=arm_order(work["arm"]), ordered=True)
        keys.append("_arm")
    if "epoch" in work:
        work["_epoch"] = pd.to_numeric(work["epoch"], errors="coerce")
        keys.append("_epoch")
    if not keys:
        return frame.reset_index(drop=True)
    return (frame.loc[work.sort_values(keys, kind="stable").index].reset_index(drop=True))
