"""`model: {target: "module:Class", kwargs: {...}}`: a user's own nn.Module class, checked
by --check at its line, trained, mixed and captured by name, swept like a built-in
(examples/my_model), and never imported from a run directory someone else made."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from repflat.cli import main
from repflat.config import TargetModel, load_experiment

pytest.importorskip("torch")
EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "my_model"


def _tiny(tmp_path: Path, **model) -> Path:
    """The example experiment, 1 epoch on 20 points a class, one seed."""
    exp = yaml.safe_load((EXAMPLE / "experiment.yaml").read_text())
    exp["seeds"] = [0]
    exp["base"]["data"]["n_per_class"] = 20
    exp["base"]["train"] = {"epochs": 1, "batch_size": 10}
    exp["base"]["capture"] |= {"epochs": [], "grid_resolution": 4, "uniform_samples": 8}
    exp["base"]["model"] |= {"path": str(EXAMPLE), **model}
    path = tmp_path / "e.yaml"
    path.write_text(yaml.safe_dump(exp, sort_keys=False))
    return path


def test_the_example_sweeps_a_class_of_ones_own(tmp_path, capsys):
    exp = load_experiment(EXAMPLE / "experiment.yaml")
    assert {type(r.model) for r in exp.runs} == {TargetModel}
    assert exp.runs[0].model.path == str(EXAMPLE.absolute())  # relative to the file
    path, out = _tiny(tmp_path), tmp_path / "out"
    assert main(["run", str(path), "--check"]) == 0
    assert "imported your model class mynet:MyNet" in capsys.readouterr().out
    assert main(["run", str(path), "--out", str(out), "--no-analysis", "--quiet"]) == 0
    runs = sorted(p.name for p in (out / "runs").iterdir())
    assert runs == ["erm-kwargs_w16-seed0", "erm-kwargs_w64-seed0",
                    "manifold_mixup-kwargs_w16-seed0", "manifold_mixup-kwargs_w64-seed0"]
    for run in runs:
        config = yaml.safe_load((out / "runs" / run / "config.yaml").read_text())
        assert config["model"]["target"] == "mynet:MyNet"
        assert config["model"]["kwargs"] == {"width": 16 if "w16" in run else 64, "neck": 2}
        manifest = json.loads((out / "runs" / run / "features" / "manifest.json").read_text())
        saved = json.dumps(manifest)
        assert all(layer in saved for layer in ("body.2", "body.4", "neck", "head.1"))
    # a run directory naming code is not built by extract (it may be someone else's)
    assert main(["extract", "--run-dir", str(out / "runs" / runs[0]), "--layers", "neck",
                 "--out", str(tmp_path / "x")]) == 2
    assert "a class of your own (mynet:MyNet)" in capsys.readouterr().err


@pytest.mark.parametrize("model, message", [
    ({"target": "no_such_module:Net"}, "model.target: cannot import 'no_such_module'"),
    ({"target": "mynet:MyNte"}, "model.target: unknown class of mynet 'MyNte' (did you mean 'MyNet'?)"),
    ({"target": "mynet:math"}, "model.target: expected an nn.Module subclass, got 'mynet:math (module)'"),
    ({"kwargs": {"widht": 8}}, "model.kwargs: mynet:MyNet does not take these arguments"),
    ({"kwargs": {"neck": -1}}, "model.kwargs: mynet:MyNet(**kwargs) raised RuntimeError"),
    ({"target": "mynet"}, "model.target: expected 'module:Class'"),
])
def test_a_bad_class_is_one_line_at_its_key(tmp_path, capsys, model, message):
    path = _tiny(tmp_path, **model)
    assert main(["run", str(path), "--check"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and message in err, err
    where = err.removeprefix("repflat: error: ").split(": ")[0]
    line = int(where.split(":")[-2])
    key = message.split(":")[0].split(".")[-1]  # the error is at its key
    assert path.read_text().splitlines()[line - 1].strip().startswith(f"{key}:"), err
