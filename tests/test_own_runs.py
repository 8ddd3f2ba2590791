"""A researcher's own models, loop and loaders: DataLoaders read as built, features that
know their run, and comparisons that work for them exactly as for repflat's runs."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import (DataLoader, Dataset, SubsetRandomSampler, TensorDataset,
                              WeightedRandomSampler)

import repflat
import repflat.analysis as ra
from repflat.analysis.report.interpret import interpretation
from repflat.analysis.stats import compare as stats_compare
from repflat.analysis.tidy import per_run
from repflat.cli import main
from repflat.errors import UserError
from repflat.rundir.features import FeatureWriter
from repflat.rundir.run import RunWriter, read_run


def mlp(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(64, 24), nn.ReLU(), nn.Linear(24, 12), nn.ReLU(), nn.Linear(12, 10))


@pytest.fixture(scope="module")
def digits():
    d = load_digits()
    return torch.tensor(d.data[:300] / 16.0, dtype=torch.float32), torch.tensor(d.target[:300])


# ---------------------------------------------------------------- DataLoaders as built

def test_a_subset_sampler_gives_its_rows_in_its_order_with_their_indices(digits):
    """On the code before, a SubsetRandomSampler of 100 rows gave all 300 rows, in order."""
    x, y = digits
    model = mlp(0).eval()
    picked = list(range(0, 300, 3))
    loader = DataLoader(TensorDataset(x, y), batch_size=16,
                        sampler=SubsetRandomSampler(picked, generator=torch.Generator().manual_seed(4)))
    fs = repflat.extract(model, ["3"], loader, splits="train", progress=False)
    order = fs.indices()
    assert len(order) == 100 and sorted(order.tolist()) == picked
    assert order.tolist() != picked  # the sampler's shuffled order, not the data set's
    np.testing.assert_array_equal(fs.labels(), y.numpy()[order])  # labels line up with rows
    with torch.no_grad():
        expect = torch.relu(model[2](torch.relu(model[0](x[order])))).numpy()
    np.testing.assert_allclose(fs.array("3"), expect, rtol=1e-6, atol=1e-6)


def test_a_shuffled_loader_on_disk_records_indices_that_line_rows_up(digits, tmp_path):
    x, y = digits
    model = mlp(0).eval()
    loader = DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True, drop_last=True,
                        generator=torch.Generator().manual_seed(0))
    disk = repflat.extract(model, ["1"], loader, tmp_path / "out", splits="test", progress=False)
    order = disk.indices("test")
    assert len(order) == 288 and len(set(order.tolist())) == 288  # drop_last: 9 full batches
    assert (tmp_path / "out/features/test/indices.npy").is_file()
    np.testing.assert_array_equal(disk.labels("test"), y.numpy()[order])
    with torch.no_grad():
        np.testing.assert_allclose(disk.array("1", split="test"), torch.relu(model[0](x[order])).numpy(),
                                   rtol=1e-6, atol=1e-6)
    # rows in the data set's order (a plain loader) save no indices and read as 0..n-1
    plain = repflat.extract(model, ["1"], DataLoader(TensorDataset(x, y), batch_size=50),
                            tmp_path / "plain", splits="test", progress=False)
    assert not (tmp_path / "plain/features/test/indices.npy").exists()
    np.testing.assert_array_equal(plain.indices(), np.arange(300))


class Items(Dataset):
    """Items as a notebook might have them: a dict per item, made a batch by a collate_fn."""

    def __init__(self, x, y):
        self.x, self.y = x, y

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return {"pixels": self.x[i], "digit": int(self.y[i])}


def collate(items):
    return torch.stack([it["pixels"] for it in items]) * 2.0, torch.tensor([it["digit"] for it in items])


def test_the_loaders_collate_fn_makes_the_batches(digits):
    """On the code before, the collate_fn was ignored (here: dict items could not even be read)."""
    x, y = digits
    model = mlp(1).eval()
    fs = repflat.extract(model, ["1"], DataLoader(Items(x, y), batch_size=40, collate_fn=collate),
                         splits="train", progress=False)
    with torch.no_grad():
        np.testing.assert_allclose(fs.array("1"), torch.relu(model[0](2.0 * x)).numpy(), rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(fs.labels(), y.numpy())


def test_a_weighted_sampler_with_repeats_keeps_each_row_beside_its_label(digits):
    x, y = digits
    sampler = WeightedRandomSampler(torch.ones(300), 120, replacement=True,
                                    generator=torch.Generator().manual_seed(1))
    fs = repflat.extract(mlp(0).eval(), ["1"], DataLoader(TensorDataset(x, y), batch_size=25, sampler=sampler),
                         splits="train", progress=False)
    assert len(fs.labels()) == 120 and len(set(fs.indices().tolist())) < 120
    np.testing.assert_array_equal(fs.labels(), y.numpy()[fs.indices()])


class Endless(torch.utils.data.Sampler):
    def __iter__(self):
        while True:
            yield 0


class Keys(torch.utils.data.Sampler):
    def __len__(self):
        return 2

    def __iter__(self):
        yield from ("a", "b")


@pytest.mark.parametrize("loader, fragment", [
    (lambda ds: DataLoader(ds, batch_size=None), "batch_size=None gives single items"),
    (lambda ds: DataLoader(ds, sampler=Endless()), "a DataLoader whose sampler has a length"),
    (lambda ds: DataLoader(ds, sampler=Keys()), "sampler yields dataset indices (integers)"),
])
def test_a_loader_whose_rows_cannot_be_told_is_refused_saying_why(digits, loader, fragment):
    x, y = digits
    with pytest.raises(UserError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        repflat.extract(mlp(0), ["1"], loader(TensorDataset(x, y)), splits="train", progress=False)


def test_a_single_loader_is_not_called_train(digits):
    """On the code before, a single (test) loader was filed as the train split."""
    x, y = digits
    loader = DataLoader(TensorDataset(x, y), batch_size=64)
    with pytest.raises(UserError, match=r'^splits: name the split of a single data set, splits="train" or'):
        repflat.extract(mlp(0), ["1"], loader, progress=False)
    fs = repflat.extract(mlp(0), ["1"], loader, splits="test", progress=False)
    assert fs.label_splits() == ["test"] and fs.array("1").shape == (300, 24)  # the only split


# ---------------------------------------------------------------- features that know their run

def train(seed: int, mixing: bool, x, y) -> nn.Module:
    """A user's loop: full-batch Adam, plain cross-entropy or manifold mixup."""
    model = mlp(seed)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    mixup = repflat.Mixup(model, ["input", "1"], alpha=1.0, seed=seed) if mixing else None
    for _ in range(15):
        opt.zero_grad()
        if mixup is None:
            loss = nn.functional.cross_entropy(model(x), y)
        else:
            loss = repflat.soft_cross_entropy(*mixup(x, y))
        loss.backward()
        opt.step()
    return model.eval()


