"""One naming scheme with one meaning: every valid layer name reads the same tensor alone
or beside any others, against references that share no code with the capture (hand-written
forward hooks, torchvision's own feature extractor, a hand-written forward pass)."""
from __future__ import annotations

import copy
import itertools
import random

import numpy as np
import pytest
import torch
import torchvision
from torch import nn
from torchvision.models.feature_extraction import create_feature_extractor

import repflat
from repflat.base.naming import valid_names
from repflat.capture.engine import Taker
from repflat.base.graph import trace
from repflat.errors import UserError

def keep(t: torch.Tensor) -> torch.Tensor:
    return t.clone()


def module_calls(model: nn.Module, x: torch.Tensor) -> dict[str, list[torch.Tensor]]:
    """Every call's output of every module that gives a tensor, by hand-written hooks."""
    calls: dict[str, list[torch.Tensor]] = {}
    def keep_call(name, out):
        if isinstance(out, torch.Tensor):
            calls.setdefault(name, []).append(out.clone())

    handles = [m.register_forward_hook(lambda m, a, out, n=n: keep_call(n, out))
               for n, m in model.named_modules() if n]
    with torch.no_grad():
        model(x)
    for h in handles:
        h.remove()
    return calls


def references(model: nn.Module, x: torch.Tensor, functions: list[str]) -> dict[str, torch.Tensor]:
    """The tensor each name means: `input`; a module's output (call N of `name:N`) from
    hooks; an FX function node's value from torchvision's extractor on a copy whose ReLUs
    are not in place (in place, a later ReLU overwrites the value the extractor returns)."""
    out = {"input": x}
    for name, calls in module_calls(model, x).items():
        if len(calls) == 1:
            out[name] = calls[0]
        out |= {f"{name}:{k}": c for k, c in enumerate(calls, start=1)} if len(calls) > 1 else {}
    if functions:
        plain = copy.deepcopy(model)
        for m in plain.modules():
            if isinstance(m, nn.ReLU):
                m.inplace = False
        with torch.no_grad():
            out |= create_feature_extractor(plain, {f: f for f in functions})(x)
    return out


def check(model, names, x, ref, tr=None) -> None:
    got = Taker(model, names, transform=keep, trace=tr)(x)
    assert list(got) == list(names) or set(got) == set(names)
    for name in names:
        assert torch.equal(got[name], ref[name]), (names, name)


@pytest.fixture(scope="module")
def resnet():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny passes: thread hand-offs would cost more than the work
    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=10).eval()
    x = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    tr = trace(model)
    names = valid_names(model, tr, x)
    functions = [n for n in names if n in tr.functions(set(dict(model.named_modules())))]
    yield model, x, tr, names, references(model, x, functions), functions
    torch.set_num_threads(threads)


def test_resnet18_lists_calls_and_function_nodes_not_fx_module_names(resnet):
    model, x, tr, names, ref, functions = resnet
    assert "layer1.0.relu:1" in names and "layer1.0.relu:2" in names and "layer1.0.relu" not in names
    assert "layer1.0.add" in functions and "flatten" in functions
    assert not any(n.endswith("relu_1") for n in names)  # FX's name of a module call is not a layer
    assert set(names) <= set(ref)
    # the references agree with each other where two describe one tensor
    plain = copy.deepcopy(model)
    for m in plain.modules():
        if isinstance(m, nn.ReLU):
            m.inplace = False
    with torch.no_grad():
        fx = create_feature_extractor(plain, {"layer1.0.relu_1": "a", "layer2.0.relu": "b"})(x)
    assert torch.equal(fx["a"], ref["layer1.0.relu:2"]) and torch.equal(fx["b"], ref["layer2.0.relu:1"])


def test_resnet18_every_name_alone(resnet):
    model, x, tr, names, ref, _ = resnet
    for name in names:
        check(model, [name], x, ref, tr)


