"""Your own points (`data: {name: arrays}` and `{name: csv}`): good files train, every bad
file is one line on stderr, exit 2, and nothing written (the bad-input matrix's checks)."""
from __future__ import annotations

import numpy as np
import pytest
import yaml

from repflat.cli import main
from repflat.config import load_experiment, load_run_config
from repflat.base.data import load_data
from repflat.base.data import points
from tests.test_bad_input import Case, run_case

RUN = {"model": {"widths": [8], "bottleneck": None, "widths_after": []},
       "train": {"epochs": 1, "batch_size": 16},
       "capture": {"layers": ["fc1"], "grid_resolution": 4, "uniform_samples": 4}}
rng = np.random.default_rng(0)
X, Y = rng.normal(size=(40, 2)), np.repeat([0, 1], 20)


def npz(**arrays):
    return {"x": X, "y": Y} | arrays


def experiment(root, data: dict) -> list[str]:
    """A one-arm experiment in root/cfg/ whose data file lies beside it (relative path)."""
    (root / "cfg").mkdir(exist_ok=True)
    spec = {"name": "p", "seeds": [0], "base": RUN | {"data": data}, "arms": {"erm": {}}}
    (root / "cfg/e.yaml").write_text(yaml.safe_dump(spec))
    return ["run", str(root / "cfg/e.yaml"), "--out", str(root / "out"), "--quiet"]


def npz_case(name: str, fragment: str, write) -> Case:
    def build(root):
        (root / "cfg").mkdir()
        write(root / "cfg/points.npz")
        return experiment(root, {"name": "arrays", "path": "points.npz"})
    return Case(name, build, fragment)


def saved(**arrays):
    return lambda path: np.savez(path, **arrays)


def csv_case(name: str, fragment: str, text: str, **fields) -> Case:
    def build(root):
        (root / "cfg").mkdir()
        (root / "cfg/points.csv").write_text(text)
        return experiment(root, {"name": "csv", "path": "points.csv", **fields})
    return Case(name, build, fragment)


GOOD_CSV = "a,b,label\n" + "\n".join(f"{x0},{x1},{y}" for (x0, x1), y in zip(X, Y)) + "\n"

