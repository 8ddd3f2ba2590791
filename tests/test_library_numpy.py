"""The analysis side as a library: the curated API, array-likes in, tidy typed frames out,
figures that leave a notebook's matplotlib state alone, and older tables still read."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import repflat.analysis as ra
from repflat.analysis.inputs import as_features, as_labels
from repflat.analysis.tidy import typed_columns
from repflat.errors import UserError
from repflat.rundir.features import MemoryFeatures

NAMES = ["circle", "square", "triangle"]


def blobs(n_per_class=20, d=5, k=3, seed=0):
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(k), n_per_class)
    return (rng.normal(size=(len(y), d)) + 3 * rng.normal(size=(k, d))[y]).astype(np.float32), y


def memory_features(seed=0, names=NAMES):
    x, y = blobs(seed=seed)
    return MemoryFeatures({("train", 2, "fc1"): x, ("train", 2, "narrow"): x[:, :3]},
                          {"train": y}, class_names=names)


def same_spectra(a: dict, b: dict) -> None:
    assert list(a) == list(b)
    for k in b:
        np.testing.assert_allclose(a[k], b[k], rtol=1e-12)


# ---------------------------------------------------------------- the curated API

API = ["class_spectra", "layer_statistics", "singular_values", "effective_rank", "rankme",
       "participation_ratio", "stable_rank", "numerical_rank", "residual_variance_share",
       "theory_dimension", "nc1", "within_between_ratio", "largest_singular_value",
       "sum_other_singular_values", "variance_share", "flattening_frame", "layer_tables",
       "compute", "analyze"]


def test_the_curated_api_is_listed_documented_and_imports_no_torch():
    assert set(API) <= set(ra.__all__)
    assert "import repflat.analysis as ra" in ra.__doc__ and "compute" in ra.__doc__
    code = textwrap.dedent(f"""
        import sys
        import repflat.analysis as ra
        assert "matplotlib.pyplot" not in sys.modules  # the report layer loads on use
        for name in ra.__all__:
            obj = getattr(ra, name)
            assert obj.__doc__ and len(obj.__doc__) > 20, name
        assert ra.analyze.__module__ == "repflat.analysis.report.outputs"
        assert "analyze" in dir(ra)
        loaded = [m for m in ("torch", "torchvision") if m in sys.modules]
        assert not loaded, loaded
        assert sorted(ra.__all__) == sorted(set(ra.__all__))
        assert set({API!r}) <= set(ra.__all__)
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        ra.nope  # noqa: B018


# ---------------------------------------------------------------- array-likes in

def test_a_cpu_torch_tensor_gives_the_numpy_result():
    torch = pytest.importorskip("torch")
    x, y = blobs()
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)
    same_spectra(ra.class_spectra(tx, ty), ra.class_spectra(x, y))
    same_spectra(ra.class_spectra(tx, y, method="gram"), ra.class_spectra(x, y, method="gram"))
    np.testing.assert_allclose(ra.singular_values(tx), ra.singular_values(x))
    assert ra.nc1(tx, ty) == pytest.approx(ra.nc1(x, y), rel=1e-12)
    s = torch.tensor(ra.class_spectra(x, y)[0])
    assert ra.effective_rank(s) == pytest.approx(ra.effective_rank(s.numpy()))
    pd.testing.assert_frame_equal(ra.flattening_frame(tx, ty), ra.flattening_frame(x, y))


def test_a_tensor_that_requires_grad_is_detached():
    torch = pytest.importorskip("torch")
    x, y = blobs()
    tx = torch.from_numpy(x).clone().requires_grad_(True)
    same_spectra(ra.class_spectra(tx * 1.0, y), ra.class_spectra(x, y))  # a non-leaf too
    assert ra.within_between_ratio(tx, torch.from_numpy(y)) == pytest.approx(
        ra.within_between_ratio(x, y), rel=1e-12)
    assert tx.grad is None


def test_lists_work_and_a_ragged_list_is_a_clear_error():
    x, y = blobs()
    same_spectra(ra.class_spectra(x.tolist(), y.tolist()), ra.class_spectra(x, y))
    assert ra.stable_rank([2.0, 1.0]) == pytest.approx(1.25)
    with pytest.raises(UserError, match=r"^features: expected an array-like of numbers"):
        ra.class_spectra([[1.0, 2.0], [3.0]], [0, 0])
    with pytest.raises(UserError, match=r"^s: expected a 1-D spectrum"):
        ra.effective_rank(np.ones((2, 2)))


