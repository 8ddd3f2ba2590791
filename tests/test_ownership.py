"""Which directories and files repflat takes for its own (issue 20).

Each test plants what a user's folder, or a directory from someone else, may hold and
checks that repflat neither writes nor deletes there nor reads through it:

- ownership: a folder that merely holds a file named like repflat's (analysis.json,
  experiment.yaml) is not repflat's; only its owner marker (.repflat-owner) says so;
- temporaries: only names of the exact form repflat makes are cleaned up;
- links: no path component inside a given directory is followed, directories included;
- hard links: a file with more than one name is not written over or copied out;
- a received run never triggers a download or a write outside --out;
- a received analysis.json does not make `report` open runs outside what it was given.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from repflat.cli import main
from tests.test_bad_input import GOOD_EXPERIMENT, features_dir, yaml_file


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and not p.is_symlink()}


def dead_pid() -> int:
    """The pid of a process that has exited (so a temporary named with it looks stale)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def feats(root: Path) -> str:
    return features_dir(root, np.random.default_rng(0).normal(size=(20, 3)).astype(np.float32),
                        np.arange(20) % 2)


def user_folder(root: Path, marker: str, content: str) -> Path:
    """A folder of the user's that happens to hold a file named like repflat's marker."""
    folder = root / "paper"
    (folder / "figures").mkdir(parents=True)
    (folder / marker).write_text(content)
    (folder / "report.md").write_text("# my thesis chapter\n")
    (folder / "spectra.png").write_bytes(b"my figure")
    (folder / "cache.sqlite").write_bytes(b"my cache")
    (folder / "figures" / "f1.pdf").write_bytes(b"%PDF")
    return folder


# ---------------------------------------------------------------- 1. ownership by marker

def test_analyze_refuses_a_users_folder_holding_an_analysis_json(tmp_path, capsys):
    folder = user_folder(tmp_path, "analysis.json", '{"runs": []}')
    before = snapshot(folder)
    assert main(["analyze", feats(tmp_path), "--out", str(folder), "--quiet"]) == 2
    assert "paper" in capsys.readouterr().err
    assert snapshot(folder) == before
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["analysis.json", "report.md", "spectra.png", "cache.sqlite", "figures"])


def test_run_refuses_a_users_folder_holding_an_experiment_yaml(tmp_path, capsys):
    folder = user_folder(tmp_path, "experiment.yaml", yaml_file(tmp_path, "x.yaml", GOOD_EXPERIMENT)
                         and (tmp_path / "x.yaml").read_text())
    before = snapshot(folder)
    assert main(["run", yaml_file(tmp_path, "e.yaml", GOOD_EXPERIMENT), "--out", str(folder),
                 "--quiet"]) == 2
    assert "paper" in capsys.readouterr().err
    assert snapshot(folder) == before
    assert not (folder / "runs").exists()


def test_a_foreign_file_in_repflats_own_analysis_is_refused_untouched(tmp_path, capsys):
    run = feats(tmp_path)
    out = tmp_path / "an"
    assert main(["analyze", run, "--out", str(out), "--quiet"]) == 0
    (out / "my-notes.md").write_text("mine")
    before = snapshot(out)
    assert main(["analyze", run, "--out", str(out), "--quiet"]) == 2
    assert "my-notes.md" in capsys.readouterr().err
    assert snapshot(out) == before


def test_a_forged_owner_marker_is_refused(tmp_path, capsys):
    folder = user_folder(tmp_path, ".repflat-owner", json.dumps(
        {"format": "repflat-owner/1", "kind": "analysis", "nonce": "0" * 32, "check": "0" * 64}))
    before = snapshot(folder)
    assert main(["analyze", feats(tmp_path), "--out", str(folder), "--quiet"]) == 2
    assert ".repflat-owner" in capsys.readouterr().err
    assert snapshot(folder) == before


def test_directories_of_this_version_keep_working_with_each_other(tmp_path):
    exp = tmp_path / "exp"
    spec = yaml_file(tmp_path, "e.yaml", GOOD_EXPERIMENT)
    assert main(["run", spec, "--out", str(exp), "--quiet"]) == 0
    assert main(["run", spec, "--out", str(exp), "--quiet"]) == 0       # all complete: resumes
    assert main(["report", str(exp), "--quiet", "--embeddings", "none"]) == 0
    run = exp / "runs" / "erm-seed0"
    assert main(["analyze", str(run), "--out", str(tmp_path / "an"), "--quiet"]) == 0
    assert main(["analyze", str(run), "--out", str(tmp_path / "an"), "--quiet"]) == 0  # again
    assert main(["report", str(tmp_path / "an"), "--quiet", "--embeddings", "none"]) == 0
    for directory in (exp, run, exp / "analysis", tmp_path / "an"):
        assert json.loads((directory / ".repflat-owner").read_text())["format"] == "repflat-owner/1"


