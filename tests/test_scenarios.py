"""The five user scenarios of docs/own-model.md ("Your own model in 10 lines"), as a user runs them.

(a) an own nn.Module and DataLoader -> features in memory -> a spectra frame;
(b) a torchvision ImageFolder -> `repflat extract` and `analyze` -> class names in spectra.csv;
(c) (X, y) tensors -> class_spectra on a CPU tensor, equal to numpy's;
(d) the same seeded extraction command twice -> the second changes nothing;
(e) a working directory holding its own analysis.py and analysis/ -> CLI and imports work.
"""
import subprocess
import sys

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import repflat
import repflat.analysis as ra
from repflat.cli import main
from tests.test_library_torch import square_imagefolder
from tests.trees import digest


def test_a_own_module_and_loader_to_a_spectra_frame():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Linear(16, 3))
    x, y = torch.randn(90, 5), torch.arange(90) % 3
    features = repflat.extract(model, ["1"], DataLoader(TensorDataset(x, y), batch_size=32),
                               splits="train", class_names=["a", "b", "c"], progress=False)
    spectra = ra.compute({"mine": features}).spectra
    per_class = spectra[spectra["group"] == "class"]
    assert set(per_class["class_name"]) == {"a", "b", "c"}
    assert per_class["class"].dtype == "Int64" and per_class["singular_value"].dtype == float
    hidden = torch.relu(model[0](x)).detach().numpy()
    assert np.allclose(per_class[per_class["class"] == 0]["singular_value"].to_numpy(),
                       ra.class_spectra(hidden, y.numpy())[0], rtol=1e-5, atol=1e-5)


def test_b_imagefolder_class_names_reach_spectra_csv(tmp_path):
    root = square_imagefolder(tmp_path / "data")
    assert main(["extract", "--model", "resnet18", "--seed", "0", "--num-classes", "2",
                 "--layers", "avgpool", "--data", "imagefolder", "--root", str(root),
                 "--out", str(tmp_path / "feats"), "--quiet"]) == 0
    assert main(["analyze", str(tmp_path / "feats"), "--out", str(tmp_path / "an"), "--quiet"]) == 0
    spectra = pd.read_csv(tmp_path / "an/spectra.csv")
    assert set(spectra.loc[spectra["group"] == "class", "class_name"]) == {"circle", "cross"}


def test_c_class_spectra_on_cpu_tensors():
    x, y = torch.randn(60, 7), torch.arange(60) % 2
    got = ra.class_spectra(x, y)
    want = ra.class_spectra(x.numpy(), y.numpy())
    assert got.keys() == want.keys() and all(np.array_equal(got[k], want[k]) for k in got)


def test_d_the_same_seeded_extraction_twice_is_a_no_op(tmp_path, capsys):
    root = square_imagefolder(tmp_path / "data")
    argv = ["extract", "--model", "resnet18", "--seed", "0", "--num-classes", "2", "--layers", "fc",
            "--data", "imagefolder", "--root", str(root), "--out", str(tmp_path / "out")]
    assert main(argv) == 0
    before = digest(tmp_path / "out")
    capsys.readouterr()
    assert main(argv) == 0
    assert "already complete" in capsys.readouterr().out and digest(tmp_path / "out") == before


def test_e_a_users_own_analysis_py_breaks_nothing(tmp_path):
    (tmp_path / "analysis.py").write_text("raise SystemExit('the user analysis.py was imported')\n")
    (tmp_path / "analysis").mkdir()
    (tmp_path / "analysis/__init__.py").write_text("raise SystemExit('the user analysis/ was imported')\n")
    run = [sys.executable, "-c", "import repflat.analysis as ra; print(ra.class_spectra([[0.0], [1.0]], [0, 0]))"]
    assert subprocess.run(run, cwd=tmp_path, capture_output=True, text=True).returncode == 0
    help_ = subprocess.run([sys.executable, "-m", "repflat", "report", "--help"], cwd=tmp_path,
                           capture_output=True, text=True)
    assert help_.returncode == 0 and "usage: repflat report" in help_.stdout
