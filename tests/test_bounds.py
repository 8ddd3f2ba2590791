"""Work is bounded before it starts (issue 20): small hostile inputs that promise huge
work are refused in one line, exit status 2, before anything is expanded, allocated or
written.

Every case runs `repflat` in a child process whose peak resident memory is measured
(`os.wait4`'s rusage of that child alone, as tests/test_audit.py does, from a small
watcher process) and which is killed past 1 GB or 120 s, so a
regression shows as a failed assertion rather than an exhausted machine. Each hostile
input is under 1 MB; each must cost under 500 MB of resident memory (a command that
trains imports torch first, whose libraries alone take about 670 MB here: for those, 500 MB
above that).
"""
from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.test_bad_input import GOOD_EXPERIMENT, GOOD_RUN, features_dir, yaml_file

PEAK_MB = 500
KILL_MB = 1024
"""The watcher's kill line for a command that does not import torch; one that does gets
it above what importing torch costs on this machine (`torch_mb`: 630 MB in one venv,
860 MB in a fresh one with other CUDA wheels), so the kill never decides a test."""
KILL_S = 120


WATCH = r"""
import os, subprocess, sys, time
kill_mb, kill_s = float(sys.argv[1]), float(sys.argv[2])

def rss_mb(pid):
    try:
        with open(f"/proc/{pid}/status") as fh:
            return next((int(l.split()[1]) / 1024 for l in fh if l.startswith("VmRSS:")), 0.0)
    except OSError:
        return 0.0

child = subprocess.Popen(sys.argv[3:], stdout=subprocess.DEVNULL)
start, killed = time.monotonic(), False
while True:
    pid, status, usage = os.wait4(child.pid, os.WNOHANG)
    if pid:
        break
    if not killed and (rss_mb(child.pid) > kill_mb or time.monotonic() - start > kill_s):
        child.kill()
        killed = True
    time.sleep(0.05)
code = "killed" if killed else os.waitstatus_to_exitcode(status)
print(code, usage.ru_maxrss / 1024, time.monotonic() - start)
"""


def watched(command: list[str], cwd: Path | None = None,
            kill_mb: float = KILL_MB) -> tuple[int | None, float, str, float]:
    """(exit status, peak resident MB, stderr, seconds) of `command`, run by a fresh small
    Python that watches it (killing it past `kill_mb` or KILL_S: status None). The watcher
    is needed because a child forked from this test process would count the test
    process's own resident memory, torch's included, in its peak."""
    env = os.environ | {"PYTHONPATH": str(Path.cwd()), "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run([sys.executable, "-c", WATCH, str(kill_mb), str(KILL_S), *command],
                          capture_output=True, text=True, env=env, cwd=cwd, timeout=KILL_S + 60)
    status, peak, seconds = done.stdout.split()
    return (None if status == "killed" else int(status)), float(peak), done.stderr, float(seconds)


def bounded(argv: list[str], cwd: Path | None = None,
            kill_mb: float = KILL_MB) -> tuple[int | None, float, str, float]:
    """`watched` of `repflat ARGV`."""
    return watched([sys.executable, "-m", "repflat", *argv], cwd, kill_mb)


@functools.cache
def torch_mb() -> float:
    """Peak resident MB of a child that only imports torch (its shared libraries count:
    about 670 MB with CUDA's), the floor of any command that trains."""
    return watched([sys.executable, "-c", "import torch"])[1]


def refused(argv: list[str], fragment: str, *, out: Path | None = None, cwd: Path | None = None,
            torch: bool = False) -> str:
    """Run `repflat ARGV`; check it is refused in one line holding `fragment`, within
    PEAK_MB (above what importing torch costs, for a command that imports it), leaving
    `out` absent or empty."""
    floor = torch_mb() if torch else 0.0
    code, peak, err, seconds = bounded(argv, cwd, max(KILL_MB, floor + 2 * PEAK_MB))
    assert code == 2, f"status {code} after {seconds:.0f} s, {peak:.0f} MB: {err[-500:]}"
    assert peak - floor < PEAK_MB, f"{peak:.0f} MB ({floor:.0f} MB importing torch): {err[-300:]}"
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err[-2000:]
    assert fragment in err, err
    if out is not None:
        assert not out.exists() or not any(out.iterdir()), sorted(out.rglob("*"))
    return err


def _small(path: Path) -> Path:
    assert path.stat().st_size < 1 << 20
    return path


# ---------------------------------------------------------------- 1: experiment size

