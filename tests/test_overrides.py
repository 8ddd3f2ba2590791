"""`key=value` on `repflat train` / `repflat run` (repflat.config.overrides): applied to
the file before the strict parse, refused like a file's mistakes but said to be on the
command line, and recorded in every resolved config."""
from __future__ import annotations

import pytest
import yaml

from repflat.cli import main
from repflat.config import load_experiment, load_run_config
from repflat.config.overrides import parse_overrides
from repflat.errors import UserError
from repflat.strict import to_plain

EXPERIMENT = {"name": "o", "seeds": [0, 1],
              "base": {"train": {"epochs": 4, "lr": 0.01}, "data": {"n_per_class": 20}},
              "arms": {"erm": {"train": {"epochs": 6}},
                       "mm": {"mixing": {"strategy": "manifold_mixup", "layers": ["fc1"]}}}}


@pytest.fixture
def experiment(tmp_path):
    path = tmp_path / "e.yaml"
    path.write_text(yaml.safe_dump(EXPERIMENT, sort_keys=False))
    return path


def _load(path, *items):
    return load_experiment(path, overrides=parse_overrides(items))


def test_a_run_key_sets_every_run_over_the_arms_own(experiment):
    exp = _load(experiment, "train.epochs=2", "train.lr=3e-3", "mixing.alpha=0.5")
    assert {(r.train.epochs, r.train.lr) for r in exp.runs} == {(2, 0.003)}
    assert [r.mixing.alpha for r in exp.runs if r.name == "mm"] == [0.5, 0.5]
    assert exp.source["base"]["train"]["epochs"] == 2  # what OUT/experiment.yaml records


def test_keys_of_the_file_itself(experiment):
    exp = _load(experiment, "seeds=[7]", "arms.mm.mixing.alpha=3", "analysis.layers=[fc1]",
                "base.train.lr=0.5")
    assert exp.seeds == (7,) and exp.analysis.layers == ("fc1",)
    assert [(r.name, r.mixing.alpha, r.train.lr) for r in exp.runs] == [("erm", 2.0, 0.5), ("mm", 3.0, 0.5)]


def test_the_identity_of_a_run_changes_with_them(experiment):
    plain, changed = (to_plain(_load(experiment, *o).runs[0]) for o in ((), ("train.lr=0.02",)))
    assert plain != changed and changed["train"]["lr"] == 0.02


@pytest.mark.parametrize("items, message", [
    (["train.epochz=2"], "command line: unknown key 'train.epochz' (did you mean 'train.epochs'"),
    (["learning_rate=2"], "command line: unknown key 'learning_rate'"),
    (["arms.m.mixing.alpha=2"], "command line: unknown arm 'm' (did you mean 'mm'"),
    (["analysis.layerz=[fc1]"], "command line: unknown key 'analysis.layerz' (did you mean 'analysis.layers'"),
    (["train.epochs=two"], "command line: base.train.epochs: expected an integer, got 'two'"),
    (["train.epochs=1e3"], "command line: base.train.epochs: expected an integer (write 1000), got 1000.0"),
    (["mixing.alpha=0"], "command line: base.mixing.alpha: expected a number > 0"),
    (["capture.plane=fc9"], "command line: arms.erm.capture.plane: unknown name 'fc9'"),
    (["seed=3"], "command line: seed: set by the experiment"),
    (["train.epochs"], "command line: expected key=value"),
    (["train.epochs=[1"], "command line: train.epochs=[1: the value is not YAML"),
])
def test_mistakes_are_refused_on_the_command_line(experiment, items, message):
    with pytest.raises(UserError) as err:
        _load(experiment, *items)
    assert str(err.value).startswith(message), str(err.value)


def test_a_run_config_file_takes_them_too(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train: {epochs: 3}\n")
    cfg = load_run_config(path, overrides=parse_overrides(["train.epochs=1", "seed=4", "name=quick"]))
    assert (cfg.train.epochs, cfg.seed, cfg.name) == (1, 4, "quick")
    with pytest.raises(UserError, match="command line: train.epochs: expected an integer"):
        load_run_config(path, overrides=parse_overrides(["train.epochs=x"]))


def test_the_cli_takes_them_before_and_after_options(experiment, capsys):
    assert main(["run", str(experiment), "seeds=[0]", "--list", "train.epochs=1"]) == 0
    assert "o: 2 arms × 1 seed (0) = 2 runs" in capsys.readouterr().out
    assert main(["run", str(experiment), "--list", "train.epochz=1"]) == 2
    assert "did you mean 'train.epochs'" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # argparse's own refusal of an unknown option
        main(["run", str(experiment), "--list", "--bogus"])
    assert main(["train", str(experiment), "--arm", "mm", "mixing.alpha=0.5", "--check", "train.epochs=1"]) == 0
    assert "ok: mm seed 0" in capsys.readouterr().out
