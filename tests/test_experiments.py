"""Every experiment file parses, and every image experiment trains one short step on the
CPU on data generated in its data set's format (no downloads)."""
import copy
from pathlib import Path

import pandas as pd
import pytest
import yaml

from repflat.rundir.experiment import run_path
from repflat.rundir.names import RunState
from repflat.config import ImageData, load_experiment, parse_experiment
from repflat.training.loop import train
from tests.datafiles import (make_cifar10, make_cifar100, make_imagefolder, make_mnist,
                             make_svhn, skip_md5)

FILES = sorted(Path("experiments").glob("*.yaml"))
# a handful of images each: one epoch is one or two steps of batch 4
MAKERS = {"mnist": lambda root: make_mnist(root, 4, 4),
          "cifar10": lambda root: make_cifar10(root, n_per_batch=1, n_test=4),
          "cifar100": lambda root: make_cifar100(root, 4, 4),
          "svhn": lambda root: make_svhn(root, 4, 4),
          "imagefolder": lambda root: make_imagefolder(root / "tiny-imagenet-200", per_class=1, size=64)}


def test_every_experiment_file_parses():
    assert len(FILES) >= 14
    for path in FILES:
        exp = load_experiment(path)
        assert exp.name == path.stem, path
        assert len(exp.arms) >= 3 and exp.seeds


IMAGE_FILES = [p for p in FILES if isinstance(load_experiment(p).runs[0].data, ImageData)]


@pytest.mark.parametrize("path", IMAGE_FILES, ids=lambda p: p.stem)
def test_image_experiment_runs_one_short_step(tmp_path, monkeypatch, path):
    skip_md5(monkeypatch)
    source = yaml.safe_load(path.read_text())
    data = source["base"]["data"]
    root = tmp_path / "data"
    MAKERS[data["name"]](root)
    short = copy.deepcopy(source)
    short["seeds"] = source["seeds"][:1]
    short["base"]["data"]["root"] = str(root / ("tiny-imagenet-200" if data["name"] == "imagefolder" else ""))
    # one epoch of one small batch, on the CPU; everything else as the file says
    short["base"]["train"] |= {"epochs": 1, "batch_size": 4, "schedule": "constant",
                               "milestones": [], "device": "cpu", "workers": 0}
    exp = parse_experiment(short)
    # manifold mixup exercises the most (mixing at named stages); every arm for one file
    every_arm = path == IMAGE_FILES[0]
    for run in (r for r in exp.runs if every_arm or r.name == "manifold_mixup"):
        out = run_path(tmp_path, run)
        assert train(run, out, progress=False) == RunState.NEW
        metrics = pd.read_csv(out / "metrics.csv")
        assert len(metrics) == 1 and metrics["train_loss"].notna().all()
