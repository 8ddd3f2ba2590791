"""From saved features to the tidy spectra and flattening tables.

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

Classes of fewer than two rows get only their n_samples row (they have no spread).
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
import numpy as np
import pandas as pd

from repflat.analysis import metrics as M
from repflat.analysis import registry
from repflat.analysis.discriminative import COLLAPSE_TOL, discriminative_geometry
from repflat.analysis.moments import as_spectrum
from repflat.analysis.registry import CLASS_MEASURES
from repflat.analysis.runs import run_columns
from repflat.analysis.spectra import layer_statistics
from repflat.config import AnalysisConfig
from repflat.errors import UserError, expected, unknown
from repflat.rundir.run import RunInfo
from repflat.rundir.names import ALL, CLASS, MEAN, NOT_A_CLASS, POOLED, UNKNOWN

CLASS_COLUMNS = ["group", "class", "class_name"]
RUN_COLUMNS = ["run", "arm", "strategy", "seed", "split", "layer", "epoch"]


def class_name(label: int, names: Sequence[str] | None) -> str:
    """The name of class `label`: `names[label]` when known, else the label as text."""
    return str(names[label]) if names is not None and 0 <= label < len(names) else str(label)


def _class_columns(groups: list[str], labels: list[int | None],
                   names: Sequence[str] | None) -> dict[str, object]:
    return {"group": groups, "class": pd.array(labels, dtype="Int64"),
            "class_name": [None if k is None else class_name(k, names) for k in labels]}


def layer_tables(features, labels, *, center: bool, rtol: float, scale: bool = False,
                 class_names: Sequence[str] | None = None, nc1_mean: str = "global",
                 discriminative=None, collapse_tol: float = COLLAPSE_TOL,
                 **options) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Spectrum rows and metric rows of one layer's features (no run columns yet).

    `features` (n_samples, n_features) and `labels` (n_samples,) are array-likes (a
    memmap is read in chunks when large; lists and CPU tensors work); `class_names`
    (index = label) fill the `class_name` column. `options` go to
    `repflat.analysis.spectra.layer_statistics` (`method`, `chunk_rows`, `workers`).
    `scale=True` divides each spectrum by √n. Columns: see the module docstring.

    Parameters
    ----------
    features : array-like, shape (n_samples, n_features)
        numpy array, memmap, list or CPU torch tensor.
    labels : array-like of int, shape (n_samples,)
        The class of each row.
    center : bool
        Spectra of centred class matrices (X_k − 1 μ_kᵀ), else of X_k.
    rtol : float
        The numerical rank counts σ_i > rtol · σ₁.
    scale : bool, default False
        Divide each class's spectrum by √n_k and the pooled one by √n_samples.
    class_names : sequence of str, optional
        The name of each class label (index = label); default: the label as text.
    nc1_mean : {"global", "class_means"}, default "global"
        The centre of Σ_B in nc1 and within_between_ratio (see `repflat.analysis.nc1`).
    discriminative : repflat.rundir.features.Discriminative, optional
        The layer's discriminative summary: adds Corollary 1's measures
        (`repflat.analysis.discriminative`) per class, their class mean, and the gauge
        rows (layer_scale, downstream_gain, scale_gain_product) of the layer.
    collapse_tol : float, default 0.05
        A class is `collapsed` when its whole spread is below this share of its separation.
    **options
        `method`, `chunk_rows`, `workers` (see `layer_statistics`).

    Returns
    -------
    spectra : DataFrame
        Columns group ("class" or "pooled"), class (Int64), class_name, index,
        singular_value: one row per singular value.
    metrics : DataFrame
        Columns group, class (Int64), class_name, metric, value: one row per metric of
        each class, of the pooled rows, of the mean over classes and of the layer
        (group "all"; nc1 and within_between_ratio, left out where undefined).

    Raises
    ------
    repflat.errors.UserError
        As `layer_statistics`.
    """
    st = layer_statistics(features, labels, center=center, **options)
    dim, n_classes = st.n_features, len(st.classes)
    k_theory = M.theory_dimension(dim, n_classes)
    counts = dict(zip(st.classes.tolist(), st.counts.tolist()))
    n_total = int(st.counts.sum())
    # each spectrum checked once, then every metric reads it as it is (registry kernels)
    spectra = {k: as_spectrum(s / np.sqrt(counts[k]) if scale else s) for k, s in st.spectra.items()}
    pooled = as_spectrum(st.pooled / np.sqrt(n_total) if scale else st.pooled)
    names, values, groups, labels_ = [], [], [], []
    context = registry.Context(rtol, dim)

    def put(group: str, label: int | None, metrics: dict) -> None:
        names.extend(metrics)
        values.extend(float(v) for v in metrics.values())
        groups.extend([group] * len(metrics))
        labels_.extend([label] * len(metrics))

    if discriminative is not None and (discriminative.factor.shape[2] != dim or not len(st.classes)
                                       or st.classes.max() >= discriminative.factor.shape[0]):
        discriminative = None  # a summary of other classes or width: no measures, not a guess
    geometry, gauge = ({}, {}) if discriminative is None else discriminative_geometry(
        features, labels, discriminative.factor, discriminative.trace,
        spectra=st.spectra if center else None, collapse_tol=collapse_tol)
    for cls in st.classes.tolist():
        row = {"n_samples": counts[cls]}
        if cls in spectra:
            s = spectra[cls]
            row |= registry.spectrum_metrics(s, context) | {
                "theory_dimension": k_theory,
                "residual_variance_share": M.residual_variance_share.kernel(s, k_theory)}
        put(CLASS, cls, row | geometry.get(cls, {}))
    put(POOLED, None, {"n_samples": n_total} | registry.spectrum_metrics(pooled, context))
    averaged = {m: float(np.mean([g[m] for g in geometry.values() if m in g]))
                for m in CLASS_MEASURES if any(m in g for g in geometry.values())}
    put(MEAN, None, {"mean_first_singular_value":
                     float(np.mean([M.largest_singular_value.kernel(s)
                                    for s in spectra.values()]))} | averaged)
    layer = {"nc1": M.nc1(st, mean=nc1_mean),
             "within_between_ratio": M.within_between_ratio(st, mean=nc1_mean)} | gauge
    put(ALL, None, {m: v for m, v in layer.items() if np.isfinite(v)})  # NaN: undefined, left out
    mframe = pd.DataFrame({**_class_columns(groups, labels_, class_names),
                           "metric": names, "value": values})

    keyed = [*((CLASS, k, s) for k, s in spectra.items()), (POOLED, None, pooled)]
    sizes = [len(s) for _, _, s in keyed]
    sframe = pd.DataFrame({
        **_class_columns([g for g, _, s in keyed for _ in s], [k for _, k, s in keyed for _ in s],
                         class_names),
        "index": np.concatenate([np.arange(n) for n in sizes]),
        "singular_value": np.concatenate([s for _, _, s in keyed])})
    return sframe, mframe


