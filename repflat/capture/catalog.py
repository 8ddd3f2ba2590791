"""`repflat.layers(model, example)`: every layer name a capture accepts, with its shape.

The names are the ones `repflat.extract` reads (repflat.capture.hooks): `input`, each
module that runs once per forward pass, `module:N` for each call of one that runs more
often, and the FX function nodes (`layer1.0.add`) when the model can be traced. Shapes
come from one forward pass of the example in eval mode, read by the capture's own reader,
so every listed name is one that works, alone or with any others.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import fx, nn

from repflat.capture.hooks import CALL_SEP, base_module, evaluating, layer_names
from repflat.errors import expected, public
from repflat.rundir.names import INPUT


def call_counts(model: nn.Module, x: torch.Tensor) -> dict[str, int]:
    """How often each named module gives a tensor in one forward pass of `x` (eval mode,
    no grad); a module that gives something else (a tuple: an attention block's output
    and weights) counts -1, as no layer."""
    model = base_module(model)
    counts: dict[str, int] = {}
    handles = []
    for name, module in model.named_modules():
        if name:
            def hook(m, args, out, name=name):
                if counts.get(name, 0) >= 0:
                    counts[name] = counts.get(name, 0) + 1 if isinstance(out, torch.Tensor) else -1
            handles.append(module.register_forward_hook(hook))
    try:
        with evaluating(model), torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
    return counts


def tensor_functions(tr, x: torch.Tensor) -> set[str]:
    """The FX names of the nodes that give a tensor on `x` (an Interpreter over a copy of
    the traced graph)."""
    graph = fx.Graph()
    graph.output(graph.graph_copy(tr.graph, {}))
    found: set[str] = set()

    class Probe(fx.Interpreter):
        def run_node(self, n):
            out = super().run_node(n)
            if isinstance(out, torch.Tensor) and n.name in names:
                found.add(names[n.name])
            return out

    names = {n.name: tr.qualname[n] for n in tr.graph.nodes if n in tr.qualname}
    with evaluating(tr.root), torch.no_grad():
        Probe(fx.GraphModule(tr.root, graph)).run(x)
    return found


def valid_names(model: nn.Module, tr=None, example: torch.Tensor | None = None, *,
                functions: bool = True) -> list[str]:
    """The layer names of `model`, in definition order then graph order: `input`, modules
    (a reused one as `name:1`, `name:2`, …; one that never runs, or gives no tensor, left
    out), then FX function nodes (with `functions`; those giving a tensor). Calls are
    counted by a forward pass of `example` when given, else from the trace `tr`
    (repflat.capture.graph.trace); with neither, a module is listed by its bare name."""
    modules = layer_names(base_module(model))[1:]
    counts, tensors = None, None
    if example is not None:
        try:
            counts = call_counts(model, example)
            tensors = tensor_functions(tr, example) if functions and tr is not None else None
        except Exception:  # noqa: BLE001 - the model refuses the data: the probe says so later
            counts = tensors = None
    out = [INPUT]
    for name in modules:
        n = counts.get(name, 0) if counts is not None else tr.count(name) if tr is not None else None
        if n is None or n == 1:
            out.append(name)
        elif n > 1:
            out += [f"{name}{CALL_SEP}{k}" for k in range(1, n + 1)]
    if functions and tr is not None:
        out += [f for f in tr.functions(set(modules)) if tensors is None or f in tensors]
    return out


def example_batch(model: nn.Module, example: object) -> torch.Tensor:
    """`example` as a batch to run: a tensor as it is, a shape (of one input) as two
    inputs drawn from a fixed seed, or the first two rows of data `extract` accepts."""
    if isinstance(example, torch.Tensor):
        return example
    if isinstance(example, (tuple, list)) and example and all(
            isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in example):
        param = next(base_module(model).parameters(), None)
        dtype = param.dtype if param is not None and param.is_floating_point() else torch.float32
        return torch.randn(2, *example, generator=torch.Generator().manual_seed(0), dtype=dtype)
    from repflat.capture.engine import first_rows
    from repflat.capture.inputs import as_splits

    try:
        found = as_splits(example, ("train",), None)
    except Exception as err:  # noqa: BLE001 - say what `example` may be, not what data may be
        raise expected("example", "an input batch (tensor), the shape of one input (a tuple "
                       "of ints), or data as repflat.extract takes it",
                       type(example).__name__) from err
    return first_rows(next(iter(found.datasets.values())), 2)


@public
def layers(model: nn.Module, example: object):
    """Every layer name of `model` that `repflat.extract` accepts, with its output shape.

    Parameters
    ----------
    model : nn.Module
        Any module; it runs once in eval mode (its mode is restored after).
    example : Tensor, tuple of int, or data
        What to run it on: an input batch `(n, ...)`, the shape of one input (`(3, 32,
        32)`: two inputs drawn from a fixed seed), or data as `repflat.extract` takes it
        (a Dataset, a DataLoader, `(X, y)`: its first two rows).

    Returns
    -------
    DataFrame
        One row per name, in definition order then graph order: `layer` (the name to
        pass), `kind` ("input", "module", "call" for `module:N` of a module that runs
        several times, "function" for an FX node that is not a module), `type` (the
        module's class, or the function's name), `shape` (of one sample's output) and
        `n_features` (its size: the width `reduce="flatten"` gives).
    """
    import pandas as pd

    from repflat.capture.engine import Taker
    from repflat.capture.graph import trace

    if not isinstance(model, nn.Module):
        raise expected("model", "a torch nn.Module", type(model).__name__)
    x = example_batch(model, example)
    tr = trace(model)
    names = valid_names(model, tr, x)
    with evaluating(model):
        shapes = Taker(model, names, transform=lambda t: tuple(t.shape[1:]), trace=tr)(x)
    modules = dict(base_module(model).named_modules())
    functions = {} if tr is None else tr.functions(set(modules))
    rows = []
    for name in names:
        base = name.rpartition(CALL_SEP)[0] if name not in modules and CALL_SEP in name else name
        if name == INPUT:
            kind, kind_type = "input", type(x).__name__
        elif name in functions:
            target = functions[name].target
            kind, kind_type = "function", getattr(target, "__name__", str(target))
        else:
            kind, kind_type = ("module" if base == name else "call"), type(modules[base]).__name__
        shape = shapes[name]
        rows.append({"layer": name, "kind": kind, "type": kind_type, "shape": shape,
                     "n_features": int(np.prod(shape, dtype=np.int64))})
    return pd.DataFrame(rows, columns=["layer", "kind", "type", "shape", "n_features"])
