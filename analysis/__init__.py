"""repflat's analysis side: flattening of class-conditional representations, with numpy.

It never imports torch: features come as arrays (numpy arrays, memmaps, lists, CPU torch
tensors), as `FeatureSet` objects (`Features` of a run directory, `MemoryFeatures` from
`repflat.extract(..., out=None)`), or as run and experiment directories.

One layer's features, in a notebook::

    import repflat.analysis as ra

    spectra = ra.class_spectra(X, y)            # {class: σ descending}, centred by default
    ra.effective_rank(spectra[0]), ra.nc1(X, y)  # metrics of a spectrum, of a layer
    frame = ra.flattening_frame(X, y, class_names=["circle", "square"])
    frame[frame["group"] == "class"].pivot(index="class_name", columns="metric", values="value")

Whole runs, or feature sets held in memory, to tidy frames (nothing written)::

    result = ra.compute(["runs/erm-seed0", "runs/manifold_mixup-seed0"])
    result = ra.compute([fs_erm_0, fs_erm_1, fs_mix_0, fs_mix_1])  # extract(..., arm=, seed=)
    result.flat, result.spectra, result.summary                    # pandas frames
    ra.compare(result, baseline="erm")       # every arm against erm, seed-paired intervals

and with the tables, figures and report written into a directory (what `repflat
analyze` does)::

    ra.analyze(["runs/erm-seed0"], "out/")

The frames are tidy: `group` ("class", "pooled", "mean", "all"), `class` (the label, a
nullable integer), `class_name`, `seed` (nullable integer), `metric`, `value`; see
`repflat.analysis.tidy`. Figures live in `repflat.analysis.report` (the presentation
layer): they draw in a local style and change no global matplotlib state.

The names below are the stable API; the submodules (spectra, metrics, moments, gram,
tidy, pipeline, embeddings, theory, report) hold the rest.
"""
from repflat.analysis.metrics import (effective_rank, largest_singular_value, nc1,
                                      numerical_rank, participation_ratio, rankme,
                                      residual_variance_share, stable_rank,
                                      sum_other_singular_values, theory_dimension,
                                      variance_share, within_between_ratio)
from repflat.analysis.moments import LayerStats
from repflat.analysis.collapse import cdnv, nc2, nc3_self_duality, nc4_ncc_mismatch
from repflat.analysis.intrinsic import lpca_dimension, twonn_dimension
from repflat.analysis.similarity import (angular_distance, linear_cka, procrustes_distance,
                                         rdm_correlation)
from repflat.analysis.inputs import as_features, as_labels
from repflat.analysis.compare import compare
from repflat.analysis.pipeline import compute
from repflat.analysis.results import Analysis
from repflat.analysis.spectra import class_spectra, layer_statistics, singular_values
from repflat.analysis.tidy import summarize
from repflat.analysis.layers import flattening_frame, layer_tables

__all__ = [
    # spectra
    "class_spectra", "layer_statistics", "singular_values", "LayerStats",
    # metrics of a spectrum
    "effective_rank", "rankme", "participation_ratio", "stable_rank", "numerical_rank",
    "variance_share", "residual_variance_share", "theory_dimension",
    "largest_singular_value", "sum_other_singular_values",
    # metrics of a layer
    "nc1", "within_between_ratio", "nc2", "cdnv", "nc3_self_duality", "nc4_ncc_mismatch",
    # intrinsic dimension of a class
    "twonn_dimension", "lpca_dimension",
    # similarity of two feature sets of the same samples
    "linear_cka", "procrustes_distance", "angular_distance", "rdm_correlation",
    # tidy frames
    "flattening_frame", "layer_tables", "summarize",
    # runs and feature sets
    "compute", "analyze", "compare", "Analysis",
    # array-likes in
    "as_features", "as_labels",
]


def __getattr__(name: str):
    # `analyze` writes a report: it lives in the presentation layer, which computation
    # modules never import; loading it on first use keeps `import repflat.analysis` light
    # (no matplotlib) and the layers as tests/test_layers.py enforces them.
    if name == "analyze":
        from repflat.analysis.report.outputs import analyze

        return analyze
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | {"analyze"})
