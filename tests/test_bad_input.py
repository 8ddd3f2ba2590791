"""The bad-input matrix: every command, every kind of mistake, one answer.

Each case builds its inputs in a fresh directory, runs one `repflat` command and checks:
exit status 2 (or the documented code), exactly one line on stderr naming the problem,
no traceback, no file that existed before changed, and, except where the environment
itself fails mid-write, no file added either. docs/reliability.md states the
count; `test_matrix_size` keeps it honest.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pickle
import resource
import signal
import stat
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import yaml

from repflat.cli import main
from repflat.rundir.features import FeatureWriter
from repflat.files import sha256_file

GOOD_RUN = {"data": {"n_per_class": 20}, "model": {"widths": [8], "bottleneck": 2, "widths_after": [8]},
            "train": {"epochs": 1, "batch_size": 16},
            "capture": {"layers": ["fc1", "bottleneck"], "grid_resolution": 4, "uniform_samples": 4}}
GOOD_EXPERIMENT = {"name": "e", "seeds": [0], "base": GOOD_RUN,
                   "arms": {"erm": {}, "mm": {"mixing": {"strategy": "manifold_mixup"}}}}


@dataclass
class Case:
    name: str
    build: object  # (root: Path) -> argv
    fragment: str
    code: int = 2
    subprocess: dict = field(default_factory=dict)  # run in a child with these limits
    adds_files: bool = False  # the environment failed mid-write: new files may remain
    check: object = None  # (root: Path) -> None: more assertions on what the command left
    outputs: tuple[str, ...] = ()  # a handled case (code 0) may write below these paths only


def yaml_file(root: Path, name: str, data) -> str:
    (root / name).write_text(yaml.safe_dump(data))
    return str(root / name)


def merged(source: dict, **parts) -> dict:
    out = json.loads(json.dumps(source))
    for key, value in parts.items():
        out[key] = {**out.get(key, {}), **value}
    return out


def features_dir(root: Path, x, y, *, layer: str = "h") -> str:
    """A bare features directory (as another framework would write it)."""
    run = root / "feats"
    if np.asarray(y).dtype.kind not in "iu":
        _raw_labels(run, y)  # before the writer opens the manifest, which it then holds
    w = FeatureWriter(run)
    if np.asarray(y).dtype.kind in "iu":
        w.add_labels("train", np.asarray(y))
    w.add("train", 1, layer, np.asarray(x))
    return str(run)


def _raw_labels(run: Path, y) -> None:
    """Labels written as they are (e.g. floats), bypassing the writer's int64 cast."""
    from repflat.rundir.arrays import save_npy

    digest = save_npy(run / "features/train/labels.npy", np.asarray(y))
    manifest = json.loads((run / "features/manifest.json").read_text()) if (run / "features/manifest.json").is_file() else {
        "format": 1, "entries": [], "labels": {}, "labels_sha256": {}, "splits": {}}
    manifest["labels"]["train"] = "features/train/labels.npy"
    manifest["labels_sha256"]["train"] = digest
    (run / "features/manifest.json").write_text(json.dumps(manifest))


def good_features(root: Path) -> str:
    rng = np.random.default_rng(0)
    return features_dir(root, rng.normal(size=(20, 3)).astype(np.float32), np.arange(20) % 2)


def edit_manifest(run: str, change) -> str:
    path = Path(run) / "features/manifest.json"
    manifest = json.loads(path.read_text())
    change(manifest)
    path.write_text(json.dumps(manifest))
    return run


def rewrite_array(run: str, data: bytes, fix_checksum: bool = True) -> str:
    path = Path(run) / "features/train/epoch0001/h.npy"
    path.write_bytes(data)
    if fix_checksum:
        edit_manifest(run, lambda m: m["entries"][0].__setitem__("sha256", sha256_file(path)))
    return run


def evil_checkpoint(path: Path) -> str:
    class Evil:
        def __reduce__(self):
            return (open, (str(path.parent / "pwned"), "w"))

    path.write_bytes(pickle.dumps({"model": Evil()}))
    return str(path)


def trained_run(root: Path) -> str:
    assert main(["train", yaml_file(root, "c.yaml", GOOD_RUN), "--out", str(root / "run"), "--quiet"]) == 0
    return str(root / "run")


