"""Directories someone else made, round three (issue 20): names and numbers that break
the report, and side effects outside.

The run directories here are built by hand to docs/run-directory.md's format 1 (a manifest, its arrays
and their checksums; `hand_made`), as an outside tool or a hostile sender would write
them, so nothing of repflat's writer checks the names on the way in. Refusals are
checked as the bad-input matrix checks its own (`run_case`: exit 2, one line, no
traceback, nothing added or changed); handled cases are followed from `analyze` through
the tables to `report`.
"""
from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from repflat.cli import main
from repflat.errors import UserError
from repflat.files import sha256_file
from tests.test_bad_input import Case, run_case

ROOT = Path(__file__).resolve().parents[1]
MISSING_WORDS = ("NA", "nan", "null", "None", "NaN")  # pandas reads each as a missing value
FORMULA_LEADS = ("=", "+", "-", "@", "\t", "\r")


def hand_made(root: Path, *, name: str = "feats", layer: str = "h", split: str = "train",
              class_names: list[str] | None = None, arm: str | None = None,
              x: np.ndarray | None = None, y: np.ndarray | None = None,
              extra_entries: list[dict] = ()) -> Path:
    """A run directory written by hand to format 1: features/manifest.json naming one
    array of `layer` for `split` at epoch 1, its labels, optional class names, and an
    extract.yaml giving the arm when `arm` is given."""
    run = root / name
    (run / "features/arrays").mkdir(parents=True)
    x = np.random.default_rng(0).normal(size=(20, 3)).astype(np.float32) if x is None else x
    y = np.arange(len(x)) % 2 if y is None else y
    np.save(run / "features/arrays/x.npy", x)
    np.save(run / "features/arrays/y.npy", y)
    entry = {"split": split, "epoch": 1, "layer": layer, "path": "features/arrays/x.npy",
             "shape": list(x.shape), "dtype": str(x.dtype),
             "sha256": sha256_file(run / "features/arrays/x.npy")}
    manifest = {"format": 1, "entries": [entry, *extra_entries],
                "labels": {split: "features/arrays/y.npy"},
                "labels_sha256": {split: sha256_file(run / "features/arrays/y.npy")}, "splits": {}}
    if class_names is not None:
        manifest["class_names"] = class_names
    (run / "features/manifest.json").write_text(json.dumps(manifest))
    if arm is not None:
        (run / "extract.yaml").write_text(yaml.safe_dump({"arm": arm}))
    return run


def _analyze(run: Path, out: Path, *more: str) -> list[str]:
    return ["analyze", str(run), "--out", str(out), "--quiet", "--figures", "none", *more]


# ---------------------------------------------------------------- 1. words pandas reads as missing

@pytest.mark.parametrize("word", MISSING_WORDS)
def test_missing_value_words_stay_names_from_analyze_to_report(tmp_path, word):
    """A layer, an arm and a class called NA (or nan, null, None, NaN; a class n/a) are
    names: the tables keep them as text, and the report of the analysis reads them back."""
    from repflat.analysis.pipeline import load

    run = hand_made(tmp_path, layer=word, arm=word, class_names=[word, "n/a"])
    an = tmp_path / "an"
    assert main(_analyze(run, an)) == 0
    assert main(["report", str(an), "--quiet", "--figures", "none"]) == 0
    analysis = load(an)
    for frame in (analysis.flat, analysis.spectra, analysis.summary):
        assert set(frame["layer"]) == {word}
        assert set(frame["arm"]) == {word}
    named = analysis.flat.dropna(subset=["class"])
    assert set(named["class_name"]) == {word, "n/a"}
    assert f">{word}<" in (an / "report.html").read_text()


# ---------------------------------------------------------------- 2. control characters, length

def _bad_manifest_name(field: str, value: str):
    def build(root: Path) -> list[str]:
        parts = {"layer": {"layer": value}, "split": {"split": value},
                 "class": {"class_names": [value, "b"]}}[field]
        return _analyze(hand_made(root, **parts), root / "out")
    return build


def _bad_dirname(root: Path) -> list[str]:
    return _analyze(hand_made(root, name="run\x1b[2J"), root / "out")


