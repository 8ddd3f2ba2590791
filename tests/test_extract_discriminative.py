"""`repflat.extract(..., discriminative=True)`: a user's own model gets Corollary 1's
measures. Before, extract saved no discriminative summary, so the analysis of a user's
model had the paper's raw statistics only (no along_spread, no reading)."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

import repflat  # noqa: E402
import repflat.analysis as ra  # noqa: E402
from repflat.capture.discriminative import class_jacobian_summaries  # noqa: E402
from repflat.errors import UserError  # noqa: E402


class Net(nn.Module):
    def __init__(self, K=3):
        super().__init__()
        torch.manual_seed(0)
        self.hidden, self.act, self.head = nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, K)

    def forward(self, x):
        return self.head(self.act(self.hidden(x)))


def data(n=60, K=3):
    g = torch.Generator().manual_seed(1)
    return TensorDataset(torch.randn(n, 4, generator=g), torch.arange(n) % K)


def test_in_memory_summaries_equal_the_training_captures_and_reach_the_analysis():
    model, train = Net(), data()
    fs = repflat.extract(model, ["hidden", "act"], train, splits="train", discriminative=True)
    reference, counts = class_jacobian_summaries(
        model, [(train.tensors[0], train.tensors[1])], ["hidden", "act"], 3, device=torch.device("cpu"))
    for layer in ("hidden", "act"):
        got = fs.discriminative(layer, split="train")
        assert got is not None
        np.testing.assert_array_equal(got.counts, counts)
        np.testing.assert_allclose(got.trace, reference[layer][1], rtol=1e-10)
        # the factor is determined up to the sign of each eigenvector: compare G = FᵀF
        G = np.einsum("kri,krj->kij", got.factor, got.factor)
        R = np.einsum("kri,krj->kij", reference[layer][0], reference[layer][0])
        np.testing.assert_allclose(G, R, rtol=1e-8, atol=1e-12)
    metrics = set(ra.compute({"mine": fs}).flat["metric"])
    assert {"along_spread", "across_spread", "collapsed"} <= metrics
    plain = repflat.extract(model, ["hidden"], train, splits="train")  # the default: none
    assert plain.discriminative("hidden", split="train") is None
    assert "along_spread" not in set(ra.compute({"mine": plain}).flat["metric"])


def test_a_shuffled_loader_gives_the_same_summary_and_disk_the_same_as_memory(tmp_path):
    model, train = Net(), data()
    mem = repflat.extract(model, ["act"], train, splits="train", discriminative=True)
    loader = DataLoader(train, batch_size=7, shuffle=True, generator=torch.Generator().manual_seed(3))
    shuffled = repflat.extract(model, ["act"], loader, splits="train", discriminative=True)
    disk = repflat.extract(model, ["act"], train, out=tmp_path / "x", splits="train", discriminative=True)
    a = mem.discriminative("act", split="train")
    for other in (shuffled, disk):
        b = other.discriminative("act", split="train")
        np.testing.assert_allclose(b.trace, a.trace, rtol=1e-10)
        np.testing.assert_array_equal(b.counts, a.counts)
    # asking again without the summaries is another extraction, named in the refusal
    with pytest.raises(UserError, match="discriminative"):
        repflat.extract(model, ["act"], train, out=tmp_path / "x", splits="train")


class Functional(Net):
    def forward(self, x):  # tanh as a function: an FX node, not a module
        return self.head(torch.tanh(self.hidden(x)))


def test_layers_without_a_summary_are_said(capsys):
    model, train = Functional(), data()
    fs = repflat.extract(model, ["tanh", "hidden", "input"], train, splits="train", discriminative=True)
    assert fs.discriminative("tanh", split="train") is None
    assert fs.discriminative("hidden", split="train") is not None
    assert fs.discriminative("input", split="train") is not None  # the input is a layer too
    assert "discriminative summary of 'tanh' not saved" in capsys.readouterr().out


def test_the_cli_extracts_a_runs_features_as_that_run_with_its_summaries(trained_runs, tmp_path):
    """`repflat extract --run-dir` filed a run's features under the output directory's
    name, no strategy, no seed (an ERM run and a mixup run read as one arm of their own);
    now they are the run's arm, strategy and seed (--arm/--strategy say otherwise), and
    --discriminative gives the analysis Corollary 1's measures."""
    from repflat.cli import main
    from repflat.rundir.features import Features

    run = trained_runs["manifold_mixup", 1]
    assert main(["extract", "--run-dir", str(run), "--layers", "fc1,bottleneck", "--out",
                 str(tmp_path / "a"), "--discriminative", "--quiet"]) == 0
    fs = Features(tmp_path / "a")
    assert (fs.run.arm, fs.run.strategy, fs.run.seed) == ("manifold_mixup", "manifold_mixup", 1)
    assert fs.discriminative("bottleneck", split="train", epoch=3) is not None  # the run's last
    assert main(["extract", "--run-dir", str(run), "--layers", "fc1", "--out", str(tmp_path / "b"),
                 "--arm", "mine", "--strategy", "mixup_of_mine", "--quiet"]) == 0
    fs = Features(tmp_path / "b")
    assert (fs.run.arm, fs.run.strategy, fs.run.seed) == ("mine", "mixup_of_mine", 1)
    assert fs.discriminative("fc1", split="train", epoch=3) is None