@contextlib.contextmanager
def read_only(directory: Path):
    """A directory nothing may be written into, even by root (chattr +i), else chmod."""
    directory.mkdir(parents=True, exist_ok=True)
    immutable = os.geteuid() == 0 and subprocess.run(["chattr", "+i", str(directory)],
                                                     capture_output=True).returncode == 0
    if not immutable:
        if os.geteuid() == 0:
            pytest.skip("running as root without chattr: no directory is read-only here")
        directory.chmod(0o555)
    try:
        yield
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(directory)], check=True)
        else:
            directory.chmod(0o755)


CASES = [
    # ---- configs
    Case("unknown key", lambda r: ["run", yaml_file(r, "e.yaml", merged(GOOD_EXPERIMENT, base={"trian": {}})),
                                   "--out", str(r / "o")], "base: unknown key 'trian'"),
    Case("wrong type", lambda r: ["train", yaml_file(r, "c.yaml", merged(GOOD_RUN, train={"epochs": "ten"})),
                                  "--out", str(r / "o")], "train.epochs: expected an integer, got 'ten'"),
    Case("alpha zero", lambda r: ["run", yaml_file(r, "e.yaml", {**GOOD_EXPERIMENT, "arms": {
        "m": {"mixing": {"strategy": "manifold_mixup", "alpha": 0}}}}), "--out", str(r / "o")],
        "arms.m.mixing.alpha: expected a number > 0, got 0.0"),
    Case("alpha negative", lambda r: ["train", yaml_file(r, "c.yaml", merged(GOOD_RUN, mixing={
        "strategy": "input_mixup", "alpha": -1})), "--out", str(r / "o")], "mixing.alpha: expected a number > 0"),
    Case("negative epochs", lambda r: ["train", yaml_file(r, "c.yaml", merged(GOOD_RUN, train={"epochs": -3})),
                                       "--out", str(r / "o")], "train.epochs: expected an integer >= 1, got -3"),
    Case("zero epochs", lambda r: ["run", yaml_file(r, "e.yaml", merged(GOOD_EXPERIMENT, base={
        **GOOD_RUN, "train": {"epochs": 0}})), "--out", str(r / "o")], "train.epochs: expected an integer >= 1, got 0"),
    Case("empty strategy list", lambda r: ["run", yaml_file(r, "e.yaml", {**GOOD_EXPERIMENT, "arms": {}}),
                                           "--out", str(r / "o")], "arms: expected a non-empty mapping"),
    Case("no seeds", lambda r: ["run", yaml_file(r, "e.yaml", {**GOOD_EXPERIMENT, "seeds": []}),
                                "--out", str(r / "o")], "seeds: expected a non-empty list"),
    Case("unknown strategy", lambda r: ["train", yaml_file(r, "c.yaml", merged(GOOD_RUN, mixing={"strategy": "cutmix"})),
                                        "--out", str(r / "o")], "mixing.strategy: expected one of"),
    Case("eligible layer the model lacks", lambda r: ["train", yaml_file(r, "c.yaml", merged(GOOD_RUN, mixing={
        "strategy": "manifold_mixup", "layers": ["fc9"]})), "--out", str(r / "o")],
        "mixing.layers: unknown name 'fc9'"),
    Case("config not YAML", lambda r: ["train", str(_write(r / "c.yaml", "train: [1, 2")), "--out", str(r / "o")],
         "is not valid YAML"),
    # ---- features
    Case("NaN features", lambda r: ["analyze", features_dir(r, np.where(np.eye(20, 3) > 0, np.nan, 1.0).astype(np.float32),
                                                            np.arange(20) % 2), "--out", str(r / "a")], "NaN"),
    Case("Inf features", lambda r: ["analyze", features_dir(r, np.full((20, 3), np.inf, np.float32),
                                                            np.arange(20) % 2), "--out", str(r / "a")], "Inf"),
    Case("labels of the wrong length", lambda r: ["analyze", features_dir(r, np.ones((20, 3), np.float32),
                                                                          np.arange(19) % 2), "--out", str(r / "a")],
         "labels"),
    Case("non-integer labels", lambda r: ["analyze", features_dir(r, np.ones((20, 3), np.float32),
                                                                  np.arange(20) % 2 + 0.5), "--out", str(r / "a")],
         "integer class labels"),
    Case("3-D features", lambda r: ["analyze", features_dir(r, np.ones((20, 3, 2), np.float32), np.arange(20) % 2),
                                    "--out", str(r / "a")], "expected shape (20, n_features)"),
    Case("zero rows", lambda r: ["analyze", features_dir(r, np.ones((0, 3), np.float32), np.zeros(0, np.int64)),
                                 "--out", str(r / "a")], "at least one row"),
    Case("a class with one sample (handled: warned, spectrum left out)",
         lambda r: ["analyze", features_dir(r, np.random.default_rng(0).normal(size=(21, 3)).astype(np.float32),
                                            np.r_[np.arange(20) % 2, 2]), "--out", str(r / "a"), "--quiet"],
         "warning: 1 class(es) with fewer than two samples", code=0),
    Case("unknown split", lambda r: ["analyze", good_features(r), "--split", "val", "--out", str(r / "a")],
         "--split: expected a split with labels"),
    Case("unknown layer to analyse", lambda r: ["analyze", good_features(r), "--layers", "hh", "--out", str(r / "a")],
         "unknown layer 'hh' (did you mean 'h'?)"),
    # ---- files
    Case("missing run directory", lambda r: ["analyze", str(r / "nope"), "--out", str(r / "a")],
         "RUN: expected an existing run or experiment directory"),
    Case("missing manifest", lambda r: ["analyze", str(_mkdir(r / "empty")), "--out", str(r / "a")],
         "RUN: expected a run directory (with features/manifest.json)"),
    Case("manifest not JSON", lambda r: ["analyze", str(_write(Path(good_features(r)) / "features/manifest.json",
                                                               "{oops")).rsplit("/features", 1)[0], "--out", str(r / "a")],
         "is not valid JSON"),
    Case("manifest lacking keys", lambda r: ["analyze", edit_manifest(good_features(r), lambda m: m.pop("entries")),
                                             "--out", str(r / "a")], "entries: expected a list"),
    Case("entry path leaving the run directory", lambda r: ["analyze", edit_manifest(
        good_features(r), lambda m: m["entries"][0].__setitem__("path", "../../etc/passwd")), "--out", str(r / "a")],
        "a path inside the run directory"),
    Case("truncated .npy", lambda r: ["analyze", _truncated(r), "--out", str(r / "a")], "truncated"),
    Case("object array .npy", lambda r: ["analyze", rewrite_array(good_features(r), _object_npy()), "--out", str(r / "a")],
         "holds Python objects"),
    Case("checksum mismatch", lambda r: ["analyze", rewrite_array(good_features(r), _flipped(r), fix_checksum=False),
                                         "--out", str(r / "a")], "checksum mismatch"),
    Case("checkpoint carrying a pickle payload", lambda r: ["extract", "--model", "resnet18", "--weights",
                                                            evil_checkpoint(r / "evil.pt"), "--layers", "fc",
                                                            "--out", str(r / "o")],
         "is not a repflat checkpoint or a state dict"),
    Case("run whose checkpoint carries a pickle payload", lambda r: ["extract", "--run-dir", _poisoned_run(r),
                                                                     "--layers", "fc1", "--out", str(r / "o")],
         "is not a repflat checkpoint or a state dict"),
    # ---- commands and models
    Case("unknown model", lambda r: ["extract", "--model", "resnet81", "--layers", "fc", "--out", str(r / "o")],
         "--model: unknown name 'resnet81'"),
    Case("unknown layer to extract", lambda r: ["extract", "--run-dir", trained_run(r), "--layers", "fc9",
                                                "--out", str(r / "o")], "--layers: unknown name 'fc9'"),
    Case("data directory missing without --download", lambda r: ["extract", "--model", "resnet18", "--layers", "fc",
                                                                 "--data", "cifar10", "--root", str(r / "nodata"),
                                                                 "--out", str(r / "o")],
         "data.root: expected an existing directory with the cifar10 files"),
    Case("output holds a different run", lambda r: ["train", yaml_file(r, "d.yaml", merged(GOOD_RUN, train={"lr": 0.5})),
                                                    "--out", trained_run(r)], "already holds a different run"),
    Case("report: unknown metric", lambda r: ["report", _analysis(r), "--metric", "flatness"],
         "--metric: unknown name 'flatness'"),
    Case("usage error", lambda r: ["train"], "the following arguments are required"),
    # ---- environment
    Case("output directory not writable", lambda r: _not_writable(r), "cannot write"),
    Case("full disk (file size limit)", lambda r: ["train", yaml_file(r, "c.yaml", GOOD_RUN), "--out", str(r / "o"),
                                                   "--quiet"], "no space to write",
         subprocess={"fsize": 1024}, adds_files=True),
    # ---- names from files (issue 10)
    Case("layer named like markup: report.html shows it as text",
         lambda r: _analyze_named(r, layer=SCRIPT), None, code=0, outputs=("a",),
         check=lambda r: _page_shows(r, SCRIPT)),
    Case("layer named like markup: report.md shows it as text",
         lambda r: _analyze_named(r, layer=IMG), None, code=0, outputs=("a",),
         check=lambda r: _markdown_shows(r, IMG)),
    Case("arm and layer named with mathtext: every figure drawn",
         lambda r: _analyze_named(r, layer=MATH_LAYER, arm=MATH_ARM), None, code=0, outputs=("a",),
         # one arm has no heat map (issue 12); test_figure_cases draws one with such names
         check=lambda r: _figures_drawn(r, ("spectra.png", "embeddings.png"))),
    # A regression here is a segfault, so these two run in a child (its file size limit left as is).
    Case("dead layer (all zeros): report without embeddings, says why",
         lambda r: _analyze_named(r, x=np.zeros((40, 16), np.float32)), None, code=0,
         outputs=("a",), subprocess={"fsize": resource.getrlimit(resource.RLIMIT_FSIZE)[1]},
         check=lambda r: _no_embedding(r, "h of feats (seed unknown) has no spread (all 40 rows "
                                           "identical, e.g. dead ReLUs): nothing to embed.")),
    Case("identical rows: report without embeddings, says why",
         lambda r: _analyze_named(r, x=np.tile(np.linspace(-1, 2, 16, dtype=np.float32), (40, 1))),
         None, code=0, outputs=("a",), subprocess={"fsize": resource.getrlimit(resource.RLIMIT_FSIZE)[1]},
         check=lambda r: _no_embedding(r, "h of feats (seed unknown) has no spread (all 40 rows "
                                           "identical): nothing to embed.")),
]


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _mkdir(path: Path) -> Path:
    path.mkdir()
    return path


