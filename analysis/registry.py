"""Every metric of flattening.csv, declared once; the tables, the report and the tests
iterate this list.

A metric is computed on one of four levels, its `kind`:

- `spectrum`: a function of one spectrum (repflat.analysis.metrics), computed for every
  class and for the pooled rows; `compute(s, context)` takes a spectrum already checked;
- `theory`: Corollary 1's dimension and the share of variance beyond it, per class;
- `layer`: a function of the whole layer (nc1, within_between_ratio, nc2's four
  numbers, cdnv; repflat.analysis.collapse), one value per layer;
- `intrinsic`: an intrinsic dimension of each class (TwoNN, lPCA; repflat.analysis.
  intrinsic), absent where scikit-dimension is not installed;
- `discriminative`: Corollary 1's measures (repflat.analysis.discriminative), per class
  with their class mean, or for the layer (the gauge rows), where the run saved its
  discriminative summaries.

To add a metric: its function (metrics.py for a spectrum, exported from the package), and one `Metric` here; the
README's "Flattening metrics" table gets its row (tests/test_registry.py checks both).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from repflat.analysis import collapse as C
from repflat.analysis import intrinsic as I
from repflat.analysis import metrics as M
from repflat.rundir.names import ALL, CLASS, MEAN, POOLED


@dataclass(frozen=True)
class Context:
    """What a spectrum metric may need beyond the spectrum: the analysis' rtol and the
    layer's width."""

    rtol: float
    n_features: int


@dataclass(frozen=True)
class Metric:
    """One metric of flattening.csv."""

    name: str
    title: str
    """Its column title in the report's tables."""
    kind: str
    """spectrum, theory, layer, intrinsic, discriminative or count (module docstring)."""
    groups: tuple[str, ...]
    """The `group`s of flattening.csv that carry it (class, pooled, mean, all)."""
    compute: Callable | None = None
    """For a spectrum metric: (checked spectrum, Context) -> value, None where it does not
    apply (a top-k share with k at or past the layer's width)."""
    function: Callable | None = None
    """The public function a user calls (checks its input), where there is one."""
    uses_rtol: bool = False
    table: bool = False
    """A column of the report's main table (in the order of this list)."""
    pooled_table: bool = False
    """Its pooled value is a column of the main table too."""


def _spectrum(function, title: str, *, table: bool = False, pooled_table: bool = False,
              uses_rtol: bool = False, call=None) -> Metric:
    call = call or (lambda s, c: function.kernel(s))
    return Metric(function.__name__, title, "spectrum", (CLASS, POOLED), call, function,
                  uses_rtol=uses_rtol, table=table, pooled_table=pooled_table)


def _top(k: int) -> Metric:
    return Metric(f"variance_share_top{k}", f"variance in top {k}", "spectrum", (CLASS, POOLED),
                  lambda s, c: M.variance_share.kernel(s, k) if k < c.n_features else None,
                  M.variance_share)


TOP_K = (1, 2, 5, 10)

