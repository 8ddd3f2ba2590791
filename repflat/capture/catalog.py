"""`repflat.layers(model, example)`: every layer name a capture accepts, with its shape.

The names are the ones `repflat.extract` reads (repflat.base.naming): `input`, each
module that runs once per forward pass, `module:N` for each call of one that runs more
often, and the FX function nodes (`layer1.0.add`) when the model can be traced. Shapes
come from one forward pass of the example in eval mode, read by the capture's own reader,
so every listed name is one that works, alone or with any others.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import fx, nn

from repflat.base.layers import CALL_SEP, base_module, evaluating
from repflat.base.naming import valid_names
from repflat.errors import expected, public
from repflat.rundir.names import INPUT


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

    from repflat.base.graph import trace
    from repflat.capture.engine import Taker

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