def _object_npy() -> bytes:
    import io

    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.array([{"x": 1}], dtype=object), allow_pickle=True)
    return buf.getvalue()


def _truncated(root: Path) -> str:
    run = good_features(root)
    return rewrite_array(run, (Path(run) / "features/train/epoch0001/h.npy").read_bytes()[:150])


def _flipped(root: Path) -> bytes:
    raw = bytearray((root / "feats/features/train/epoch0001/h.npy").read_bytes())
    raw[-1] ^= 1
    return bytes(raw)


def _poisoned_run(root: Path) -> str:
    run = trained_run(root)
    evil_checkpoint(Path(run) / "checkpoint.pt")
    return run


def _analysis(root: Path) -> str:
    assert main(["analyze", good_features(root), "--out", str(root / "an"), "--quiet"]) == 0
    return str(root / "an")


_held: list = []


def _not_writable(root: Path) -> list[str]:
    ctx = read_only(root / "locked")
    ctx.__enter__()
    _held.append(ctx)
    return ["train", yaml_file(root, "c.yaml", GOOD_RUN), "--out", str(root / "locked" / "run")]


# ---- names from files (issue 10): inputs and checks

SCRIPT = 'x"><script>alert(1)</script>'
IMG = "<img src=x onerror=alert(1)>"
MATH_ARM, MATH_LAYER = "a$x", "l$\\frac$"  # an odd number of $; a mathtext command