ARMS = {"erm": "none", "mixup": "manifold_mixup"}
SEEDS = (0, 1, 2)


@pytest.fixture(scope="module")
def own_runs(digits, tmp_path_factory):
    """2 arms x 3 seeds of a user's model: features in memory, in extracted directories,
    and the same arrays written as repflat run directories (config.yaml + features)."""
    x, y = digits
    root = tmp_path_factory.mktemp("own")
    memory, extracted, as_runs = [], [], []
    for arm, strategy in ARMS.items():
        for seed in SEEDS:
            model = train(seed, arm == "mixup", x, y)
            label = dict(arm=arm, strategy=strategy, seed=seed)
            fs = repflat.extract(model, ["1", "3"], (x, y), splits="train", progress=False, **label)
            memory.append(fs)
            extracted.append(root / "extracted" / f"{arm}-seed{seed}")
            repflat.extract(model, ["1", "3"], (x, y), extracted[-1], splits="train", progress=False, **label)
            as_runs.append(root / "runs" / f"{arm}-seed{seed}")
            RunWriter(as_runs[-1], {"name": arm, "seed": seed, "mixing": {"strategy": strategy}},
                      "new").finish(1.0)
            writer = FeatureWriter(as_runs[-1])
            writer.add_labels("train", fs.labels())
            for layer in ("1", "3"):
                writer.add("train", 0, layer, fs.array(layer))
    return memory, extracted, as_runs


def same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True))


def test_two_arms_three_seeds_give_the_tables_repflat_runs_give(own_runs):
    """On the code before, every in-memory set was an arm of its own (n_runs 1, no
    intervals) and an extracted directory read back with seed NA and strategy unknown."""
    memory, extracted, as_runs = own_runs
    runs = ra.compute(as_runs, progress=False)
    for other in (ra.compute(memory, progress=False), ra.compute(extracted, progress=False)):
        for table in ("spectra", "flat", "summary", "effects"):
            same(getattr(other, table), getattr(runs, table))
        findings, cautions = interpretation(other)
        assert findings == interpretation(runs)[0]  # "What this shows", word for word
        # its caveats too, but where mixing happened, which a run config says and a
        # label does not (it names the strategy, not the eligible layers)
        where = "Corollary 1 describes minimisers"
        assert [c for c in cautions if where not in c] == [
            c for c in interpretation(runs)[1] if where not in c]
        said = next(c for c in cautions if where in c)
        assert "mixup: mixed at layers not recorded" in said and "for erm, which does not mix" in said
    assert set(runs.summary["n_runs"]) == {3}
    assert runs.summary["arm"].unique().tolist() == ["erm", "mixup"]
    assert runs.flat["seed"].dropna().astype(int).unique().tolist() == [0, 1, 2]
    assert set(runs.flat["run"]) == {f"{a}-seed{s}" for a in ARMS for s in SEEDS}
    effects = runs.effects
    assert set(effects["arm"]) == {"mixup"} and set(effects["baseline"]) == {"erm"}
    assert effects["low"].notna().all() and set(effects["method"]) == {"paired t"}
    assert set(effects["n_seeds"]) == {3}


