"""The command line end to end on a tiny budget, and its answers to bad input."""
import json
import subprocess
import sys

import pandas as pd
import pytest
import torch
import yaml

from repflat.cli import main
from tests.trees import digest

TINY_EXPERIMENT = {
    "name": "tiny",
    "seeds": [0, 1],
    "base": {
        "data": {"n_per_class": 30},
        "model": {"widths": [8], "bottleneck": 2, "widths_after": [8]},
        "train": {"epochs": 2, "batch_size": 16},
        "capture": {"layers": ["input", "fc1", "bottleneck", "fc2"], "grid_resolution": 6,
                    "uniform_samples": 10},
    },
    "arms": {
        "erm": {"mixing": {"strategy": "none"}},
        "input_mixup": {"mixing": {"strategy": "input_mixup", "alpha": 1.0}},
        "manifold_mixup": {"mixing": {"strategy": "manifold_mixup", "layers": ["fc1", "bottleneck"]}},
    },
    "analysis": {"spectra_layers": ["fc1", "fc2"]},
}


def write_yaml(path, data):
    path.write_text(yaml.safe_dump(data))
    return path



@pytest.fixture(scope="module")
def experiment_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    exp = write_yaml(root / "tiny.yaml", TINY_EXPERIMENT)
    assert main(["run", str(exp), "--out", str(root / "out"), "--quiet"]) == 0
    return root


def test_run_trains_every_arm_and_seed_then_analyses(experiment_dir):
    out = experiment_dir / "out"
    runs = sorted(p.name for p in (out / "runs").iterdir())
    assert runs == [f"{a}-seed{s}" for a in ("erm", "input_mixup", "manifold_mixup") for s in (0, 1)]
    for name in ("spectra.csv", "flattening.csv", "summary.csv", "figure1.png", "report.md",
                 "report.html"):
        assert (out / "analysis" / name).is_file(), name
    flat = pd.read_csv(out / "analysis/flattening.csv")
    assert set(flat["strategy"]) == {"none", "input_mixup", "manifold_mixup"}
    assert set(flat["seed"]) == {0, 1}
    report = (out / "analysis/report.md").read_text()
    assert "figure1.png" in report and r"| bottleneck | manifold\_mixup | 2 |" in report


def test_parallel_and_sequential_runs_are_identical(experiment_dir, tmp_path):
    assert main(["run", str(experiment_dir / "tiny.yaml"), "--out", str(tmp_path / "seq"),
                 "--jobs", "1", "--no-analysis", "--quiet"]) == 0
    assert main(["run", str(experiment_dir / "tiny.yaml"), "--out", str(tmp_path / "par"),
                 "--jobs", "2", "--no-analysis", "--quiet"]) == 0
    for run in (tmp_path / "seq/runs").iterdir():
        a, b = (json.loads((d / "runs" / run.name / "features/manifest.json").read_text())
                for d in (tmp_path / "seq", tmp_path / "par"))
        assert a["entries"] == b["entries"] and a["labels_sha256"] == b["labels_sha256"]


def test_rerun_skips_complete_runs(experiment_dir, capsys):
    out = experiment_dir / "out"
    before = digest(out / "runs")
    assert main(["run", str(experiment_dir / "tiny.yaml"), "--out", str(out), "--no-analysis"]) == 0
    assert "6 runs (3 arms × 2 seeds), 6 complete already, 0 to train" in capsys.readouterr().out
    assert digest(out / "runs") == before


def test_train_and_analyze_commands(experiment_dir, tmp_path):
    run = tmp_path / "run"
    assert main(["train", str(experiment_dir / "tiny.yaml"), "--arm", "manifold_mixup",
                 "--seed", "3", "--out", str(run), "--quiet"]) == 0
    assert yaml.safe_load((run / "config.yaml").read_text())["seed"] == 3
    # a run directory's config.yaml is itself a valid config
    assert main(["train", str(run / "config.yaml"), "--out", str(tmp_path / "again"), "--quiet"]) == 0
    assert main(["analyze", str(run), str(experiment_dir / "out/runs/erm-seed0"), "--out",
                 str(tmp_path / "an"), "--layers", "fc1,bottleneck", "--uncentered", "--quiet"]) == 0
    flat = pd.read_csv(tmp_path / "an/flattening.csv")
    assert set(flat["layer"]) == {"fc1", "bottleneck"} and set(flat["run"]) == {"run", "erm-seed0"}


def test_the_installed_entry_point_and_help():
    for args in (["--help"], ["train", "--help"], ["analyze", "--help"], ["run", "--help"]):
        out = subprocess.run([sys.executable, "-m", "repflat", *args], capture_output=True, text=True)
        assert out.returncode == 0 and "usage: repflat" in out.stdout