def flattening_frame(features, labels, *, class_names: Sequence[str] | None = None,
                     center: bool = True, rtol: float = AnalysisConfig.rtol,
                     scale: bool = False, **options) -> pd.DataFrame:
    """The tidy flattening metrics of one layer: one row per (group, class, metric).

    Parameters
    ----------
    features : array-like, shape (n_samples, n_features)
        numpy array, memmap, list or CPU torch tensor.
    labels : array-like of int, shape (n_samples,)
    class_names : list of str, optional
        name of each class label (index = label), for the `class_name` column.
    center, rtol, scale
        as `repflat analyze`: centred class matrices, numerical rank at rtol · σ₁,
        spectra undivided (scale=False) or divided by √n_k.
    **options
        `method`, `chunk_rows`, `workers` (see `repflat.analysis.spectra.layer_statistics`).

    Returns
    -------
    DataFrame with columns group, class (Int64), class_name, metric, value; the
    metrics and their definitions are listed in this module's docstring.
    """
    return layer_tables(features, labels, center=center, rtol=rtol, scale=scale,
                        class_names=class_names, **options)[1]


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


def plan(runs: Sequence[RunInfo], sel: AnalysisConfig) -> list[tuple[RunInfo, int, str]]:
    """The (run, epoch, layer) arrays `sel` asks for, every one checked to exist."""
    jobs = []
    for run in runs:
        fs = run.features
        if sel.split not in fs.label_splits():
            raise expected("split", f"a split with labels in {fs.where} "
                           f"({', '.join(fs.label_splits()) or 'none'})", sel.split)
        epochs = fs.epochs(sel.split)
        if not epochs:
            raise UserError(f"run {run.path}: no features saved for split {sel.split!r}")
        if sel.epochs == "final":
            epochs = epochs[-1:]
        saved = fs.layers(sel.split)
        for layer in sel.layers:
            if layer not in saved:
                raise unknown(f"layers (saved for the {sel.split} split of {fs.where})", layer, saved,
                              what="layer")
        for epoch in epochs:
            for layer in sel.layers or saved:
                fs.get(sel.split, epoch, layer)  # a layer missing at one epoch: named with what is
                jobs.append((run, epoch, layer))
    return jobs