@pytest.mark.slow
def test_resnet18_every_pair_and_sampled_triples(resnet):
    """Every pair of the 85 names (3,570 passes, ~30 s on two cores; one trace is shared,
    as tracing again gives the same graph). All triples would be 98,770 passes, so the
    triples are a seeded sample of 200 from a set spanning every kind of name (the input,
    the stem, a container, the first block's modules, both calls of its reused ReLU, its
    add, a downsampling block, the head's flatten), plus the issue's own combinations."""
    model, x, tr, names, ref, functions = resnet
    for pair in itertools.combinations(names, 2):
        check(model, list(pair), x, ref, tr)
    spread = ["input", "conv1", "relu", "maxpool", "layer1", "layer1.0", "layer1.0.bn1",
              "layer1.0.relu:1", "layer1.0.relu:2", "layer1.0.bn2", "layer1.0.add", "layer1.1",
              "layer2.0.downsample", "layer2.0.downsample.0", "layer2.0.add", "layer2.0.relu:2",
              "layer4", "avgpool", "flatten", "fc"]
    assert set(spread) <= set(names)
    for triple in random.Random(0).sample(list(itertools.combinations(spread, 3)), 200):
        check(model, list(triple), x, ref, tr)
    check(model, ["layer1.0.relu:2", "layer1", "layer1.0.add"], x, ref, tr)
    check(model, ["layer1.0.relu:1", "layer1.0.relu:2", "layer1.0.add", "input"], x, ref, tr)


