"""A training run killed with SIGKILL and resumed ends bit-identical to an uninterrupted one."""
import dataclasses
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from repflat.rundir.names import RunState
from repflat.config import dump_yaml
from repflat.rundir.features import Features
from repflat.training.loop import learning_rate, train


def config(tiny):
    cfg = tiny("manifold_mixup")
    return dataclasses.replace(
        cfg, data=dataclasses.replace(cfg.data, n_per_class=150),
        model=dataclasses.replace(cfg.model, dropout=0.2),  # the global generator matters too
        train=dataclasses.replace(cfg.train, epochs=150, input_noise=0.05, checkpoint_every=7,
                                  optimizer="sgd", schedule="step", milestones=(60, 120)),
        capture=dataclasses.replace(cfg.capture, epochs=(0, 40, 90)))


def same_run(a, b) -> None:
    wa = torch.load(a / "checkpoint.pt", weights_only=True)["model"]
    wb = torch.load(b / "checkpoint.pt", weights_only=True)["model"]
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    fa, fb = Features(a), Features(b)
    assert sorted((e.split, e.epoch, e.layer, e.sha256) for e in fa.entries) == \
        sorted((e.split, e.epoch, e.layer, e.sha256) for e in fb.entries)
    assert fa.label_sha256 == fb.label_sha256


def rows(path) -> int:
    try:
        return max(0, len((path / "metrics.csv").read_text().splitlines()) - 1)
    except OSError:
        return 0


def test_sigkill_then_resume_is_bit_identical(tmp_path, tiny):
    cfg = config(tiny)
    train(cfg, tmp_path / "whole", progress=False)
    (tmp_path / "c.yaml").write_text(dump_yaml(cfg))
    command = [sys.executable, "-m", "repflat", "train", str(tmp_path / "c.yaml"), "--out",
               str(tmp_path / "cut"), "--quiet"]
    env = os.environ | {"PYTHONPATH": os.getcwd()}
    proc = subprocess.Popen(command, env=env)
    deadline = time.monotonic() + 120
    while rows(tmp_path / "cut") < 50 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    if proc.poll() is not None:
        pytest.fail("the run finished before it could be killed; make it longer")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = rows(tmp_path / "cut")
    assert 50 <= killed_at < 150
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    assert done.returncode == 0 and "resumed from its checkpoint" in done.stdout, done.stderr
    same_run(tmp_path / "whole", tmp_path / "cut")


def test_restart_flag_discards_the_checkpoint(tmp_path, tiny):
    cfg = dataclasses.replace(tiny(), train=dataclasses.replace(tiny().train, checkpoint_every=1))
    train(cfg, tmp_path / "a", progress=False)
    train(cfg, tmp_path / "b", progress=False)
    (tmp_path / "b/run.json").write_text('{"status": "running"}')
    assert train(cfg, tmp_path / "b", progress=False, restart=True) == RunState.NEW
    same_run(tmp_path / "a", tmp_path / "b")


@pytest.mark.parametrize("schedule, expect", [
    ({"schedule": "constant"}, [0.1, 0.1, 0.1, 0.1]),
    ({"schedule": "step", "milestones": (1, 3)}, [0.1, 0.01, 0.01, 0.001]),
    ({"schedule": "cosine"}, [0.1, 0.1 * (1 + 2 ** -0.5) / 2, 0.05, 0.1 * (1 - 2 ** -0.5) / 2]),
])
def test_learning_rate_schedules(tiny, schedule, expect):
    tc = dataclasses.replace(tiny().train, lr=0.1, epochs=4, **schedule)
    assert [learning_rate(tc, e) for e in (1, 2, 3, 4)] == pytest.approx(expect)