def analyze_features(runs: Sequence[RunInfo], sel: AnalysisConfig = AnalysisConfig(),
                     progress=None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The spectra and flattening frames of `runs` (see the module docstring).

    `progress`, if given, is called once per analysed array.
    """
    spectra, flat = [pd.DataFrame()], [pd.DataFrame()]
    labels = {}
    for run, epoch, layer in plan(runs, sel):
        fs = run.features
        if run.run_id not in labels:
            labels[run.run_id] = fs.labels(sel.split)
        y = labels[run.run_id]
        where = f"features {run.run_id}/{sel.split}/{epoch}/{layer}"
        x = fs.load(fs.get(sel.split, epoch, layer), mmap=True)  # read in chunks if large
        if x.ndim != 2 or len(x) != len(y):
            raise expected(where, f"shape ({len(y)}, n_features) to match the labels", x.shape)
        try:
            sframe, mframe = layer_tables(x, y, center=sel.center, rtol=sel.rtol, scale=sel.scale,
                                          class_names=fs.class_names, nc1_mean=sel.nc1_mean,
                                          discriminative=fs.discriminative(layer, split=sel.split, epoch=epoch),
                                          collapse_tol=sel.collapse_tol)
        except UserError as err:  # say which array: one run of many may be the bad one
            raise UserError(f"{where}: {str(err).removeprefix('features: ')}") from None
        key = run_columns(run) | {"split": sel.split, "layer": layer, "epoch": epoch}
        spectra.append(sframe.assign(**key))
        flat.append(mframe.assign(**key))
        del x
        if progress is not None:
            progress()
    order = RUN_COLUMNS + CLASS_COLUMNS
    return (typed_columns(pd.concat(spectra, ignore_index=True)
                          .reindex(columns=order + ["index", "singular_value"])),
            typed_columns(pd.concat(flat, ignore_index=True).reindex(columns=order + ["metric", "value"])))


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
ORDER = {"erm": 0, "none": 0, "baseline": 0, "weight_decay": 1, "input_noise": 2,
         "dropout": 3, "batch_norm": 4, "input_mixup": 5, "manifold_mixup": 6}


def arm_order(arms: Iterable[str]) -> list[str]:
    """ERM first, the regularizers, input then manifold mixup, then other arms as they came."""
    arms = list(dict.fromkeys(arms))
    return sorted(arms, key=lambda a: (ORDER.get(a, 9), arms.index(a)))


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
