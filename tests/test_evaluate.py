import numpy as np
import pytest
import torch
from torch import nn

from repflat.config import DigitsData, ResNetModel, TorchvisionModel
from repflat.base.data import load_data
from repflat.training.evaluate import (accuracy_and_nll, expected_calibration_error, fgsm_accuracy, predict)
from repflat.training.models import build_model
from repflat.training.loop import soft_target_loss


def test_ece_by_hand():
    # two bins used: confidences 0.95 (right, right) and 0.55 (right, wrong)
    p = np.array([[0.95, 0.05], [0.05, 0.95], [0.55, 0.45], [0.45, 0.55]])
    y = np.array([0, 1, 0, 0])
    expected = 0.5 * abs(1.0 - 0.95) + 0.5 * abs(0.5 - 0.55)
    assert expected_calibration_error(p, y, bins=10) == pytest.approx(expected)
    assert np.isnan(expected_calibration_error(np.full((2, 2), np.nan), np.array([0, 1])))


def test_ece_by_hand_three_classes_and_a_confidence_on_a_bin_edge():
    # 4 equal-width bins; 0.5 lies on an edge and belongs to (0.25, 0.5], not (0.5, 0.75]
    p = np.array([[0.5, 0.3, 0.2], [0.2, 0.55, 0.25], [0.1, 0.1, 0.8], [0.4, 0.35, 0.25]])
    y = np.array([0, 0, 2, 1])  # right (0.5), wrong (0.55), right (0.8), wrong (0.4)
    by_hand = (2 / 4 * abs(0.5 - (0.5 + 0.4) / 2)   # bin (0.25, 0.5]: 0.5 and 0.4, one right
               + 1 / 4 * abs(0.0 - 0.55)             # bin (0.5, 0.75]: 0.55, wrong
               + 1 / 4 * abs(1.0 - 0.8))             # bin (0.75, 1]: 0.8, right
    assert by_hand == pytest.approx(0.2125)
    assert expected_calibration_error(p, y, bins=4) == pytest.approx(by_hand)


def test_accuracy_and_nll_against_a_reference():
    logits = np.array([[2.0, 0.0], [0.0, 1.0], [3.0, -1.0]])
    y = np.array([0, 0, 0])
    logp = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    acc, nll = accuracy_and_nll(logits, y)
    assert acc == pytest.approx(2 / 3) and nll == pytest.approx(-logp[np.arange(3), y].mean())


@pytest.fixture(scope="module")
def digits_model():
    data = load_data(DigitsData())
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    x, y = data.datasets["train"].tensors
    for _ in range(150):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    return model, data


def test_fgsm_with_zero_epsilon_is_clean_accuracy_and_grows_harsher(digits_model):
    model, data = digits_model
    cpu = torch.device("cpu")
    clean = accuracy_and_nll(*predict(model, data, "test", cpu))[0]
    assert clean > 0.9
    assert fgsm_accuracy(model, data, "test", 0.0, cpu) == pytest.approx(clean)
    accs = [fgsm_accuracy(model, data, "test", eps, cpu) for eps in (0.05, 0.2)]
    assert accs[0] < clean and accs[1] < accs[0]


def test_fgsm_keeps_pixels_valid():
    """With ε far larger than the pixel range, adversarial digits stay in [0, 1]."""
    data = load_data(DigitsData())
    seen = []
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    model.register_forward_pre_hook(lambda m, a: seen.append(a[0].detach().clone()))
    fgsm_accuracy(model, data, "test", 5.0, torch.device("cpu"))
    adversarial = seen[1]  # the first call computes the gradient, the second sees x_adv
    assert adversarial.min() >= 0.0 and adversarial.max() <= 1.0
    assert set(np.unique(adversarial.numpy())) <= {0.0, 1.0}


@pytest.mark.parametrize("kind", ["cross_entropy", "bce", "mse"])
def test_losses_against_soft_targets(kind):
    logits = torch.tensor([[2.0, -1.0, 0.5]])
    targets = torch.tensor([[0.7, 0.3, 0.0]])
    p = torch.softmax(logits, 1)
    expect = {"cross_entropy": -(targets * p.log()).sum(),
              "bce": -(targets * p.log() + (1 - targets) * (1 - p).log()).mean(),
              "mse": ((p - targets) ** 2).sum()}[kind]
    torch.testing.assert_close(soft_target_loss(kind, logits, targets), expect)


def test_models_expose_named_stages():
    for name, stages, params in (("preactresnet18", ("layer1", "layer2", "layer3", "layer4"), 11.17e6),
                                 ("wrn28_10", ("block1", "block2", "block3"), 36.48e6)):
        model = build_model(ResNetModel(name=name), (3, 32, 32), 10, seed=0)
        assert model.hidden_layers == stages
        assert sum(p.numel() for p in model.parameters()) == pytest.approx(params, rel=1e-3)
        assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    a = build_model(ResNetModel(name="preactresnet18"), (3, 32, 32), 10, seed=3)
    b = build_model(ResNetModel(name="preactresnet18"), (3, 32, 32), 10, seed=3)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_torchvision_models_by_name():
    model = build_model(TorchvisionModel(arch="resnet18", hidden_layers=("layer1", "layer2")),
                        (3, 32, 32), 7, seed=0)
    assert model.fc.out_features == 7 and model.hidden_layers == ("layer1", "layer2")
    from repflat.errors import UserError

    with pytest.raises(UserError, match="model.arch: unknown name 'resnet81'"):
        build_model(TorchvisionModel(arch="resnet81"), (3, 32, 32), 7, seed=0)