class FakeCudaTensor:
    """What a CUDA tensor shows to code that does not import torch."""

    class device:  # noqa: N801 (mimics torch.device's attribute)
        type = "cuda"

    shape = (60, 5)
    dtype = "torch.float32"

    def detach(self):
        return self

    def __array__(self, *args, **kwargs):
        raise AssertionError("a CUDA tensor must not be copied to the host behind the user's back")


def test_a_tensor_on_an_accelerator_is_refused_with_a_hint():
    x, y = blobs()
    for call in (lambda: ra.class_spectra(FakeCudaTensor(), y),
                 lambda: ra.singular_values(FakeCudaTensor()),
                 lambda: ra.flattening_frame(FakeCudaTensor(), y)):
        with pytest.raises(UserError, match=r"^features: expected an array in CPU memory, got a "
                                            r"tensor on cuda; call \.cpu\(\)"):
            call()
    with pytest.raises(UserError, match=r"^labels: expected an array in CPU memory"):
        ra.class_spectra(x, FakeCudaTensor())


def test_a_memmap_stays_memory_mapped(tmp_path, monkeypatch):
    import repflat.analysis.spectra as S

    x, y = blobs()
    np.save(tmp_path / "x.npy", x)
    mapped = np.load(tmp_path / "x.npy", mmap_mode="r")
    assert as_features(mapped) is mapped and as_labels(y) is y
    seen = []
    real = S.gram_statistics
    monkeypatch.setattr(S, "gram_statistics", lambda f, *a, **k: seen.append(type(f)) or real(f, *a, **k))
    same_spectra(ra.class_spectra(mapped, list(y), method="gram"), ra.class_spectra(x, y, method="svd"))
    assert seen == [np.memmap]


# ---------------------------------------------------------------- typed tidy frames

def test_frames_have_numeric_class_and_seed_columns_and_class_names():
    fs = memory_features()
    result = ra.compute(fs)
    for frame in (result.flat, result.spectra):
        assert str(frame["class"].dtype) == "Int64" and str(frame["seed"].dtype) == "Int64"
        assert frame["seed"].isna().all()  # features in memory say no seed
        one = frame[frame["group"] == "class"]
        assert one["class"].notna().all() and frame.loc[frame["group"] != "class", "class"].isna().all()
        assert dict(zip(one["class"], one["class_name"])) == dict(enumerate(NAMES))
        assert frame.loc[frame["group"] != "class", "class_name"].isna().all()
    flat = result.flat
    assert set(flat["group"]) == {"class", "pooled", "mean", "all"}
    # plain pandas on the frame: a number selects a class, the mean over classes is a groupby
    sq = flat[(flat["class"] == 1) & (flat["metric"] == "effective_rank") & (flat["layer"] == "fc1")]
    assert sq["class_name"].tolist() == ["square"]
    x, y = blobs()
    assert sq["value"].item() == pytest.approx(ra.effective_rank(ra.class_spectra(x, y)[1]))
    per_class = flat[flat["metric"] == "largest_singular_value"].groupby("class")["value"].mean()
    assert list(per_class.index) == [0, 1, 2]
    # a frame without names labels each class by its number, as text
    plain = ra.flattening_frame(x, y)
    assert set(plain["class_name"].dropna()) == {"0", "1", "2"}
    assert ra.flattening_frame(x, y, class_names=NAMES)["class_name"].dropna().unique().tolist() == NAMES


