"""Crash safety: SIGKILL at seeded random moments, then rerun, against an uninterrupted run.

For training, capture (extraction) and analysis alike: the command is started, killed
at a random moment while it works, its directory is checked (every array the manifest
lists exists and matches its checksum: no manifest ever names a partial file), and
this repeats KILLS times; a final rerun must complete with outputs identical to an
uninterrupted run's. docs/reliability.md states KILLS.
"""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
import dataclasses

import pytest
import torch
import torchvision

from repflat.config import dump_yaml
from repflat.rundir.features import Features
from repflat.rundir.names import MANIFEST
from tests.datafiles import make_imagefolder

KILLS = 4
ENV = os.environ | {"PYTHONPATH": os.getcwd(), "OMP_NUM_THREADS": "1"}


def repflat(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "repflat", *args, "--quiet"], env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def wait_for(path: Path, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"{path} never appeared: {proc.stderr.read()[-2000:] if proc.stderr else ''}")
        time.sleep(0.01)


def manifest_is_whole(run: Path) -> None:
    """Every listed array is complete: present, and its bytes match the checksum."""
    if not (run / MANIFEST).is_file():
        return
    fs = Features(run)
    for entry in fs.entries:
        assert not entry.path.endswith(".partial")
        fs.load(entry)  # verifies the sha256 and the header's shape and dtype
    for split in fs.label_paths:
        fs.labels(split)


def timed_work(args: list[str], started: Path) -> float:
    """Run `args` uninterrupted; return the seconds from `started` appearing to the end."""
    proc = repflat(*args)
    wait_for(started, proc)
    begin = time.monotonic()
    assert proc.wait() == 0, proc.stderr.read()
    return time.monotonic() - begin


def kill_repeatedly(args: list[str], started: Path, out: Path, seed: int, work: float) -> int:
    """Start `args` KILLS times, each killed a random 5-20% of `work` seconds after
    `started` appears (resumed runs go on from where the last stopped, so together the
    kills land at random points of the whole job, and it cannot finish before them)."""
    rng = random.Random(seed)
    kills = 0
    for _ in range(KILLS):
        proc = repflat(*args)
        wait_for(started, proc)
        time.sleep(rng.uniform(0.05, 0.2) * work)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait()
        manifest_is_whole(out)
    return kills


def finish(args: list[str]) -> None:
    proc = repflat(*args)
    assert proc.wait() == 0, proc.stderr.read()


def test_training_killed_repeatedly_resumes_to_the_same_run(tmp_path, tiny):
    cfg = tiny("manifold_mixup")
    cfg = dataclasses.replace(
        cfg, data=dataclasses.replace(cfg.data, n_per_class=120),
        train=dataclasses.replace(cfg.train, epochs=400, checkpoint_every=9),
        capture=dataclasses.replace(cfg.capture, epochs=(0, 50, 150, 250, 350)))
    (tmp_path / "c.yaml").write_text(dump_yaml(cfg))
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    work = timed_work(["train", str(tmp_path / "c.yaml"), "--out", str(whole)], whole / "run.json")
    args = ["train", str(tmp_path / "c.yaml"), "--out", str(cut)]
    assert kill_repeatedly(args, cut / "run.json", cut, seed=1, work=work) == KILLS
    finish(args)
    wa = torch.load(whole / "checkpoint.pt", weights_only=True)["model"]
    wb = torch.load(cut / "checkpoint.pt", weights_only=True)["model"]
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert entries(whole) == entries(cut)
    assert not list(cut.rglob("*.repflat-tmp")) and not list(cut.rglob("*.partial"))


def entries(run: Path) -> list:
    fs = Features(run)
    return sorted((e.split, e.epoch, e.layer, e.sha256) for e in fs.entries) + sorted(fs.label_sha256.items())


def test_extraction_killed_repeatedly_resumes_to_the_same_arrays(tmp_path):
    make_imagefolder(tmp_path / "data", classes=("a", "b"), per_class=120, size=32)
    weights = tmp_path / "w.pt"
    torch.manual_seed(0)
    torch.save(torchvision.models.resnet18(num_classes=2).state_dict(), weights)
    args = ["extract", "--model", "resnet18", "--weights", str(weights), "--layers",
            "layer2,layer3,fc", "--data", "imagefolder", "--root", str(tmp_path / "data"),
            "--split", "train,test", "--batch-size", "4"]
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    work = timed_work([*args, "--out", str(whole)], whole / "extract.yaml")
    kills = kill_repeatedly([*args, "--out", str(cut), "--resume"], cut / "extract.yaml", cut,
                            seed=2, work=work)
    finish([*args, "--out", str(cut), "--resume"])
    assert kills == KILLS
    assert entries(whole) == entries(cut)
    assert not list(cut.rglob("*.repflat-tmp")) and not list(cut.rglob("*.partial"))


