"""Seaborn-style plotting functions: `plot_x(data, *, x=..., y=..., hue=..., ax=None) -> Axes`.

Each takes a tidy frame (repflat.analysis.tidy's spectra, flattening or summary frame)
and draws on `ax` (a new one if None). The numbers a figure shows come from a function
here that returns them as a frame (`seed_band`, `class_mean_spectra`, `metric_matrix`),
so tests check those numbers and the artists drawn from them, not pixels.
"""
from __future__ import annotations

import warnings

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.ticker import FuncFormatter, MaxNLocator, NullLocator

from repflat.errors import expected, unknown
from repflat.analysis.report.plotting.style import arm_colors, literal
from repflat.analysis.report.tables import ROUND_OFF, number
from repflat.analysis.tidy import arm_order, final_epoch
from repflat.rundir.names import CLASS, MEAN

CLASS_MEAN = MEAN


def seed_band(data: pd.DataFrame, *, x: str, y: str, hue: str, band: str = "std") -> pd.DataFrame:
    """Mean, standard deviation (ddof 1; 0 for a single row), count, minimum and maximum
    of `y` over the rows sharing (hue, x): over the seeds when `data` holds one value per
    run there. The band [lower, upper] is mean ± std (`band="std"`) or the range over the
    rows, [min, max] (`band="range"`): the range never leaves the data's, so on a log axis
    it cannot plunge to the floor where the std exceeds the mean."""
    if band not in BANDS:
        raise expected("band", " or ".join(BANDS), band)
    out = (data.groupby([hue, x], sort=True)[y].agg(mean="mean", std="std", n="count", min="min",
                                                      max="max").reset_index())
    out["std"] = out["std"].fillna(0.0)
    if band == "range":
        out["lower"], out["upper"] = out["min"], out["max"]
    else:
        out["lower"], out["upper"] = out["mean"] - out["std"], out["mean"] + out["std"]
    return out


BANDS = ("std", "range")


def arm_strategies(frame: pd.DataFrame) -> dict[str, str]:
    """{arm: strategy} of a tidy frame with a `strategy` column (empty without one): what
    `arm_colors` needs to draw a sweep's arms as shades of their strategy's colour."""
    if "arm" not in frame.columns or "strategy" not in frame.columns:
        return {}
    return dict(zip(frame["arm"], frame["strategy"]))


def class_mean_spectra(spectra: pd.DataFrame) -> pd.DataFrame:
    """Per run, layer and epoch, the singular values averaged over the classes at each
    index (group "mean", class NA); an index only some classes reach averages over those."""
    per_class = spectra[spectra["group"] == CLASS]
    keys = ["run", "arm", "strategy", "seed", "split", "layer", "epoch", "index"]
    keys = [k for k in keys if k in spectra.columns]
    out = per_class.groupby(keys, sort=False, dropna=False)["singular_value"].mean().reset_index()
    return out.assign(group=CLASS_MEAN, **{"class": pd.array([pd.NA] * len(out), dtype="Int64"),
                                           "class_name": None})


def hue_colors(keys, hue: str = "arm", strategies: dict | None = None) -> dict:
    """The colour of each value of `hue`: arms in their strategy's colour (`arm_colors`,
    with each arm's strategy from `strategies`: a sweep's arms as shades of it), anything
    else in the palette's order. Figure builders pass the colours of all their panels' keys
    as `palette`, so a key has one colour in every panel, whichever others a panel shows."""
    order = arm_order(keys) if hue == "arm" else list(dict.fromkeys(keys))
    return arm_colors(order, strategies) if hue == "arm" else dict(zip(order, sns.color_palette(n_colors=len(order))))


def round_off_to_zero(values, floor: float = ROUND_OFF):
    """`values` with every |value| below `floor` set to exactly 0: what the tables write as 0
    (tables.ROUND_OFF) the figures draw as 0, not as a trend on an axis of 1e-49."""
    values = np.asarray(values, dtype=float)
    return np.where(np.abs(values) < floor, 0.0, values)


