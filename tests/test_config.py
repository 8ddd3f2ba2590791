import dataclasses

import pytest

from repflat.config import (MixingConfig, RunConfig, TrainConfig, dump_yaml, load_experiment,
                            load_run_config, parse_experiment)
from repflat.errors import UserError
from repflat.strict import parse, to_plain


def test_defaults_round_trip_through_yaml(tmp_path, tiny):
    cfg = tiny("manifold_mixup", alpha=1.5)
    path = tmp_path / "c.yaml"
    path.write_text(dump_yaml(cfg))
    assert load_run_config(path) == cfg
    assert parse(RunConfig, to_plain(cfg)) == cfg


@pytest.mark.parametrize("data, message", [
    ({"trian": {}}, "config: unknown key 'trian' (did you mean 'train'?)"),
    ({"train": {"epochs": "ten"}}, "train.epochs: expected an integer, got 'ten'"),
    ({"train": {"epochs": True}}, "train.epochs: expected an integer, got True"),
    ({"train": {"epochs": 0}}, "train.epochs: expected an integer >= 1, got 0"),
    ({"train": {"lr": -1}}, "train.lr: expected a number > 0, got -1.0"),
    ({"mixing": {"alpha": 0}}, "mixing.alpha: expected a number > 0, got 0.0"),
    ({"mixing": {"strategy": "cutmix"}}, "mixing.strategy: expected one of 'none', 'input_mixup'"),
    ({"mixing": {"strategy": "input_mixup", "layers": ["fc1"]}}, "mixing.layers: expected [] or"),
    ({"model": {"widths": [64, 0]}}, "model.widths: expected a list of positive integers"),
    ({"capture": {"epochs": [500]}, "train": {"epochs": 10}}, "capture.epochs: expected epochs <= train.epochs (10), got [500]"),
    ([1, 2], "config: expected a mapping (RunConfig)"),
])
def test_strict_parse_names_the_key(data, message):
    with pytest.raises(UserError) as err:
        parse(RunConfig, data)
    assert message in str(err.value)


def test_int_is_accepted_where_a_float_is_expected():
    assert parse(TrainConfig, {"lr": 1}).lr == 1.0


def test_experiment_resolves_arms_and_seeds():
    exp = parse_experiment({
        "name": "x", "seeds": [3, 4],
        "base": {"train": {"epochs": 5}},
        "arms": {"erm": {}, "mm": {"mixing": {"strategy": "manifold_mixup"}}},
    })
    assert [(r.name, r.seed) for r in exp.runs] == [("erm", 3), ("erm", 4), ("mm", 3), ("mm", 4)]
    assert all(r.train.epochs == 5 for r in exp.runs)
    assert exp.runs[2].mixing == MixingConfig(strategy="manifold_mixup")


@pytest.mark.parametrize("data, message", [
    ({"arms": {}}, "arms: expected a non-empty mapping"),
    ({"arms": {"a": {}}, "seeds": []}, "seeds: expected a non-empty list of integers"),
    ({"arms": {"a": {"mixing": {"alpha": -1}}}}, "arms.a.mixing.alpha: expected a number > 0"),
    ({"arms": {"a": {}}, "base": {"train": {"epochz": 1}}}, "base.train: unknown key 'epochz'"),
    ({"arms": {"a": {}}, "analysis": {"rtol": 2}}, "analysis.rtol: expected a number in [1e-07, 1)"),
])
def test_experiment_errors(data, message):
    with pytest.raises(UserError) as err:
        parse_experiment(data)
    assert message in str(err.value)


def test_train_config_can_pick_an_arm_of_an_experiment(tmp_path):
    path = tmp_path / "e.yaml"
    path.write_text("name: e\nseeds: [7]\narms:\n  a: {}\n  b: {mixing: {strategy: input_mixup}}\n")
    cfg = load_run_config(path, arm="b")
    assert (cfg.name, cfg.seed, cfg.mixing.strategy) == ("b", 7, "input_mixup")
    with pytest.raises(UserError, match="^arm: "):
        load_run_config(path)
    with pytest.raises(UserError, match="unknown name 'c'"):
        load_run_config(path, arm="c")


def test_shipped_experiments_parse():
    exp = load_experiment("experiments/spirals.yaml")
    assert exp.arms == ("erm", "input_mixup", "manifold_mixup")
    assert len(exp.seeds) >= 3
    assert dataclasses.asdict(exp.runs[0])["model"]["bottleneck"] == 2


def test_errors_say_file_line_and_column_with_the_likely_key(tmp_path):
    from repflat.config import load_experiment, load_run_config

    exp = tmp_path / "e.yaml"
    exp.write_text("name: t\nseeds: [0]\nbase:\n  train: {epochs: 2}\narms:\n  erm: {}\n"
                   "  mm:\n    mixing:\n      strategy: manifold_mixup\n      alpah: 2\n")
    with pytest.raises(UserError, match=r"e\.yaml:10:7: arms\.mm\.mixing: unknown key 'alpah' "
                                        r"\(did you mean 'alpha'\?\)"):
        load_experiment(exp)
    run = tmp_path / "c.yaml"
    run.write_text("train:\n  learning_rate: 0.1\ncapture:\n  layers: [fc1, 2]\n")
    with pytest.raises(UserError, match=r"c\.yaml:2:3: train: unknown key 'learning_rate' \(did you mean 'lr'\?\)"):
        load_run_config(run)
    run.write_text("train:\n  learning_rat: 0.1\n")  # a misspelt synonym still finds its key
    with pytest.raises(UserError, match=r"unknown key 'learning_rat' \(did you mean 'lr'\?\)"):
        load_run_config(run)
    run.write_text("capture:\n  layers: [fc1, 2]\n")
    with pytest.raises(UserError, match=r"c\.yaml:2:17: capture\.layers\[1\]: expected a string, got 2"):
        load_run_config(run)
    run.write_text("train: [1, 2\n")
    with pytest.raises(UserError, match=r"c\.yaml:2:1 is not valid YAML \(while parsing a flow sequence"):
        load_run_config(run)
    # an error in base is named and placed there, before any arm is parsed
    exp.write_text("name: t\nbase:\n  train: {epochs: ten}\narms:\n  erm: {}\n")
    with pytest.raises(UserError, match=r"e\.yaml:3:11: base\.train\.epochs: expected an integer"):
        load_experiment(exp)
