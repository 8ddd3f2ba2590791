"""`repflat.Mixup` for one's own loop: labels as they come, arguments checked when the
object is made, the training loop's draws bit for bit, the tally of where it mixed."""
from __future__ import annotations

import math
import traceback

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

import repflat
from repflat.base.layers import recording
from repflat.errors import UserError
from repflat.training.mixing import Mixup as LoopMixup


def net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 4))


def batch(n=9, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 6, generator=g), torch.randint(0, 4, (n,), generator=g)


def test_it_is_a_lazy_top_level_name():
    assert repflat.Mixup.__module__ == "repflat.mixing" and "Mixup" in dir(repflat)
    assert repflat.soft_cross_entropy.__module__ == "repflat.mixing"


def test_integer_labels_become_the_mixed_one_hot_targets_of_the_loops_draw():
    """On the code before there was no front door, and the loop's Mixup "mixed" integer
    labels as numbers (4 and 7 gave 4.07, 5.5, ...)."""
    model, (x, y) = net(), batch()
    mixup = repflat.Mixup(model, ["input", "1", "3"], alpha=0.7, seed=3)
    loop = LoopMixup(("input", "1", "3"), 0.7, torch.Generator().manual_seed(3))
    for _ in range(6):
        logits, targets = mixup(x, y)
        expect_logits, expect = loop(model, x, F.one_hot(y, 4).float())
        assert torch.equal(logits, expect_logits) and torch.equal(targets, expect)  # bit for bit
        assert targets.shape == (9, 4) and torch.allclose(targets.sum(1), torch.ones(9))
    assert mixup.counts == {layer: n for layer, n in loop._counts.items()}
    assert sum(mixup.counts.values()) == 6 and 0 < mixup.mean_lambda < 1
    assert "mixed: input" in repr(mixup) and "mean λ" in repr(mixup)


def test_soft_and_one_hot_targets_and_num_classes():
    model, (x, y) = net(), batch()
    soft = torch.softmax(torch.randn(9, 4, generator=torch.Generator().manual_seed(1)), 1)
    a, b = repflat.Mixup(model, "3", seed=1), repflat.Mixup(model, "3", seed=1)
    (_, from_soft), (_, from_labels) = a(x, soft), b(x, y)
    assert torch.allclose(from_soft.sum(1), torch.ones(9)) and not torch.equal(from_soft, from_labels)
    wide = repflat.Mixup(model, "3", num_classes=6, seed=1)(x, y)[1]
    assert wide.shape == (9, 6) and (wide[:, 4:] == 0).all()
    with pytest.raises(UserError, match=r"^y: expected class labels below 4 \(the model output width\), got 7"):
        repflat.Mixup(model, "3")(x, torch.full((9,), 7))


@pytest.mark.parametrize("make, fragment", [
    (lambda m: repflat.Mixup(m, "3", alpha=0), "alpha: expected a finite number > 0"),
    (lambda m: repflat.Mixup(m, "3", alpha=-1.0), "alpha: expected a finite number > 0"),
    (lambda m: repflat.Mixup(m, "3", alpha=math.nan), "alpha: expected a finite number > 0"),
    (lambda m: repflat.Mixup(m, "3", alpha=math.inf), "alpha: expected a finite number > 0"),
    (lambda m: repflat.Mixup(m, ["3", "inputs"]), "layers: unknown name 'inputs' (did you mean 'input'"),
    (lambda m: repflat.Mixup(m, "fc"), "layers: unknown name 'fc'"),
    (lambda m: repflat.Mixup(m, ["3", "3"]), "layers: expected each layer once"),
    (lambda m: repflat.Mixup(m), "layers: Sequential declares no hidden layers"),
    (lambda m: repflat.Mixup(m, "3", num_classes=0), "num_classes: expected an integer >= 1"),
    (lambda m: repflat.Mixup(m, "3", seed=1, generator=torch.Generator()), "seed, generator: expected one"),
    (lambda m: repflat.Mixup(m, "3", generator=5), "generator: expected a CPU torch.Generator"),
    (lambda m: repflat.Mixup("m", "3"), "model: expected a torch nn.Module"),
    (lambda m: repflat.Mixup(m, "3")(*batch()[:1], torch.rand(9)), "y: expected integer class labels (n,)"),
    (lambda m: repflat.Mixup(m, "3")(*batch()[:1], torch.rand(9, 2, 2)), "y: expected integer class labels (9,)"),
    (lambda m: repflat.Mixup(m, "3")(*batch()[:1], -torch.ones(9, dtype=torch.long)), "y: expected class labels >= 0"),
])
def test_wrong_arguments_are_one_line_when_the_object_is_made(make, fragment):
    with pytest.raises(UserError) as err:
        make(net())
    assert str(err.value).startswith(fragment) and "\n" not in str(err.value), str(err.value)
    # raised from the public boundary: the caller's frame and the wrapper's, no internals
    frames = [f.name for f in traceback.extract_tb(err.value.__traceback__)]
    assert frames[-1] == "boundary" and len(frames) <= 3, frames