def _draw_bands(ax, band: pd.DataFrame, *, x: str, hue: str, marker: str | None = "o",
                legend: bool = True, palette: dict | None = None):
    order = arm_order(band[hue]) if hue == "arm" else list(dict.fromkeys(band[hue]))
    colors = palette if palette is not None else hue_colors(order, hue)
    for key in order:
        b = band[band[hue] == key].sort_values(x)
        ax.plot(b[x], b["mean"], color=colors[key], marker=marker, markersize=3, linewidth=1.4,
                label=literal(key))
        if (b["upper"] > b["lower"]).any():
            ax.fill_between(b[x], b["lower"], b["upper"], color=colors[key], alpha=0.22,
                            linewidth=0)
    if legend and order:
        ax.legend(title=literal(hue))
    return ax


def plot_spectrum(data: pd.DataFrame, *, x: str = "index", y: str = "singular_value",
                  hue: str = "arm", ax=None, log: bool = False, max_index: int | None = None,
                  floor: float = 1e-5, palette: dict | None = None):
    """Singular value against its index, one line per `hue`, with a min–max band.

    One line per `hue` (the mean), band = the range [min, max] over the rows sharing
    (hue, x): over seeds when `data` holds one class of one layer and epoch per run. The
    range, not ±1 std: on a log scale a std above the mean sent the band to the floor.
    `log` draws the values on a log scale whose bottom is `floor` times the largest value:
    float32 features put round-off singular values far below it, which would otherwise
    take up most of the axis. With no positive value (a dead layer) the scale stays linear. On the
    log scale a mean of exactly 0 (past the class's rank: a class of two samples has one
    direction) is left out of its line rather than drawn as a cliff to the axis' bottom,
    and the band stops at the bottom of the axis.

    Parameters
    ----------
    data : DataFrame
        Tidy spectra rows (`Analysis.spectra`, spectra.csv, or `class_mean_spectra` of
        them) with columns `x`, `y` and `hue`, already selected to what one panel shows
        (e.g. one class, or the class mean, of one layer at one epoch).
    x : str, default "index"
        The column of the singular value's index (0-based).
    y : str, default "singular_value"
        The column of the values.
    hue : str, default "arm"
        One line per value of this column; arms in the fixed arm order and colours.
    ax : matplotlib Axes, optional
        Where to draw; default: a new figure's axes.
    log : bool, default False
        A log scale from `floor` times the largest value (the band's top) upwards.
    max_index : int, optional
        Draw only the rows with `x` below it.
    floor : float, default 1e-5
        The bottom of the log scale, relative to the largest value.
    palette : dict, optional
        The colour of each `hue` value; default: `hue_colors` of the values present.

    Returns
    -------
    matplotlib Axes
        `ax` (or the new axes), with the lines, bands and a legend titled `hue`.
    """
    ax = ax or plt.subplots(figsize=(4.5, 3.2))[1]
    if max_index is not None:
        data = data[data[x] < max_index]
    band = seed_band(data, x=x, y=y, hue=hue, band="range")
    top = float(band["upper"].max()) if len(band) else 0.0
    log = log and top > 0  # all zero (a dead layer): nothing to put on a log scale
    if log:  # what a log axis cannot show is left out, not drawn down to its bottom
        drawn = band["upper"] > 0
        band = band.assign(mean=band["mean"].where(band["mean"] > 0),
                           lower=band["lower"].clip(lower=top * floor).where(drawn),
                           upper=band["upper"].where(drawn))
    _draw_bands(ax, band, x=x, hue=hue, palette=palette)
    if log:
        ax.set_yscale("log", nonpositive="clip")
        ax.yaxis.set_minor_locator(NullLocator())  # minor log ticks cost half the drawing time
        ax.set_ylim(top * floor, top * 1.5)
    # a pooled layer of 64 directions got ticks every 5, colliding in a small panel
    ax.xaxis.set_major_locator(MaxNLocator(nbins=5, integer=True))
    if band[x].nunique() == 1:  # one direction (a 1-D layer): ticks at ±0.025 otherwise
        only = float(band[x].iloc[0])
        ax.set_xlim(only - 0.5, only + 0.5)
        ax.set_xticks([only])
    ax.set_xlabel("singular value index")
    ax.set_ylabel("singular value")
    return ax


