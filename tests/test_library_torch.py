"""The torch side as a library: `repflat.extract` on what a notebook holds (a module of
one's own, a DataLoader, an ImageFolder, tensors, a dict of splits), in memory or to a
run directory, with class names end to end; lazy top-level names."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from torch import nn
from torch.utils.data import DataLoader, Dataset, IterableDataset, Subset, TensorDataset

import repflat
from repflat.cli import main
from repflat.config import DigitsData, ImageData
from repflat.errors import UserError
from repflat.rundir.features import Features, MemoryFeatures
from tests.datafiles import make_imagefolder
from tests.trees import digest

ROOT = Path(__file__).resolve().parent.parent


class Small(nn.Module):
    """A model of one's own: conv features, a pooled hidden layer, a classifier."""

    def __init__(self, channels: int = 3, n_classes: int = 3):
        super().__init__()
        self.conv = nn.Conv2d(channels, 4, 3, padding=1)
        self.relu = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(2)
        self.fc = nn.Linear(16, n_classes)

    def forward(self, x):
        return self.fc(self.pool(self.relu(self.conv(x))).flatten(1))


class Named(Dataset):
    """A Dataset of one's own with torchvision's `classes` attribute."""

    classes = ["ant", "bee", "cat"]

    def __init__(self, n: int = 23, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        self.x, self.y = torch.randn(n, 3, 6, 6, generator=g), torch.arange(n) % 3

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i], int(self.y[i])


@pytest.fixture
def model():
    torch.manual_seed(0)
    return Small()


def files_under(path: Path) -> list[Path]:
    return sorted(p for p in path.rglob("*"))


def test_own_module_and_loader_in_memory_equal_the_run_directory(tmp_path, model, monkeypatch):
    data = Named()
    loader = DataLoader(data, batch_size=5)
    quiet_tmp, cwd = tmp_path / "tmp", tmp_path / "cwd"
    quiet_tmp.mkdir(), cwd.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(quiet_tmp))
    monkeypatch.setenv("TMPDIR", str(quiet_tmp))
    monkeypatch.chdir(cwd)
    fs = repflat.extract(model, ["conv", "pool", "fc"], loader, splits="train", progress=False)
    assert files_under(quiet_tmp) == [] and files_under(cwd) == []  # nothing written, anywhere
    assert isinstance(fs, MemoryFeatures)
    assert fs.class_names == ["ant", "bee", "cat"]
    np.testing.assert_array_equal(fs.labels(), data.y.numpy())
    with torch.no_grad():  # in order, batches of the loader's 5 (BLAS rounds by batch shape)
        expect = torch.cat([model(data.x[i:i + 5]) for i in range(0, len(data.x), 5)])
        np.testing.assert_array_equal(fs.array("fc"), expect.numpy())
    assert fs.array("pool").shape == (23, 16) and fs.array("conv").shape == (23, 4 * 6 * 6)

    disk = repflat.extract(model, ["conv", "pool", "fc"], loader, tmp_path / "out", splits="train",
                           progress=False)
    assert isinstance(disk, Features)
    for layer in ("conv", "pool", "fc"):  # the same capture loop: equal bit for bit
        a, b = fs.array(layer), disk.array(layer)
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes()
    np.testing.assert_array_equal(disk.labels(), fs.labels())
    assert disk.class_names == fs.class_names
    described = yaml.safe_load((tmp_path / "out/extract.yaml").read_text())
    assert described["batch_size"] == 5  # the loader's, when none is given


def square_imagefolder(root: Path, only_train: bool = False) -> Path:
    make_imagefolder(root, classes=("circle", "cross"), per_class=3, size=12)
    if only_train:
        shutil.rmtree(root / "val")
    return root


