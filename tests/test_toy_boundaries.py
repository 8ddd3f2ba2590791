"""Boundaries of any 2-D model and the toy experiment: the display's grid and
probabilities equal a direct forward pass of the model on the same grid; experiment
files cross data sets with arms; experiments/toy_boundaries.yaml runs on a tiny budget
and its report shows the data set × arm grid with NLL and ECE per cell."""
from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np
import pytest
import torch
import yaml

import repflat
from repflat.analysis.report.datasets import cells
from repflat.analysis.report.toy import dataset_grid
from repflat.analysis.report.plotting.boundary import BoundaryDisplay
from repflat.analysis.runs import collect_runs
from repflat.cli import main
from repflat.config import parse_experiment
from repflat.errors import UserError
from repflat.rundir.features import Features
from repflat.rundir.grids import grid_points, padded_box
from repflat.rundir.names import INPUT_GRID, PROBABILITIES
from repflat.training.models.sources import run_model

matplotlib.use("Agg")
ROOT = Path(__file__).resolve().parent.parent
TOY = ROOT / "experiments/toy_boundaries.yaml"


def a_model(classes: int = 3, dtype=torch.float32) -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(2, 16), torch.nn.Tanh(), torch.nn.Linear(16, classes)).to(dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_model_boundary_is_a_direct_forward_on_the_same_grid(dtype):
    x = np.random.default_rng(1).normal(size=(60, 2)) * [3, 0.5] + [1, -2]
    model = a_model(dtype=dtype)
    model.train()
    display = BoundaryDisplay.from_function(repflat.model_proba(model), x, resolution=17)
    assert model.training  # its mode is restored
    lo, hi = padded_box(x)  # the data's range plus 10% of its span on each side
    assert display.extent == pytest.approx((lo[0], hi[0], lo[1], hi[1]))
    points = grid_points(lo, hi, 17)
    with torch.no_grad():
        direct = torch.softmax(model(torch.as_tensor(points, dtype=dtype)), 1).numpy()
    np.testing.assert_allclose(display.probabilities.reshape(-1, 3), direct, rtol=1e-5, atol=1e-6)
    # the confidence and entropy views are the direct probabilities' max and entropy
    np.testing.assert_allclose(display.response("confidence").ravel(), direct.max(1), rtol=1e-5)
    entropy = -(direct * np.log(direct)).sum(1)
    np.testing.assert_allclose(display.response("entropy").ravel(), entropy, rtol=1e-4)


def test_model_proba_batches_agree_and_bad_models_are_user_errors():
    x = np.random.default_rng(2).normal(size=(50, 2))
    model = a_model(2)
    np.testing.assert_allclose(repflat.model_proba(model, batch_size=7)(x),
                               repflat.model_proba(model)(x), rtol=1e-6)
    with pytest.raises(UserError, match="inputs of shape"):
        repflat.model_proba(torch.nn.Linear(3, 2))(x)
    with pytest.raises(UserError, match="torch.nn.Module"):
        repflat.model_proba(lambda t: t)


def tiny(source: dict, datasets: list[str] | None = None) -> dict:
    """The toy experiment on a tiny budget: one seed, few epochs, few points, small grids."""
    spec = yaml.safe_load(yaml.safe_dump(source, sort_keys=False))
    spec["seeds"] = [0]
    keep = datasets or list(spec["datasets"])
    spec["datasets"] = {k: v | {"n_per_class": 12} for k, v in spec["datasets"].items() if k in keep}
    spec["base"]["train"] |= {"epochs": 2, "batch_size": 8, "checkpoint_every": 2}
    spec["base"]["capture"] |= {"grid_resolution": 8, "uniform_samples": 5}
    return spec


def test_toy_experiment_file_crosses_every_data_set_with_every_arm():
    exp = parse_experiment(yaml.safe_load(TOY.read_text()))
    assert len(exp.runs) == 8 * 3 * 3 and exp.name == "toy_boundaries"
    names = {r.name for r in exp.runs}
    assert {"moons.erm", "xor_noisy.manifold_mixup", "spirals3_noisy.input_mixup"} <= names
    noisy = {r.name.partition(".")[0]: r.data.label_noise for r in exp.runs}
    assert {k for k, v in noisy.items() if v == 0.1} == {k for k in noisy if k.endswith("_noisy")}
    assert all(r.evaluation.calibration for r in exp.runs)
    spirals = next(r for r in exp.runs if r.name == "spirals3.erm")
    assert spirals.data.n_classes == 3


@pytest.mark.parametrize("change, fragment", [
    (lambda s: s["base"].update(data={"name": "moons"}), "base.data: the experiment's `datasets`"),
    (lambda s: s["arms"]["erm"].update(data={"name": "moons"}), "arms.erm.data: set by the experiment"),
    (lambda s: s["datasets"].update({"a.b": {"name": "moons"}}), "datasets.a.b: expected a name without '.'"),
    (lambda s: s["datasets"]["moons"].update(noise=-1), "datasets.moons.noise"),
    (lambda s: s["datasets"]["moons"].update(wiggle=1), "datasets.moons: unknown key 'wiggle'"),
    (lambda s: s.update(datasets={}), "datasets: expected a non-empty mapping"),
])
def test_datasets_mistakes_name_the_key(change, fragment):
    spec = tiny(yaml.safe_load(TOY.read_text()))
    change(spec)
    with pytest.raises(UserError) as err:
        parse_experiment(spec)
    assert fragment in str(err.value) and "\n" not in str(err.value)


SUBSET = ["moons", "moons_noisy", "spirals3", "xor_noisy"]  # two classes and three, noise and none


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("toy")
    spec = tiny(yaml.safe_load(TOY.read_text()), SUBSET)
    (root / "e.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    assert main(["run", str(root / "e.yaml"), "--out", str(root / "out"), "--quiet",
                 "--figures", "datasets"]) == 0
    return root / "out"