def plot_metric_over_epochs(data: pd.DataFrame, *, x: str = "epoch", y: str = "mean",
                            err: str = "std", hue: str = "arm", ax=None, log: bool = False,
                            palette: dict | None = None):
    """A summary metric over epochs: the mean over seeds as a line, ±`err` as a band.

    Parameters
    ----------
    data : DataFrame
        Rows of one metric and one layer of a summary frame (`Analysis.summary`,
        summary.csv), one row per (hue, x), with columns `x`, `y`, `err` and `hue`.
    x : str, default "epoch"
        The column on the horizontal axis.
    y : str, default "mean"
        The column of the line (the mean over seeds).
    err : str, default "std"
        The column of the band's half-width (the standard deviation over seeds).
    hue : str, default "arm"
        One line per value of this column; arms in the fixed arm order and colours.
    ax : matplotlib Axes, optional
        Where to draw; default: a new figure's axes.
    log : bool, default False
        A log scale on the vertical axis (non-positive values clipped).
    palette : dict, optional
        The colour of each `hue` value; default: `hue_colors` of the values present.

    Returns
    -------
    matplotlib Axes
        `ax` (or the new axes), with the lines, bands and a legend titled `hue`; the
        vertical axis is left unlabelled (the caller names the metric). Values and
        spreads below `tables.ROUND_OFF` are drawn as 0, as the tables write them.
    """
    ax = ax or plt.subplots(figsize=(4.5, 3.2))[1]
    band = data[[hue, x, y, err]].rename(columns={y: "mean", err: "std"}).sort_values([hue, x])
    band = band.assign(mean=round_off_to_zero(band["mean"]), std=round_off_to_zero(band["std"]))
    band = band.assign(lower=band["mean"] - band["std"], upper=band["mean"] + band["std"])
    _draw_bands(ax, band, x=x, hue=hue, palette=palette)
    if log:
        ax.set_yscale("log", nonpositive="clip")
        ax.yaxis.set_minor_locator(NullLocator())
    else:  # an offset ("+6.2", "1e-15") above the axis reads as exponent noise
        ax.yaxis.get_major_formatter().set_useOffset(False)
    ax.xaxis.set_major_locator(MaxNLocator(nbins=6, integer=True))
    ax.set_xlabel(literal(x))
    return ax


def metric_matrix(summary: pd.DataFrame, metric: str, layers: list[str] | None = None) -> pd.DataFrame:
    """Mean over seeds of `metric` at each arm's last epoch: arms (rows, in the fixed
    order) × layers (columns, in `layers` order or as they appear)."""
    rows = summary[summary["metric"] == metric]
    rows = final_epoch(rows, by="arm")
    wide = rows.pivot_table(index="arm", columns="layer", values="mean", aggfunc="first", sort=False,
                            dropna=False)
    cols = [l for l in (layers or dict.fromkeys(rows["layer"])) if l in wide.columns]
    return wide.loc[arm_order(wide.index), cols]


def ratio_references(matrix: pd.DataFrame, relative_to: str | None = None) -> pd.Series:
    """The reference arm of each column of a `metric_matrix`: `relative_to` (default: the
    first arm) where it has a non-zero value there, else the first arm that has one (NA
    where none has). Arms of different models have different layers; against one arm
    alone, every layer the other model has was blank."""
    refs = {}
    for layer in matrix.columns:
        column = matrix[layer]
        usable = [a for a in matrix.index if np.isfinite(column[a]) and column[a] != 0]
        refs[layer] = relative_to if relative_to in usable else (usable[0] if usable else pd.NA)
    return pd.Series(refs, dtype=object)


def ratio_matrix(matrix: pd.DataFrame, refs: pd.Series) -> pd.DataFrame:
    """log₂(value / reference value) per cell, the reference of its column from `refs`;
    NaN where that is undefined (no reference, a value of 0, a negative ratio)."""
    out = pd.DataFrame(np.nan, index=matrix.index, columns=matrix.columns)
    for layer in matrix.columns:
        if pd.isna(refs[layer]):
            continue
        with np.errstate(divide="ignore", invalid="ignore"):
            out[layer] = np.log2((matrix[layer] / matrix.loc[refs[layer], layer]).astype(float))
    return out.where(np.isfinite(out))