def _grid_bomb() -> dict:
    """Under 1 kB: five keys of 100 values each, 10^10 points."""
    values = {f"x{i}": i + 1 for i in range(100)}  # each valid for every key
    return {**GOOD_EXPERIMENT, "grid": {"arms": ["mm"], "params": {
        key: values for key in ("mixing.alpha", "train.lr", "train.weight_decay",
                                "train.input_noise", "evaluation.premise_alpha")}}}


def _many_seeds() -> dict:
    return {**GOOD_EXPERIMENT, "seeds": list(range(3000)),
            "arms": {f"a{i}": {} for i in range(800)}}


def _many_values() -> dict:
    return {**GOOD_EXPERIMENT, "grid": {"arms": ["mm"], "params": {
        "mixing.alpha": [1 + i / 10_000 for i in range(5_000)]}}}


EXPERIMENTS = {"grid_bomb": (_grid_bomb, "arms, more than the 1,000"),
               "arms_times_seeds": (_many_seeds, "runs (800 arms × 3,000 seeds)"),
               "many_values": (_many_values, "at most 1,000 values")}


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(EXPERIMENTS))
@pytest.mark.parametrize("flag", ["--list", "--check"])
def test_an_experiment_promising_too_many_runs_is_refused_before_expanding(tmp_path, case, flag):
    build, fragment = EXPERIMENTS[case]
    path = _small(Path(yaml_file(tmp_path, "e.yaml", build())))
    refused(["run", str(path), flag], fragment)


@pytest.mark.slow
@pytest.mark.parametrize("command", ["analyze", "report"])
def test_a_received_experiment_directory_promising_too_many_runs_is_refused(tmp_path, command):
    sent = tmp_path / "sent"
    (sent / "runs").mkdir(parents=True)
    _small(Path(yaml_file(sent, "experiment.yaml", _grid_bomb())))
    out = tmp_path / "out"
    refused([command, str(sent), "--out", str(out)], "more than the 1,000", out=out)


def test_the_arms_are_counted_without_expanding():
    from repflat.config.grid import arm_count

    grid = _grid_bomb()["grid"]
    assert arm_count(grid, GOOD_EXPERIMENT["arms"]) == 1 + 100 ** 5  # erm kept, mm replaced
    assert arm_count([grid, {"arms": ["erm"], "params": {"train.lr": [1, 2]}}],
                     GOOD_EXPERIMENT["arms"]) == 2 + 100 ** 5