def test_analysis_killed_repeatedly_then_rerun_writes_the_same_outputs(tmp_path, trained_runs):
    runs = [str(p) for p in trained_runs.values()]
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    work = timed_work(["analyze", *runs, "--out", str(whole)], whole)
    args = ["analyze", *runs, "--out", str(cut)]
    assert kill_repeatedly(args, cut, cut, seed=3, work=work) == KILLS
    finish(args)
    for name in ("spectra.csv", "flattening.csv", "summary.csv", "training.csv", "report.md"):
        assert (cut / name).read_bytes() == (whole / name).read_bytes(), name
    assert not list(cut.rglob("*.repflat-tmp"))


def report_is_whole(out: Path) -> None:
    """The report on disk shows only figures that exist (the swap moves figures first)."""
    import re

    for page in ("report.md", "report.html"):
        if (out / page).is_file():
            text = (out / page).read_text()
            shown = re.findall(r"\]\(([\w.-]+\.png)\)", text) + re.findall(r"src='([\w.-]+\.png)'", text)
            assert all((out / name).is_file() for name in shown), (page, shown)


def test_report_killed_repeatedly_keeps_a_whole_report(tmp_path, trained_runs):
    runs = [str(p) for p in trained_runs.values()]
    out = tmp_path / "an"
    finish(["analyze", *runs, "--out", str(out)])
    args = ["report", str(out), "--link-images", "--embeddings", "pca"]
    work = timed_work(args, out / "report.html")
    rng = random.Random(5)
    for _ in range(KILLS):
        proc = repflat(*args)
        time.sleep(rng.uniform(0.3, 1.0) * work)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        report_is_whole(out)
    finish(args)
    report_is_whole(out)
    assert not list(out.rglob("*.repflat-tmp")) and not list(out.glob(".stage.*.repflat-tmp"))


@pytest.mark.parametrize("sig, code, said", [(signal.SIGINT, 130, "interrupted"),
                                             (signal.SIGTERM, 143, "terminated")])
def test_ctrl_c_stops_parallel_training_at_once_and_the_rerun_resumes(tmp_path, sig, code, said):
    """SIGINT to `repflat run --jobs 2` alone (a notebook's interrupt, `kill -INT`), or
    SIGTERM (`kill`, a scheduler): the workers stop too, instead of training on unseen
    (SIGTERM's default action ended the main process alone), and a rerun continues."""
    exp = {"name": "long", "seeds": [0, 1],
           "base": {"data": {"n_per_class": 20}, "model": {"widths": [8], "bottleneck": 2,
                                                           "widths_after": [8]},
                    "train": {"epochs": 100000, "batch_size": 20, "checkpoint_every": 50},
                    "capture": {"layers": ["fc1"], "epochs": [], "grid_resolution": 4,
                                "uniform_samples": 4}},
           "arms": {"erm": {"mixing": {"strategy": "none"}}}}
    (tmp_path / "e.yaml").write_text(dump_yaml(exp))
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "repflat", "run", str(tmp_path / "e.yaml"),
                             "--out", str(out), "--jobs", "2", "--quiet"], env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    metrics = [out / f"runs/erm-seed{s}/metrics.csv" for s in (0, 1)]
    for path in metrics:
        wait_for(path, proc)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code and said in err, err
    before = [(p.stat().st_mtime_ns, p.stat().st_size) for p in metrics]
    time.sleep(2)  # a worker still training would rewrite metrics.csv at least once a second
    assert [(p.stat().st_mtime_ns, p.stat().st_size) for p in metrics] == before
    # Both runs are left resumable: the same command plans to continue them.
    done = subprocess.run([sys.executable, "-m", "repflat", "run", str(tmp_path / "e.yaml"),
                           "--out", str(out), "--check"], env=ENV, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "2 runs into" in done.stdout and "0 complete already" in done.stdout, done.stdout