CASES = [
    Case("npz missing", lambda root: experiment(root, {"name": "arrays", "path": "nope.npz"}),
         "expected an existing file"),
    npz_case("npz not a zip", "a NumPy .npz file", lambda p: p.write_bytes(b"not a zip at all")),
    npz_case("npz pickled object array", "cannot be read without pickles",
             saved(x=np.array([[1.0, 2.0], None], dtype=object), y=Y)),
    npz_case("npz x one-dimensional", "shape (n_samples, n_features)", saved(x=X[:, 0], y=Y)),
    npz_case("npz x with nan", "finite values", saved(x=np.where(X > 2, np.nan, X), y=Y)),
    npz_case("npz x with inf", "finite values", saved(x=np.where(X > 2, np.inf, X), y=Y)),
    npz_case("npz x of strings", "numbers", saved(x=X.astype(str), y=Y)),
    npz_case("npz float labels", "integer labels", saved(x=X, y=Y.astype(float))),
    npz_case("npz label count", "one label per row", saved(x=X, y=Y[:-1])),
    npz_case("npz one class", "at least two classes", saved(x=X, y=np.zeros(40, int))),
    npz_case("npz negative label", "labels >= 0", saved(x=X, y=Y - 1)),
    npz_case("npz class missing", "each present", saved(x=X, y=Y * 2)),
    npz_case("npz no y", "has no array 'y'", saved(x=X)),
    npz_case("npz unknown array", "expected only x, y", saved(x=X, y=Y, X_test=X)),
    npz_case("npz x_test alone", "come together", saved(**npz(x_test=X))),
    npz_case("npz x_test width", "rows of 2 features", saved(**npz(x_test=X[:, :1], y_test=Y))),
    npz_case("npz y_test unknown class", "labels of the training classes",
             saved(**npz(x_test=X, y_test=Y + 1))),
    npz_case("npz class_names count", "2 distinct non-empty strings",
             saved(**npz(class_names=np.array(["a", "b", "c"])))),
    npz_case("npz class_names not strings", "2 distinct non-empty strings",
             saved(**npz(class_names=np.array([1, 2])))),
    csv_case("csv missing column", "has no column 'a'", GOOD_CSV.replace("a,b", "u,b", 1),
             features=["a", "b"]),
    csv_case("csv text feature", "a number in every row", GOOD_CSV.replace("\n", "\nhello,1,0\n", 1),
             features=["a", "b"]),
    csv_case("csv blank feature", "a number in every row", GOOD_CSV.replace("\n", "\n,1,0\n", 1),
             features=["a", "b"]),
    csv_case("csv inf feature", "finite values", GOOD_CSV.replace("\n", "\ninf,1,0\n", 1),
             features=["a", "b"]),
    csv_case("csv float labels", "integer labels", GOOD_CSV.replace("\n", "\n1,1,0.5\n", 1),
             features=["a", "b"]),
    csv_case("csv one class", "at least two classes",
             "a,b,label\n" + "".join(f"{i},{i},0\n" for i in range(9)), features=["a", "b"]),
    csv_case("csv empty", "not a readable CSV table", "", features=["a", "b"]),
    Case("csv same column twice", lambda root: experiment(
        root, {"name": "csv", "path": "p.csv", "features": ["a", "a"]}), "two distinct column names"),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_points_file(tmp_path, capsys, case):
    run_case(case, tmp_path, capsys)


def test_bad_points_file_refused_by_train_too(tmp_path, capsys):
    def build(root):
        np.savez(root / "points.npz", x=X, y=Y.astype(float))
        (root / "run.yaml").write_text(yaml.safe_dump(RUN | {"data": {"name": "arrays", "path": "points.npz"}}))
        return ["train", str(root / "run.yaml"), "--out", str(root / "out")]
    run_case(Case("train float labels", build, "integer labels"), tmp_path, capsys)


@pytest.mark.parametrize("what", ["file", "unpacked"])
def test_points_files_are_bounded(tmp_path, monkeypatch, capsys, what):
    big = rng.normal(size=(4000, 2))
    (tmp_path / "cfg").mkdir()
    np.savez_compressed(tmp_path / "cfg/points.npz", x=np.zeros((4000, 2)) if what == "unpacked" else big,
                        y=np.repeat([0, 1], 2000))
    size = (tmp_path / "cfg/points.npz").stat().st_size
    assert (size < 20_000) == (what == "unpacked")  # zeros pack small: the unpacked bound acts
    monkeypatch.setattr(points, "POINTS_LIMIT", 20_000)
    code = main(experiment(tmp_path, {"name": "arrays", "path": "points.npz"}))
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert ("unpacks to" if what == "unpacked" else "more than the 20,000") in err[0]
    assert not (tmp_path / "out").exists()


def test_good_npz_with_test_split_and_class_names(tmp_path):
    (tmp_path / "cfg").mkdir()
    np.savez(tmp_path / "cfg/points.npz", x=X, y=Y, x_test=X[:10] + 5, y_test=Y[:10],
             class_names=np.array(["cat", "dog"]))
    experiment(tmp_path, {"name": "arrays", "path": "points.npz"})
    run = load_experiment(tmp_path / "cfg/e.yaml").runs[0]
    assert run.data.path == str(tmp_path / "cfg/points.npz")  # relative to the config
    data = load_data(run.data)
    np.testing.assert_allclose(data.arrays["train"], X.astype(np.float32))
    np.testing.assert_allclose(data.arrays["test"], X[:10].astype(np.float32) + 5)
    assert data.class_names == ("cat", "dog") and data.n_classes == 2


def test_good_csv_trains_from_another_directory(tmp_path, monkeypatch, capsys):
    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg/points.csv").write_text(GOOD_CSV)
    argv = experiment(tmp_path, {"name": "csv", "path": "points.csv", "features": ["b", "a"]})
    monkeypatch.chdir(tmp_path)  # the path resolves against the config, not the cwd
    run = load_run_config(tmp_path / "cfg/e.yaml")
    data = load_data(run.data)
    assert np.bincount(data.labels["train"]).tolist() == [10, 10]
    rows = np.concatenate([data.arrays["train"], data.arrays["test"]])
    assert sorted(map(tuple, rows.tolist())) == sorted(map(tuple, X[:, ::-1].astype(np.float32).tolist()))
    assert main(argv + ["--no-analysis"]) == 0
    assert (tmp_path / "out/runs/erm-seed0/config.yaml").is_file()


def test_csv_test_path_is_the_test_split(tmp_path):
    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg/train.csv").write_text(GOOD_CSV)
    test_csv = "a,b,label\n1.5,2.5,1\n-1,0,0\n"
    (tmp_path / "cfg/test.csv").write_text(test_csv)
    experiment(tmp_path, {"name": "csv", "path": "train.csv", "test_path": "test.csv", "features": ["a", "b"]})
    data = load_data(load_experiment(tmp_path / "cfg/e.yaml").runs[0].data)
    assert len(data.labels["train"]) == 40  # every row of the training file
    np.testing.assert_array_equal(data.arrays["test"], np.array([[1.5, 2.5], [-1, 0]], np.float32))
    np.testing.assert_array_equal(data.labels["test"], [1, 0])