def test_imagefolder_class_names_reach_the_manifest(tmp_path, model):
    from torchvision import transforms as T
    from torchvision.datasets import ImageFolder

    folder = ImageFolder(square_imagefolder(tmp_path / "data") / "train", transform=T.ToTensor())
    disk = repflat.extract(model, ["pool"], folder, tmp_path / "out", splits="train", progress=False)
    manifest = json.loads((tmp_path / "out/features/manifest.json").read_text())
    assert manifest["class_names"] == ["circle", "cross"]
    assert Features(tmp_path / "out").class_names == disk.class_names == ["circle", "cross"]
    assert disk.labels().tolist() == [0, 0, 0, 1, 1, 1]
    # behind a Subset and a DataLoader the names are found too
    subset = repflat.extract(model, ["pool"], DataLoader(Subset(folder, [0, 4])), splits="train",
                             progress=False)
    assert subset.class_names == ["circle", "cross"] and subset.labels().tolist() == [0, 1]
    assert "classes (2): circle, cross" in repr(subset)


def test_tensors_and_arrays_as_x_y(model):
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(10, 3, 5, 5, generator=g), torch.tensor([2, 0, 1] * 3 + [0])
    fs = repflat.extract(model, ["fc"], (x, y), splits="train", class_names=["a", "b", "c"],
                         batch_size=4, progress=False)
    with torch.no_grad():
        np.testing.assert_array_equal(fs.array("fc"), model(x).numpy())
    assert fs.labels().dtype == np.int64 and fs.labels().tolist() == y.tolist()
    assert fs.class_name(2) == "c" and fs.splits == {}
    from_numpy = repflat.extract(model, ["fc"], (x.double().numpy(), y.numpy()), splits="train",
                                 progress=False)
    np.testing.assert_array_equal(from_numpy.array("fc"), fs.array("fc"))  # float64 -> float32
    assert from_numpy.class_names is None
    test_only = repflat.extract(model, "fc", (x, y), splits=("test",), progress=False)
    assert test_only.label_splits() == ["test"] and test_only.array("fc", split="test").shape == (10, 3)


def test_a_dict_of_splits(tmp_path, model):
    data = Named()
    g = torch.Generator().manual_seed(2)
    test = (torch.randn(7, 3, 6, 6, generator=g), torch.tensor([0, 1, 2, 0, 1, 2, 0]))
    splits = {"train": DataLoader(data, batch_size=8), "test": test}
    fs = repflat.extract(model, ["pool", "fc"], splits, batch_size=3, progress=False)
    assert fs.label_splits() == ["test", "train"] and fs.class_names == ["ant", "bee", "cat"]
    assert fs.array("fc", split="test").shape == (7, 3) and fs.labels("test").tolist() == test[1].tolist()
    disk = repflat.extract(model, ["pool", "fc"], splits, tmp_path / "out", batch_size=3, progress=False)
    for split in ("train", "test"):
        for layer in ("pool", "fc"):
            assert disk.array(layer, split=split).tobytes() == fs.array(layer, split=split).tobytes()
    assert yaml.safe_load((tmp_path / "out/extract.yaml").read_text())["splits"] == ["train", "test"]
    only = repflat.extract(model, ["fc"], splits, splits=("test",), progress=False)
    assert only.label_splits() == ["test"]


def test_data_configs_carry_class_names(model):
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(64, 8), nn.ReLU(), nn.Linear(8, 10))
    fs = repflat.extract(mlp, ["2"], DigitsData(), progress=False)
    assert fs.class_names == [str(k) for k in range(10)] and fs.array("2").shape[1] == 8


def test_training_records_class_names_and_spirals_have_none(tmp_path, tiny):
    import dataclasses

    from repflat.config import CaptureConfig, MLPModel, TrainConfig

    digits = dataclasses.replace(tiny(), data=DigitsData(), model=MLPModel(widths=(8,)),
                                 train=TrainConfig(epochs=1, batch_size=256, lr=0.01),
                                 capture=CaptureConfig(layers=("fc1",), epochs=(1,)))
    repflat.train(digits, tmp_path / "digits", progress=False)
    assert Features(tmp_path / "digits").class_names == [str(k) for k in range(10)]
    repflat.train(tiny(), tmp_path / "spirals", progress=False)
    manifest = json.loads((tmp_path / "spirals/features/manifest.json").read_text())
    assert "class_names" not in manifest and Features(tmp_path / "spirals").class_names is None


