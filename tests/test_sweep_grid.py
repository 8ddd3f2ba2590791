"""Sweeps in experiment files: the `grid` section expanded, checked before anything runs,
listed, and resumed like any experiment."""
import copy
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from repflat.cli import main
from repflat.config import load_experiment, parse_experiment
from repflat.config.grid import dotted_keys
from repflat.config.schema import RunConfig
from repflat.errors import UserError

TINY = {
    "name": "tiny_sweep", "seeds": [0, 1],
    "base": {"data": {"name": "spirals", "n_per_class": 40},
             "model": {"name": "mlp", "widths": [16], "bottleneck": 2, "widths_after": [16]},
             "train": {"epochs": 2, "batch_size": 17, "lr": 0.01},
             "capture": {"layers": ["fc1", "bottleneck", "fc2"], "grid_resolution": 8,
                         "uniform_samples": 16}},
    "arms": {"erm": {"mixing": {"strategy": "none"}},
             "input_mixup": {"mixing": {"strategy": "input_mixup", "alpha": 1.0}},
             "mm": {"mixing": {"strategy": "manifold_mixup"}}},
    "grid": [{"arms": ["erm"], "params": {"train.loss": ["cross_entropy", "mse"]}},
             {"arms": ["mm"], "params": {"train.loss": ["cross_entropy", "mse"],
                                         "mixing.alpha": [0.5, 2],
                                         "mixing.layers": {"neck": ["bottleneck"],
                                                           "all": ["fc1", "bottleneck", "fc2"]}}}],
}


def tiny(**changes):
    data = copy.deepcopy(TINY)
    data.update(changes)
    return data


def test_grid_expands_to_named_arms_in_place():
    exp = parse_experiment(tiny())
    assert exp.arms == (
        "erm-loss_cross_entropy", "erm-loss_mse", "input_mixup",
        *(f"mm-loss_{l}-alpha{a}-layers_{n}" for l in ("cross_entropy", "mse")
          for a in ("0.5", "2") for n in ("neck", "all")))
    assert len(exp.runs) == 11 * 2
    run = next(r for r in exp.runs if r.name == "mm-loss_mse-alpha0.5-layers_all" and r.seed == 1)
    assert (run.train.loss, run.mixing.alpha, run.mixing.layers) == ("mse", 0.5, ("fc1", "bottleneck", "fc2"))
    assert run.mixing.strategy == "manifold_mixup"  # the arm's own override is kept
    point = exp.points["mm-loss_mse-alpha0.5-layers_all"]
    assert point.template == "mm" and point.values == {
        "train.loss": "mse", "mixing.alpha": 0.5, "mixing.layers": "all"}
    assert "input_mixup" not in exp.points


def test_grid_names_lists_booleans_and_shared_key_ends():
    data = tiny(grid={"arms": ["mm"], "params": {
        "mixing.layers": [["bottleneck"], ["fc1", "fc2"]], "model.batch_norm": [True],
        "train.input_noise": [0.1], "evaluation.fgsm_every": [0]}})
    assert parse_experiment(data).arms[-2:] == (
        "mm-layers_bottleneck-batch_norm_true-input_noise0.1-fgsm_every0",
        "mm-layers_fc1+fc2-batch_norm_true-input_noise0.1-fgsm_every0")
    numbers = tiny(grid={"arms": ["mm"], "params": {"train.lr": [2.0, 1e-5, 1234567.0, 0.1]}})
    assert parse_experiment(numbers).arms[-4:] == ("mm-lr2", "mm-lr1e-05", "mm-lr1234567.0", "mm-lr0.1")
    twice = tiny(grid={"arms": ["erm"], "params": {"train.epochs": [1], "capture.epochs": [[0]]}})
    assert parse_experiment(twice).arms[0] == "erm-train_epochs1-capture_epochs_0"


def test_dotted_keys_cover_every_section():
    keys = dotted_keys(RunConfig)
    assert {"mixing.alpha", "train.loss", "data.noise", "data.root", "model.widths",
            "model.arch", "capture.layers", "evaluation.fgsm_epsilon"} <= set(keys)
    assert "mixing" not in keys and "data" not in keys  # only leaves


