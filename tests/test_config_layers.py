"""Layer names checked while a config is parsed (repflat.config.layers), before torch:
the built-in models' names from their configs, agreeing with the built models; every key
that names a layer refused at its FILE:LINE; YAML 1.2's numbers (`3e-3`) read as numbers."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from repflat.config import Cnn1dModel, GruModel, MLPModel, ResNetModel, RunConfig, load_experiment, load_run_config
from repflat.config.layers import CALL_SEP, INPUT, captured_layers, hidden_layers, is_layer, model_layers
from repflat.errors import UserError
from repflat.strict import dump_yaml, parse

ROOT = Path(__file__).resolve().parent.parent
SPIRALS = ROOT / "experiments" / "spirals.yaml"


@pytest.mark.parametrize("model, shape", [
    (MLPModel(), (2,)),
    (MLPModel(widths=(8, 8, 8), bottleneck=None, widths_after=(), activation="tanh"), (2,)),
    (MLPModel(widths=(), bottleneck=3, widths_after=(5,), dropout=0.2, batch_norm=True), (1, 8, 8)),
    (ResNetModel(name="preactresnet18"), (3, 8, 8)),
    (ResNetModel(name="preactresnet34", stem_stride=2), (3, 8, 8)),
    (ResNetModel(name="wrn28_10", dropout=0.3), (3, 8, 8)),
    (Cnn1dModel(), (40,)), (Cnn1dModel(channels=4, dropout=0.1), (40,)),
    (GruModel(), (40,)), (GruModel(hidden=3, bidirectional=False), (40,)),
])
def test_the_names_read_from_a_config_are_the_built_models(model, shape):
    torch_side = pytest.importorskip("repflat.training.models")
    from repflat.base.layers import layer_names

    built = torch_side.build_model(model, shape, 3, seed=0)
    assert model_layers(model) == tuple(layer_names(built))
    assert hidden_layers(model) == tuple(built.hidden_layers)


def test_the_contract_names_and_the_call_rule_agree_with_the_torch_side():
    pytest.importorskip("torch")
    from repflat.base.layers import CALL_SEP as TORCH_SEP, is_module_layer
    from repflat.rundir.names import INPUT as CONTRACT_INPUT

    assert (INPUT, CALL_SEP) == (CONTRACT_INPUT, TORCH_SEP)
    modules = model_layers(MLPModel())
    for name in ("fc1", "fc1.0", "fc1:2", "fc1:0", "input:1", "fc9", "fc1:x", ":1", "logits"):
        assert is_layer(name, modules) == is_module_layer(name, modules), name


def _spirals(**edits) -> dict:
    data = yaml.safe_load(SPIRALS.read_text())
    for path, value in edits.items():
        *keys, last = path.split("/")
        node = data
        for key in keys:
            node = node[key]
        node[last] = value
    return data


BAD = {  # key -> (edit of experiments/spirals.yaml, the line the error must name)
    "capture.plane": ({"base/capture/plane": "fc9"}, "plane:"),
    "mixing.layers": ({"arms/manifold_mixup/mixing": {"strategy": "manifold_mixup",
                                                      "layers": ["input", "fcc2"]}}, "layers:"),
    "capture.layers": ({"base/capture/layers": ["fc1", "bottlenek"]}, "layers:"),
    "evaluation.premise_layers": ({"base/evaluation/premise_layers": ["inpt"]}, "premise_layers:"),
    "analysis.layers": ({"analysis/layers": ["fc1", "fc7"]}, "layers:"),
    "analysis.spectra_layers": ({"analysis/spectra_layers": ["logit"]}, "spectra_layers:"),
}


def test_every_unknown_layer_is_refused_at_its_line_before_torch(tmp_path):
    """One process runs `run --check` and `train --check` on each bad file and says
    whether torch was imported: a typo costs no torch import (seconds)."""
    files = {}
    for key, (edits, _) in BAD.items():
        files[key] = tmp_path / f"{key}.yaml"
        files[key].write_text(yaml.safe_dump(_spirals(**edits), sort_keys=False))
    code = ("import sys\nfrom repflat.cli import main\n"
            f"for f in {[str(f) for f in files.values()]!r}:\n"
            "    assert main(['run', f, '--check']) == 2\n"
            "    assert main(['train', f, '--arm', 'manifold_mixup', '--check']) == 2\n"
            "print('torch' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False", "torch was imported before the typo was found"
    lines = done.stderr.splitlines()
    assert len(lines) == 2 * len(BAD)  # one line per refusal
    for i, (key, (_, line_start)) in enumerate(BAD.items()):
        text = files[key].read_text().splitlines()
        for said in lines[2 * i: 2 * i + 2]:
            where, _, rest = said.removeprefix("repflat: error: ").partition(": ")
            path, line, col = where.rsplit(":", 2)
            assert path == str(files[key]) and key in rest and "unknown name" in rest, said
            assert text[int(line) - 1][int(col) - 1:].startswith(line_start), said


def test_the_close_matches_and_valid_names_are_said():
    with pytest.raises(UserError) as err:
        load_experiment_data(_spirals(**{"base/capture/plane": "botleneck"}))
    assert str(err.value).startswith("arms.erm.capture.plane: unknown name 'botleneck' (did you mean "
                                     "'bottleneck'")
    assert "valid: input, fc1, fc1.0, fc1.1, fc2," in str(err.value)


def load_experiment_data(data: dict):
    from repflat.config import parse_experiment

    return parse_experiment(data)


def test_the_default_plane_is_skipped_on_a_model_without_one_and_another_is_not():
    assert parse(RunConfig, {"model": {"name": "preactresnet18"}, "data": {"name": "digits"}})
    no_bottleneck = {"model": {"bottleneck": None}, "capture": {"plane": "bottleneck"}}
    load_experiment_data({"arms": {"a": no_bottleneck}})
    with pytest.raises(UserError, match="capture.plane: unknown name 'layer9'"):
        load_experiment_data({"arms": {"a": {"model": {"name": "preactresnet18"},
                                             "data": {"name": "digits"},
                                             "capture": {"plane": "layer9"}}}})


def test_input_is_captured_by_default_for_points_only():
    spirals = parse(RunConfig, {})
    digits = parse(RunConfig, {"data": {"name": "digits"}})
    assert captured_layers(spirals) == (INPUT, "fc1", "fc2", "bottleneck", "fc3", "fc4")
    assert captured_layers(digits) == ("fc1", "fc2", "bottleneck", "fc3", "fc4")
    load_experiment_data({"arms": {"a": {}}, "analysis": {"layers": ["input"]}})
    with pytest.raises(UserError, match=r"analysis.layers \(captured by arm 'a'\): unknown name 'input'"):
        load_experiment_data({"arms": {"a": {"data": {"name": "digits"}}}, "analysis": {"layers": ["input"]}})


def test_a_torchvision_models_names_are_checked_when_built_and_located(tmp_path, capsys):
    pytest.importorskip("torchvision")
    from repflat.cli import main

    exp = {"name": "tv", "base": {"data": {"name": "digits"}, "train": {"epochs": 1},
                                  "model": {"name": "torchvision", "arch": "resnet18",
                                            "hidden_layers": ["layer1"]},
                                  "capture": {"plane": "layer9"}},
           "arms": {"erm": {}}}
    path = tmp_path / "tv.yaml"
    path.write_text(yaml.safe_dump(exp, sort_keys=False))
    load_experiment(path)  # not known without building resnet18
    assert main(["run", str(path), "--check"]) == 2
    err = capsys.readouterr().err
    line = next(i for i, t in enumerate(path.read_text().splitlines(), 1) if "plane:" in t)
    assert err.startswith(f"repflat: error: {path}:{line}:5: arms.erm.capture.plane: unknown name 'layer9'")


def test_every_experiment_file_still_loads():
    for path in sorted((ROOT / "experiments").glob("*.yaml")):
        load_experiment(path)


# ---- YAML numbers


def test_yaml_1_2_exponent_floats_are_numbers(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  lr: 3e-3\n  weight_decay: 5E-4\n  gamma: .5e0\nmixing:\n"
                    "  strategy: manifold_mixup\n  alpha: 2e0\n")
    cfg = load_run_config(path)
    assert (cfg.train.lr, cfg.train.weight_decay, cfg.train.gamma, cfg.mixing.alpha) == (0.003, 5e-4, 0.5, 2.0)


@pytest.mark.parametrize("text, message", [
    ("train:\n  epochs: 1e5\n", "train.epochs: expected an integer (write 100000), got 100000.0"),
    ("train:\n  lr: nan\n", "train.lr: expected a finite number, got 'nan'"),
    ("train:\n  lr: .inf\n", "train.lr: expected a finite number, got inf"),
    ("train:\n  lr: inf\n", "train.lr: expected a finite number, got 'inf'"),
    ("train:\n  lr: '3e-3'\n", "train.lr: expected a finite number, got '3e-3'"),  # quoted: a string
])
def test_numbers_that_are_not_the_fields_are_refused_with_the_key(tmp_path, text, message):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(UserError) as err:
        load_run_config(path)
    assert str(err.value) == f"{path}:2:3: {message}"


def test_a_string_that_looks_like_a_float_is_written_quoted_and_read_back_a_string(tmp_path):
    cfg = parse(RunConfig, {"name": "1e5"})
    path = tmp_path / "config.yaml"
    path.write_text(dump_yaml(cfg))
    assert load_run_config(path).name == "1e5"