def test_an_older_analysis_directory_is_adopted_only_with_nothing_but_repflats_files(tmp_path, capsys):
    run = feats(tmp_path)
    out = tmp_path / "an"
    assert main(["analyze", run, "--out", str(out), "--quiet"]) == 0
    (out / ".repflat-owner").unlink()                     # as an older repflat left it
    assert main(["analyze", run, "--out", str(out), "--quiet"]) == 0
    assert (out / ".repflat-owner").is_file()              # adopted
    (out / ".repflat-owner").unlink()
    (out / "cache.sqlite").write_bytes(b"mine")
    before = snapshot(out)
    assert main(["analyze", run, "--out", str(out), "--quiet"]) == 2
    assert "cache.sqlite" in capsys.readouterr().err
    assert snapshot(out) == before


# ---------------------------------------------------------------- 2. temporaries

def test_a_users_hidden_file_that_looks_like_a_temporary_is_kept(tmp_path):
    run = feats(tmp_path)
    out = tmp_path / "an"
    assert main(["analyze", run, "--out", str(out), "--quiet"]) == 0
    pid = dead_pid()
    from repflat.rundir.lock import remove_stale_temporaries
    (out / "notes").mkdir()
    mine = [out / f".thesis.{pid}.tmp", out / "notes" / f".draft.{pid}.tmp",
            out / f".stage.{pid}" / "chapter.tex"]
    for path in mine:
        path.parent.mkdir(exist_ok=True)
        path.write_text("mine")
    left = out / f".report.md.{pid}.{'ab' * 8}.repflat-tmp"   # what a killed repflat leaves
    left.write_text("half")
    remove_stale_temporaries(out)
    assert all(p.read_text() == "mine" for p in mine)
    assert not left.exists()


def test_cleanup_under_an_input_keeps_a_users_tmp_file(tmp_path):
    """`run` cleans the experiment directory it holds and the folders below it."""
    exp = tmp_path / "exp"
    spec = yaml_file(tmp_path, "e.yaml", GOOD_EXPERIMENT)
    assert main(["run", spec, "--out", str(exp), "--quiet"]) == 0
    mine = exp / "runs" / f".thesis.{dead_pid()}.tmp"
    mine.write_text("mine")
    assert main(["run", spec, "--out", str(exp), "--quiet"]) == 0
    assert mine.read_text() == "mine"


# ---------------------------------------------------------------- 4. hard links

def trained(root: Path) -> Path:
    from tests.test_bad_input import GOOD_RUN

    assert main(["train", yaml_file(root, "c.yaml", GOOD_RUN), "--out", str(root / "run"),
                 "--quiet"]) == 0
    return root / "run"


def test_a_config_hard_linked_to_a_private_file_is_not_copied_into_the_report(tmp_path, capsys):
    run = trained(tmp_path)
    private = tmp_path / "private.yaml"
    private.write_text((run / "config.yaml").read_text() + "api_token: hunter2\n")
    (run / "config.yaml").unlink()
    os.link(private, run / "config.yaml")
    code = main(["analyze", str(run), "--out", str(tmp_path / "an"), "--quiet"])
    assert code == 2 and "hard link" in capsys.readouterr().err
    assert not any("hunter2" in p.read_text(errors="replace")
                   for p in (tmp_path / "an").rglob("*") if p.is_file())


def test_a_lock_hard_linked_to_a_file_outside_does_not_truncate_it(tmp_path, capsys):
    run = feats(tmp_path)
    out = tmp_path / "an"
    assert main(["analyze", run, "--out", str(out), "--quiet"]) == 0
    precious = tmp_path / "precious.txt"
    precious.write_text("years of work\n")
    (out / ".repflat.lock").unlink()
    os.link(precious, out / ".repflat.lock")
    assert main(["analyze", run, "--out", str(out), "--quiet"]) == 2
    assert "hard link" in capsys.readouterr().err
    assert precious.read_text() == "years of work\n"


# ---------------------------------------------------------------- 3. links to directories