def test_an_experiment_at_the_limits_still_parses():
    from repflat.config.loading import MAX_RUNS, parse_experiment

    exp = parse_experiment({**GOOD_EXPERIMENT, "seeds": list(range(MAX_RUNS // 2)),
                            "arms": {"erm": {}, "mm": {"mixing": {"strategy": "manifold_mixup"}}}})
    assert len(exp.runs) == MAX_RUNS
    assert [r.seed for r in exp.runs[:3]] == [0, 1, 2] and exp.runs[-1].name == "mm"
    assert exp.runs[-1].mixing.strategy == "manifold_mixup"


# ---------------------------------------------------------------- 3: absurd config values

ABSURD = {"grid_resolution": ({"capture": {"grid_resolution": 10 ** 6}}, "capture.grid_resolution"),
          "uniform_samples": ({"capture": {"uniform_samples": 10 ** 12}}, "capture.uniform_samples"),
          "width": ({"model": {"widths": [10 ** 9]}}, "model.widths"),
          "wide_pair": ({"model": {"widths": [60_000, 60_000]}}, "model.widths"),
          "bottleneck": ({"model": {"bottleneck": 10 ** 9}}, "model.bottleneck"),
          "epochs": ({"train": {"epochs": 10 ** 30}}, "train.epochs"),
          "batch_size": ({"train": {"batch_size": 10 ** 12}}, "train.batch_size"),
          "capture_batch": ({"capture": {"batch_size": 10 ** 12}}, "capture.batch_size"),
          "premise_mixes": ({"evaluation": {"premise_mixes": 10 ** 12}}, "evaluation.premise_mixes")}


def _absurd(change: dict) -> dict:
    base = {k: {**v, **change.get(k, {})} if isinstance(v, dict) else v for k, v in GOOD_RUN.items()}
    return {**GOOD_EXPERIMENT, "base": {**base, **{k: v for k, v in change.items() if k not in base}}}


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(ABSURD))
def test_a_legal_but_absurd_config_value_is_refused_before_anything_is_written(tmp_path, case):
    change, key = ABSURD[case]
    path = _small(Path(yaml_file(tmp_path, "e.yaml", _absurd(change))))
    out = tmp_path / "out"
    refused(["run", str(path), "--out", str(out), "--quiet"], key, out=out)


def test_the_largest_allowed_values_parse():
    from repflat.config.schema import (MAX_EPOCHS, MAX_GRID_RESOLUTION, MAX_UNIFORM_SAMPLES,
                                       MAX_WIDTH, RunConfig)
    from repflat.strict import parse

    cfg = parse(RunConfig, {"train": {"epochs": MAX_EPOCHS}, "model": {"widths": [MAX_WIDTH], "bottleneck": 2},
                            "capture": {"grid_resolution": MAX_GRID_RESOLUTION,
                                        "uniform_samples": MAX_UNIFORM_SAMPLES}})
    assert cfg.train.epochs == MAX_EPOCHS and cfg.model.widths == (MAX_WIDTH,)


# ---------------------------------------------------------------- 4: tables

HEADER = "epoch,x1,x2,label"  # a metrics table's epoch and a points table's columns


def _long_field() -> str:  # 0.4 MB: one line, one quoted field
    return f'{HEADER}\n0,1,2,"' + "a" * 400_000 + '"\n'


def _long_line() -> str:  # 0.4 MB: one line of 200,000 empty fields
    return f"{HEADER}\n0" + "," * 200_000 + "\n"


def _wide() -> str:  # under 1 MB: 5,000 columns, 90 rows
    return ",".join([HEADER] + [f"c{i}" for i in range(4996)]) + "\n" + \
        "".join(f"{i},{i % 2},1,{i % 2}," + "1," * 4995 + "1\n" for i in range(90))


TABLES = {"long_field": (_long_field, "characters long"), "long_line": (_long_line, "refusing to parse"),
          "wide": (_wide, "columns")}


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(TABLES))
def test_a_run_s_hostile_metrics_table_is_refused_before_pandas_parses_it(tmp_path, case):
    build, fragment = TABLES[case]
    run = Path(features_dir(tmp_path, np.ones((20, 3), np.float32), np.arange(20) % 2))
    (run / "metrics.csv").write_text(build())
    _small(run / "metrics.csv")
    out = tmp_path / "out"
    refused(["analyze", str(run), "--out", str(out)], fragment, out=out)


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(TABLES))
def test_hostile_csv_points_are_refused_before_anything_is_written(tmp_path, case):
    build, fragment = TABLES[case]
    (tmp_path / "points.csv").write_text(build())
    _small(tmp_path / "points.csv")
    exp = {**GOOD_EXPERIMENT, "base": {**GOOD_RUN, "data": {"name": "csv", "path": "points.csv"}}}
    path = yaml_file(tmp_path, "e.yaml", exp)
    out = tmp_path / "out"
    refused(["run", path, "--out", str(out), "--quiet"], fragment, out=out, torch=True)


def test_tables_at_the_limits_are_read():
    from repflat.files import CSV_COLUMNS, CSV_LINE, check_table

    check_table(",".join(["a"] * CSV_COLUMNS) + "\n" + "x" * CSV_LINE + "\n", "t.csv", "t")
    with pytest.raises(Exception, match="more than 1,000 columns"):
        check_table("a\n" + ",".join(["a"] * (CSV_COLUMNS + 1)), "t.csv", "t")


# ---------------------------------------------------------------- 5: array headers

@pytest.mark.slow
def test_an_npz_member_promising_32_gib_is_refused_before_allocating(tmp_path):
    import io
    import zipfile

    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False,
                                                  "shape": (1 << 32, 2)})
    with zipfile.ZipFile(tmp_path / "points.npz", "w") as archive:
        archive.writestr("x.npy", header.getvalue() + bytes(64))
        good = io.BytesIO()
        np.save(good, np.arange(8) % 2)
        archive.writestr("y.npy", good.getvalue())
    _small(tmp_path / "points.npz")
    exp = {**GOOD_EXPERIMENT, "base": {**GOOD_RUN, "data": {"name": "arrays", "path": "points.npz"}}}
    out = tmp_path / "out"
    refused(["run", yaml_file(tmp_path, "e.yaml", exp), "--out", str(out), "--quiet"],
            "promises shape (4294967296, 2)", out=out, torch=True)


