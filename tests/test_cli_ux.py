"""The command line as a user meets it: help, quick answers, sensible defaults, --check."""
import subprocess
import sys

import numpy as np
import pytest
import yaml

from repflat.cli import main
from repflat.rundir.features import FeatureWriter
from tests.trees import digest

TINY = {"data": {"n_per_class": 20}, "model": {"widths": [8], "bottleneck": 2, "widths_after": [8]},
        "train": {"epochs": 1, "batch_size": 16},
        "capture": {"layers": ["fc1", "bottleneck"], "grid_resolution": 4, "uniform_samples": 4}}


def test_bare_repflat_prints_help(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: repflat") and "analyze" in out and "COMMAND --help" in out


def test_help_shows_defaults_and_examples(capsys):
    with pytest.raises(SystemExit):
        main(["extract", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "(default: 256)" in text and "(default: float32)" in text and "(default: cpu)" in text
    assert "(default: flatten)" in text and "examples: repflat extract --model resnet18" in text


def test_a_yaml_typo_is_answered_before_torch_is_imported(tmp_path):
    bad = tmp_path / "c.yaml"
    bad.write_text("train:\n  learning_rate: 0.1\n")
    code = ("import sys\nfrom repflat.cli import main\n"
            f"assert main(['train', {str(bad)!r}, '--out', {str(tmp_path / 'o')!r}]) == 2\n"
            "assert 'torch' not in sys.modules, 'torch was imported before the typo was found'\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "c.yaml:2:3: train: unknown key 'learning_rate' (did you mean 'lr'?)" in done.stderr


def test_check_builds_everything_and_writes_nothing(tmp_path, capsys):
    exp = {"name": "e", "seeds": [0, 1], "base": TINY,
           "arms": {"erm": {}, "mm": {"mixing": {"strategy": "manifold_mixup", "layers": ["fc1"]}}}}
    (tmp_path / "e.yaml").write_text(yaml.safe_dump(exp))
    before = digest(tmp_path)
    assert main(["run", str(tmp_path / "e.yaml"), "--check"]) == 0
    assert "e: 2 arms × 2 seeds = 4 runs" in capsys.readouterr().out
    assert main(["train", str(tmp_path / "e.yaml"), "--arm", "mm", "--check"]) == 0
    assert "ok: mm seed 0" in capsys.readouterr().out
    assert digest(tmp_path) == before
    bad = {**exp, "arms": {"mm": {"mixing": {"strategy": "manifold_mixup", "layers": ["fc9"]}}}}
    (tmp_path / "e.yaml").write_text(yaml.safe_dump(bad))
    assert main(["run", str(tmp_path / "e.yaml"), "--check"]) == 2
    assert "mixing.layers: unknown name 'fc9'" in capsys.readouterr().err


def _features(root, splits=("train",)):
    w = FeatureWriter(root)
    rng = np.random.default_rng(0)
    for split in splits:
        w.add_labels(split, np.arange(30) % 3)
        w.add(split, 0, "h", rng.normal(size=(30, 4)).astype(np.float32))
    return root


def test_analyze_and_report_default_to_the_inputs_own_analysis_dir(tmp_path, capsys):
    run = _features(tmp_path / "feats")
    assert main(["analyze", str(run), "--figures", "none", "--quiet"]) == 0
    assert (run / "analysis/report.html").is_file() and (run / "analysis/summary.csv").is_file()
    assert main(["report", str(run), "--figures", "spectra", "--quiet"]) == 0
    assert (run / "analysis/spectra.png").is_file() and not (run / "analysis/heatmap.png").exists()
    assert "Figures left out, as asked (--figures): figure1, planes, boundaries, heatmap" in \
        (run / "analysis/report.md").read_text()
    assert main(["analyze", str(run), str(run), "--quiet"]) == 2
    assert "--out: expected a directory for the analysis of several inputs" in capsys.readouterr().err
    assert main(["report", str(run), "--figures", "spectrum", "--quiet"]) == 2
    assert "--figures: unknown name 'spectrum' (did you mean 'spectra'?)" in capsys.readouterr().err


def test_analyze_without_figures_imports_no_plotting_library(tmp_path):
    """`--figures none` is the quick answer: matplotlib's pyplot, seaborn and scikit-learn
    (about 2 s of imports, most of its time) are left unimported, and torch too."""
    run = _features(tmp_path / "feats")
    code = ("import sys; from repflat.cli import main; code = main(sys.argv[1:]); "
            "print(sorted(m for m in ('matplotlib.pyplot', 'seaborn', 'sklearn', 'scipy.stats', "
            "'torch') if m in sys.modules)); sys.exit(code)")
    done = subprocess.run([sys.executable, "-c", code, "analyze", str(run), "--figures", "none",
                           "--quiet"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
    assert (run / "analysis/report.html").is_file()
    # and with figures, they are there (the check above can tell)
    done = subprocess.run([sys.executable, "-c", code, "report", str(run), "--figures", "spectra",
                           "--quiet"], capture_output=True, text=True)
    assert done.returncode == 0 and "matplotlib.pyplot" in done.stdout, done.stderr


def test_the_only_split_there_is_analysed_by_default_and_said(tmp_path, capsys):
    run = _features(tmp_path / "feats", splits=("test",))
    assert main(["analyze", str(run), "--figures", "none", "--quiet"]) == 0
    assert "The test split is analysed: it is the only split with labels here" in \
        (run / "analysis/report.md").read_text()
    assert main(["analyze", str(run), "--split", "train", "--out", str(tmp_path / "a")]) == 2
    assert "--split: expected a split with labels" in capsys.readouterr().err


def test_progress_lines_reach_a_pipe(tmp_path):
    run = _features(tmp_path / "feats")
    done = subprocess.run([sys.executable, "-m", "repflat", "analyze", str(run), "--figures", "none"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert any(l.startswith("analysis: 1 array of 1 run, train split") for l in lines), lines
    assert lines[-1].startswith("wrote ") and done.stderr == ""
