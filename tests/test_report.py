"""`repflat report` and the report every run and analysis leaves: contents, reuse of the
tables, where it is written, the paper's numbers, refusals, and the page in a browser."""
import html
import json
import re
import shutil
import subprocess
import sys

import pandas as pd
import pytest
import yaml

from repflat.analysis.paper import PAPER, PaperEntry, PaperValue
from repflat.analysis.report.tables import paper_table
from repflat.cli import main
from tests.browser import chromium, chromium_page
from tests.trees import digest

# The spirals experiment, shrunk to seconds: same arms and layers, one extra captured epoch.
SPIRALS = {
    "name": "spirals",
    "description": "Figure 1 on two interleaved spirals (tiny).",
    "seeds": [0, 1],
    "base": {
        "data": {"n_per_class": 30},
        "model": {"widths": [8], "bottleneck": 2, "widths_after": [8]},
        "train": {"epochs": 3, "batch_size": 16},
        "capture": {"layers": ["input", "fc1", "bottleneck", "fc2"], "epochs": [1],
                    "grid_resolution": 8, "uniform_samples": 10},
    },
    "arms": {
        "erm": {"mixing": {"strategy": "none"}},
        "input_mixup": {"mixing": {"strategy": "input_mixup", "alpha": 1.0}},
        "manifold_mixup": {"mixing": {"strategy": "manifold_mixup", "layers": ["fc1", "bottleneck"]}},
    },
    "analysis": {"spectra_layers": ["fc1", "fc2"], "epochs": "all"},
}
FIGURES = ("figure1.png", "planes.png", "boundaries.png", "spectra.png", "heatmap.png",
           "epochs.png", "embeddings.png", "corollary.png")



