"""MNIST-1D: the data is the pinned `mnist1d` generator's output (no download, no pickle),
the same every time, with no trace in the caller's random state; the reference CNN and
GRU have the published shapes; every MNIST-1D experiment file trains one epoch."""
import copy
import hashlib
import random
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

pytest.importorskip("mnist1d", reason="MNIST-1D needs the mnist1d package (pip install '.[test]')")

from mnist1d.data import get_dataset_args, make_dataset  # noqa: E402

from repflat.base.data import load_data  # noqa: E402
from repflat.base.data.mnist1d import make_mnist1d  # noqa: E402
from repflat.config import Cnn1dModel, GruModel, MLPModel, Mnist1dData, parse_experiment  # noqa: E402
from repflat.rundir.experiment import run_path  # noqa: E402
from repflat.rundir.names import RunState  # noqa: E402
from repflat.training.loop import train  # noqa: E402
from repflat.training.mixing import Mixup  # noqa: E402
from repflat.training.models import build_model  # noqa: E402

SHA256 = "b09ad3e22c854bc5a1948b85c373aab653ceb38c9170f5ed05b7d054e4160db9"
"""sha256 of the published set as repflat holds it: x, y, x_test, y_test of
make_dataset(get_dataset_args()) (mnist1d 0.0.2.post1, seed 42), inputs as float32
(the last float64 bits of scipy's filters may differ between builds; float32 keeps
what a model sees), labels as int64, in that order."""


def checksum(arrays) -> str:
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def published():
    return load_data(Mnist1dData())


def test_the_data_is_the_generators_output_and_the_same_every_time(published):
    direct = make_dataset(get_dataset_args())  # the package alone, its defaults
    ours = [published.arrays["train"], published.labels["train"],
            published.arrays["test"], published.labels["test"]]
    theirs = [direct["x"].astype(np.float32), direct["y"], direct["x_test"].astype(np.float32),
              direct["y_test"]]
    assert [a.shape for a in ours] == [(4000, 40), (4000,), (1000, 40), (1000,)]
    for a, b in zip(ours, theirs):
        np.testing.assert_array_equal(a, b)
    assert checksum(ours) == checksum(theirs) == SHA256
    again = load_data(Mnist1dData())
    assert checksum([again.arrays["train"], again.labels["train"], again.arrays["test"],
                     again.labels["test"]]) == SHA256
    assert published.n_classes == 10 and published.class_names == tuple("0123456789")
    assert published.input_shape == (40,)
    assert sorted(np.unique(published.labels["test"])) == list(range(10))


def test_the_callers_random_state_is_left_alone():
    random.seed(5)
    np.random.seed(5)
    expected = (random.random(), np.random.rand())
    random.seed(5)
    np.random.seed(5)
    make_mnist1d(samples=100, seed=3)  # the package reseeds both global generators
    assert (random.random(), np.random.rand()) == expected


def test_seed_and_samples_reach_the_generator():
    a, b = make_mnist1d(samples=100, seed=1), make_mnist1d(samples=100, seed=2)
    assert a["x"].shape == (80, 40) and a["x_test"].shape == (20, 40)
    assert not np.array_equal(a["x"], b["x"])
    np.testing.assert_array_equal(a["x"], make_mnist1d(samples=100, seed=1)["x"])


def test_shuffled_positions_are_one_fixed_permutation(published):
    shuffled = load_data(Mnist1dData(shuffled=True))
    x, xs = published.arrays["train"], shuffled.arrays["train"]
    np.testing.assert_array_equal(published.labels["train"], shuffled.labels["train"])
    # each shuffled column is exactly one original column: the same permutation for every row
    perm = [int(np.flatnonzero((x == xs[:, [j]]).all(axis=0))[0]) for j in range(40)]
    assert sorted(perm) == list(range(40)) and perm != list(range(40))
    np.testing.assert_array_equal(xs, x[:, perm])
    np.testing.assert_array_equal(shuffled.arrays["test"], published.arrays["test"][:, perm])


def _outputs(model, x, names):
    seen = {}
    for name in names:
        getattr(model, name).register_forward_hook(lambda m, i, o, name=name: seen.__setitem__(name, o))
    model(x)
    return seen


