"""Tidy flattening outputs: every metric in the tables, both paths, bare feature directories."""
import json

import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_limits

from repflat.analysis import metrics as M
from repflat.analysis.tidy import summarize
from repflat.analysis.layers import analyze_features, layer_tables
from repflat.analysis.runs import collect_runs
from repflat.analysis.spectra import class_spectra, singular_values
from repflat.config import AnalysisConfig
from repflat.errors import UserError
from repflat.rundir.features import FeatureWriter
from repflat.files import sha256_file


@pytest.fixture(autouse=True)
def single_blas_thread():
    """Reference SVDs single-threaded: multi-threaded LAPACK crawls on a busy 2-core machine."""
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def keyed(flat):
    """Metric values by (label as text, or the group's word; metric)."""
    key = flat["class"].astype("string").where(flat["group"] == "class", flat["group"])
    return flat.assign(key=key).set_index(["key", "metric"])["value"]


def layer(n=90, d=6, k=3, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    return rng.normal(size=(n, d)) + 4 * rng.normal(size=(k, d))[y], y


def test_every_metric_row_follows_its_definition():
    x, y = layer()
    y[5] = 7  # a class of one row
    spectra, flat = layer_tables(x, y, center=True, rtol=0.01)
    m = keyed(flat)
    s0, pooled = class_spectra(x, y)[0], singular_values(x)
    for cls, s in (("0", s0), ("pooled", pooled)):
        assert m[cls, "largest_singular_value"] == pytest.approx(s[0])
        assert m[cls, "rankme"] == pytest.approx(M.rankme(s))
        assert m[cls, "participation_ratio"] == pytest.approx(M.participation_ratio(s))
        assert m[cls, "stable_rank"] == pytest.approx(M.stable_rank(s))
        assert m[cls, "numerical_rank"] == M.numerical_rank(s, 0.01)
        assert m[cls, "variance_share_top2"] == pytest.approx(M.variance_share(s, 2))
        assert m[cls, "variance_share_top5"] == pytest.approx(M.variance_share(s, 5))
        assert (cls, "variance_share_top10") not in m.index   # k ≥ n_features: always 1
    assert m["0", "residual_variance_share"] == pytest.approx(M.residual_variance_share(s0, 6 - 4 + 1))
    assert m["pooled", "n_samples"] == 90
    assert m["all", "nc1"] == pytest.approx(M.nc1(x, y))
    assert m["all", "within_between_ratio"] == pytest.approx(M.within_between_ratio(x, y))
    assert list(m["7"].index) == ["n_samples"] and m["7", "n_samples"] == 1
    assert 7 not in set(spectra["class"].dropna())
    assert m["mean", "mean_first_singular_value"] == pytest.approx(
        np.mean([s[0] for s in class_spectra(x, y).values()]))
    assert list(spectra.columns) == ["group", "class", "class_name", "index", "singular_value"]
    assert str(spectra["class"].dtype) == str(flat["class"].dtype) == "Int64"
    assert flat["class"].isna().eq(flat["group"] != "class").all()
    np.testing.assert_allclose(spectra[spectra["class"] == 0]["singular_value"], s0)


def test_scaled_tables_divide_the_spectra_only():
    x, y = layer()
    plain = keyed(layer_tables(x, y, center=True, rtol=0.01)[1])
    scaled = keyed(layer_tables(x, y, center=True, rtol=0.01, scale=True)[1])
    n0 = plain["0", "n_samples"]
    assert scaled["0", "largest_singular_value"] == pytest.approx(plain["0", "largest_singular_value"] / np.sqrt(n0))
    assert scaled["pooled", "largest_singular_value"] == pytest.approx(
        plain["pooled", "largest_singular_value"] / np.sqrt(90))
    for metric in ("effective_rank", "stable_rank", "nc1"):
        cls = "all" if metric == "nc1" else "0"
        assert scaled[cls, metric] == pytest.approx(plain[cls, metric])


def test_streaming_tables_equal_in_memory_tables():
    x, y = layer(n=400, d=12, k=4)
    a_s, a_m = layer_tables(x.astype(np.float32), y, center=True, rtol=0.01, method="svd")
    b_s, b_m = layer_tables(x.astype(np.float32), y, center=True, rtol=0.01, method="gram", chunk_rows=33)
    pd.testing.assert_frame_equal(a_s[["group", "class", "index"]], b_s[["group", "class", "index"]])
    np.testing.assert_allclose(b_s["singular_value"], a_s["singular_value"],
                               atol=1e-7 * a_s["singular_value"].max())
    pd.testing.assert_frame_equal(a_m[["group", "class", "metric"]], b_m[["group", "class", "metric"]])
    np.testing.assert_allclose(b_m["value"], a_m["value"], rtol=1e-6)


def write_bare(root, x, y):
    """A features directory as another framework would write it: manifest and arrays only."""
    (root / "features" / "train" / "epoch0001").mkdir(parents=True)
    np.save(root / "features/train/labels.npy", y.astype(np.int64))
    np.save(root / "features/train/epoch0001/emb.npy", x)
    manifest = {"format": 1,
                "entries": [{"split": "train", "epoch": 1, "layer": "emb",
                             "path": "features/train/epoch0001/emb.npy", "shape": list(x.shape),
                             "dtype": str(x.dtype),
                             "sha256": sha256_file(root / "features/train/epoch0001/emb.npy")}],
                "labels": {"train": "features/train/labels.npy"},
                "labels_sha256": {"train": sha256_file(root / "features/train/labels.npy")}}
    (root / "features/manifest.json").write_text(json.dumps(manifest))


def test_bare_float16_directory_streams_from_a_memory_map(tmp_path, monkeypatch):
    import repflat.analysis.spectra as S

    x, y = layer(n=300, d=10, k=5)
    write_bare(tmp_path, x.astype(np.float16), y)
    runs, _, _ = collect_runs([tmp_path])
    in_memory_s, in_memory_m = analyze_features(runs)
    seen = []
    real = S.gram_statistics
    monkeypatch.setattr(S, "SVD_MAX_VALUES", 100)   # every array above the rule: stream
    monkeypatch.setattr(S, "gram_statistics", lambda f, *a, **k: seen.append(type(f)) or real(f, *a, **k))
    streamed_s, streamed_m = analyze_features(runs)
    assert seen == [np.memmap]
    assert set(streamed_m["strategy"]) == {"unknown"} and streamed_m["seed"].isna().all()
    assert {"nc1", "rankme", "participation_ratio"} <= set(streamed_m["metric"])
    np.testing.assert_allclose(streamed_s["singular_value"], in_memory_s["singular_value"],
                               atol=1e-7 * in_memory_s["singular_value"].max())
    np.testing.assert_allclose(streamed_m["value"], in_memory_m["value"], rtol=1e-6)
    summary = summarize(streamed_m)
    assert summary.set_index("metric").loc["nc1", "mean"] == pytest.approx(M.nc1(x.astype(np.float16), y))


def test_bad_features_are_refused_naming_the_array_and_nothing_is_written(tmp_path):
    from repflat.analysis.report.outputs import analyze

    x, y = layer(n=40, d=3, k=2)
    x[17, 1] = np.nan
    w = FeatureWriter(tmp_path / "run")
    w.add_labels("train", y)
    w.add("train", 2, "fc1", x.astype(np.float32))
    out = tmp_path / "out"
    with pytest.raises(UserError, match=r"features run/train/2/fc1: expected finite values, "
                                        r"got NaN or Inf in row 17"):
        analyze([tmp_path / "run"], out)
    assert not out.exists()


def test_cli_scaled_flag_reaches_the_settings():
    from repflat.cli.commands import analysis_overrides
    from repflat.cli.parser import build_parser

    args = build_parser().parse_args(["analyze", "r", "--out", "o", "--scaled"])
    assert analysis_overrides(args) == {"scale": True}
    assert AnalysisConfig().scale is False