def test_a_string_is_one_layer_and_reused_modules_are_named_by_call():
    model = torchvision.models.resnet18(num_classes=3)
    assert repflat.Mixup(model, "layer1").layers == ("layer1",)  # not l, a, y, e, r, 1
    with pytest.raises(UserError, match=r"^layer 'layer1.0.relu': its module runs 2 times in one "
                                        r"forward pass; name the call you mean: layer1.0.relu:1, layer1.0.relu:2$"):
        repflat.Mixup(model, ["layer1.0.relu"])
    mixup = repflat.Mixup(model, ["layer1.0.relu:2"], seed=0)
    x, y = torch.randn(4, 3, 16, 16), torch.tensor([0, 1, 2, 0])
    model.eval()
    with recording(model, ["layer1.0.relu:1", "layer1.0.relu:2", "layer1.1.relu:1"]) as clean:
        model(x)
    with recording(model, ["layer1.0.relu:1", "layer1.1.relu:1"]) as mixed:
        mixup(x, y)
    assert torch.equal(mixed["layer1.0.relu:1"], clean["layer1.0.relu:1"])  # before: untouched
    assert not torch.equal(mixed["layer1.1.relu:1"], clean["layer1.1.relu:1"])  # after: mixed


def test_the_seed_and_the_generator_reproduce_a_run_exactly():
    def run(**kwargs):
        model = net()
        mixup = repflat.Mixup(model, ["input", "1"], **kwargs)
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        for step in range(5):
            x, y = batch(seed=step)
            loss = repflat.soft_cross_entropy(*mixup(x, y))
            opt.zero_grad()
            loss.backward()
            opt.step()
        return torch.cat([p.detach().flatten() for p in model.parameters()])

    assert torch.equal(run(), run(seed=0))  # the default generator is seeded
    assert torch.equal(run(seed=4), run(generator=torch.Generator().manual_seed(4)))
    assert not torch.equal(run(seed=4), run(seed=5))


def test_soft_cross_entropy_against_its_formula_and_torch():
    g = torch.Generator().manual_seed(0)
    z, t = torch.randn(7, 4, generator=g), torch.softmax(torch.randn(7, 4, generator=g), 1)
    expect = -(t * torch.log_softmax(z, 1)).sum(1).mean()
    torch.testing.assert_close(repflat.soft_cross_entropy(z, t), expect)
    y = torch.tensor([0, 1, 2, 3, 0, 1, 2])
    torch.testing.assert_close(repflat.soft_cross_entropy(z, y), F.cross_entropy(z, y))
    torch.testing.assert_close(repflat.soft_cross_entropy(z, F.one_hot(y, 4).float()), F.cross_entropy(z, y))
    with pytest.raises(UserError, match=r"^targets: expected soft targets of the logits' shape \(7, 4\)"):
        repflat.soft_cross_entropy(z, t[:, :3])