@pytest.mark.slow
def test_a_weights_file_with_a_stride_0_head_is_refused(tmp_path):
    import torch

    torch.save({"fc.weight": torch.zeros(1).expand(10 ** 7, 512),
                "fc.bias": torch.zeros(1).expand(10 ** 7)}, tmp_path / "w.pt")
    _small(tmp_path / "w.pt")
    out = tmp_path / "out"
    refused(["extract", "--model", "resnet18", "--weights", str(tmp_path / "w.pt"), "--layers",
             "fc", "--data", "digits", "--out", str(out), "--quiet"], "stride-0", out=out, torch=True)


@pytest.mark.slow
def test_a_checkpoint_promising_a_huge_head_is_refused(tmp_path):
    import torch

    from tests.test_bad_input import trained_run

    run = Path(trained_run(tmp_path))
    ckpt = torch.load(run / "checkpoint.pt", weights_only=True)
    torch.save(ckpt | {"n_classes": 10 ** 12}, run / "checkpoint.pt")
    _small(run / "checkpoint.pt")
    out = tmp_path / "out"
    refused(["extract", "--run-dir", str(run), "--layers", "fc1", "--out", str(out), "--quiet"],
            "n_classes is 1000000000000", out=out, torch=True)


def test_weights_of_a_real_model_are_dense():
    import torch

    from repflat.training.checkpoint import hollow_tensor, stored_values

    state = torch.nn.Linear(3, 2).state_dict()
    assert hollow_tensor({"model": state, "rng": [torch.zeros(4)]}) is None
    assert stored_values(state) == 8
    assert hollow_tensor({"model": {"w": torch.zeros(1).expand(5)}}) == "model.w"
    assert hollow_tensor([torch.zeros(10)[2:]]) is None


# ---------------------------------------------------------------- 2: features manifests

def _aliased(root: Path, n: int = 1500) -> Path:
    """A run whose manifest lists one 400 kB array under `n` layer names: 200 kB of
    manifest, `n` times the work of the one array."""
    x = np.random.default_rng(0).normal(size=(2000, 50)).astype(np.float32)
    run = Path(features_dir(root, x, np.arange(2000) % 2))
    path = run / "features/manifest.json"
    manifest = json.loads(path.read_text())
    entry = manifest["entries"][0]
    manifest["entries"] = [entry | {"layer": f"l{i}"} for i in range(n)]
    path.write_text(json.dumps(manifest))
    return run


@pytest.mark.slow
def test_a_manifest_listing_one_array_under_many_names_is_refused(tmp_path):
    run = _aliased(tmp_path)
    assert _small(run / "features/manifest.json").stat().st_size > 150_000
    out = tmp_path / "out"
    refused(["analyze", str(run), "--out", str(out)], "same file", out=out)


@pytest.mark.parametrize("change, fragment", [
    (lambda e: [e] + [e | {"path": "features/" + "./" * 5_000 + e["path"].split("/", 1)[1]}],
     "at most 1,024 characters"),
    (lambda e: [e | {"shape": [1] * 1000}], "at most 32 axes"),
    (lambda e: [e, e | {"path": "features/x.npy"}], "twice"),
    (lambda e: [e | {"layer": f"l{i}", "path": f"features/l{i}.npy"} for i in range(100_001)],
     "at most 100,000 entries")])
def test_a_manifest_s_entries_are_bounded_before_they_are_processed(tmp_path, change, fragment):
    from repflat.errors import UserError
    from repflat.rundir.features import Features

    run = Path(features_dir(tmp_path, np.ones((20, 3), np.float32), np.arange(20) % 2))
    path = run / "features/manifest.json"
    manifest = json.loads(path.read_text())
    manifest["entries"] = change(manifest["entries"][0])
    path.write_text(json.dumps(manifest))
    with pytest.raises(UserError, match=fragment):
        Features(run)


def test_a_grid_of_thousands_of_keys_is_counted_without_huge_numbers():
    from repflat.config.loading import parse_experiment
    from repflat.errors import UserError

    keys = {f"k{i}": [1, 2] for i in range(20_000)}  # 2^20000: past Python's 4,300 digits
    with pytest.raises(UserError, match="over 10\\^15 arms"):
        parse_experiment({**GOOD_EXPERIMENT, "grid": {"arms": ["mm"], "params": keys}})
    with pytest.raises(UserError, match="train.epochs: expected at most 1,000,000, got 'over"):
        parse_experiment({**GOOD_EXPERIMENT, "base": {**GOOD_RUN, "train": {"epochs": 10 ** 5000}}})