def test_an_extracted_directory_reads_back_as_its_run(own_runs, tmp_path):
    _, extracted, _ = own_runs
    run = read_run(extracted[4])
    assert (run.name, run.strategy, run.seed) == ("mixup", "manifold_mixup", 1)
    assert repflat.Features(extracted[4]).run.arm == "mixup"
    assert "run: arm mixup, strategy manifold_mixup, seed 1" in repr(repflat.Features(extracted[4]))
    # `repflat analyze` of extracted directories: the same summary as in memory
    assert main(["analyze", *map(str, extracted), "--out", str(tmp_path / "a"), "--figures", "none",
                 "--quiet"]) == 0
    summary = pd.read_csv(tmp_path / "a/summary.csv")
    expect = ra.compute(extracted, progress=False).summary
    assert summary["n_runs"].tolist() == expect["n_runs"].tolist()
    np.testing.assert_allclose(summary["mean"], expect["mean"], rtol=1e-12)
    assert "mixup" in (tmp_path / "a/report.md").read_text()


def test_a_seed_alone_reads_back_in_memory_and_on_disk(digits, tmp_path):
    x, y = digits
    model = mlp(0).eval()
    fs = repflat.extract(model, ["1"], (x, y), splits="train", seed=7, progress=False)
    disk = repflat.extract(model, ["1"], (x, y), tmp_path / "mine", splits="train", seed=7, progress=False)
    assert fs.run.seed == 7 and disk.run.seed == 7
    for source in (fs, tmp_path / "mine"):
        flat = ra.compute(source, progress=False).flat
        assert flat["seed"].unique().tolist() == [7]
    assert ra.compute(tmp_path / "mine", progress=False).flat["arm"].unique().tolist() == ["mine"]


def test_labelled_sets_and_swept_values_reach_the_effects(own_runs):
    memory, _, _ = own_runs
    # features from one's own loop, labelled afterwards; the mixup arm split by a swept α
    relabelled = [fs.labelled(fs.run.arm if fs.run.arm == "erm" else f"mixup-a{fs.run.seed % 2}",
                              strategy=fs.run.strategy, seed=fs.run.seed % 2 + 10 * (fs.run.seed == 2),
                              values={} if fs.run.arm == "erm" else {"alpha": float(fs.run.seed % 2)})
                  for fs in memory]
    assert memory[0].run.seed == 0  # labelling copies, it does not change the set
    result = ra.compute(relabelled, progress=False)
    effects = result.effects
    assert "alpha" in effects.columns and set(effects["template"]) == {"manifold_mixup"}
    assert set(effects["baseline"]) == {"erm"}


def test_compare_names_its_baseline_or_refuses_it(own_runs):
    """On the code before, stats.compare(..., baseline="erm") with no arm called erm gave
    an empty frame without a word."""
    memory, _, _ = own_runs
    result = ra.compute(memory, progress=False)
    same(ra.compare(result), result.effects)
    against_mixup = ra.compare(result, baseline="mixup")
    assert set(against_mixup["arm"]) == {"erm"} and set(against_mixup["baseline"]) == {"mixup"}
    np.testing.assert_allclose(against_mixup["diff"].to_numpy(),
                               -result.effects.set_index(["layer", "metric"]).loc[
                                   list(zip(against_mixup["layer"], against_mixup["metric"])), "diff"].to_numpy())
    with pytest.raises(UserError, match=r"^baseline: unknown arm 'ERM' \(did you mean 'erm'\?\); valid: erm, mixup"):
        ra.compare(result, baseline="ERM")
    values = per_run(result.flat)
    with pytest.raises(UserError, match=r"^baseline: unknown arm 'base'"):
        stats_compare(values, baseline="base")
    with pytest.raises(UserError, match="result: expected an Analysis"):
        ra.compare(result.flat)