def _analyze_named(root: Path, *, layer: str = "h", arm: str | None = None, x=None) -> list[str]:
    """`analyze` of a bare features directory (40 rows, 2 classes) whose names are chosen."""
    x = np.random.default_rng(0).normal(size=(40, 4)).astype(np.float32) if x is None else x
    run = features_dir(root, x, np.arange(40) % 2)
    # the name as a manifest from elsewhere gives it (repflat's writer refuses a name with
    # a '/' in it, which could not be a file name)
    edit_manifest(run, lambda m: m["entries"][0].__setitem__("layer", layer))
    if arm is not None:  # the arm's name, as a run directory's config.yaml gives it
        (Path(run) / "config.yaml").write_text(yaml.safe_dump({"name": arm, "seed": 0}))
    return ["analyze", run, "--out", str(root / "a"), "--quiet"]


def _page_shows(root: Path, name: str) -> None:
    import re

    import markupsafe

    page = (root / "a/report.html").read_text()
    assert "<script" not in page.lower() and str(markupsafe.escape(name)) in page
    ids = re.findall(r"\sid='([^']*)'", page)
    assert ids and all(re.fullmatch(r"[a-z0-9-]+", i) for i in ids) and len(set(ids)) == len(ids)


def _markdown_shows(root: Path, name: str) -> None:
    md = (root / "a/report.md").read_text()
    assert "<img" not in md.lower() and "<script" not in md.lower()
    assert "&lt;img src=x onerror=alert(1)&gt;" in md