@pytest.fixture(scope="module")
def spirals(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    (root / "spirals.yaml").write_text(yaml.safe_dump(SPIRALS))
    assert main(["run", str(root / "spirals.yaml"), "--out", str(root / "exp"), "--quiet"]) == 0
    return root / "exp"


def test_run_leaves_a_report_with_every_figure(spirals):
    an = spirals / "analysis"
    for name in FIGURES + ("report.md", "report.html", "analysis.json", "training.csv"):
        assert (an / name).is_file(), name
    md, page = (an / "report.md").read_text(), (an / "report.html").read_text()
    for name in FIGURES:
        assert f"]({name})" in md, name
    assert page.count("<img src='data:image/png;base64,") == len(FIGURES)  # self-contained
    assert "The paper reports Figure 1 as a picture, without numbers" in md
    assert r"| mixing.strategy | none | input\_mixup | manifold\_mixup |" in md
    assert "Figure 1 on two interleaved spirals (tiny)." in md
    # the two files say the same thing: same sections in the same order
    headings = [html.unescape(h) for h in re.findall(r"<h2 id='[^']*'>([^<]+)</h2>", page)]
    assert re.findall(r"^## (.+)$", md, re.M) == headings
    record = json.loads((an / "analysis.json").read_text())
    assert [r["path"] for r in record["runs"]][0] == "../runs/erm-seed0"
    assert record["settings"]["epochs"] == "all"


def test_report_reuses_the_tables_and_honours_its_options(spirals, capsys):
    an = spirals / "analysis"
    tables = {f: (an / f).read_bytes() for f in ("spectra.csv", "flattening.csv", "summary.csv")}
    stamp = (an / "flattening.csv").stat().st_mtime_ns
    assert main(["report", str(spirals), "--embeddings", "pca", "--metric", "effective_rank",
                 "--link-images"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out[0].startswith("figures: figure1, planes, boundaries, spectra, heatmap, epochs, embeddings (pca)")
    assert out[-1] == f"wrote {an / 'report.html'}"
    assert (an / "flattening.csv").stat().st_mtime_ns == stamp
    assert all((an / f).read_bytes() == b for f, b in tables.items())
    page = (an / "report.html").read_text()
    assert "<img src='heatmap.png'" in page and "base64" not in page
    assert "effective_rank (scale-free" in page and "PCA of fc2 for each arm" in page


def test_report_out_writes_one_directory_per_experiment_that_reports_again(spirals, tmp_path):
    assert main(["report", str(spirals), "--out", str(tmp_path), "--quiet"]) == 0
    out = tmp_path / "spirals"
    for name in FIGURES + ("report.html", "summary.csv", "analysis.json"):
        assert (out / name).is_file(), name
    record = json.loads((out / "analysis.json").read_text())
    assert all((out / r["path"] / "features/manifest.json").is_file() for r in record["runs"])
    # the copy is an analysis directory in its own right, its runs found through analysis.json
    (out / "figure1.png").unlink()
    assert main(["report", str(out), "--embeddings", "none", "--quiet"]) == 0
    assert (out / "figure1.png").is_file()


def test_loose_run_directories_make_one_report(spirals, tmp_path, capsys):
    runs = [str(spirals / "runs" / r) for r in ("erm-seed0", "manifold_mixup-seed0")]
    assert main(["report", *runs, "--embeddings", "none", "--quiet"]) == 2
    assert "--out: expected a directory for the report" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())
    assert main(["report", *runs, "--out", str(tmp_path), "--embeddings", "none", "--quiet"]) == 0
    md = (tmp_path / "runs/report.md").read_text()
    assert r"repflat report: erm, manifold\_mixup" in md and "embeddings.png" not in md


@pytest.mark.parametrize("argv, fragment", [
    (["--metric", "nc9"], "--metric: unknown name 'nc9'"),
    (["--embedding-layer", "fc9"], "--embedding-layer: unknown name 'fc9'"),
    (["--embeddings", "pca,isomap"], "--embeddings: unknown name 'isomap'"),
    (["--max-samples", "3"], "--max-samples: expected an integer >= 10"),
])
def test_bad_options_are_one_line_and_change_nothing(spirals, capsys, argv, fragment):
    before = digest(spirals)
    assert main(["report", str(spirals), *argv]) == 2
    err = capsys.readouterr().err
    assert fragment in err and err.count("\n") == 1, err
    assert digest(spirals) == before


def test_changed_runs_are_analysed_again_and_missing_runs_leave_the_tables(spirals, tmp_path):
    copy = tmp_path / "exp"
    shutil.copytree(spirals, copy)
    manifest = copy / "runs/erm-seed1/features/manifest.json"
    manifest.write_text(json.dumps(json.loads(manifest.read_text())))  # same content, new bytes
    assert main(["report", str(copy), "--embeddings", "none", "--quiet"]) == 0
    assert "Re-analysed: erm-seed1 changed since the tables were written." in (
        copy / "analysis/report.md").read_text()
    alone = tmp_path / "alone"
    shutil.copytree(copy / "analysis", alone)
    (alone / "analysis.json").unlink()
    assert main(["report", str(alone), "--quiet"]) == 0
    md = (alone / "report.md").read_text()
    assert "the runs and the analysis settings are unknown" in md and "figure1.png" not in md and "spectra.png" in md
    assert not (alone / "figure1.png").exists()
    flat = pd.read_csv(alone / "flattening.csv")
    assert set(flat["arm"]) == {"erm", "input_mixup", "manifold_mixup"}


def test_the_paper_numbers_sit_beside_the_measured_ones():
    entry = PAPER["mnist_bottleneck12"]
    summary = pd.DataFrame([
        {"arm": arm, "strategy": arm, "layer": layer, "epoch": 5, "metric": "largest_singular_value",
         "mean": mean, "std": 1.0, "n_runs": 3}
        for arm, mean in (("erm", 48.0), ("manifold_mixup", 40.0))
        for layer in ("fc1", "bottleneck")])
    table = paper_table(entry, summary, pd.DataFrame(), ["fc1", "bottleneck"])
    assert table[["arm", "paper", "repflat", "seeds"]].values.tolist() == [
        ["erm", "50.08", "48.0 ± 1.0", 3], ["input_mixup", "37.17", "—", 0],
        ["manifold_mixup", "43.44", "40.0 ± 1.0", 3]]
    training = pd.DataFrame({"run": ["a", "a", "b", "b"], "arm": ["baseline"] * 4,
                             "epoch": [1, 2, 1, 2], "test_accuracy": [0.9, 0.95, 0.93, 0.92],
                             "test_nll": [0.3, 0.2, 0.25, 0.22]})
    entry = PaperEntry("test", "", (PaperValue("erm", "test_error_percent", 4.83),
                                    PaperValue("erm", "test_nll", 0.19)))
    table = paper_table(entry, summary.iloc[:0], training, [])
    assert table["arm"].tolist() == ["baseline", "baseline"]
    assert table["repflat"].tolist() == ["6.0 ± 1.4", "0.210 ± 0.014"]


def test_report_help():
    out = subprocess.run([sys.executable, "-m", "repflat", "report", "--help"], capture_output=True,
                         text=True)
    assert out.returncode == 0 and "--embeddings" in out.stdout and "--out" in out.stdout


def test_the_spirals_report_opens_in_headless_chromium(request, tmp_path):
    chromium()  # skips before training when there is no browser
    spirals = request.getfixturevalue("spirals")
    embedded, linked = tmp_path / "embedded", tmp_path / "linked"
    assert main(["report", str(spirals), "--out", str(embedded), "--quiet"]) == 0
    assert main(["report", str(spirals), "--out", str(linked), "--link-images", "--quiet"]) == 0
    pages = [embedded / "spirals/report.html", linked / "spirals/report.html"]
    with chromium_page(tmp_path / "profile") as browser:
        for page in pages:
            browser.get(page.as_uri())
            # Every image loaded and laid out at a non-zero size on the page.
            images = browser.execute_script(
                "return Array.from(document.images).map(i => { const r = i.getBoundingClientRect();"
                " return [i.getAttribute('src').slice(0, 40), i.complete, i.naturalWidth,"
                " r.width, r.height]; })")
            assert len(images) == len(FIGURES), images
            assert all(done and natural > 0 and w > 0 and h > 0
                       for _, done, natural, w, h in images), images
            # The verdict is what a reader sees first: above the fold, not scrolled to.
            verdict = browser.find_element("id", "verdict")
            first = browser.find_element("css selector", "#list-verdict li")
            fold = browser.execute_script("return window.innerHeight")
            assert verdict.is_displayed() and first.is_displayed() and first.text
            assert first.rect["y"] < fold, (first.rect, fold)
            table = browser.find_element("id", "table-flattening")
            assert table.is_displayed()
            header = [c.text for c in table.find_elements("css selector", "thead th")]
            assert header[:4] == ["layer", "arm", "seeds", "σ₁"]
            rows = [r.text for r in table.find_elements("css selector", "tbody tr")]
            assert len(rows) == 4 * 3  # input, fc1, bottleneck, fc2 × three arms
            assert rows[0].startswith("input erm 2 ") and rows[-1].startswith("fc2 manifold_mixup 2 ")


def test_features_from_another_tool_get_a_report_too(tmp_path):
    import numpy as np

    from repflat.rundir.features import FeatureWriter

    w = FeatureWriter(tmp_path / "run")
    rng = np.random.default_rng(0)
    w.add_labels("train", np.repeat([0, 1, 2], 20))
    for layer in ("block1", "block2"):
        w.add("train", 5, layer, rng.normal(size=(60, 8)).astype(np.float32))
    assert main(["analyze", str(tmp_path / "run"), "--out", str(tmp_path / "an"), "--quiet"]) == 0
    assert main(["report", str(tmp_path / "an"), "--embeddings", "pca", "--quiet"]) == 0
    md = (tmp_path / "an/report.md").read_text()
    assert "spectra.png" in md and "embeddings.png" in md and "## Training" not in md
    assert "PCA of block2" in md


def test_a_broken_analysis_record_is_one_line(spirals, tmp_path, capsys):
    broken = tmp_path / "an"
    shutil.copytree(spirals / "analysis", broken)
    (broken / "analysis.json").write_text('{"runs": [{"run": 1}]}')
    before = digest(broken)
    assert main(["report", str(broken)]) == 2
    err = capsys.readouterr().err
    assert "expected an analysis record written by repflat" in err and err.count("\n") == 1
    assert digest(broken) == before