class Gated(nn.Module):
    """Data-dependent control flow (torch.fx cannot trace it) and a reused activation."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Linear(6, 8)
        self.act = nn.Tanh()
        self.block = nn.Sequential(nn.Linear(8, 8), nn.ReLU())
        self.skip = nn.Linear(8, 8)
        self.head = nn.Linear(8, 3)

    def forward(self, x):
        h = self.act(self.stem(x))
        h = self.block(h) if h.sum() > -1e9 else self.skip(h)
        return self.head(self.act(h))

    def by_hand(self, x):
        s = self.stem(x)
        a1 = torch.tanh(s)
        b0 = self.block[0](a1)
        b1 = torch.relu(b0)
        a2 = torch.tanh(b1)
        return {"input": x, "stem": s, "act:1": a1, "block.0": b0, "block.1": b1, "block": b1,
                "act:2": a2, "head": self.head(a2)}


def test_a_model_fx_cannot_trace_all_pairs_and_triples_against_a_forward_by_hand():
    torch.manual_seed(0)
    model = Gated().eval()
    x = torch.randn(5, 6, generator=torch.Generator().manual_seed(2))
    assert trace(model) is None
    names = valid_names(model, None, x)
    with torch.no_grad():
        ref = model.by_hand(x)
    assert names == ["input", "stem", "act:1", "act:2", "block", "block.0", "block.1", "head"]
    for k in (1, 2, 3):
        for combo in itertools.combinations(names, k):
            got = Taker(model, combo, transform=keep)(x)
            for name in combo:
                torch.testing.assert_close(got[name], ref[name], rtol=0, atol=0)
    with pytest.raises(UserError, match="'skip': its module does not run"):
        Taker(model, ["skip"], transform=keep)(x)
    with pytest.raises(UserError, match=r"'act': its module runs 2 or more times.*act:1, act:2"):
        Taker(model, ["act"], transform=keep)(x)
    with pytest.raises(UserError, match=r"layers: unknown name 'add'.*valid: input, stem, act:1"):
        repflat.extract(model, ["stem", "add"], (x, torch.zeros(5, dtype=torch.long)), splits="train",
                        progress=False)


class OwnResNet(nn.Module):
    """A small ResNet of one's own, as the issue's notebook had: a BasicBlock as `layer1`."""

    def __init__(self):
        super().__init__()
        from torchvision.models.resnet import BasicBlock

        self.stem = nn.Conv2d(1, 4, 3, padding=1)
        self.layer1 = BasicBlock(4, 4)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(4, 10)

    def forward(self, x):
        return self.fc(self.pool(self.layer1(self.stem(x))).flatten(1))


def test_the_issues_combination_reads_what_each_name_means_alone():
    """On the code before: `["layer1.relu_1", "layer1", "layer1.add"]` raised KeyError
    'layer1.add' in the engine, and a module name beside an FX name switched to FX
    semantics; here FX's module-call name is refused with its name here, and the names
    the error lists read their own tensors in one request."""
    torch.manual_seed(0)
    model = OwnResNet().eval()
    x = torch.randn(4, 1, 8, 8, generator=torch.Generator().manual_seed(3))
    y = torch.arange(4) % 2
    with pytest.raises(UserError) as err:
        repflat.extract(model, ["layer1.relu_1", "layer1", "layer1.add"], (x, y), splits="train",
                        progress=False)
    assert "here it is 'layer1.relu:2'" in str(err.value)
    listed = str(err.value).split("valid: ")[1].split(", ")
    assert {"layer1.relu:1", "layer1.relu:2", "layer1", "layer1.add"} <= set(listed)
    assert "layer1.relu" not in listed
    fs = repflat.extract(model, ["layer1.relu:2", "layer1", "layer1.add"], (x, y), splits="train",
                         progress=False)
    ref = references(model, x, ["layer1.add"])
    for name in ("layer1.relu:2", "layer1", "layer1.add"):
        np.testing.assert_array_equal(fs.array(name), ref[name].flatten(1).numpy())
    assert not np.array_equal(fs.array("layer1.add"), fs.array("layer1.relu:2"))
    # a bare name of the reused module is refused alone and beside an FX name alike
    for names in (["layer1.relu"], ["layer1.relu", "layer1.add"]):
        with pytest.raises(UserError, match=r"'layer1.relu': its module runs 2"):
            repflat.extract(model, names, (x, y), splits="train", progress=False)


def test_layers_lists_every_name_with_the_shape_it_reads(resnet):
    model, x, tr, names, ref, _ = resnet
    table = repflat.layers(model, x)
    assert table["layer"].tolist() == names
    for row in table.itertuples():
        assert row.shape == tuple(ref[row.layer].shape[1:]), row.layer
        assert row.n_features == int(np.prod(row.shape))
    kinds = dict(zip(table["layer"], table["kind"]))
    assert kinds["input"] == "input" and kinds["layer1.0.relu:2"] == "call"
    assert kinds["layer1.0.add"] == "function" and kinds["layer1"] == "module"
    by_shape = repflat.layers(model, (3, 8, 8))  # the shape of one input is enough
    assert by_shape["layer"].tolist() == names and by_shape["shape"].tolist() == table["shape"].tolist()
    gated = repflat.layers(Gated().eval(), (6,))
    assert gated["layer"].tolist()[:3] == ["input", "stem", "act:1"]
    with pytest.raises(UserError, match="example: expected an input batch"):
        repflat.layers(model, "cifar")


class Encoder(nn.Module):
    """A leaf module FX does not trace through (nn.TransformerEncoderLayer), whose
    submodules are layers too, an attention block that returns a tuple, a function node."""

    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(4, 8)
        self.enc = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True)
        self.head = nn.Linear(8, 3)

    def forward(self, x):
        h = self.proj(x)
        h = self.enc(h) + h
        return self.head(h.mean(1))


def test_modules_inside_a_leaf_are_read_by_their_hooks_beside_function_nodes():
    torch.manual_seed(0)
    model = Encoder().eval()
    x = torch.randn(2, 5, 4, generator=torch.Generator().manual_seed(4))
    tr = trace(model)
    assert "enc" in tr.leaves
    names = valid_names(model, tr, x)
    assert "enc.self_attn" not in names  # its output is a tuple: no layer
    assert {"enc.linear1", "add", "mean"} <= set(names)
    ref = references(model, x, [])
    with torch.no_grad():
        h = model.proj(x)
        ref |= {"add": model.enc(h) + h, "mean": (model.enc(h) + h).mean(1)}
    for pair in itertools.combinations(names, 2):
        check(model, list(pair), x, ref, tr)
    assert repflat.layers(model, x)["layer"].tolist() == names