@pytest.mark.parametrize("grid, message", [
    ({"arms": ["mm"], "params": {"mixing.alhpa": [1]}},
     "grid.params: unknown key 'mixing.alhpa' (did you mean 'mixing.alpha'"),
    ({"arms": ["mm"], "params": {"mixing.alpha": [1, "two"]}},
     "grid.params.mixing.alpha: expected a finite number, got 'two'"),
    ({"arms": ["mm"], "params": {"mixing.alpha": [1, -1]}},
     "grid.params.mixing.alpha: expected a number > 0, got -1"),
    ({"arms": ["mm"], "params": {"mixing.alpha": [1, 1.0]}}, "distinct values"),
    ({"arms": ["mn"], "params": {"mixing.alpha": [1]}}, "grid.arms: unknown arm 'mn' (did you mean 'mm'"),
    ({"arms": ["mm"], "params": {"mixing.alpha": []}}, "expected a non-empty list"),
    ({"arms": ["mm"], "params": {"model.widths": [[8, 8]], "mixing.alpha": [1]},
      "extra": 1}, "grid: unknown key 'extra'"),
    ({"arms": ["mm"], "params": {"data": [{"name": "digits"}]}}, "give the others labels"),
    ({"arms": ["mm"], "params": {"train.optimizer": ["a/b"]}}, "give the others labels"),
    ({"arms": ["mm"], "params": {"seed": [1]}}, "set by the experiment"),
    ([{"arms": ["mm"], "params": {"train.loss": ["mse"]}},
      {"arms": ["mm"], "params": {"train.loss": ["mse"]}}], "two arms would be named 'mm-loss_mse'"),
    ({"arms": ["mm"], "params": {"train.lr": {("x" * 99): 0.1}}}, "at most 100 characters"),
])
def test_grid_mistakes_are_named_before_anything_runs(grid, message):
    with pytest.raises(UserError, match=None) as err:
        parse_experiment(tiny(grid=grid))
    assert message in str(err.value)


def test_a_grid_name_colliding_with_an_arm_is_refused():
    data = tiny(grid={"arms": ["erm"], "params": {"train.loss": ["mse"]}})
    data["arms"]["erm-loss_mse"] = {}
    with pytest.raises(UserError, match="two arms would be named 'erm-loss_mse'"):
        parse_experiment(data)


def test_the_cli_refuses_a_bad_grid_writing_nothing(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(tiny(grid={"arms": ["mm"], "params": {"mixing.alpha": [2, 0]}})))
    out = tmp_path / "out"
    assert main(["run", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "grid.params.mixing.alpha: expected a number > 0, got 0" in err
    assert f"{path}:" in err  # located in the file
    assert not out.exists()


def test_list_prints_the_arms_and_the_run_count_without_torch(tmp_path):
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(tiny(), sort_keys=False))
    code = ("import sys; from repflat.cli import main; rc = main(['run', sys.argv[1], '--list']); "
            "assert 'torch' not in sys.modules, 'torch imported'; sys.exit(rc)")
    done = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True,
                          cwd=Path(__file__).parents[1])
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "erm-loss_cross_entropy  train.loss=cross_entropy"
    assert lines[2] == "input_mixup"
    assert lines[3] == ("mm-loss_cross_entropy-alpha0.5-layers_neck  train.loss=cross_entropy "
                        "mixing.alpha=0.5 mixing.layers=neck")
    assert lines[-1] == "tiny_sweep: 11 arms × 2 seeds (0, 1) = 22 runs"
    assert len(lines) == 12


def test_check_covers_every_expanded_arm():
    pytest.importorskip("torch")
    from repflat.training.sweep import plan_experiment

    plan = plan_experiment(parse_experiment(tiny()))
    assert sorted(b.cfg.name for b in plan.built.values()) == sorted(parse_experiment(tiny()).arms)
    bad = tiny(grid={"arms": ["mm"], "params": {"mixing.layers": [["fc1"], ["fc9"]]}})
    with pytest.raises(UserError, match="fc9"):  # a layer name only the model can check
        plan_experiment(parse_experiment(bad))


