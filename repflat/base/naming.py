"""The names a model has, and a request checked against them.

`valid_names` lists every name a capture accepts (modules in definition order, each call
of a reused one as `name:N`, then FX function nodes); `check_layers` refuses a name that
is not one, with the close matches and every valid name, in one line.
"""
from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from repflat.base.graph import fx_hint, tensor_functions, trace
from repflat.base.layers import (CALL_SEP, base_module, evaluating, is_module_layer,
                                 layer_names)
from repflat.errors import UserError, unknown
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


def valid_names(model: nn.Module, tr=None, example: torch.Tensor | None = None, *,
                functions: bool = True) -> list[str]:
    """The layer names of `model`, in definition order then graph order: `input`, modules
    (a reused one as `name:1`, `name:2`, …; one that never runs, or gives no tensor, left
    out), then FX function nodes (with `functions`; those giving a tensor). Calls are
    counted by a forward pass of `example` when given, else from the trace `tr`
    (repflat.base.graph.trace); with neither, a module is listed by its bare name."""
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


def check_layers(model: nn.Module, names: Iterable[str], argument: str, *,
                 graph_nodes: bool = False, example: torch.Tensor | None = None) -> tuple[str, ...]:
    """Return `names` if all are layers of `model`; otherwise a UserError with close
    matches and the valid names.

    A layer is `input`, a module name, or `module:N` (its N-th call in a forward pass,
    N ≥ 1; see `split_call`). With `graph_nodes`, FX function nodes (repflat.base.graph)
    are accepted too. A string is one name, not a list of letters. The valid names listed
    call each run of a reused module by its number (from a trace, or from one forward
    pass of `example` when given).
    """
    if isinstance(names, str):
        names = (names,)
    names = tuple(names)
    if not all(isinstance(n, str) for n in names):
        bad = next(n for n in names if not isinstance(n, str))
        raise UserError(f"expected layer names (str), got {bad!r}", argument=argument)
    modules = set(layer_names(model))
    unknown_names = [n for n in names if not is_module_layer(n, modules)]
    if not unknown_names:
        return names
    tr = trace(model)
    functions = tr.functions(modules) if tr is not None and graph_nodes else {}
    for name in unknown_names:
        if name not in functions:
            # what FX's name means here says more than the names that look like it
            raise unknown(argument, name, valid_names(model, tr, example, functions=graph_nodes),
                          hint=fx_hint(tr, name) or None)
    return names