@pytest.fixture(scope="module")
def experiment(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("exp")
    spec = yaml_file(root, "e.yaml", GOOD_EXPERIMENT)
    assert main(["run", spec, "--out", str(root / "exp"), "--quiet"]) == 0
    return root / "exp"


def received_with_link(experiment: Path, tmp_path: Path, link: str) -> Path:
    """A copy of `experiment` whose `link` (runs/, a run, analysis/) is a symbolic link
    to the same content kept elsewhere (the user's own, say)."""
    import shutil

    exp = tmp_path / "inbox" / "exp"
    shutil.copytree(experiment, exp)
    elsewhere = tmp_path / "mine" / Path(link).name
    elsewhere.parent.mkdir()
    shutil.move(exp / link, elsewhere)
    os.symlink(elsewhere, exp / link)
    return exp


@pytest.mark.parametrize("link", ["runs", "runs/erm-seed0"])
def test_runs_reached_through_a_link_are_not_read(experiment, tmp_path, capsys, link):
    exp = received_with_link(experiment, tmp_path, link)
    before = snapshot(tmp_path / "mine")
    assert main(["analyze", str(exp), "--out", str(tmp_path / "out"), "--quiet"]) == 2
    assert "symbolic link" in capsys.readouterr().err
    assert snapshot(tmp_path / "mine") == before


def test_an_analysis_reached_through_a_link_is_neither_read_nor_written(experiment, tmp_path,
                                                                       capsys):
    exp = received_with_link(experiment, tmp_path, "analysis")
    mine = tmp_path / "mine" / "analysis"
    (mine / "report.md").write_text("the user's own page")
    (mine / "analysis.json").write_text("the user's own notes, not JSON")  # read? it says so
    before = snapshot(mine)
    assert main(["report", str(exp), "--quiet", "--embeddings", "none"]) == 2
    assert "symbolic link" in capsys.readouterr().err
    assert snapshot(mine) == before


# ---------------------------------------------------------------- 5. no network for a received run

def test_a_received_runs_config_does_not_download_or_create_folders(tmp_path, monkeypatch, capsys):
    import socket

    import torchvision.datasets.mnist as mnist
    import yaml

    fetched = []
    monkeypatch.setattr(mnist, "download_and_extract_archive",
                        lambda *a, **k: fetched.append(a) or (_ for _ in ()).throw(RuntimeError("offline")))
    monkeypatch.setattr(socket.socket, "connect", lambda *a: fetched.append(a) or 1 / 0)
    run = trained(tmp_path)
    ssh = tmp_path / "home" / ".ssh"
    ssh.mkdir(parents=True)
    (ssh / "id_ed25519").write_text("private key")
    config = yaml.safe_load((run / "config.yaml").read_text())
    config["data"] = {"name": "mnist", "root": str(ssh), "download": True}
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    code = main(["extract", "--run-dir", str(run), "--layers", "fc1", "--out", str(tmp_path / "o"),
                 "--quiet"])
    assert code == 2, capsys.readouterr()
    assert [p.name for p in ssh.iterdir()] == ["id_ed25519"]
    assert not fetched


# ---------------------------------------------------------------- 6. a received analysis.json

def received_analysis(root: Path, edit, private_in: str = "downloads") -> tuple[Path, Path]:
    """An analysis as a collaborator sends it, saved into the user's downloads, and a
    private run of the user's own (beside it, or in `private_in`); `edit(record,
    private)` forges its analysis.json."""
    sent = root / "sender"
    sent.mkdir()
    assert main(["analyze", feats(sent), "--out", str(sent / "an"), "--quiet"]) == 0
    downloads = root / "downloads"
    downloads.mkdir()
    import shutil

    shutil.copytree(sent / "an", downloads / "an")
    shutil.rmtree(sent)
    private = Path(features_dir(root / private_in / "private", np.random.default_rng(7).normal(
        size=(20, 3)).astype(np.float32), np.arange(20) % 2))
    record_path = downloads / "an" / "analysis.json"
    record = json.loads(record_path.read_text())
    edit(record, private)
    record_path.write_text(json.dumps(record))
    return downloads / "an", private


def reads_under(events, path: Path) -> list[str]:
    from tests.test_audit import within

    return sorted({str(p) for _, p in events if within(p, path)})


def strays(events, root: Path, *allowed: Path) -> list[str]:
    """Files under `root` touched outside the received directory, --out and the log."""
    from tests.test_audit import within

    allowed = (*allowed, root / "mplconfig", root / "audit.log")
    return sorted({str(p) for _, p in events if within(p, root) and not within(p, *allowed)})


@pytest.mark.slow
def test_a_received_analysis_naming_a_run_by_absolute_path_does_not_open_it(tmp_path):
    from tests.test_audit import audited

    def forge(record, private):
        record["runs"] = [{"run": "private", "path": str(private), "manifest_sha256": "0" * 64}]

    an, private = received_analysis(tmp_path, forge)
    out = tmp_path / "out"
    events = audited(["report", str(an), "--out", str(out), "--quiet", "--embeddings", "none"],
                     tmp_path, cwd=Path.cwd())
    assert not reads_under(events, private)
    assert not strays(events, tmp_path, an, out)
    assert "Re-analysed" not in (out / "an" / "report.md").read_text()


@pytest.mark.slow
def test_a_forged_home_does_not_open_a_private_run(tmp_path):
    from tests.test_audit import audited

    def forge(record, private):
        record["home"] = str((tmp_path / "downloads" / "an").resolve())  # where it now is
        record["runs"] = [{"run": "private", "path": "../../home/private/feats",
                           "manifest_sha256": "0" * 64}]

    an, private = received_analysis(tmp_path, forge, private_in="home")
    out = tmp_path / "out"
    events = audited(["report", str(an), "--out", str(out), "--quiet", "--embeddings", "none"],
                     tmp_path, cwd=Path.cwd())
    page = (out / "an" / "report.md").read_text()
    assert "(private) and were not opened" in page
    assert not reads_under(events, private)
    assert not strays(events, tmp_path, an, out)
