import dataclasses
import json

import numpy as np
import pandas as pd
import yaml
import pytest
import torch
from torch import nn

from repflat.rundir.names import RunState
from repflat.errors import UserError
from repflat.base.layers import recording
from repflat.rundir.run import read_run
from repflat.rundir.features import Features
from repflat.training.loop import train
from tests.trees import digest


def tree_digest(root):
    """The tree's digest without the files that hold wall-clock times, pids or the
    owner marker's random nonce."""
    return digest(root, skip=("run.json", "metrics.csv", "checkpoint.pt", ".repflat.lock",
                              ".repflat-owner"))


def test_same_seed_gives_identical_features_and_weights(tmp_path, tiny):
    cfg = tiny("manifold_mixup")
    cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, dropout=0.3),
                              train=dataclasses.replace(cfg.train, input_noise=0.05))
    train(cfg, tmp_path / "a", progress=False)
    train(cfg, tmp_path / "b", progress=False)
    assert tree_digest(tmp_path / "a") == tree_digest(tmp_path / "b")
    wa = torch.load(tmp_path / "a/checkpoint.pt", weights_only=True)["model"]
    wb = torch.load(tmp_path / "b/checkpoint.pt", weights_only=True)["model"]
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    la = pd.read_csv(tmp_path / "a/metrics.csv").drop(columns="seconds")
    pd.testing.assert_frame_equal(la, pd.read_csv(tmp_path / "b/metrics.csv").drop(columns="seconds"))


def test_another_seed_gives_other_weights(tmp_path, tiny):
    train(tiny(), tmp_path / "a", progress=False)
    train(dataclasses.replace(tiny(), seed=1), tmp_path / "b", progress=False)
    assert tree_digest(tmp_path / "a") != tree_digest(tmp_path / "b")


def test_run_directory_contents(trained_runs):
    run = read_run(trained_runs["manifold_mixup", 0])
    assert (run.name, run.strategy, run.seed, run.status) == ("manifold_mixup", "manifold_mixup", 0, "complete")
    metrics = pd.read_csv(run.path / "metrics.csv")
    assert list(metrics.columns) == ["epoch", "lr", "train_loss", "mixes_input", "mixes_fc1",
                                     "mixes_bottleneck", "mean_lambda", "lambda_std", "mixup_loss",
                                     "mixup_loss_infimum", "excess_mixup_loss", "test_accuracy",
                                     "test_error", "test_nll", "fgsm_accuracy", "seconds"]
    # the premise: excess = loss − infimum on fixed mixes, ≥ 0, the infimum fixed by the mixes
    assert (metrics["excess_mixup_loss"] >= 0).all()
    assert metrics["mixup_loss_infimum"].nunique() == 1
    assert (metrics["mixup_loss"] - metrics["mixup_loss_infimum"]
            == metrics["excess_mixup_loss"]).all()
    assert metrics["epoch"].tolist() == [1, 2, 3]
    # each batch is mixed at one eligible layer: 40 training points in batches of 17, 3 an epoch
    mixes = metrics[["mixes_input", "mixes_fc1", "mixes_bottleneck"]]
    assert (mixes.sum(axis=1) == 3).all() and (mixes.sum() > 0).sum() >= 2
    assert ((metrics["mean_lambda"] > 0) & (metrics["mean_lambda"] < 1)).all()
    totals = json.loads((run.path / "run.json").read_text())["mixing"]
    assert totals["batches_mixed"] == {k.removeprefix("mixes_"): int(v) for k, v in mixes.sum().items()}
    assert 0 < totals["mean_lambda"] < 1
    erm = pd.read_csv(read_run(trained_runs["none", 0]).path / "metrics.csv")
    assert not [c for c in erm.columns if c.startswith("mixes_") or c == "mean_lambda"
                or c.endswith("mixup_loss")]  # ERM logs a premise only where asked (premise_layers)
    assert "mixing" not in json.loads((trained_runs["none", 0] / "run.json").read_text())
    assert metrics["fgsm_accuracy"].isna().tolist() == [True, True, False]  # final epoch only
    np.testing.assert_allclose(metrics["test_error"], 1 - metrics["test_accuracy"])
    info = json.loads((run.path / "run.json").read_text())
    assert info["best_test_error"] == metrics["test_error"].min()
    assert info["final_test_error"] == metrics["test_error"].iloc[-1]
    fs = run.features
    assert fs.epochs("train") == [0, 2, 3]  # configured 0 and 2, the final epoch always
    assert fs.layers("train") == ["input", "fc1", "bottleneck", "fc2"]
    x, y = fs.load(fs.get("train", 3, "fc1")), fs.labels("train")
    assert x.shape == (len(y), 16) and x.dtype == np.float32
    assert set(np.unique(y)) == {0, 1}
    ckpt = torch.load(run.path / "checkpoint.pt", weights_only=True)
    assert ckpt["epoch"] == 3 and "fc1.0.weight" in ckpt["model"]


