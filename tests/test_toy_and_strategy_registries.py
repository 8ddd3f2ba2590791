"""What grows is declared once, and its uses follow the declaration.

Toy data sets (repflat.config.toy.TOY_DATA) and strategies (repflat.config.strategies
.STRATEGIES, listed by the contract as repflat.rundir.names.STRATEGIES): each test fails
when a registry and one of its uses drift apart (docs/contributing.md says where a
new one goes).
"""
from __future__ import annotations

import dataclasses
import re
import typing
from pathlib import Path

import numpy as np
import pytest

from repflat.config import DataConfig, MixingConfig
from repflat.config.strategies import MIXING_STRATEGIES, STRATEGIES, strategy
from repflat.config.toy import TOY_DATA
from repflat.rundir import names

# the config reference, moved out of the README into the documentation site
CONFIG = (Path(__file__).resolve().parent.parent / "docs" / "config.md").read_text()
CONFIG_ROWS = [line for line in CONFIG.splitlines() if line.startswith("| data (`name: ")]


def toy_name(cls) -> str:
    return typing.get_args(typing.get_type_hints(cls)["name"])[0]


def test_every_toy_set_is_a_data_config_and_named_in_the_config_reference():
    readme_names = {n for row in CONFIG_ROWS for n in re.findall(r"`?([a-z_0-9]+)`?",
                                                                row.split("|")[1][len(" data (`name: "):])}
    for cls in TOY_DATA:
        assert cls in typing.get_args(DataConfig), cls
        assert toy_name(cls) in readme_names, f"docs/config.md's config table has no row for {toy_name(cls)}"
    assert typing.get_args(DataConfig)[0] is TOY_DATA[0]  # the default data set comes first


@pytest.mark.parametrize("cls", TOY_DATA, ids=toy_name)
def test_every_toy_set_generates_balanced_2d_points_from_its_defaults(cls):
    cfg = cls(**({"n_per_class": 20} if "n_per_class" in {f.name for f in dataclasses.fields(cls)} else {}))
    x, y = cfg.points()
    x, y = np.asarray(x), np.asarray(y)
    k = getattr(cfg, "n_classes", 2)
    assert x.shape == (20 * k, 2) and np.isfinite(x).all()
    assert np.bincount(y.astype(np.int64), minlength=k).tolist() == [20] * k


def test_strategies_are_the_config_s_values_and_the_contract_s_names():
    assert typing.get_args(typing.get_type_hints(MixingConfig)["strategy"]) == MIXING_STRATEGIES
    assert names.STRATEGIES is STRATEGIES
    assert len({s.name for s in STRATEGIES}) == len(STRATEGIES)
    assert [s.name for s in STRATEGIES if s.baseline] == ["none"]
    assert strategy("erm").name == "none" and strategy("nonsense") is None
    mixing_row = next(line for line in CONFIG.splitlines() if line.startswith("| mixing |"))
    for name in MIXING_STRATEGIES:
        assert f"`{name}`" in mixing_row, f"docs/config.md's mixing row does not name {name}"


def test_every_mixing_strategy_builds_a_mixer():
    torch = pytest.importorskip("torch")
    from repflat.config import MLPModel
    from repflat.training.mixing import build_mixer
    from repflat.training.models import build_model

    model = build_model(MLPModel(widths=(4,), bottleneck=None, widths_after=()), (2,), 2, seed=0)
    x, targets = torch.randn(6, 2), torch.eye(2)[torch.tensor([0, 1, 0, 1, 0, 1])]
    for name in MIXING_STRATEGIES:
        mixer = build_mixer(MixingConfig(strategy=name), model, torch.Generator().manual_seed(0))
        logits, mixed = mixer(model, x, targets)
        assert logits.shape == mixed.shape == (6, 2), name