def test_a_half_finished_sweep_resumes(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    import repflat.training.sweep as sweep

    data = tiny(seeds=[0], grid={"arms": ["mm"], "params": {"mixing.alpha": [0.5, 1, 2]}})
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(data))
    out = tmp_path / "out"
    real, trained = sweep.train_prepared, []

    def interrupted(cfg, where, *args, **kwargs):
        if len(trained) == 2:
            raise KeyboardInterrupt  # the third run never finishes
        trained.append(cfg.name)
        return real(cfg, where, *args, **kwargs)

    monkeypatch.setattr(sweep, "train_prepared", interrupted)
    with pytest.raises(KeyboardInterrupt):
        sweep.run_experiment(path, out, progress=False)
    assert trained == ["erm", "input_mixup"]
    stamps = {n: (out / "runs" / f"{n}-seed0" / "run.json").stat().st_mtime_ns for n in trained}

    def recording(cfg, where, *args, **kwargs):
        trained.append(cfg.name)
        return real(cfg, where, *args, **kwargs)

    trained.clear()
    monkeypatch.setattr(sweep, "train_prepared", recording)
    sweep.run_experiment(path, out, progress=False)
    assert trained == ["mm-alpha0.5", "mm-alpha1", "mm-alpha2"]  # complete runs skipped
    assert stamps == {n: (out / "runs" / f"{n}-seed0" / "run.json").stat().st_mtime_ns for n in stamps}
    from repflat.cli.commands import listing

    assert listing(load_experiment(path), out).splitlines()[2] == "mm-alpha0.5  mixing.alpha=0.5  [1/1 complete]"


def test_a_sweep_analysis_writes_effects_and_the_figure(tmp_path):
    pytest.importorskip("torch")
    from repflat.analysis.report.build import ReportOptions
    from repflat.analysis.report.outputs import analyze
    from repflat.training.sweep import run_experiment

    data = tiny(seeds=[0, 1, 2])
    del data["arms"]["input_mixup"]
    data["grid"][1]["params"] = {"train.loss": ["cross_entropy", "mse"], "mixing.alpha": [0.5, 2]}
    data["analysis"] = {"layers": ["fc1", "bottleneck"]}
    run_experiment(parse_experiment(data), tmp_path / "exp", progress=False)
    written = analyze([tmp_path / "exp"], tmp_path / "exp" / "analysis",
                      options=ReportOptions(embeddings=(), figures=("effects",)))
    names = {p.name for p in written}
    assert {"effects.csv", "effects.png", "report.md"} <= names

    table = pd.read_csv(tmp_path / "exp" / "analysis" / "effects.csv")
    pairs = set(zip(table["arm"], table["baseline"]))
    assert pairs == {(f"mm-loss_{l}-alpha{a}", f"erm-loss_{l}")
                     for l in ("cross_entropy", "mse") for a in ("0.5", "2")}
    assert set(table["n_seeds"]) == {3} and set(table["method"]) == {"paired t"}
    assert {"train.loss", "mixing.alpha", "diff", "low", "high"} <= set(table.columns)
    report = (tmp_path / "exp" / "analysis" / "report.md").read_text()
    assert "## Sweep: effects against the baseline" in report
    n = int(table["low"].notna().sum())
    assert f"effects.csv holds {n} intervals (the figure draws" in report
    # "What this shows" compares like with like: mse arms are not set against ERM with CE
    shows = report.split("## What this shows")[1].split("\n## ")[0]
    assert "their own baseline (erm-loss\\_mse)" in shows
    assert "under mm-loss\\_mse" not in shows and "for erm-loss\\_mse" not in shows


def test_a_grid_over_several_data_sets_compares_within_each_data_set():
    """`datasets` × `grid`: runs are <data set>.<arm>; each keeps its arm's swept values and
    is set against the baseline of its own data set, never another's."""
    from repflat.analysis.effects import sweep_table
    from repflat.strict import to_plain

    data = tiny(grid={"arms": ["mm"], "params": {"mixing.alpha": [0.5, 2]}})
    data["base"] = {k: v for k, v in data["base"].items() if k != "data"}
    data["datasets"] = {"moons": {"name": "moons", "n_per_class": 20},
                        "xor": {"name": "xor", "n_per_class": 20}}
    exp = parse_experiment(data)
    assert exp.arms == ("moons.erm", "moons.input_mixup", "moons.mm-alpha0.5", "moons.mm-alpha2",
                        "xor.erm", "xor.input_mixup", "xor.mm-alpha0.5", "xor.mm-alpha2")
    assert exp.points["xor.mm-alpha2"].values == {"mixing.alpha": 2}
    first = {r.name: r for r in exp.runs if r.seed == 0}
    table = sweep_table(list(first), {a: r.mixing.strategy for a, r in first.items()},
                        {a: to_plain(r) for a, r in first.items()}, exp.points).set_index("arm")
    assert table.loc["moons.mm-alpha2", "baseline"] == "moons.erm"
    assert table.loc["xor.mm-alpha0.5", "baseline"] == "xor.erm"
    assert table.loc["xor.input_mixup", "baseline"] == "xor.erm"
    assert table["baseline"].isna().sum() == 2  # the two ERM arms themselves
