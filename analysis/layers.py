"""One layer's features to its tidy rows, and every (run, epoch, layer) of an analysis.

`layer_tables` gives the spectrum rows and the metric rows of one layer (every metric of
repflat.analysis.registry, Corollary 1's measures where the run saved its discriminative
summaries); `analyze_features` does it for each array an analysis asks for, with the run
columns, into the spectra and flattening frames (columns: repflat.analysis.tidy).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from repflat.analysis import collapse as C
from repflat.analysis import metrics as M
from repflat.analysis.intrinsic import class_intrinsic_dimensions
from repflat.analysis import registry
from repflat.analysis.discriminative import COLLAPSE_TOL, discriminative_geometry
from repflat.analysis.inputs import as_spectrum
from repflat.analysis.registry import CLASS_MEASURES
from repflat.analysis.runs import run_columns
from repflat.analysis.spectra import layer_statistics
from repflat.analysis.tidy import CLASS_COLUMNS, RUN_COLUMNS, typed_columns
from repflat.config import AnalysisConfig
from repflat.errors import UserError, expected, unknown
from repflat.rundir.names import ALL, CLASS, MEAN, POOLED
from repflat.rundir.run import RunInfo


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
        (group "all"; nc1, within_between_ratio, NC2, CDNV, left out where undefined);
        the intrinsic dimensions of each class (TwoNN, lPCA) where scikit-dimension is
        installed.

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
    intrinsic = class_intrinsic_dimensions(  # {} without scikit-dimension
        features, labels, centred_spectra=st.spectra if center else None)
    for cls in st.classes.tolist():
        row = {"n_samples": counts[cls]}
        if cls in spectra:
            s = spectra[cls]
            # past the most directions the class can span the share is NaN: vacuous
            rank_bound = min(counts[cls] - (1 if center else 0), dim)
            row |= registry.spectrum_metrics(s, context) | {
                "theory_dimension": k_theory,
                "residual_variance_share": M.residual_variance_share.kernel(s, k_theory, rank_bound)} | {
                m: v for m, v in intrinsic.get(cls, {}).items() if np.isfinite(v)}
        put(CLASS, cls, row | geometry.get(cls, {}))
    put(POOLED, None, {"n_samples": n_total} | registry.spectrum_metrics(pooled, context))
    averaged = {m: float(np.mean([g[m] for g in geometry.values() if m in g]))
                for m in CLASS_MEASURES if any(m in g for g in geometry.values())}
    put(MEAN, None, {"mean_first_singular_value":
                     float(np.mean([M.largest_singular_value.kernel(s)
                                    for s in spectra.values()]))} | averaged)
    layer = {"nc1": M.nc1(st, mean=nc1_mean),
             "within_between_ratio": M.within_between_ratio(st, mean=nc1_mean),
             **C.nc2(st, mean=nc1_mean), "cdnv": C.cdnv(st)} | gauge
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
            # the array stands for "features": say its detail at its own place, not twice
            raise UserError(err.detail if err.argument == "features" else str(err),
                            argument=where) from None
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
