"""Feature extraction: names, the in-place pitfall, streaming, resume, processes, bad input."""
import pickle

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import Dataset, TensorDataset

from repflat.capture.engine import pending_state, reduce_features
from repflat.cli import main
from tests.trees import digest
from repflat.config import DigitsData
from repflat.base.data import Data
from repflat.errors import UserError
from repflat.capture.extract import extract
from repflat.rundir.features import Features
from tests.datafiles import make_cifar10, skip_md5


class Block(nn.Module):
    """conv → bn → ReLU(inplace) → (+ input) → ReLU(inplace): both pitfalls in one."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)
        self.bn = nn.BatchNorm2d(3)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        out = self.relu(self.bn(self.conv(x)))
        return torch.relu_(out + x)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.block = Block()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(3, 4)

    def forward(self, x):
        return self.fc(self.pool(self.block(x)).flatten(1))


def image_data(n=20, seed=0) -> Data:
    g = torch.Generator().manual_seed(seed)
    x, y = torch.randn(n, 3, 6, 6, generator=g), torch.arange(n) % 4
    ds = TensorDataset(x, y)
    return Data({"train": ds, "test": ds}, {"train": y.numpy(), "test": y.numpy()}, 4, (3, 6, 6))


@pytest.fixture
def net():
    torch.manual_seed(0)
    return Net().eval()


def load(out, layer, split="train", epoch=0):
    fs = Features(out)
    return fs.load(fs.get(split, epoch, layer))


def test_captured_bn_output_is_not_overwritten_by_the_inplace_relu(tmp_path, net):
    data = image_data()
    extract(net, ["block.bn"], data, tmp_path, progress=False)
    got = load(tmp_path, "block.bn")
    with torch.no_grad():
        expect = net.block.bn(net.block.conv(data.datasets["test"].tensors[0])).flatten(1).numpy()
    assert (expect < 0).any()  # the in-place ReLU would have zeroed these
    np.testing.assert_allclose(got, expect, rtol=1e-6, atol=1e-6)


def test_functional_fx_nodes_are_captured_before_inplace_ops(tmp_path, net):
    data = image_data()
    extract(net, ["block.add"], data, tmp_path, progress=False)  # `out + x`, not a module
    x = data.datasets["test"].tensors[0]
    with torch.no_grad():
        expect = (torch.relu(net.block.bn(net.block.conv(x))) + x).flatten(1).numpy()
    assert (expect < 0).any()  # relu_ after the add would have zeroed these
    np.testing.assert_allclose(load(tmp_path, "block.add"), expect, rtol=1e-6, atol=1e-6)


def test_unknown_layer_lists_close_matches(tmp_path, net):
    with pytest.raises(UserError) as err:
        extract(net, ["block.rleu"], image_data(), tmp_path, progress=False)
    msg = str(err.value)
    assert msg.startswith("layers: unknown name 'block.rleu' (did you mean 'block.relu'")
    assert "block.add" in msg  # FX node names are offered too
    assert not tmp_path.exists() or not any(tmp_path.iterdir())


@pytest.mark.parametrize("how, shape", [("flatten", (5, 3 * 4 * 4)), ("avg", (5, 3)), ("max", (5, 3))])
def test_reduction_rules(how, shape):
    t = torch.randn(5, 3, 4, 4)
    r = reduce_features(t, how)
    assert r.shape == shape and r.data_ptr() != t.data_ptr()
    ref = {"flatten": t.reshape(5, -1), "avg": t.mean((2, 3)), "max": t.amax((2, 3))}[how]
    torch.testing.assert_close(r, ref)


def test_labels_and_float16_storage(tmp_path, net):
    extract(net, ["pool", "fc"], image_data(), tmp_path, dtype="float16", reduce="avg", progress=False)
    fs = Features(tmp_path)
    assert fs.get("train", 0, "pool").dtype == "float16" and fs.get("train", 0, "pool").shape == (20, 3)
    np.testing.assert_array_equal(fs.labels("train"), np.arange(20) % 4)


class Failing(Dataset):
    """A dataset that dies on one index, as a killed or crashed extraction would."""

    def __init__(self, base, fail_at):
        self.base, self.fail_at = base, fail_at

    def __len__(self):
        return len(self.base)

    def __getitem__(self, i):
        if i == self.fail_at:
            raise KeyboardInterrupt
        return self.base[i]


def test_resume_after_an_interruption_gives_the_uninterrupted_result(tmp_path, net):
    data = image_data(n=40)
    extract(net, ["block.bn", "fc"], data, tmp_path / "whole", batch_size=8, progress=False)
    broken = Data({"train": Failing(data.datasets["train"], fail_at=27)}, data.labels, 4, (3, 6, 6))
    with pytest.raises(KeyboardInterrupt):
        extract(net, ["block.bn", "fc"], broken, tmp_path / "cut", batch_size=8, progress=False)
    assert pending_state(tmp_path / "cut")
    assert not (tmp_path / "cut/features/manifest.json").exists()  # no partial array is listed
    with pytest.raises(UserError, match=r"interrupted extraction; resume it \(--resume, resume=True\)"):
        extract(net, ["block.bn", "fc"], data, tmp_path / "cut", batch_size=8, progress=False)
    calls = []
    counting = Data({"train": Counting(data.datasets["train"], calls)}, data.labels, 4, (3, 6, 6))
    extract(net, ["block.bn", "fc"], counting, tmp_path / "cut", batch_size=8, resume=True,
            progress=False)
    assert calls[:2] == [0, 1]  # the first rows go through the model before anything is written
    assert min(calls[2:]) == 24  # batches 0-2 were on disk; it went on from batch 3
    for layer in ("block.bn", "fc"):
        np.testing.assert_array_equal(load(tmp_path / "cut", layer), load(tmp_path / "whole", layer))
    assert not pending_state(tmp_path / "cut") and not list((tmp_path / "cut").rglob("*.partial"))


class Counting(Dataset):
    def __init__(self, base, calls):
        self.base, self.calls = base, calls

    def __len__(self):
        return len(self.base)

    def __getitem__(self, i):
        self.calls.append(i)
        return self.base[i]


def test_restart_discards_the_interrupted_pass(tmp_path, net):
    data = image_data(n=16)
    broken = Data({"train": Failing(data.datasets["train"], fail_at=9)}, data.labels, 4, (3, 6, 6))
    with pytest.raises(KeyboardInterrupt):
        extract(net, ["fc"], broken, tmp_path, batch_size=4, progress=False)
    extract(net, ["fc"], data, tmp_path, batch_size=4, restart=True, progress=False)
    with torch.no_grad():
        expect = net(data.datasets["test"].tensors[0]).numpy()
    np.testing.assert_allclose(load(tmp_path, "fc"), expect, rtol=1e-6, atol=1e-6)


def test_a_different_extraction_in_the_output_is_refused_untouched(tmp_path, net):
    extract(net, ["fc"], image_data(), tmp_path, progress=False)
    before = digest(tmp_path)
    with pytest.raises(UserError, match="holds a different extraction"):
        extract(net, ["pool"], image_data(), tmp_path, progress=False)
    assert digest(tmp_path) == before



def test_extract_cli_on_generated_cifar_with_a_torchvision_resnet(tmp_path, monkeypatch, capsys):
    skip_md5(monkeypatch)
    make_cifar10(tmp_path / "data")
    torch.manual_seed(0)
    import torchvision

    weights = tmp_path / "resnet18-10.pt"
    torch.save(torchvision.models.resnet18(num_classes=10).state_dict(), weights)
    argv = ["extract", "--model", "resnet18", "--weights", str(weights), "--layers", "layer3,avgpool",
            "--data", "cifar10", "--root", str(tmp_path / "data"), "--split", "test",
            "--reduce", "avg", "--out", str(tmp_path / "out"), "--quiet"]
    assert main(argv) == 0
    fs = Features(tmp_path / "out")
    assert fs.get("test", 0, "layer3").shape == (12, 256) and fs.get("test", 0, "avgpool").shape == (12, 512)
    assert main(argv) == 0  # the same extraction again: nothing to do, nothing changed


@pytest.mark.parametrize("argv, fragment", [
    (["--model", "resnet81", "--layers", "fc"], "--model: unknown name 'resnet81' (did you mean 'resnet18'"),
    (["--model", "resnet18", "--layers", "layer9"], "--layers: unknown name 'layer9'"),
    (["--model", "resnet18", "--layers", "fc", "--data", "mnist", "--root", "/nonexistent"],
     "data.root: expected an existing directory with the mnist files"),
    (["--model", "resnet18", "--layers", "fc", "--weights", "PICKLE"], "is not a repflat checkpoint or a state dict"),
    (["--model", "resnet18", "--layers", "fc", "--weights", "/nonexistent.pt"], "--weights: expected an existing"),
    (["--run-dir", "/nonexistent", "--layers", "fc1"], "--run-dir: expected a repflat run directory"),
])
def test_bad_extract_input_is_one_line_and_exit_2(tmp_path, capsys, argv, fragment):
    if "PICKLE" in argv:
        bad = tmp_path / "evil.pt"
        bad.write_bytes(pickle.dumps(Evil(tmp_path / "pwned")))  # creates a file if unpickled
        argv = [str(bad) if a == "PICKLE" else a for a in argv]
    out = tmp_path / "out"
    assert main(["extract", *argv, "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and fragment in err, err
    assert not out.exists() and not (tmp_path / "pwned").exists()


class Evil:
    """A pickle payload that runs code (here: creates a file) when unpickled."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_corrupt_or_tampered_output_directories(tmp_path, net, capsys):
    extract(net, ["fc"], image_data(), tmp_path, progress=False)
    array = tmp_path / "features/train/epoch0000/fc.npy"
    raw = bytearray(array.read_bytes())
    raw[-1] ^= 1
    array.write_bytes(bytes(raw))
    assert main(["analyze", str(tmp_path), "--out", str(tmp_path / "a"), "--quiet"]) == 2
    assert "checksum mismatch" in capsys.readouterr().err
    (tmp_path / "features/manifest.json").write_text("{not json")
    before = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in tmp_path.rglob("*") if p.is_file()}
    with pytest.raises(UserError, match="is not valid JSON"):
        extract(net, ["fc"], image_data(), tmp_path, progress=False)
    after = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in tmp_path.rglob("*") if p.is_file()}
    assert after == before  # not even rewritten with the same bytes


def test_digits_is_the_offline_default(tmp_path):
    torch.manual_seed(0)
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 10))
    extract(mlp, ["1", "2"], DigitsData(), tmp_path, splits=("train", "test"), progress=False)
    fs = Features(tmp_path)
    assert fs.get("train", 0, "1").shape[1] == 16
    assert len(fs.labels("train")) + len(fs.labels("test")) == 1797