REFUSED = [
    Case("layer name with NUL", _bad_manifest_name("layer", "h\x00"), "layer"),
    Case("layer name with a terminal escape", _bad_manifest_name("layer", "h\x1b[31m"), "layer"),
    Case("split name with a terminal escape", _bad_manifest_name("split", "train\x1b]0;x\x07"), "split"),
    Case("class name with a terminal escape", _bad_manifest_name("class", "cat\x1b[2J"), "class_names"),
    Case("class name with a C1 control (CSI)", _bad_manifest_name("class", "cat\x9b2J"), "class_names"),
    Case("class name with a bidi override", _bad_manifest_name("class", "cat\u202egnp.exe"), "class_names"),
    Case("layer name of a million characters", _bad_manifest_name("layer", "h" * 1_000_000),
         "1 to 100 characters"),
    Case("class name of 300 characters", _bad_manifest_name("class", "c" * 300), "class_names"),
    Case("layer name over the file system's limit", _bad_manifest_name("layer", "h" * 300),
         "1 to 100 characters"),
    Case("run directory named with a terminal escape", _bad_dirname, "control characters"),
]


def _received_analysis(table: str, column: str, name: str):
    """An analysis directory whose `table` was edited by hand: `column` says `name`."""
    def build(root: Path) -> list[str]:
        assert main(_analyze(hand_made(root), root / "an")) == 0
        path = root / "an" / table
        frame = pd.read_csv(path)
        frame[column] = name
        path.write_text(frame.to_csv(index=False))
        return ["report", str(root / "an"), "--quiet", "--figures", "none"]
    return build


def _received_record(root: Path) -> list[str]:
    assert main(_analyze(hand_made(root), root / "an")) == 0
    record = json.loads((root / "an/analysis.json").read_text())
    (root / "an/analysis.json").write_text(json.dumps(record | {"name": "an\x1b[2J"}))
    return ["report", str(root / "an"), "--quiet", "--figures", "none"]


REFUSED += [
    Case("analysis table with an escape in a layer name",
         _received_analysis("flattening.csv", "layer", "h\x1b[2J"), "column layer"),
    Case("analysis table with an escape in an arm name",
         _received_analysis("summary.csv", "arm", "erm\x1b]0;x\x07"), "column arm"),
    Case("analysis record whose name holds an escape", _received_record, "name"),
]


@pytest.mark.parametrize("case", REFUSED, ids=[c.name for c in REFUSED])
def test_names_refused_in_one_line(tmp_path, capsys, case):
    run_case(case, tmp_path, capsys)


def test_arm_with_control_characters_never_reaches_the_report(tmp_path):
    """extract.yaml's arm goes through the same check; one it refuses is not used (the
    directory's name stands for the run, as for any unreadable extract.yaml)."""
    run = hand_made(tmp_path, arm="erm\x1b[2J\x00")
    assert main(_analyze(run, tmp_path / "an")) == 0
    for page in ("report.html", "report.md", "flattening.csv", "summary.csv"):
        text = (tmp_path / "an" / page).read_text()
        assert "\x1b" not in text and "\x00" not in text, page
        assert "feats" in text, page


def test_one_name_check_for_every_kind_of_name():
    from repflat.safenames import safe_label, safe_name

    for bad in ("", "a\x00", "a\x1b", "a\x85", "a\u2028b", "a\u202eb", "x" * 201):
        with pytest.raises(UserError):
            safe_label(bad, "class_names")
    assert safe_label("T-shirt/top", "class_names") == "T-shirt/top"  # a class may hold '/'
    with pytest.raises(UserError):
        safe_name("T-shirt/top", "layer")  # a layer, arm or split is one path component
    for bad in ("x" * 101, ".h", "a\u202eb"):
        with pytest.raises(UserError):
            safe_name(bad, "layer")


# ---------------------------------------------------------------- 3. CSV formula injection

FORMULAS = ["=HYPERLINK(\"http://x\")", "+1+1", "-2+3", "@SUM(1)", "'quoted"]


