"""--tensorboard DIR: each run's metrics.csv rows, epoch by epoch, as TensorBoard scalars
(repflat.training.live), off by default, refused up front where it cannot be written."""
import os
import sys

import pandas as pd
import pytest
import yaml

from repflat.cli import main

RUN = {"data": {"name": "moons", "n_per_class": 30, "seed": 0},
       "model": {"name": "mlp", "widths": [8], "bottleneck": None, "widths_after": []},
       "train": {"epochs": 3, "batch_size": 20},
       "mixing": {"strategy": "manifold_mixup", "alpha": 2.0, "layers": ["fc1"]},
       "capture": {"layers": ["fc1"]}, "seed": 0}


def test_every_epoch_of_metrics_csv_is_a_scalar_in_tensorboard(tmp_path, monkeypatch):
    accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    monkeypatch.setenv("REPFLAT_TENSORBOARD", "")  # off; restored after the test, whatever --tensorboard set
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(RUN))
    assert main(["train", str(tmp_path / "run.yaml"), "--out", str(tmp_path / "mine"),
                 "--tensorboard", str(tmp_path / "tb"), "--quiet"]) == 0
    events = accumulator.EventAccumulator(str(tmp_path / "tb" / "mine"))
    events.Reload()
    metrics = pd.read_csv(tmp_path / "mine" / "metrics.csv")
    for column in ("train_loss", "test_accuracy", "test_nll", "mean_lambda", "lambda_std"):
        logged = [(e.step, e.value) for e in events.Scalars(column)]
        assert [s for s, _ in logged] == metrics["epoch"].tolist(), column
        assert [v for _, v in logged] == pytest.approx(metrics[column].tolist(), rel=1e-6), column


def test_without_the_flag_nothing_is_written_and_without_the_package_it_is_refused(
        tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("REPFLAT_TENSORBOARD", "")
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(RUN))
    assert main(["train", str(tmp_path / "run.yaml"), "--out", str(tmp_path / "plain"), "--quiet"]) == 0
    assert not os.environ["REPFLAT_TENSORBOARD"]
    assert not any(p.name.startswith("events.out") for p in tmp_path.rglob("*"))
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # as if not installed
    import importlib.util
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "tensorboard" else object())
    assert main(["train", str(tmp_path / "run.yaml"), "--out", str(tmp_path / "x"),
                 "--tensorboard", str(tmp_path / "tb"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "pip install 'repflat[tensorboard]'" in err and not (tmp_path / "x").exists()
