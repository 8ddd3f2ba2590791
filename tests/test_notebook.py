"""In Jupyter, executed headless: the example notebook end to end, progress that shows
with and without ipywidgets and stays finished in the saved file, and a mistake shown as
its one line."""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat", reason="the notebook tests need nbformat (the test extra)")
nbclient = pytest.importorskip("nbclient", reason="the notebook tests need nbclient (the test extra)")
pytest.importorskip("ipykernel", reason="the notebook tests need ipykernel (the test extra)")

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "own_model.ipynb"
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def run(nb, cwd: Path, allow_errors: bool = False):
    """Execute `nb` in a fresh kernel in `cwd`, as `jupyter nbconvert --execute` does."""
    client = nbclient.NotebookClient(nb, timeout=600, startup_timeout=120, kernel_name="python3",
                                     allow_errors=allow_errors,
                                     resources={"metadata": {"path": str(cwd)}})
    # tiny models: one thread is faster, and other work on the machine cannot stall it
    client.execute(env=os.environ | {"OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"})
    return nb


def outputs(nb, kind: str | None = None) -> list:
    return [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
            if kind is None or o.output_type == kind]


def text(output) -> str:
    if output.output_type == "stream":
        return output.text
    if output.output_type == "error":
        return ANSI.sub("", "\n".join(output.traceback))
    return str(output.get("data", {}).get("text/plain", ""))


def notebook(*sources: str):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(s) for s in sources]
    return nb


@pytest.mark.slow
def test_the_example_notebook_runs_end_to_end(tmp_path):
    nb = run(nbformat.read(EXAMPLE, as_version=4), tmp_path)
    assert not outputs(nb, "error")
    everything = "\n".join(text(o) for o in outputs(nb))
    assert not [o for o in outputs(nb, "stream") if o.name == "stderr"], "nothing on stderr"
    for seen in ("block.relu:2", "block.add",          # repflat.layers: calls and function nodes
                 "run: arm manifold_mixup, strategy manifold_mixup, seed 2",
                 "analysis: 100%",                      # the finished bar, as saved
                 "paired t", "labels line up: True"):
        assert seen in everything, seen
    figure = tmp_path / "own_model_notebook.png"
    assert figure.is_file() and figure.stat().st_size > 10_000
    assert EXAMPLE.read_text().count('"outputs": []') == sum(
        c.cell_type == "code" for c in nbformat.read(EXAMPLE, as_version=4).cells)  # kept clean


PROGRESS = ("import repflat, repflat.progress, repflat.analysis as ra\n"
            "import numpy as np, torch\n"
            "repflat.progress.DELAY = 0  # these passes are short: show them anyway\n"
            "x, y = torch.randn(300, 5), torch.arange(300) % 3\n"
            "net = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.ReLU())\n"
            "fs = {f'run{i}': repflat.extract(net, ['1'], (x, y), splits='train', batch_size=50)\n"
            "      for i in range(4)}\n"
            "result = ra.compute(fs)")


@pytest.mark.slow
@pytest.mark.parametrize("widgets", [False, True], ids=["without ipywidgets", "with ipywidgets"])
def test_progress_shows_and_stays_finished_with_no_warning(tmp_path, widgets):
    """On the code before: without ipywidgets, importing repflat warned (tqdm.auto's
    TqdmWarning) and no progress showed; with them, widgets were saved at the percentage
    they were first drawn at; and the analysis was silent by default."""
    if widgets:
        pytest.importorskip("ipywidgets")
    block = "" if widgets else "import sys; sys.modules['ipywidgets'] = None  # as if not installed\n"
    nb = run(notebook(block + "import warnings; warnings.simplefilter('error')\n" + PROGRESS), tmp_path)
    assert not outputs(nb, "error")
    assert not [o for o in outputs(nb, "stream") if o.name == "stderr"]
    bars = [text(o) for o in outputs(nb, "display_data")]
    assert any(b.startswith("train: 100%") and "300/300" in b for b in bars), bars
    assert any(b.startswith("analysis: 100%") and "4/4" in b for b in bars), bars
    assert all("100%" in b for b in bars), bars  # every bar saved finished
    assert not any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outputs(nb))
    lines = "".join(text(o) for o in outputs(nb, "stream"))
    assert "analysis: 4 arrays of 4 runs, train split" in lines and "\r" not in lines


def test_no_progress_where_nobody_watches_by_default(capsys):
    import numpy as np

    import repflat.analysis as ra
    from repflat.rundir.features import MemoryFeatures

    x = np.random.default_rng(0).normal(size=(60, 4))
    ra.compute([MemoryFeatures({("train", 0, "h"): x}, {"train": np.arange(60) % 3}).labelled("a")])
    assert capsys.readouterr() == ("", "")


@pytest.mark.slow
def test_a_mistake_in_a_notebook_is_its_one_line(tmp_path):
    """On the code before, the same cells printed 20 to 60 lines of repflat's frames
    (extract, _prepare, check_layers; compute, collect_runs; ...) above the message."""
    nb = run(notebook("import repflat, torch\n"
                      "net = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.ReLU())",
                      "repflat.extract(net, ['fc9'], (torch.randn(4, 5), torch.arange(4)), splits='train')",
                      "import repflat.analysis as ra\nra.compute('no/such/run')",
                      "repflat.Mixup(net, ['1'], alpha=0)"), tmp_path, allow_errors=True)
    errors = {c.source.splitlines()[-1]: o for c in nb.cells for o in c.outputs if o.output_type == "error"}
    assert list(errors) == ["repflat.extract(net, ['fc9'], (torch.randn(4, 5), torch.arange(4)), splits='train')",
                            "ra.compute('no/such/run')", "repflat.Mixup(net, ['1'], alpha=0)"]
    for cell, error in errors.items():  # the message alone, under the cell: no frame of repflat's
        assert text(error) == f"UserError: {error.evalue}", text(error)
    assert [e.evalue.split(":")[0] for e in errors.values()] == ["layers", "paths", "alpha"]