def test_reference_models_have_the_published_shapes():
    x = torch.randn(7, 40)
    cnn = build_model(Cnn1dModel(), (40,), 10, seed=0)
    out = _outputs(cnn, x, cnn.hidden_layers)
    # Conv1d: L_out = (L + 2·1 − k) // 2 + 1: 40 → 19 (k 5) → 10 → 5 (k 3), so 25 · 5 = 125
    assert [tuple(out[n].shape) for n in ("conv1", "conv2", "conv3")] == [(7, 25, 19), (7, 25, 10), (7, 25, 5)]
    assert cnn.logits.in_features == 125
    gru = build_model(GruModel(), (40,), 10, seed=0)
    assert tuple(_outputs(gru, x, ("gru",))["gru"].shape) == (7, 40 * 2 * 6)
    mlp = build_model(MLPModel(widths=(100, 100), bottleneck=None, widths_after=()), (40,), 10, seed=0)
    # parameters: weights and biases of each layer, counted by hand
    counts = {m: sum(p.numel() for p in model.parameters()) for m, model in
              (("mlp", mlp), ("cnn", cnn), ("gru", gru))}
    assert counts == {"mlp": 40 * 100 + 100 + 100 * 100 + 100 + 100 * 10 + 10,
                      "cnn": (1 * 5 + 1) * 25 + 2 * (25 * 3 + 1) * 25 + 125 * 10 + 10,
                      "gru": 2 * (3 * 6 * (1 + 6) + 2 * 3 * 6) + 480 * 10 + 10}
    assert all(m(x).shape == (7, 10) for m in (mlp, cnn, gru))


@pytest.mark.parametrize("model, layer", [(Cnn1dModel(), "conv1"), (Cnn1dModel(), "conv3"),
                                          (GruModel(), "gru")])
def test_manifold_mixup_mixes_at_the_named_layers(model, layer):
    net = build_model(model, (40,), 10, seed=0)
    mixer = Mixup([layer], 2.0, torch.Generator().manual_seed(0))
    x, y = torch.randn(6, 40), torch.eye(10)[torch.arange(6)]
    logits, mixed = mixer(net, x, y)
    assert logits.shape == (6, 10) and mixer.take_tally()[f"mixes_{layer}"] == 1
    assert not torch.equal(mixed, y)  # soft targets: mixed with the permuted batch


def _smaller(node):
    """Every MNIST-1D data config in an experiment file, at 200 sequences."""
    if isinstance(node, dict):
        out = {k: _smaller(v) for k, v in node.items()}
        return out | {"samples": 200} if out.get("name") == "mnist1d" else out
    return [_smaller(v) for v in node] if isinstance(node, list) else node


@pytest.mark.parametrize("path", sorted(Path("experiments").glob("mnist1d_*.yaml")), ids=lambda p: p.stem)
def test_experiment_file_trains_one_epoch_per_arm(tmp_path, path):
    source = yaml.safe_load(path.read_text())
    short = _smaller(copy.deepcopy(source))
    short["seeds"] = source["seeds"][:1]
    short["base"]["train"] |= {"epochs": 1, "checkpoint_every": 1}
    exp = parse_experiment(short)
    assert exp.name == path.stem and len(exp.runs) >= 5
    for run in exp.runs:
        out = run_path(tmp_path, run)
        assert train(run, out, progress=False) == RunState.NEW, run.name
        metrics = pd.read_csv(out / "metrics.csv")
        assert len(metrics) == 1 and metrics["test_accuracy"].between(0, 1).all(), run.name


def test_published_numbers_sit_beside_the_final_and_best_epochs():
    from repflat.analysis.paper import PAPER
    from repflat.analysis.report.tables import paper_table

    entry = PAPER["mnist1d_baselines"]
    training = pd.DataFrame({"run": ["a", "a", "b", "b"], "arm": ["cnn"] * 4, "epoch": [2, 1, 1, 2],
                             "test_accuracy": [0.90, 0.95, 0.93, 0.92]})  # rows out of order
    table = paper_table(entry, pd.DataFrame(columns=["arm", "layer", "metric"]), training, [])
    cnn = table[table["arm"] == "cnn"].set_index("quantity")
    assert cnn["paper"].tolist() == ["94 ± 2", "94 ± 2"]
    # final epoch: 90 and 92; best: 95 and 93
    assert cnn.loc["test accuracy % (final epoch)", "repflat"] == "91.0 ± 1.4"
    assert cnn.loc["test accuracy % (best epoch)", "repflat"] == "94.0 ± 1.4"
    assert set(table["arm"]) >= {"logistic", "mlp", "gru", "cnn_shuffled"}


def test_the_mixup_sentence_needs_one_erm_arm_per_data_set():
    """A grid over models puts several ERM arms in one data set: no single pair per seed,
    so the sentence is left out (the effects table pairs each point with its own ERM)."""
    from repflat.analysis.report.datasets import mixup_sentences

    rows = [{"dataset": "mnist1d", "cell": cell, "strategy": strategy, "seed": seed,
             "test_nll": nll + 0.1 * seed, "test_ece": 0.1}
            for cell, strategy, nll in (("erm-model_mlp", "none", 2.0), ("erm-model_cnn", "none", 0.4),
                                        ("manifold_mixup-model_mlp", "manifold_mixup", 1.0))
            for seed in range(3)]
    metrics = pd.DataFrame(rows)
    assert mixup_sentences(metrics) == []
    one = metrics[metrics["cell"] != "erm-model_cnn"]
    (sentence,) = mixup_sentences(one)
    assert sentence.startswith("mnist1d: ERM → manifold mixup: test NLL 2.100 → 1.100 (-1.000")