def _figures_drawn(root: Path, figures: tuple[str, ...]) -> None:
    md = (root / "a/report.md").read_text()
    for name in figures:
        assert (root / "a" / name).stat().st_size > 0 and f"]({name})" in md, name
    assert "a\\$x" in md and "l\\$\\\\frac\\$" in md  # the names, escaped for Markdown


def _no_embedding(root: Path, sentence: str) -> None:
    md = (root / "a/report.md").read_text()
    assert sentence in md and "there is no embeddings figure" in md
    assert not (root / "a/embeddings.png").exists() and (root / "a/spectra.png").is_file()


def snapshot(root: Path) -> dict[str, str]:
    """What every entry under `root` is: a link's target, a regular file's sha256 (size and
    mtime for huge, e.g. sparse, files), or its kind (a FIFO, a device); links are not
    followed, so a planted link to /dev/zero or a FIFO is described, never read."""
    out = {}
    for p in sorted(root.rglob("*")):
        st = p.lstat()
        if p.is_symlink():
            out[str(p.relative_to(root))] = "link:" + os.readlink(p)
        elif stat.S_ISREG(st.st_mode):
            out[str(p.relative_to(root))] = (hashlib.sha256(p.read_bytes()).hexdigest()
                                             if st.st_size < 64 << 20 else f"{st.st_size}@{st.st_mtime_ns}")
        elif not stat.S_ISDIR(st.st_mode):
            out[str(p.relative_to(root))] = f"special:{stat.S_IFMT(st.st_mode)}"
    return out


def run_in_child(argv: list[str], limits: dict) -> tuple[int, str]:
    """`repflat ARGV` in a child process with `limits`: fsize (bytes per file), memory
    (bytes of address space), timeout (seconds; a hang is reported as exit 124), env."""
    def prepare():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
        if "fsize" in limits:
            resource.setrlimit(resource.RLIMIT_FSIZE, (limits["fsize"], limits["fsize"]))
        if "memory" in limits:
            resource.setrlimit(resource.RLIMIT_AS, (limits["memory"], limits["memory"]))

    env = os.environ | {"PYTHONPATH": os.getcwd(), "PYTHONDONTWRITEBYTECODE": "1"} | limits.get("env", {})
    try:
        done = subprocess.run([sys.executable, "-m", "repflat", *argv], capture_output=True, text=True,
                              preexec_fn=prepare, env=env, timeout=limits.get("timeout", 600))
    except subprocess.TimeoutExpired as err:
        return 124, f"timed out after {err.timeout} s"
    return done.returncode, done.stderr


def test_matrix_size():
    assert len(CASES) == 43  # stated in docs/reliability.md
    assert len({c.name for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input(tmp_path, capsys, case):
    run_case(case, tmp_path, capsys)


def run_case(case: Case, tmp_path: Path, capsys) -> None:
    """Build the case's inputs, run its command, and check the one-line answer and what
    changed on disk (nothing, or only below the case's outputs)."""
    try:
        argv = case.build(tmp_path)
        capsys.readouterr()  # what building the inputs printed is not under test
        before = snapshot(tmp_path)
        if case.subprocess:
            code, err = run_in_child(argv, case.subprocess)
        else:
            try:
                code = main(argv)
            except SystemExit as exit_:  # argparse's usage errors
                code = exit_.code
            err = capsys.readouterr().err
    finally:
        while _held:
            _held.pop().__exit__(None, None, None)
    lines = err.strip().splitlines()
    assert code == case.code, err
    assert "Traceback" not in err, err
    if case.fragment is None:  # handled silently: nothing to say
        assert not lines, err
    else:
        assert len(lines) == 1, err
        assert case.fragment in lines[0], err
    after = snapshot(tmp_path)

    def output(k: str) -> bool:
        return any(k == o or k.startswith(o + "/") for o in case.outputs)

    kept = {k: v for k, v in before.items() if not output(k) or case.code != 0}
    assert {k: v for k, v in after.items() if k in kept} == kept, "a file that existed changed"
    if not case.adds_files and case.code != 0:
        assert after.keys() == before.keys(), f"files appeared: {sorted(after.keys() - before.keys())}"
    if case.outputs:
        stray = [k for k in after.keys() - before.keys() if not output(k)]
        assert not stray, f"files written outside {case.outputs}: {sorted(stray)[:5]}"
    left = [k for k in after.keys() - before.keys() if k.endswith(".repflat-tmp")]
    assert not left, f"a temporary file was left behind: {left}"
    if case.check is not None:
        case.check(tmp_path)
