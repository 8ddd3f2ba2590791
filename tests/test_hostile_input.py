"""Directories someone else made: the bad-input matrix, continued (issue 10).

A collaborator's run, a paper's released features, a tarball from a cluster: what
repflat reads may hold links to the user's files, FIFOs and devices, files that promise
gigabytes, YAML and JSON built to explode, names that try to leave their directory. Each
case is checked as the matrix of tests/test_bad_input.py checks its own: exit status,
one line on stderr without a traceback, nothing changed outside the case's outputs;
hangs are run in a child process with a timeout. docs/reliability.md states
the threat model these cases hold repflat to.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from repflat.cli import main
from repflat.files import sha256_file
from tests import hostile
from tests.test_bad_input import (GOOD_EXPERIMENT, GOOD_RUN, Case, edit_manifest, features_dir,
                                  good_features, merged, run_case, yaml_file)

SECRET = "token=hunter2"


def _secret(root: Path) -> Path:
    """A file of the user's that no command may read, change or write through."""
    (root / "mine").mkdir(exist_ok=True)
    path = root / "mine" / "secret.txt"
    path.write_text(SECRET + "\n")
    return path


def _trained(root: Path, name: str = "run", **parts) -> Path:
    cfg = merged(GOOD_RUN, **parts)
    assert main(["train", yaml_file(root, f"{name}.yaml", cfg), "--out", str(root / name),
                 "--quiet"]) == 0
    return root / name


def _analysis(root: Path) -> Path:
    assert main(["analyze", good_features(root), "--out", str(root / "an"), "--quiet"]) == 0
    return root / "an"


def _experiment(root: Path, **changes) -> Path:
    exp = {**GOOD_EXPERIMENT, **changes}
    assert main(["run", yaml_file(root, "e.yaml", exp), "--out", str(root / "exp"), "--quiet"]) == 0
    return root / "exp"


def _unfinished(root: Path) -> Path:
    """A run killed after epoch 1 of 2, its checkpoint resumable (as `train` leaves it)."""
    run = _trained(root, train={"epochs": 2, "batch_size": 16, "checkpoint_every": 1})
    state = torch.load(run / "checkpoint.pt", weights_only=True)
    state |= {"epoch": 1, "complete": False, "metrics": state["metrics"][:1]}
    torch.save(state, run / "checkpoint.pt")
    info = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps(info | {"status": "running"}))
    return run


def _fix_checksum(run: Path, rel: str) -> None:
    def change(m):
        for e in m["entries"]:
            if e["path"] == rel:
                e["sha256"] = sha256_file(run / rel)
        for split, path in m["labels"].items():
            if path == rel:
                m["labels_sha256"][split] = sha256_file(run / rel)
    edit_manifest(str(run), change)


def _labels(run: Path, labels: np.ndarray) -> Path:
    np.save(run / "features/train/labels.npy", labels)
    _fix_checksum(run, "features/train/labels.npy")
    return run


def _nested(depth: int, kind: str) -> str:
    return ("[" * depth + "]" * depth) if kind == "json" else ("- " * depth + "x")


def _victim_analysis(root: Path) -> Path:
    """An analysis moved away from its runs whose record points at a run of the user's
    elsewhere (`victim-seed0`), with a checksum that does not match it."""
    an = _analysis(root)
    victim = Path(features_dir(root, np.random.default_rng(1).normal(size=(20, 3)).astype(np.float32),
                               np.arange(20) % 2))
    victim = victim.rename(root / "victim-seed0")
    received = root / "inbox" / "an"
    shutil.copytree(an, received)
    record = json.loads((received / "analysis.json").read_text())
    record["runs"] = [{"run": "victim-seed0", "path": "../../victim-seed0", "manifest_sha256": "0" * 64}]
    (received / "analysis.json").write_text(json.dumps(record))
    return received


def _victim_not_read(root: Path) -> None:
    for table in ("summary.csv", "spectra.csv", "flattening.csv"):
        assert "victim" not in (root / "inbox/an" / table).read_text()
    assert "(victim-seed0) and were not opened" in (root / "inbox/an/report.md").read_text()


def _report_twice(root: Path) -> list[str]:
    """An experiment with its report, then one run's grid made unreadable: the next
    report fails while drawing, after the tables are read."""
    exp = _experiment(root)
    grid = exp / "runs/erm-seed0/features/input_grid"
    probabilities = next(grid.rglob("probabilities.npy"))
    raw = bytearray(probabilities.read_bytes())
    raw[-1] ^= 1
    probabilities.write_bytes(bytes(raw))
    return ["report", str(exp), "--embeddings", "none"]