def test_two_dimensional_inputs_save_the_boundary_data(trained_runs):
    fs = Features(trained_runs["none", 0])
    assert fs.splits["input_grid"] == {"kind": "grid", "space": "input", "resolution": 8}
    assert fs.splits["plane_grid"]["space"] == "bottleneck"
    probs = fs.load(fs.get("input_grid", 3, "probabilities"))
    assert probs.shape == (64, 2)
    np.testing.assert_allclose(probs.sum(1), 1, rtol=1e-5)
    assert fs.load(fs.get("uniform", 3, "bottleneck")).shape == (16, 2)
    assert fs.load(fs.get("plane_grid", 3, "bottleneck")).shape == (64, 2)


def test_plane_grid_probabilities_match_the_head_of_the_network(trained_runs):
    """The saved plane map is what the layers after the bottleneck compute there."""
    fs = Features(trained_runs["manifold_mixup", 0])
    ckpt = torch.load(trained_runs["manifold_mixup", 0] / "checkpoint.pt", weights_only=True)
    from repflat.training.models.mlp import MLP
    model = MLP(2, 2, (16,), 2, (16,))
    model.load_state_dict(ckpt["model"])
    points = torch.as_tensor(fs.load(fs.get("plane_grid", 3, "bottleneck")))
    with torch.no_grad():
        expect = torch.softmax(model.logits(model.fc2(points)), 1).numpy()
    np.testing.assert_allclose(fs.load(fs.get("plane_grid", 3, "probabilities")), expect, atol=1e-6)


def test_recording_copies_so_in_place_ops_cannot_overwrite_it():
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(inplace=True))
    x = torch.randn(5, 3)
    with recording(model, ("0",)) as rec:
        model(x)
    pre = model[0](x)
    assert (pre < 0).any()  # the ReLU in place zeroed these in the tensor it was handed
    torch.testing.assert_close(rec["0"], pre)


def test_a_different_run_in_the_output_directory_is_refused_untouched(tmp_path, tiny):
    train(tiny(), tmp_path, progress=False)
    before = tree_digest(tmp_path)
    other = dataclasses.replace(tiny(), train=dataclasses.replace(tiny().train, lr=0.5))
    with pytest.raises(UserError, match=r"already holds a different run \(train.lr: 0.5 here, 0.01 on disk\)"):
        train(other, tmp_path, progress=False)
    assert tree_digest(tmp_path) == before


def test_the_same_complete_run_is_not_trained_again(tmp_path, tiny):
    assert train(tiny(), tmp_path, progress=False) == RunState.NEW
    assert train(tiny(), tmp_path, progress=False) == RunState.COMPLETE


def test_an_unfinished_run_is_restarted(tmp_path, tiny):
    train(tiny(), tmp_path / "a", progress=False)
    train(tiny(), tmp_path / "b", progress=False)
    (tmp_path / "b/run.json").write_text('{"status": "running"}')  # as if killed mid-way
    (tmp_path / "b/features/stale.npy").write_bytes(b"junk")
    assert train(tiny(), tmp_path / "b", progress=False) == RunState.NEW
    assert tree_digest(tmp_path / "a") == tree_digest(tmp_path / "b")


def test_a_non_run_directory_is_refused(tmp_path, tiny):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="an empty directory or one written by `repflat train`"):
        train(tiny(), tmp_path, progress=False)
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_unknown_capture_layer_lists_the_valid_ones(tmp_path, tiny):
    cfg = tiny()
    cfg = dataclasses.replace(cfg, capture=dataclasses.replace(cfg.capture, layers=("fc1", "bottlenek")))
    with pytest.raises(UserError) as err:
        train(cfg, tmp_path / "x", progress=False)
    msg = str(err.value)
    assert msg.startswith("capture.layers: unknown name 'bottlenek' (did you mean 'bottleneck'")
    assert "valid: input, fc1, fc1.0, fc1.1, bottleneck," in msg
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("change", [
    {"optimizer": "sgd", "weight_decay": 1e-3},
    {"loss": "mse"},
    {"batch_size": 1},
])
def test_training_options_run(tmp_path, tiny, change):
    cfg = tiny("input_mixup")
    cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, **change))
    assert train(cfg, tmp_path, progress=False) == RunState.NEW


def test_batch_norm_model_trains(tmp_path, tiny):
    cfg = tiny("manifold_mixup")
    cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, batch_norm=True, dropout=0.5))
    train(cfg, tmp_path, progress=False)
    assert np.isfinite(pd.read_csv(tmp_path / "metrics.csv")["train_loss"]).all()


def test_resolved_configs_show_only_what_applies(trained_runs):
    erm = yaml.safe_load((trained_runs["none", 0] / "config.yaml").read_text())
    assert erm["mixing"] == {"strategy": "none"}
    mixup = yaml.safe_load((trained_runs["input_mixup", 0] / "config.yaml").read_text())
    assert set(mixup["mixing"]) == {"strategy", "alpha"}
    # a run written with the fields that do not apply (an earlier version) is the same run
    from repflat.training.claim import normalized
    assert normalized({**erm, "mixing": {"strategy": "none", "alpha": 2.0, "layers": []}}) == normalized(erm)
