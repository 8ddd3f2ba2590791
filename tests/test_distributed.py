"""Under torchrun: two gloo processes on the CPU, against one process."""
import os
import subprocess
import sys

import numpy as np
import pandas as pd

from repflat.cli import main
from repflat.config import dump_yaml
from repflat.base.data import load_data
from repflat.rundir.run import read_run
from repflat.rundir.features import Features


def torchrun(*args: str, nproc: int = 2) -> None:
    env = os.environ | {"OMP_NUM_THREADS": "1", "PYTHONPATH": os.getcwd()}
    out = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node",
                          str(nproc), "--master_port", str(29500 + os.getpid() % 1000),
                          "-m", "repflat", *args], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]


def test_two_gloo_processes_equal_one(tmp_path, trained_runs):
    run = trained_runs["manifold_mixup", 0]
    common = ["--run-dir", str(run), "--layers", "input,fc1,bottleneck", "--split", "train,test",
              "--batch-size", "7", "--quiet"]
    assert main(["extract", *common, "--out", str(tmp_path / "one")]) == 0
    torchrun("extract", *common, "--out", str(tmp_path / "two"))
    one, two = Features(tmp_path / "one"), Features(tmp_path / "two")
    assert [(e.split, e.layer, e.sha256) for e in one.entries] == \
        [(e.split, e.layer, e.sha256) for e in two.entries]
    assert one.label_sha256 == two.label_sha256


def test_training_under_ddp_completes_with_every_row_captured(tmp_path, tiny):
    cfg = tiny("manifold_mixup")
    (tmp_path / "c.yaml").write_text(dump_yaml(cfg))
    torchrun("train", str(tmp_path / "c.yaml"), "--out", str(tmp_path / "run"), "--quiet")
    run = read_run(tmp_path / "run")
    assert run.status == "complete"
    metrics = pd.read_csv(tmp_path / "run/metrics.csv")
    assert metrics["epoch"].tolist() == [1, 2, 3]
    fs = run.features
    y = fs.labels("train")
    x = fs.load(fs.get("train", 3, "input"))
    assert len(x) == len(y) == cfg.data.n_per_class * 2 * (1 - cfg.data.test_fraction)
    # every row was written by one of the ranks: the captured inputs are the data's
    np.testing.assert_array_equal(x, load_data(cfg.data).arrays["train"])