def _cells(path: Path) -> list[str]:
    return [cell for row in csv.reader(io.StringIO(path.read_text())) for cell in row]


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def test_formula_names_are_neutralised_in_every_table_and_read_back(tmp_path):
    from repflat.analysis.pipeline import TABLES, load

    run = hand_made(tmp_path, layer="=cmd|calc!A0", arm="@arm", class_names=FORMULAS[:2])
    an = tmp_path / "an"
    assert main(_analyze(run, an)) == 0
    for table in TABLES:
        if (an / table).stat().st_size:
            risky = [c for c in _cells(an / table)
                     if c[:1] in FORMULA_LEADS and not _is_number(c)]
            assert not risky, (table, risky[:3])
    assert "'=cmd|calc!A0" in _cells(an / "flattening.csv")
    analysis = load(an)
    assert set(analysis.flat["layer"]) == {"=cmd|calc!A0"}
    assert set(analysis.flat["arm"]) == {"@arm"}
    assert set(analysis.flat.dropna(subset=["class"])["class_name"]) == set(FORMULAS[:2])
    assert main(["report", str(an), "--quiet", "--figures", "none"]) == 0
    page = (an / "report.html").read_text()
    assert "=cmd|calc!A0" in page and "'=cmd" not in page and "&#39;=cmd" not in page


def test_neutralising_leaves_numbers_alone_and_round_trips(tmp_path):
    from repflat.analysis.pipeline import read_table, write_csv

    frame = pd.DataFrame({"layer": FORMULAS + ["plain"], "value": [-1.5, 2.0, -3e-9, 4.0, -0.0, 6.0],
                          "epoch": [-1, 2, 3, 4, 5, 6],
                          "arm": pd.Categorical(["-a", "b"] * 3, categories=["b", "-a"])})
    write_csv(tmp_path / "t.csv", frame)
    cells = _cells(tmp_path / "t.csv")
    assert "-1.5" in cells and "-3e-09" in cells and "-1" in cells  # numbers stay numbers
    assert "'-2+3" in cells and "''quoted" in cells
    back = read_table(tmp_path / "t.csv", "paths")
    assert back["layer"].tolist() == frame["layer"].tolist()
    assert back["value"].tolist() == frame["value"].tolist()
    assert back["epoch"].tolist() == frame["epoch"].tolist()
    assert back["arm"].tolist() == frame["arm"].tolist()  # categorical (an arm order) too
    assert "'-a" in cells


# ---------------------------------------------------------------- 4. numbers at the edges

def test_labels_past_int64_refused_in_one_line(tmp_path, capsys):
    y = (np.arange(20) % 2).astype(np.uint64)
    y[0] = np.iinfo(np.uint64).max
    run_case(Case("labels at uint64's maximum",
                  lambda r: _analyze(hand_made(r, y=y), r / "out"), "labels"), tmp_path, capsys)


def test_features_whose_powers_overflow_refused_in_one_line(tmp_path, capsys):
    x = np.random.default_rng(0).normal(size=(20, 3)) * 1e160
    run_case(Case("float64 features near 1e160",
                  lambda r: _analyze(hand_made(r, x=x), r / "out"), "too large"), tmp_path, capsys)


@pytest.mark.parametrize("method", ["svd", "gram"])
def test_large_features_refused_or_exact(method):
    """Below the bound the spectrum is exact (against numpy's SVD of a scaled copy); at
    1e160 (finite, but σ⁴ overflows float64) it is refused, never a silent 0."""
    from repflat.analysis.spectra import layer_statistics

    x = np.random.default_rng(1).normal(size=(40, 5))
    y = np.arange(40) % 2
    for scale in (1e-30, 1e40):
        stats = layer_statistics(x * scale, y, method=method)
        xk = x[y == 0]
        want = np.linalg.svd(xk - xk.mean(axis=0), compute_uv=False) * scale
        np.testing.assert_allclose(stats.spectra[0], want, rtol=1e-7)
    with pytest.raises(UserError, match="too large"):
        layer_statistics(x * 1e160, y, method=method)


# ---------------------------------------------------------------- 5. duplicates