def test_the_same_seeded_extraction_twice_is_a_no_op(tmp_path, capsys):
    # resnet18 wants 3-channel images, so the data is a small ImageFolder (train/ only,
    # which also shows that a missing val/ is not needed for --split train)
    root = square_imagefolder(tmp_path / "data", only_train=True)
    argv = ["extract", "--model", "resnet18", "--seed", "0", "--num-classes", "2", "--layers", "fc",
            "--data", "imagefolder", "--root", str(root), "--split", "train"]
    assert main([*argv, "--out", str(tmp_path / "out")]) == 0
    assert capsys.readouterr().out.strip().endswith("extracted fc for train")
    before = digest(tmp_path / "out")
    stamps = {p: p.stat().st_mtime_ns for p in (tmp_path / "out").rglob("*")}
    assert main([*argv, "--out", str(tmp_path / "out")]) == 0
    assert "already complete" in capsys.readouterr().out
    assert digest(tmp_path / "out") == before
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "out").rglob("*")} == stamps
    described = yaml.safe_load((tmp_path / "out/extract.yaml").read_text())
    assert described["seed"] == 0
    assert Features(tmp_path / "out").class_names == ["circle", "cross"]
    # the same seed draws the same model in another directory; no seed draws another one
    assert main([*argv, "--out", str(tmp_path / "again")]) == 0
    again = yaml.safe_load((tmp_path / "again/extract.yaml").read_text())
    assert again["model_sha256"] == described["model_sha256"]
    unseeded = [a for a in argv if a not in ("--seed", "0")]
    assert main([*unseeded, "--out", str(tmp_path / "out"), "--quiet"]) == 2
    assert "model_sha256" in capsys.readouterr().err and digest(tmp_path / "out") == before


class Stream(IterableDataset):
    def __iter__(self):
        yield torch.zeros(3, 6, 6), 0


class InputsOnly(Dataset):
    def __len__(self):
        return 4

    def __getitem__(self, i):
        return torch.zeros(3, 6, 6)


class Worded(Named):
    def __getitem__(self, i):
        return self.x[i], self.classes[int(self.y[i])]


X, Y = torch.zeros(4, 3, 6, 6), torch.tensor([0, 1, 0, 1])


@pytest.mark.parametrize("data, kwargs, fragment", [
    ("digits", {}, "data: expected a DataConfig, a Dataset of (input, label) items, a DataLoader, "
                   "a pair (X, y) of arrays or tensors, or a dict {split: one of these}, got 'str'"),
    (None, {}, "got 'NoneType'"),
    (X, {}, "got 'Tensor'"),
    ((X, Y, Y), {}, "data: expected a DataConfig"),
    ((X, Y.float()), {}, "data: expected X of shape (n_samples, ...) and y of n_samples integer labels"),
    ((X, Y[:3]), {}, "y of shape (3,)"),
    ((X, Y - 1), {}, "data: expected class labels >= 0, got -1"),
    (([1, 2], [0, 1]), {}, "data: expected a pair (X, y) of arrays or tensors, got 'a pair of list and list'"),
    (Stream(), {}, "data: expected a map-style Dataset"),
    (DataLoader(Stream()), {}, "data: expected a map-style Dataset"),
    (InputsOnly(), {}, "data: expected items (input, label)"),
    (TensorDataset(X), {}, "data: expected items (input, label), got 'a TensorDataset of inputs alone'"),
    (Worded(), {}, "data: expected one integer class label per input"),
    ({"val": (X, Y)}, {}, "data: expected a dict keyed by split (train or test), got 'val'"),
    ({"train": "x"}, {}, "data['train']: expected a DataConfig"),
    ({}, {}, "data: expected at least one split in the dict"),
    ((X, Y), {"splits": ("train", "test")}, "splits: expected one split for a single data set"),
    ({"train": (X, Y)}, {"splits": ("test",)}, "splits: unknown name 'test'"),
    ((X, Y), {"class_names": "ab"}, "class_names: expected a list of names"),
    ((X, Y), {"class_names": ["a"]}, "class_names: expected a name for every class label (0 to 1), got '1 names'"),
    ((X, Y), {"resume": True}, "resume, restart: expected only with out"),
    ((X, Y), {"seed": -1}, "seed: expected an integer >= 0"),
])
def test_wrong_data_is_one_line_naming_the_parameter(tmp_path, model, monkeypatch, data, kwargs, fragment):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError) as err:
        repflat.extract(model, ["fc"], data, progress=False, **{"splits": "train"} | kwargs)
    assert fragment in str(err.value) and "\n" not in str(err.value), str(err.value)
    assert list(tmp_path.iterdir()) == []


