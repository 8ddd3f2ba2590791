"""What repflat touches when it reads a directory someone else made.

Two promises of the threat model (docs/reliability.md) checked from the outside:

- `report` and `analyze` of a received directory write nothing outside `--out` and read
  nothing outside their inputs: every file they open, create, rename or delete is logged
  by a Python audit hook (PEP 578) in a child process, and the log is checked;
- tiny hostile files cost bounded memory: a 240 kB array of 2 × 30,000 values and
  labels promising a gigabyte are analysed, or refused, within 500 MB of resident memory.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from repflat.cli import main
from tests import hostile
from tests.test_bad_input import GOOD_EXPERIMENT, features_dir, yaml_file

AUDITED = r"""
import json, os, sys
log = open(os.environ["AUDIT_LOG"], "w", buffering=1)
WRITES = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
CHANGES = {"os.rename", "os.replace", "os.remove", "os.unlink", "os.rmdir", "os.mkdir",
           "os.symlink", "os.link", "os.truncate", "os.chmod", "shutil.rmtree", "shutil.copyfile"}

def name(p):
    return os.fsdecode(p) if isinstance(p, (str, bytes, os.PathLike)) else None

def hook(event, args):
    if event == "open" and name(args[0]) is not None:
        mode, flags = args[1], args[2] or 0
        writes = bool(flags & WRITES) or any(c in (mode or "") for c in "wax+")
        log.write(json.dumps(["write" if writes else "read", name(args[0])]) + "\n")
    elif event in ("os.listdir", "os.scandir") and args and name(args[0]) is not None:
        log.write(json.dumps(["read", name(args[0])]) + "\n")
    elif event in CHANGES:
        for a in args[:2]:
            if name(a) is not None:
                log.write(json.dumps(["write", name(a)]) + "\n")

sys.addaudithook(hook)
from repflat.cli import main
sys.exit(main(sys.argv[1:]))
"""


def audited(argv: list[str], root: Path, cwd: Path) -> list[tuple[str, Path]]:
    """Run `repflat ARGV` with every file access logged; return (kind, absolute path)."""
    log = root / "audit.log"
    env = os.environ | {"AUDIT_LOG": str(log), "PYTHONDONTWRITEBYTECODE": "1",
                        "PYTHONPATH": str(Path.cwd()), "MPLCONFIGDIR": str(root / "mplconfig")}
    warm = subprocess.run([sys.executable, "-c", "import matplotlib.pyplot"], env=env)  # font cache
    assert warm.returncode == 0
    done = subprocess.run([sys.executable, "-c", AUDITED, *argv], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in log.read_text().splitlines()]
    return [(kind, Path(os.path.abspath(cwd / path))) for kind, path in events]


def within(path: Path, *roots: Path) -> bool:
    return any(path == r or r in path.parents for r in roots)


@pytest.fixture(scope="module")
def received(tmp_path_factory) -> Path:
    """An experiment directory as a collaborator would send it, and beside it things of
    the user's: a secret file and a run of the user's own that the received
    analysis.json points at (with a checksum that does not match it)."""
    root = tmp_path_factory.mktemp("audit")
    exp = {**GOOD_EXPERIMENT, "base": {**GOOD_EXPERIMENT["base"], "capture": {
        **GOOD_EXPERIMENT["base"]["capture"], "splits": ["train"]}}}
    assert main(["run", yaml_file(root, "e.yaml", exp), "--out", str(root / "sent"), "--quiet"]) == 0
    inbox = root / "inbox"
    shutil.copytree(root / "sent", inbox / "exp")
    shutil.rmtree(root / "sent")
    (root / "mine").mkdir()
    (root / "mine" / "secret.txt").write_text("token=hunter2\n")
    own = Path(features_dir(root / "mine", np.ones((20, 3), np.float32), np.arange(20) % 2))
    record_path = inbox / "exp/analysis/analysis.json"
    record = json.loads(record_path.read_text())
    record["runs"].append({"run": "own", "path": os.path.relpath(own, record_path.parent),
                           "manifest_sha256": "0" * 64})
    record_path.write_text(json.dumps(record))
    return root


@pytest.mark.slow
@pytest.mark.parametrize("command", ["report", "analyze"])
def test_a_received_directory_is_read_in_place_and_nothing_is_written_outside_out(received, command):
    root, inbox = received, received / "inbox"
    out = root / f"out-{command}"
    source = inbox / "exp" / ("analysis" if command == "report" else "")
    argv = [command, str(source), "--out", str(out), "--quiet"]
    if command == "report":
        argv += ["--embeddings", "pca"]
    events = audited(argv, root, cwd=Path.cwd())  # not inside root: imports list the cwd
    under_root = [(k, p) for k, p in events if within(p, root)]
    allowed_reads = (inbox, out, root / "mplconfig", root / "audit.log")
    stray_reads = sorted({str(p) for k, p in under_root if not within(p, *allowed_reads)})
    assert not stray_reads, stray_reads  # not the user's run, not the secret
    # matplotlib re-asserts that its (pre-warmed) cache directory exists: os.makedirs
    writes = sorted({str(p) for k, p in events if k == "write"
                     and not within(p, out, root / "audit.log", Path("/dev/null"))
                     and p != root / "mplconfig"})
    assert not writes, writes
    assert any(k == "write" and p.name == "report.html" for k, p in events)  # the log is live
    assert any(k == "read" and p.name == "manifest.json" and within(p, inbox) for k, p in events)


def peak_rss_mb(argv: list[str], env: dict | None = None) -> tuple[int, float, str]:
    """Exit status, peak resident memory (MB) and stderr of `repflat ARGV` in a fresh
    child: the wrapper's own children are only this one, so RUSAGE_CHILDREN is its peak."""
    code = ("import resource, subprocess, sys\n"
            "done = subprocess.run([sys.executable, '-m', 'repflat', *sys.argv[1:]], "
            "capture_output=True, text=True)\n"
            "print(done.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)\n"
            "sys.stderr.write(done.stderr)\n")
    done = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True,
                          env=os.environ | {"PYTHONPATH": str(Path.cwd())} | (env or {}), timeout=600)
    status, peak = done.stdout.split()
    return int(status), float(peak), done.stderr


@pytest.mark.slow
def test_tiny_files_promising_gigabytes_stay_within_500_mb(tmp_path):
    wide = features_dir(tmp_path / "wide", np.random.default_rng(0).normal(size=(2, 30_000))
                        .astype(np.float32), np.zeros(2, np.int64))
    code, peak, err = peak_rss_mb(["analyze", wide, "--out", str(tmp_path / "a"), "--quiet"])
    assert code == 0, err
    assert peak < 500, f"{peak:.0f} MB"
    assert (tmp_path / "a/summary.csv").is_file()

    sparse = Path(features_dir(tmp_path / "sparse", np.ones((20, 3), np.float32), np.arange(20) % 2))
    labels = hostile.sparse_npy(sparse / "features/train/labels.npy", (1 << 27,))  # 1 GiB of holes
    manifest = json.loads((sparse / "features/manifest.json").read_text())
    from repflat.files import sha256_file
    manifest["labels_sha256"]["train"] = sha256_file(labels)
    (sparse / "features/manifest.json").write_text(json.dumps(manifest))
    code, peak, err = peak_rss_mb(["analyze", str(sparse), "--out", str(tmp_path / "b")])
    assert code == 2 and "one label per row" in err, err
    assert peak < 500, f"{peak:.0f} MB"
