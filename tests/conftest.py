"""Shared fixtures: a tiny spirals config that trains in well under a second."""
from __future__ import annotations

import dataclasses

import pytest

from repflat.config import (CaptureConfig, MixingConfig, MLPModel, RunConfig, SpiralsData,
                            TrainConfig)

TINY_LAYERS = ("input", "fc1", "bottleneck", "fc2")


def tiny_config(strategy: str = "none", **mixing) -> RunConfig:
    if strategy == "manifold_mixup":
        mixing.setdefault("layers", ("input", "fc1", "bottleneck"))
    return RunConfig(
        name=strategy, seed=0,
        data=SpiralsData(n_per_class=40, seed=0),
        model=MLPModel(widths=(16,), bottleneck=2, widths_after=(16,)),
        mixing=MixingConfig(strategy=strategy, **mixing),
        train=TrainConfig(epochs=3, batch_size=17, lr=0.01),
        capture=CaptureConfig(layers=TINY_LAYERS, epochs=(0, 2), grid_resolution=8,
                              uniform_samples=16),
    )


@pytest.fixture
def tiny():
    return tiny_config


@pytest.fixture(scope="session")
def trained_runs(tmp_path_factory):
    """One tiny run per strategy, trained once for the whole session (read-only). Tests
    using it skip in the torch-free venv of `make test-analysis-only`."""
    pytest.importorskip("torch", reason="training runs needs torch")
    from repflat.training.loop import train

    root = tmp_path_factory.mktemp("runs")
    paths = {}
    for strategy in ("none", "input_mixup", "manifold_mixup"):
        for seed in (0, 1):
            cfg = dataclasses.replace(tiny_config(strategy), seed=seed)
            paths[strategy, seed] = root / f"{strategy}-seed{seed}"
            train(cfg, paths[strategy, seed], progress=False)
    return paths