def test_features_too_large_for_memory_are_refused_before_allocation(model, monkeypatch):
    monkeypatch.setenv("REPFLAT_MEMORY_BUDGET", "1K")
    with pytest.raises(UserError, match=r"^out: holding the train features in memory .* pass "
                       r"out=DIR to stream them to disk\) needs"):
        repflat.extract(model, ["conv"], Named(), splits="train", progress=False)  # 23 x 144 floats > 1 KiB


def test_imagefolder_with_only_a_train_folder(tmp_path, model):
    root = square_imagefolder(tmp_path / "data", only_train=True)
    fs = repflat.extract(model, ["pool"], ImageData(name="imagefolder", root=str(root)), progress=False)
    assert fs.class_names == ["circle", "cross"] and fs.array("pool").shape == (6, 16)
    with pytest.raises(UserError, match=r"data.root: expected a directory holding train/ and val/"):
        repflat.extract(model, ["pool"], ImageData(name="imagefolder", root=str(root)),
                        splits=("train", "test"), progress=False)


def test_a_refused_directory_names_the_field_that_differs(tmp_path, model):
    data = Named()
    repflat.extract(model, ["fc"], data, tmp_path, splits="train", progress=False)
    before = digest(tmp_path)
    with pytest.raises(UserError) as err:
        repflat.extract(model, ["pool"], data, tmp_path, splits="train", progress=False)
    assert str(err.value) == (f"out: {tmp_path} holds a different extraction (layers: ['pool'] here, "
                              "['fc'] on disk); choose another directory")
    with pytest.raises(UserError, match=r"\(reduce: 'avg' here, 'flatten' on disk\)"):
        repflat.extract(model, ["fc"], data, tmp_path, splits="train", reduce="avg", progress=False)
    assert digest(tmp_path) == before


def test_names_added_to_a_complete_extraction_are_recorded(tmp_path, model):
    xy = (X, Y)
    repflat.extract(model, ["fc"], xy, tmp_path, splits="train", progress=False)
    assert Features(tmp_path).class_names is None  # a directory without names reads as before
    repflat.extract(model, ["fc"], xy, tmp_path, splits="train", class_names=["even", "odd"],
                    progress=False)
    assert Features(tmp_path).class_names == ["even", "odd"]


def test_top_level_names_are_lazy_and_torch_free_until_asked_for():
    code = ("import sys, repflat\n"
            "assert repflat.Features and repflat.MemoryFeatures\n"
            "assert {'extract', 'train', 'Features', 'MemoryFeatures'} <= set(dir(repflat))\n"
            "assert 'torch' not in sys.modules, 'torch imported by import repflat'\n"
            "extract = repflat.extract\n"
            "assert 'torch' in sys.modules\n"
            "from repflat.capture.extract import extract as e\n"
            "from repflat.training.loop import train as t\n"
            "assert extract is e and repflat.train is t\n"
            "assert repflat.__file__.startswith(%r), repflat.__file__\n"
            "try:\n    repflat.nothing\nexcept AttributeError as err:\n    assert 'nothing' in str(err)\n"
            "else:\n    raise AssertionError('repflat.nothing')\n" % str(ROOT))
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