def test_compute_on_memory_features_writes_nothing_and_matches_the_layer_tables(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    a, b = memory_features(0), memory_features(1)
    result = ra.compute({"erm": a, "mixup": b}, overrides={"layers": ("fc1",)})
    assert list(tmp_path.iterdir()) == []
    assert "2 runs" in repr(result) and "fc1" in repr(result)
    assert set(result.flat["arm"]) == {"erm", "mixup"} and set(result.flat["layer"]) == {"fc1"}
    assert result.training.empty
    x, y = blobs(seed=1)
    expect = ra.flattening_frame(x, y, class_names=NAMES)
    got = result.flat[result.flat["run"] == "mixup"].reset_index(drop=True)
    pd.testing.assert_frame_equal(got[expect.columns], expect)
    summary = result.summary.set_index(["arm", "metric"])
    assert summary.loc[("mixup", "nc1"), "mean"] == pytest.approx(ra.nc1(x, y))
    with pytest.raises(UserError, match="two runs share the name 'in memory'"):
        ra.compute([a, b])
    with pytest.raises(UserError, match="paths: expected a mapping of names to FeatureSet"):
        ra.compute({"erm": blobs()[0]})


def test_class_names_reach_the_report(tmp_path):
    from repflat.analysis.report.build import ReportOptions

    written = ra.analyze({"erm": memory_features(0), "manifold_mixup": memory_features(1)},
                         tmp_path / "out", options=ReportOptions(embeddings=("pca",)))
    names = {p.name for p in written}
    assert {"report.html", "report.md", "spectra.png", "embeddings.png", "flattening.csv"} <= names
    md = (tmp_path / "out" / "report.md").read_text()
    # Corollary 1 at the 3-unit layer, class by class: rows named, not numbered
    table = md[md.index("Corollary 1 at narrow"):]
    for name in NAMES:
        assert f"| {name} |" in table
    assert "| 0 |" not in table
    record = json.loads((tmp_path / "out" / "analysis.json").read_text())
    assert record["runs"] == [] and record["in_memory"] == ["erm", "manifold_mixup"]
    flat = pd.read_csv(tmp_path / "out" / "flattening.csv")
    assert flat["class"].dropna().eq(flat["class"].dropna().round()).all()
    assert set(flat["group"]) == {"class", "pooled", "mean", "all"}


def test_figure_titles_and_legends_name_the_classes():
    import matplotlib.pyplot as plt

    from repflat.analysis.embeddings import embed_runs
    from repflat.analysis.report.figures import spectra_figure
    from repflat.analysis.report.plotting.embeddings import plot_embeddings

    result = ra.compute({"erm": memory_features(0)})
    fig = spectra_figure(result.spectra, layers=["fc1"])
    assert [a.get_title() for a in fig.axes[:3]] == [f"fc1: class {n}" for n in NAMES]
    data = embed_runs(result.runs, layer="fc1").data
    assert str(data["class"].dtype) == "Int64" and set(data["class_name"]) == set(NAMES)
    fig2 = plot_embeddings(data)
    assert [t.get_text() for t in fig2.legends[0].get_texts()] == NAMES
    assert fig2.axes[0].get_title() == "erm"  # no seed known: none in the title (issue 12)
    plt.close("all")


# ---------------------------------------------------------------- notebook-safe figures

def test_drawing_every_report_figure_leaves_backend_and_rcparams_untouched(trained_runs, tmp_path):
    """A notebook's backend and rcParams, recorded before repflat.analysis is imported,
    are the same after every report figure is drawn and a whole report is built."""
    runs = [str(p) for p in trained_runs.values()]
    code = textwrap.dedent(f"""
        import matplotlib
        matplotlib.use("svg")                       # stands for the notebook's own backend
        matplotlib.rcParams["font.size"] = 7.5      # and the user's own settings
        matplotlib.rcParams["axes.facecolor"] = "#fafafa"
        backend, before = matplotlib.get_backend(), matplotlib.rcParams.copy()
        import matplotlib.pyplot as plt
        import repflat.analysis as ra
        from repflat.analysis.report import build, figures, toy
        from repflat.analysis.report.plotting import boundary, embeddings, plots, style
        from repflat.analysis.embeddings import embedding_frame
        from pathlib import Path

        result = ra.compute({runs!r}, overrides={{"layers": ("fc1", "bottleneck", "fc2"),
                                                  "epochs": "all"}})
        drawn = [figures.spectra_figure(result.spectra),
                 figures.epochs_figure(result.summary),
                 figures.heatmap_figure(result.summary, "effective_rank"),
                 toy.figure1(result.runs, result.spectra), toy.planes(result.runs),
                 toy.boundaries(result.runs),
                 embeddings.plot_embeddings(embedding_frame(result.runs, layer="fc1"))]
        assert all(f is not None for f in drawn), drawn
        plots.plot_spectrum(result.spectra[result.spectra["group"] == "pooled"])
        out = Path({str(tmp_path / "report")!r})
        out.mkdir()
        files = build.build_report(result, out, build.ReportOptions(embeddings=("pca",)))
        assert {{"figure1.png", "planes.png", "boundaries.png", "spectra.png", "heatmap.png",
                 "epochs.png", "embeddings.png"}} <= {{p.name for p in files}}, files
        plt.close("all")
        assert matplotlib.get_backend() == backend, matplotlib.get_backend()
        after = matplotlib.rcParams.copy()
        changed = sorted(k for k in before if before[k] != after[k])
        assert not changed, [(k, before[k], after[k]) for k in changed]
        print("untouched", backend)
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "untouched svg" in done.stdout


def test_the_library_source_selects_no_backend_and_sets_no_global_theme():
    root = Path(ra.__file__).parent
    for path in root.rglob("*.py"):
        text = path.read_text()
        for call in ("matplotlib.use(", "sns.set_theme(", "sns.set(", "sns.set_style(",
                     "sns.set_context(", "plt.style.use(", "rcParams.update(", "rcParams["):
            assert call not in text, f"{path.relative_to(root)}: {call}"


# ---------------------------------------------------------------- older tables

def as_old_tables(frame: pd.DataFrame) -> pd.DataFrame:
    """A frame as repflat 0.1 wrote it: class as text (label or pooled/mean/all), no
    group or class_name, seed 'unknown' where it was missing."""
    text = frame["class"].astype("string").where(frame["group"] == "class", frame["group"])
    old = frame.drop(columns=["group", "class_name"]).assign(**{"class": text})
    return old.assign(seed=old["seed"].astype("string").fillna("unknown"))


def test_older_text_class_tables_still_report(trained_runs, tmp_path):
    from repflat.analysis.pipeline import load
    from repflat.cli import main

    paths = [trained_runs["none", 0], trained_runs["manifold_mixup", 0]]
    out = tmp_path / "analysis"
    assert main(["analyze", *map(str, paths), "--out", str(out), "--layers", "fc1,bottleneck",
                 "--quiet"]) == 0
    fresh = load(out)
    flat = fresh.flat.assign(seed=fresh.flat["seed"].mask(fresh.flat["run"] == "none-seed0"))
    for name, frame in (("flattening.csv", flat), ("spectra.csv", fresh.spectra)):
        (out / name).write_text(as_old_tables(frame).to_csv(index=False))
    assert "pooled" in set(pd.read_csv(out / "flattening.csv")["class"])  # the old form
    assert main(["report", str(out), "--embeddings", "none", "--quiet"]) == 0
    again = load(out)
    columns = list(fresh.flat.columns)
    pd.testing.assert_frame_equal(again.flat[columns], flat[columns], check_dtype=False)
    assert str(again.flat["class"].dtype) == str(again.flat["seed"].dtype) == "Int64"
    assert again.flat.loc[again.flat["run"] == "none-seed0", "seed"].isna().all()
    assert (out / "report.html").is_file() and "Corollary 1 at bottleneck" in (out / "report.md").read_text()
    pd.testing.assert_frame_equal(again.summary, fresh.summary)


def test_a_class_that_is_not_an_integer_is_refused_naming_the_file():
    old = pd.DataFrame({"class": ["0", "pooled", "x1"], "seed": ["unknown", "3", "3"],
                        "metric": ["m"] * 3, "value": [1.0, 2.0, 3.0]})
    with pytest.raises(UserError, match=r"^paths: t.csv: column 'class' holds 'x1', not an integer"):
        typed_columns(old, "paths: t.csv")
    ok = typed_columns(old.iloc[:2])
    assert ok["group"].tolist() == ["class", "pooled"] and ok["class"].tolist()[0] == 0
    assert ok["class"].isna().tolist() == [False, True] and ok["seed"].isna().tolist() == [True, False]
    assert ok["class_name"].tolist()[0] == "0"
    with pytest.raises(UserError, match="column 'seed' holds '1.5', not an integer"):
        typed_columns(pd.DataFrame({"seed": ["1.5"]}))