def test_contradicting_manifest_entries_refused(tmp_path, capsys):
    def build(root: Path) -> list[str]:
        run = hand_made(root)
        # a second, valid array for the same (split, epoch, layer): which one is "h"?
        np.save(run / "features/arrays/x2.npy", np.ones((20, 3), np.float32))
        manifest = json.loads((run / "features/manifest.json").read_text())
        manifest["entries"].append({**manifest["entries"][0], "path": "features/arrays/x2.npy",
                                    "sha256": sha256_file(run / "features/arrays/x2.npy")})
        (run / "features/manifest.json").write_text(json.dumps(manifest))
        return _analyze(run, root / "out")
    run_case(Case("two different arrays for one layer", build, "train/1/h"), tmp_path, capsys)


def test_contradicting_json_keys_refused(tmp_path, capsys):
    def build(root: Path) -> list[str]:
        run = hand_made(root)
        path = run / "features/manifest.json"
        # {"train": "000…", "train": "<the real one>"}: json.loads keeps the last
        path.write_text(path.read_text().replace(
            '"labels_sha256": {', '"labels_sha256": {"train": "' + "0" * 64 + '", ', 1))
        return _analyze(run, root / "out")
    run_case(Case("a manifest key given twice with two values", build, "duplicate key"),
             tmp_path, capsys)


def test_identical_duplicate_entry_is_one_entry(tmp_path):
    run = hand_made(tmp_path)
    manifest = json.loads((run / "features/manifest.json").read_text())
    manifest["entries"] *= 2
    (run / "features/manifest.json").write_text(json.dumps(manifest))
    from repflat.rundir.features import Features
    assert len(Features(run).entries) == 1


def test_same_run_twice_refused(tmp_path, capsys):
    def build(root: Path) -> list[str]:
        run = hand_made(root)
        os.symlink(run, root / "again")
        return ["analyze", str(run), str(root / "again"), "--out", str(root / "out"), "--quiet"]
    run_case(Case("one run given twice, once through a link", build, "given twice"),
             tmp_path, capsys)


# ---------------------------------------------------------------- 6. side effects outside

def test_cli_writes_nothing_into_home_and_says_no_library_warnings(tmp_path):
    """matplotlib's cache and config go to a private temporary directory, not $HOME; its
    warnings (a glyph the font lacks, a layout that does not fit) do not reach stderr."""
    home = tmp_path / "home"
    home.mkdir()
    run = hand_made(tmp_path, layer="layer-" + "x" * 90, arm="arm-" + "y" * 90,
                    class_names=["猫 " * 30, "犬 " * 30])
    env = {k: v for k, v in os.environ.items()
           if k not in ("MPLCONFIGDIR", "XDG_CONFIG_HOME", "XDG_CACHE_HOME", "PYTHONWARNINGS")}
    env |= {"HOME": str(home), "PYTHONPATH": str(ROOT)}
    for argv in (["analyze", str(run), "--out", str(tmp_path / "an")],
                 ["report", str(tmp_path / "an"), "--embeddings", "pca"]):
        done = subprocess.run([sys.executable, "-m", "repflat", *argv], env=env, cwd=tmp_path,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        assert "warning" not in done.stderr.lower(), done.stderr
        assert list(home.iterdir()) == [], sorted(p.name for p in home.rglob("*"))
    assert any(tmp_path.joinpath("an").glob("*.png"))  # figures were drawn


def test_json_key_repeated_with_the_same_value_reads_as_one():
    """Only a contradiction is refused: a repeated key with one value, and NaN (which is
    not equal to itself), read as before."""
    from repflat.files import parse_json

    got = parse_json('{"a": NaN, "b": [{"c": 2, "c": 2}]}', "manifest", "m.json")
    assert np.isnan(got["a"]) and got["b"] == [{"c": 2}]
    with pytest.raises(UserError, match="duplicate key 'c'"):
        parse_json('{"c": 2, "c": 3}', "manifest", "m.json")


def test_a_run_given_as_dot_is_still_analysed(tmp_path, monkeypatch):
    """`analyze .` inside a run: the run is named by the directory it is (it was named
    '', which the tables wrote as an empty cell and `report` read back as NaN, the
    "'float' object has no attribute 'lower'" crash), and the name check sees that name."""
    run = hand_made(tmp_path)
    monkeypatch.chdir(run)
    assert main(["analyze", ".", "--out", str(tmp_path / "an"), "--quiet", "--figures", "none"]) == 0
    assert main(["report", str(tmp_path / "an"), "--quiet", "--figures", "none"]) == 0