METRICS: tuple[Metric, ...] = (
    Metric("n_samples", "n", "count", (CLASS, POOLED)),
    _spectrum(M.largest_singular_value, "σ₁", table=True, pooled_table=True),
    _spectrum(M.sum_other_singular_values, "Σ σ₂…", table=True),
    _spectrum(M.effective_rank, "effective rank", table=True, pooled_table=True),
    _spectrum(M.rankme, "RankMe"),
    _spectrum(M.participation_ratio, "participation ratio"),
    _spectrum(M.stable_rank, "stable rank"),
    _spectrum(M.numerical_rank, "numerical rank", table=True, uses_rtol=True,
              call=lambda s, c: M.numerical_rank.kernel(s, c.rtol)),
    *(_top(k) for k in TOP_K),
    Metric("theory_dimension", "dim(H)−K+1", "theory", (CLASS,), function=M.theory_dimension,
           table=True),
    Metric("residual_variance_share", "variance beyond dim(H)−K+1", "theory", (CLASS,),
           function=M.residual_variance_share, table=True),
    Metric("mean_first_singular_value", "mean σ₁", "spectrum", (MEAN,)),
    Metric("nc1", "NC1", "layer", (ALL,), function=M.nc1, table=True),
    Metric("within_between_ratio", "Tr Σ_W / Tr Σ_B", "layer", (ALL,), function=M.within_between_ratio),
    Metric("nc2_equinorm", "NC2 equinorm", "layer", (ALL,), function=C.nc2),
    Metric("nc2_equiangularity", "NC2 equiangularity", "layer", (ALL,), function=C.nc2),
    Metric("nc2_max_angle", "NC2 max-angle", "layer", (ALL,), function=C.nc2),
    Metric("nc2_etf_distance", "NC2 ETF distance", "layer", (ALL,), function=C.nc2),
    Metric("cdnv", "CDNV", "layer", (ALL,), function=C.cdnv),
    Metric("twonn_dimension", "TwoNN dimension", "intrinsic", (CLASS,), function=I.twonn_dimension),
    Metric("lpca_dimension", "lPCA dimension", "intrinsic", (CLASS,), function=I.lpca_dimension),
    Metric("along_spread", "along ÷ separation", "discriminative", (CLASS, MEAN)),
    Metric("across_spread", "across ÷ separation", "discriminative", (CLASS, MEAN)),
    Metric("along_share", "share along", "discriminative", (CLASS, MEAN)),
    Metric("collapsed", "collapsed", "discriminative", (CLASS, MEAN)),
    Metric("separation", "separation", "discriminative", (CLASS, MEAN)),
    Metric("sigma1_over_separation", "σ₁ ÷ separation", "discriminative", (CLASS, MEAN)),
    Metric("sigma_rest_over_separation", "Σ σ₂… ÷ separation", "discriminative", (CLASS, MEAN)),
    Metric("jacobian_energy_share", "Jacobian energy in K − 1", "discriminative", (CLASS, MEAN)),
    Metric("layer_scale", "layer scale", "discriminative", (ALL,)),
    Metric("downstream_gain", "downstream gain", "discriminative", (ALL,)),
    Metric("scale_gain_product", "scale × gain", "discriminative", (ALL,)),
)
"""Every metric, in the order the tables show them."""

SCALE_DEPENDENT = ("largest_singular_value", "sum_other_singular_values", "mean_first_singular_value",
                   "separation", "layer_scale", "downstream_gain")
"""The metrics that change with the layer's scale (h → c·h, next layer ÷ c: a gauge of the
loss), the paper's raw statistics among them; every other metric here is scale-free
(counts, ratios, shares, ranks; RankMe up to its ε)."""

BY_NAME = {m.name: m for m in METRICS}
SPECTRUM = tuple(m for m in METRICS if m.kind == "spectrum" and m.compute is not None)
CLASS_MEASURES = tuple(m.name for m in METRICS if m.kind == "discriminative" and MEAN in m.groups)
"""Corollary 1's per-class measures, whose class mean is a `mean` row."""


def table_titles() -> dict[str, str]:
    """{summary metric: column title} of the report's main table, in its order: the
    per-class metrics marked `table`, the pooled values of those marked `pooled_table`
    (the control beside them), then the layer's own."""
    marked = [m for m in METRICS if m.table]
    return ({m.name: m.title for m in marked if m.kind != "layer"}
            | {f"pooled_{m.name}": f"pooled {m.title}" for m in METRICS if m.pooled_table}
            | {m.name: m.title for m in marked if m.kind == "layer"})


def scale_free(name: str) -> bool | None:
    """Whether the summary.csv metric `name` (`pooled_` ones as their base) is unchanged
    by the layer's scale; None for a metric not declared here (another tool's)."""
    base = name.removeprefix("pooled_")
    return None if base not in BY_NAME else base not in SCALE_DEPENDENT


def title(name: str) -> str:
    """The title of a summary.csv metric (`pooled_` ones as "pooled …"); an unknown name
    (a metric of a newer or other tool) as it is."""
    base = name.removeprefix("pooled_")
    if base not in BY_NAME:
        return name
    return BY_NAME[base].title if base == name else f"pooled {BY_NAME[base].title}"


def spectrum_metrics(s, context: Context) -> dict[str, float]:
    """Every spectrum metric of one spectrum `s` (checked once by the caller: `as_spectrum`)."""
    out = {}
    for metric in SPECTRUM:
        value = metric.compute(s, context)
        if value is not None:
            out[metric.name] = value
    return out