def _figures_kept(root: Path) -> None:
    an = root / "exp/analysis"
    assert (an / "figure1.png").is_file() and (an / "boundaries.png").is_file()
    md = (an / "report.md").read_text()
    assert all((an / name).is_file() for name in __import__("re").findall(r"\]\(([\w.]+\.png)\)", md))


def _user_tmp_kept(root: Path) -> None:
    assert (root / "an/notes/.draft.tmp").read_text() == "mine"


def _wide(root: Path) -> str:
    """2 rows of 30,000 features: 240 kB on disk, a 30,000² scatter matrix (7 GB) if
    anything builds one."""
    x = np.random.default_rng(0).normal(size=(4, 30_000)).astype(np.float32)[:2]
    return features_dir(root, x, np.zeros(2, np.int64))


CASES = [
    # ---- links and special files
    Case("lock file a link to the user's file (report)", lambda r: (
        hostile.symlink(_analysis(r) / ".repflat.lock", _secret(r)), ["report", str(r / "an")])[1],
        ".repflat.lock is a symbolic link"),
    Case("partial array a link in an unfinished run (train resumes)", lambda r: (
        hostile.symlink(_unfinished(r) / "features/train/epoch0002/fc1.npy.partial", _secret(r)),
        ["train", str(r / "run/config.yaml"), "--out", str(r / "run"), "--quiet"])[1],
        "fc1.npy.partial is a symbolic link"),
    Case("config.yaml a link to the user's file (analyze)", lambda r: (
        hostile.symlink(_trained(r) / "config.yaml", _secret(r)),
        ["analyze", str(r / "run"), "--out", str(r / "a")])[1], "config.yaml is a symbolic link"),
    Case("metrics.csv a link to the user's file (analyze)", lambda r: (
        hostile.symlink(_trained(r) / "metrics.csv", _secret(r)),
        ["analyze", str(r / "run"), "--out", str(r / "a")])[1], "metrics.csv is a symbolic link"),
    Case("run.json a FIFO (analyze)", lambda r: (
        hostile.fifo(_trained(r) / "run.json"), ["analyze", str(r / "run"), "--out", str(r / "a")])[1],
        "run.json (a named pipe)", subprocess={"timeout": 120}),
    Case("run.json a link to /dev/zero (analyze)", lambda r: (
        hostile.symlink(_trained(r) / "run.json", "/dev/zero"),
        ["analyze", str(r / "run"), "--out", str(r / "a")])[1],
        "run.json is a symbolic link", subprocess={"timeout": 120, "memory": 4 << 30}),
    Case("run.json a device (analyze)", lambda r: (
        hostile.device(_trained(r) / "run.json"), ["analyze", str(r / "run"), "--out", str(r / "a")])[1],
        "run.json", subprocess={"timeout": 120, "memory": 4 << 30}),
    Case("extract.yaml a link in --out (extract)", lambda r: (
        hostile.symlink(r / "o" / "extract.yaml", _secret(r)),
        ["extract", "--run-dir", str(_trained(r)), "--layers", "fc1", "--out", str(r / "o")])[1],
        "extract.yaml is a symbolic link"),
    Case("checkpoint a link in a run (extract --run-dir)", lambda r: (
        hostile.symlink(_trained(r) / "checkpoint.pt", _secret(r)),
        ["extract", "--run-dir", str(r / "run"), "--layers", "fc1", "--out", str(r / "o")])[1],
        "checkpoint.pt is a symbolic link"),
    # ---- resource bombs
    Case("YAML alias bomb in an experiment's description (run)", lambda r: [
        "run", str(_write(r / "e.yaml", _bomb_experiment())), "--out", str(r / "o")],
        "expands to more than 100,000 values", subprocess={"timeout": 120, "memory": 4 << 30}),
    Case("YAML alias bomb in a received experiment's description (analyze)", lambda r: (
        _write(_experiment(r) / "experiment.yaml", _bomb_experiment()),
        ["analyze", str(r / "exp"), "--out", str(r / "a")])[1],
        "expands to more than 100,000 values", subprocess={"timeout": 120, "memory": 4 << 30}),
    Case("YAML nested 20,000 deep (train)", lambda r: ["train", str(_write(r / "c.yaml", _nested(20_000, "yaml"))),
                                                       "--out", str(r / "o")], "is not valid YAML"),
    Case("YAML integer of 5,000 digits (train)", lambda r: [
        "train", str(_write(r / "c.yaml", "train: {epochs: " + "9" * 5000 + "}\n")), "--out", str(r / "o")],
        "is not valid YAML"),
    Case("JSON integer of 5,000 digits in a manifest", lambda r: [
        "analyze", str(_write(Path(good_features(r)) / "features/manifest.json",
                              '{"format": 1, "entries": [], "x": ' + "9" * 5000 + "}")).rsplit("/features", 1)[0],
        "--out", str(r / "a")], "is not valid JSON"),
    Case("JSON nested 100,000 deep in analysis.json (report)", lambda r: [
        "report", str(_write(_analysis(r) / "analysis.json", _nested(100_000, "json")).parent)],
        "is not valid JSON (nested too deeply)"),
    Case("sparse labels.npy promising 1 GiB", lambda r: [
        "analyze", str(_sparse_labels(r)), "--out", str(r / "a")],
        "one label per row of the split's features (20 rows)", subprocess={"timeout": 120, "memory": 4 << 30}),
    Case("2 x 30,000 features: 240 kB that asks for a 7 GB matrix (handled)", lambda r: [
        "analyze", _wide(r), "--out", str(r / "a"), "--quiet"], None, code=0,
        subprocess={"timeout": 300, "memory": 3 << 30}, outputs=("a",)),
    # ---- reads outside the inputs
    Case("analysis.json naming a run elsewhere (report: not opened)", lambda r: [
        "report", str(_victim_analysis(r)), "--quiet", "--embeddings", "none"], None, code=0,
        outputs=("inbox/an",), check=_victim_not_read),
    # ---- outputs only where repflat owns them
    Case("analyze --out a folder of the user's", lambda r: (
        _write(_mkdir(r / "paper") / "report.html", "my draft"),
        ["analyze", good_features(r), "--out", str(r / "paper")])[1],
        "expected an empty directory or one written by `repflat analyze`"),
    Case("report --out a folder of the user's", lambda r: [
        "report", str(_analysis(r)), "--out", str(_write(r / "mine2/an/figure1.png", "my figure").parent.parent)],
        "expected an empty directory or one written by"),
    Case("a user's folder with a hidden .tmp file in an analysis: refused, kept", lambda r: (
        _write(_mkdir(_analysis(r) / "notes") / ".draft.tmp", "mine"),
        ["analyze", str(r / "feats"), "--out", str(r / "an"), "--quiet"])[1],
        "holds files repflat did not write (notes)", check=_user_tmp_kept),
    Case("arm name leaving --out", lambda r: ["run", yaml_file(r, "e.yaml", {
        **GOOD_EXPERIMENT, "arms": {"../../escaped": {}}}), "--out", str(r / "o")], "arms.../../escaped: expected a name"),
    Case("arm name an absolute path", lambda r: ["run", yaml_file(r, "e.yaml", {
        **GOOD_EXPERIMENT, "arms": {str(r / "abs"): {}}}), "--out", str(r / "o")], "expected a name of 1 to 100"),
    Case("a failing report keeps the previous one", _report_twice, "checksum mismatch", check=_figures_kept),
    # ---- checks before the expensive part
    Case("analysis.layers no arm captures (run)", lambda r: ["run", yaml_file(r, "e.yaml", {
        **GOOD_EXPERIMENT, "analysis": {"layers": ["fc9"]}}), "--out", str(r / "o")],
        "analysis.layers (captured by arm 'erm'): unknown name 'fc9'"),
    Case("analysis.split no arm captures (run)", lambda r: ["run", yaml_file(r, "e.yaml", {
        **GOOD_EXPERIMENT, "analysis": {"split": "val"}}), "--out", str(r / "o")],
        "analysis.split: expected a split arm 'erm' captures"),
    Case("full disk while saving the checkpoint (train)", lambda r: [
        "train", yaml_file(r, "c.yaml", GOOD_RUN), "--out", str(r / "o"), "--quiet"], "no space to write",
        subprocess={"fsize": 12_000}, adds_files=True),
    # ---- one line, not a traceback
    Case("config.yaml not UTF-8 in a run (analyze)", lambda r: [
        "analyze", str(_write_bytes(_trained(r) / "config.yaml", b"name: \xff\xfe\n").parent), "--out", str(r / "a")],
        "is not UTF-8 text"),
    Case("metrics.csv not UTF-8 (analyze)", lambda r: [
        "analyze", str(_write_bytes(_trained(r) / "metrics.csv", b"epoch,test_accuracy\n1,\xff\n").parent),
        "--out", str(r / "a")], "is not UTF-8 text"),
    Case("metrics.csv ragged (analyze)", lambda r: [
        "analyze", str(_write(_trained(r) / "metrics.csv", "epoch,test_accuracy\n1,0.5,7,8\n2\n").parent),
        "--out", str(r / "a")], "metrics.csv needs an integer epoch column"),
    Case("metrics.csv without numbers (analyze)", lambda r: [
        "analyze", str(_write(_trained(r) / "metrics.csv", "epoch,test_accuracy,test_nll\n1,high,0.3\n").parent),
        "--out", str(r / "a")], "column 'test_accuracy' holds 'high', not a number"),
    Case("metrics.csv without an epoch column (analyze)", lambda r: [
        "analyze", str(_write(_trained(r) / "metrics.csv", "test_accuracy,test_nll\n0.5,0.3\n").parent),
        "--out", str(r / "a")], "needs an integer epoch column"),
    Case("grid resolution not a number in a manifest", lambda r: ["analyze", edit_manifest(
        str(_trained(r)), lambda m: m["splits"]["input_grid"].__setitem__("resolution", "x")),
        "--out", str(r / "a")], "splits.input_grid.resolution"),
    Case("grid without a space in a manifest", lambda r: ["analyze", edit_manifest(
        str(_trained(r)), lambda m: m["splits"]["plane_grid"].pop("space")),
        "--out", str(r / "a")], "splits.plane_grid.space"),
    Case("negative labels", lambda r: ["analyze", str(_labels(Path(good_features(r)), np.arange(20) % 2 - 1)),
                                       "--out", str(r / "a")], "class labels >= 0"),
    Case("a class label of 10¹² in a 2-D run (handled)", lambda r: [
        "analyze", str(_labels(_trained(r), np.where(np.arange(20) % 2, 10**12, 0))), "--out", str(r / "a"),
        "--quiet"], None, code=0, outputs=("a",), subprocess={"timeout": 300, "memory": 4 << 30}),
    Case("labels without a checksum", lambda r: ["analyze", edit_manifest(
        good_features(r), lambda m: m["labels_sha256"].clear()), "--out", str(r / "a")],
        "a sha256 for the labels of every split"),
    Case("checkpoint without n_classes (extract --run-dir)", lambda r: [
        "extract", "--run-dir", str(_drop_checkpoint_key(_trained(r), "n_classes")), "--layers", "fc1",
        "--out", str(r / "o")], "checkpoint.pt with model, input_shape, n_classes and epoch"),
    Case("negative seed", lambda r: ["train", yaml_file(r, "c.yaml", {**GOOD_RUN, "seed": -1}),
                                     "--out", str(r / "o")], "seed: expected an integer >= 0, got -1"),
    Case("negative seed in an experiment", lambda r: ["run", yaml_file(r, "e.yaml", {**GOOD_EXPERIMENT, "seeds": [0, -3]}),
                                                      "--out", str(r / "o")], "seeds: expected seeds >= 0"),
    Case("noise .inf", lambda r: ["train", str(_write(r / "c.yaml", "data: {noise: .inf}\n")), "--out", str(r / "o")],
         "data.noise: expected a finite number, got inf"),
    Case("an unfinished run analysed (handled: warned)", lambda r: [
        "analyze", str(_unfinished(r)), "--out", str(r / "a"), "--quiet"],
        "warning: 1 run is unfinished", code=0, outputs=("a",)),
]


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _write_bytes(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def _bomb_experiment() -> str:
    """A valid experiment whose free-text description is an alias bomb: parsed alone it
    is harmless, written back beside the runs it expands to 9⁹ values."""
    import yaml

    lines = hostile.alias_bomb().strip().splitlines()  # "a0: &a0 [...]", ..., "name: *a8"
    values = [line.split(": ", 1)[1] for line in lines]
    return yaml.safe_dump(GOOD_EXPERIMENT) + f"description: [{', '.join(values)}]\n"


def _sparse_labels(root: Path) -> Path:
    run = Path(good_features(root))
    hostile.sparse_npy(run / "features/train/labels.npy", (1 << 27,))
    _fix_checksum(run, "features/train/labels.npy")
    return run


def _drop_checkpoint_key(run: Path, key: str) -> Path:
    state = torch.load(run / "checkpoint.pt", weights_only=True)
    state.pop(key)
    torch.save(state, run / "checkpoint.pt")
    return run


def test_matrix_size():
    assert len(CASES) == 42  # stated in docs/reliability.md, with test_bad_input's
    assert len({c.name for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_input(tmp_path, capsys, case):
    run_case(case, tmp_path, capsys)