def plot_metric_heatmap(summary: pd.DataFrame, *, metric: str, relative_to: str | None = None,
                        layers: list[str] | None = None, ax=None):
    """Strategy × layer heat map of `metric` (mean over seeds, final epoch).

    Each cell is annotated with its value (`tables.number`, 3 significant digits) and
    coloured by log₂ of its ratio to the reference arm of its layer (`ratio_references`:
    the `relative_to` arm, default the first, ERM when present; at a layer it lacks, the
    first arm that has it), so layers of different scale share one colour scale: blue
    below the reference, red above, white equal. Cells whose log-ratio is undefined (no
    reference, a value of 0, a negative ratio) are left uncoloured but still show their
    value; a cell is empty only where the arm has no such layer. The numbers shown are
    `metric_matrix(summary, metric, layers)`, the colours `ratio_matrix` of it.

    Parameters
    ----------
    summary : DataFrame
        A summary frame (`Analysis.summary`, summary.csv): columns arm, layer, epoch,
        metric and mean.
    metric : str
        The metric to show; it must have rows in `summary`.
    relative_to : str, optional
        The reference arm (a row of the matrix); default: the first arm in the fixed
        arm order.
    layers : list of str, optional
        The columns, in this order (layers without the metric are left out); default:
        every layer with the metric, as they appear.
    ax : matplotlib Axes, optional
        Where to draw; default: a new figure's axes, sized to the matrix.

    Returns
    -------
    matplotlib Axes
        `ax` (or the new axes), titled `metric`, with a colour bar of the ratio.
    """
    matrix = metric_matrix(summary, metric, layers)
    if matrix.empty:
        raise expected("metric", f"a metric of the summary ({', '.join(sorted(set(summary['metric'])))})", metric)
    if relative_to is not None and relative_to not in matrix.index:
        raise unknown("relative_to", relative_to, list(matrix.index), what="arm")
    refs = ratio_references(matrix, relative_to)
    color = ratio_matrix(matrix, refs)
    spread = float(np.nanmax(np.abs(color.to_numpy()))) if color.notna().any().any() else 0.0
    spread = max(spread, 0.1)
    ax = ax or plt.subplots(figsize=(1.2 + 1.1 * matrix.shape[1], 0.8 + 0.5 * matrix.shape[0]))[1]
    named = set(refs.dropna())
    label = (f"relative to {next(iter(named))}" if len(named) == 1
             else "× first arm at the layer")
    # seaborn takes the tick labels from the index (arms) and columns (layers)
    with warnings.catch_warnings():  # seaborn 0.13 calls a colormap method matplotlib deprecates
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        sns.heatmap(color.rename(index=literal, columns=literal), ax=ax, cmap="vlag", center=0.0,
                    vmin=-spread, vmax=spread, annot=False, linewidths=0.5,
                    cbar_kws={"label": literal(label),
                              "format": FuncFormatter(lambda v, _: "×" + number(2 ** v, 3))})
    # seaborn writes no value in a cell it leaves uncoloured: a model's own layers, or a
    # value of 0, were blank; the values are written here, every one
    has = set(zip(summary.loc[summary["metric"] == metric, "arm"],
                  summary.loc[summary["metric"] == metric, "layer"]))
    for i, arm in enumerate(matrix.index):
        for j, layer in enumerate(matrix.columns):
            value = matrix.loc[arm, layer]
            if np.isnan(value) and (arm, layer) in has:  # undefined there (vacuous): NA, not blank
                ax.text(j + 0.5, i + 0.5, "NA", ha="center", va="center", fontsize="small",
                        color="0.45")
            elif np.isfinite(value):
                strong = np.isfinite(color.loc[arm, layer]) and abs(color.loc[arm, layer]) > 0.6 * spread
                ax.text(j + 0.5, i + 0.5, number(value, 3), ha="center", va="center",
                        fontsize="small", color="white" if strong else "0.15")
    ax.set_xlabel("layer")
    ax.set_ylabel("arm")
    ax.set_title(literal(metric))
    return ax
