"""The run as one typed object: a run directory read once into a RunInfo, an experiment
directory into an ExperimentDir (numpy only: written here by the contract's writers)."""
from __future__ import annotations

import collections
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from repflat import files
from repflat.config import RunConfig, SpiralsData
from repflat.config.loading import dump_yaml
from repflat.rundir.experiment import ExperimentDir, read_experiment_dir, run_path
from repflat.rundir.features import FeatureWriter, MemoryFeatures
from repflat.rundir.label import RunLabel
from repflat.rundir.names import EXPERIMENT_FILE, RunState, Status
from repflat.rundir.run import RunInfo, RunWriter, read_run
from repflat.strict import to_plain

CONFIG = RunConfig(name="mm", seed=3, data=SpiralsData(n_per_class=10))


def write_run(root) -> None:
    run = RunWriter(root, to_plain(CONFIG), RunState.NEW, threads=1)
    for epoch in (1, 2):
        run.log_epoch({"epoch": epoch, "lr": 0.1, "train_loss": 1.0 / epoch, "test_accuracy": 0.5,
                       "test_error": 0.5, "test_nll": 0.7, "seconds": 0.01}, flush=True)
    run.finish(1.5, {"final_test_error": 0.5})
    writer = FeatureWriter(root)
    writer.add_labels("train", np.arange(6) % 2)
    writer.add("train", 2, "fc1", np.ones((6, 3), np.float32))


def test_a_run_directory_is_read_once_into_a_typed_record(tmp_path, monkeypatch):
    write_run(tmp_path / "run")
    opened = collections.Counter()
    real = files.read_bytes
    monkeypatch.setattr(files, "read_bytes",
                        lambda path, *a, **k: opened.update([str(path).rsplit("/", 1)[-1]]) or real(path, *a, **k))
    run = read_run(tmp_path / "run")
    assert (run.name, run.strategy, run.seed, run.status) == ("mm", "none", 3, Status.COMPLETE)
    assert run.results["final_test_error"] == 0.5 and run.results["seconds"] == 1.5
    assert run.cfg == CONFIG and run.config == to_plain(CONFIG)
    assert run.label == RunLabel("mm", "none", 3, {}) and not run.in_memory
    assert isinstance(run.metrics, pd.DataFrame) and run.metrics["epoch"].tolist() == [1, 2]
    assert run.metrics is run.metrics  # read when first asked for, then held
    assert opened == {"config.yaml": 1, "run.json": 1, "manifest.json": 1, "metrics.csv": 1}


def test_features_in_memory_are_a_run_without_files():
    fs = MemoryFeatures({("train", 0, "h"): np.ones((4, 2))}, {"train": np.arange(4) % 2})
    run = RunInfo(Path("mine"), "mine", "unknown", "unknown", Status.UNKNOWN, None, fs)
    assert run.in_memory and run.metrics is None and run.cfg is None and run.results == {}
    assert run.label == RunLabel("mine", "unknown", None, {}) and run.run_id == "mine"


def test_a_config_this_version_does_not_read_is_kept_as_written(tmp_path):
    write_run(tmp_path / "run")
    (tmp_path / "run/config.yaml").write_text(dump_yaml(to_plain(CONFIG) | {"added_later": 1}))
    run = read_run(tmp_path / "run")
    assert run.cfg is None and run.config["added_later"] == 1 and run.name == "mm"


def test_an_experiment_directory_is_read_once(tmp_path):
    data = {"name": "tiny", "description": "two arms", "seeds": [0, 1],
            "base": {"data": {"n_per_class": 10}},
            "arms": {"erm": {"mixing": {"strategy": "none"}}},
            "grid": {"arms": ["erm"], "params": {"train.lr": [0.1, 0.2]}}}
    (tmp_path / EXPERIMENT_FILE).write_text(dump_yaml(data))
    found = read_experiment_dir(tmp_path)
    assert isinstance(found, ExperimentDir) and found.name == "tiny"
    assert found.description == "two arms"
    assert sorted(found.points) == ["erm-lr0.1", "erm-lr0.2"]
    assert found.run_paths == [run_path(tmp_path, r) for r in found.experiment.runs]
    assert found.run_paths[0] == tmp_path / "runs" / "erm-lr0.1-seed0"


@pytest.mark.parametrize("missing", ["config.yaml", "run.json", "metrics.csv"])
def test_a_run_without_one_of_its_files_still_reads(tmp_path, missing):
    write_run(tmp_path / "run")
    (tmp_path / "run" / missing).unlink()
    run = read_run(tmp_path / "run")
    assert {"config.yaml": run.config, "run.json": run.results or None,
            "metrics.csv": run.metrics}[missing] is None