def test_toy_report_shows_the_grid_with_nll_and_ece_per_cell(toy_run):
    md = (toy_run / "analysis/report.md").read_text()
    assert "](datasets.png)" in md and "](datasets_entropy.png)" in md
    assert (toy_run / "analysis/datasets.png").stat().st_size > 10_000
    table = [l for l in md.splitlines() if l.startswith("| ")]
    header = next(l for l in table if "data set" in l)
    assert "test NLL" in header and "test ECE" in header
    rows = [l for l in table if l.split("|")[1].strip() in ("moons", "xor\\_noisy", "spirals3")]
    assert len(rows) == 9  # three data sets × three arms, one row each
    shows = md.split("## What this shows")[1].split("##")[0]
    assert "moons: ERM → manifold mixup: test NLL" in shows
    assert "analyse one data set's runs at a time" in shows  # no comparison across data sets
    assert "figure1.png" not in md and "embeddings.png" not in md  # per-arm figures left out


def test_no_figures_means_none_with_several_data_sets(toy_run, tmp_path):
    assert main(["report", str(toy_run / "analysis"), "--out", str(tmp_path / "r"),
                 "--figures", "none", "--quiet"]) == 0
    assert not list((tmp_path / "r").rglob("*.png"))
    assert list((tmp_path / "r").rglob("report.md"))


def test_toy_grid_panels_hold_each_cells_saved_boundary(toy_run):
    runs = collect_runs([toy_run])[0]
    where = cells(runs)
    fig = dataset_grid(runs, where)
    axes = np.array(fig.axes).reshape(4, 3)
    assert [a.get_ylabel() for a in axes[:, 0]] == SUBSET  # the file's order
    assert [a.get_title() for a in axes[0]] == ["erm", "input_mixup", "manifold_mixup"]
    run = next(r for r in runs if r.name == "xor_noisy.manifold_mixup")
    shown = axes[3, 2].get_images()[0].get_array()
    expected = BoundaryDisplay.from_features(run.features, 2, INPUT_GRID).image("confidence")
    np.testing.assert_allclose(np.asarray(shown)[..., :3], expected, rtol=1e-6)


def test_saved_grid_is_the_trained_models_forward(toy_run):
    run_dir = toy_run / "runs/spirals3.erm-seed0"
    model, cfg, epoch = run_model(run_dir)
    fs = Features(run_dir)
    points = fs.load(fs.get(INPUT_GRID, epoch, "input"))
    saved = fs.load(fs.get(INPUT_GRID, epoch, PROBABILITIES))
    np.testing.assert_allclose(repflat.model_proba(model)(points), saved, rtol=1e-5, atol=1e-6)
    assert saved.shape == (8 * 8, 3)


@pytest.mark.parametrize("data", [{"name": "blobs", "n_classes": 4}, {"name": "gaussian_quantiles"},
                                  {"name": "circles", "label_noise": 0.2}])
def test_every_toy_set_saves_a_boundary(tmp_path, data):
    cfg = {"data": data | {"n_per_class": 10}, "model": {"widths": [8], "bottleneck": None, "widths_after": []},
           "train": {"epochs": 1, "batch_size": 8}, "capture": {"grid_resolution": 6, "uniform_samples": 3}}
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(cfg))
    assert main(["train", str(tmp_path / "r.yaml"), "--out", str(tmp_path / "run"), "--quiet"]) == 0
    display = BoundaryDisplay.from_features(Features(tmp_path / "run"), 1, INPUT_GRID)
    assert display.probabilities.shape == (6, 6, data.get("n_classes", 3 if data["name"] != "circles" else 2))


def test_the_cli_knows_every_figure_the_report_draws():
    from repflat.analysis.report.build import FIGURE_NAMES
    from repflat.cli import parser

    assert parser.FIGURE_NAMES == FIGURE_NAMES  # `--figures all` is all of them


def test_two_d_data_capture_its_input_by_default_so_boundaries_show_the_points():
    """Without capture.layers, a 2-D data set captures `input` beside the hidden layers:
    the boundary pictures draw the training points from it. Wider data does not."""
    from repflat.config.schema import RunConfig
    from repflat.strict import parse
    from repflat.training.loop import setup

    two_d = setup(parse(RunConfig, {"data": {"name": "moons", "n_per_class": 20},
                                    "model": {"name": "mlp", "widths": [8, 8]}}, "config"))
    digits = setup(parse(RunConfig, {"data": {"name": "digits"},
                                     "model": {"name": "mlp", "widths": [8, 8]}}, "config"))
    assert "input" not in digits.capture_layers and "fc1" in digits.capture_layers
    assert two_d.capture_layers == ("input", *digits.capture_layers)
    chosen = setup(parse(RunConfig, {"data": {"name": "moons", "n_per_class": 20},
                                     "model": {"name": "mlp", "widths": [8]},
                                     "capture": {"layers": ["fc1"]}}, "config"))
    assert chosen.capture_layers == ("fc1",)