def bad_cases(root):
    """(name, argv, expected fragment of the one-line error)."""
    good = TINY_EXPERIMENT
    base = good["base"]
    exp = lambda name, **change: write_yaml(root / f"{name}.yaml", {**good, **change})
    with_base = lambda name, **part: exp(name, base={**base, **part})
    out = str(root / "fresh")
    return [
        ("unknown key", ["run", str(with_base("k", trian={})), "--out", out], "base: unknown key 'trian'"),
        ("wrong type", ["run", str(with_base("t", train={"epochs": "2"})), "--out", out],
         "base.train.epochs: expected an integer, got '2'"),
        ("alpha <= 0", ["run", str(exp("a", arms={"m": {"mixing": {"strategy": "manifold_mixup", "alpha": 0}}})),
                        "--out", out], "arms.m.mixing.alpha: expected a number > 0, got 0.0"),
        ("unknown layer", ["run", str(exp("l", arms={"m": {"mixing": {"strategy": "manifold_mixup",
                                                                      "layers": ["fc7"]}}})),
                           "--out", out], "mixing.layers: unknown name 'fc7'"),
        ("missing config", ["train", str(root / "nope.yaml"), "--out", out], "config: expected an existing YAML file"),
        ("not yaml", ["train", str(write_text(root / "bad.yaml", "a: [1, 2")), "--out", out], "is not valid YAML"),
        ("missing run", ["analyze", str(root / "no-such-run"), "--out", out],
         "RUN: expected an existing run or experiment directory"),
        ("not a run", ["analyze", str(root), "--out", out], "RUN: expected a run directory"),
        ("bad rtol", ["analyze", str(root), "--out", out, "--rtol", "3"], "--rtol: expected a number in [1e-07, 1)"),
        ("usage", ["train"], "the following arguments are required"),
    ]


def write_text(path, text):
    path.write_text(text)
    return path


@pytest.mark.parametrize("case", range(10))
def test_bad_input_is_one_line_exit_2_and_changes_nothing(tmp_path, capsys, case):
    name, argv, fragment = bad_cases(tmp_path)[case]
    before = digest(tmp_path)
    with pytest.raises(SystemExit) if name == "usage" else _nothing() as caught:
        code = main(argv)
    if name == "usage":
        code = caught.value.code
    err = capsys.readouterr().err
    assert code == 2, name
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert fragment in err, err
    assert digest(tmp_path) == before, f"{name} changed files"


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_output_directory_with_a_different_run_is_refused(experiment_dir, tmp_path, capsys):
    run = experiment_dir / "out/runs/erm-seed0"
    before = digest(run)
    other = write_yaml(tmp_path / "o.yaml", {**TINY_EXPERIMENT, "seeds": [0]} | {
        "base": {**TINY_EXPERIMENT["base"], "train": {"epochs": 3, "batch_size": 16}}})
    assert main(["train", str(other), "--arm", "erm", "--out", str(run), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "already holds a different run (train.epochs: 3 here, 2 on disk)" in err
    assert err.count("\n") == 1
    assert digest(run) == before
    # the experiment directory is protected the same way, before any training starts
    renamed = write_yaml(tmp_path / "r.yaml", {**TINY_EXPERIMENT, "name": "other"})
    assert main(["run", str(renamed), "--out", str(experiment_dir / "out"), "--quiet"]) == 2
    assert "holds experiment 'tiny', not 'other'" in capsys.readouterr().err
    changed = write_yaml(tmp_path / "c.yaml", {**TINY_EXPERIMENT, "base": {
        **TINY_EXPERIMENT["base"], "train": {"epochs": 3, "batch_size": 16}}})
    assert main(["run", str(changed), "--out", str(experiment_dir / "out"), "--quiet"]) == 2
    assert "already holds a different run" in capsys.readouterr().err
    assert digest(run) == before


def test_analyze_refuses_to_write_into_a_run_directory(experiment_dir, capsys):
    run = experiment_dir / "out/runs/erm-seed0"
    assert main(["analyze", str(run), "--out", str(run), "--quiet"]) == 2
    assert "--out: expected a directory for analysis outputs, not a run directory" in capsys.readouterr().err


def test_library_errors_name_parameters_and_the_cli_names_flags(tmp_path, capsys):
    from repflat.capture.extract import extract
    from repflat.cli import as_flags
    from repflat.errors import UserError

    with pytest.raises(UserError, match=r"^batch_size: expected an integer >= 1, got 0"):
        extract(torch.nn.Linear(2, 2), ["weight"], None, tmp_path / "o", batch_size=0)
    from repflat.errors import expected, unknown

    assert as_flags(expected("batch_size", "an integer >= 1", 0), "extract") == \
        ["--batch-size: expected an integer >= 1, got 0"]
    assert as_flags(UserError("expected at most one of them", argument="resume, restart"),
                    "extract") == ["--resume, --restart: expected at most one of them"]
    assert as_flags(unknown("layers (saved for the train split of r)", "x", ["y"]), "analyze") == \
        ["--layers (saved for the train split of r): unknown name 'x'; valid: y"]
    assert as_flags(unknown("analysis.layers", "x", ["y"]), "run") == ["analysis.layers: unknown name 'x'; valid: y"]
    assert as_flags(UserError("out: the first line, said as it is"), "run") == \
        ["out: the first line, said as it is"]  # a message without an argument is not read
    assert main(["extract", "--model", "resnet18", "--layers", "fc", "--batch-size", "0",
                 "--out", str(tmp_path / "o")]) == 2
    assert capsys.readouterr().err.startswith("repflat: error: --batch-size: expected an integer >= 1")
