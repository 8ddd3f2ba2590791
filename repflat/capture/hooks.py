"""Layers by name: the one addressing scheme that capture and mixing share.

A layer is a submodule named as `model.named_modules()` names it (the names
torchvision's `get_graph_node_names` gives for module outputs), plus `input`, the
model's input itself (mixing there is input mixup). A layer's features are its output.
"""
from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator

import torch
from torch import nn

from repflat.errors import UserError, unknown
from repflat.rundir.names import INPUT



def base_module(model: nn.Module) -> nn.Module:
    """The model inside a DistributedDataParallel wrapper, so names carry no `module.`."""
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def layer_names(model: nn.Module) -> list[str]:
    """Every addressable layer: `input` and each named submodule, in definition order."""
    return [INPUT] + [name for name, _ in model.named_modules() if name]


def default_layers(model: nn.Module) -> tuple[str, ...]:
    """The model's hidden layers, for models that declare them (repflat's own do)."""
    names = getattr(model, "hidden_layers", None)
    if not names:
        raise UserError(f"layers: {type(model).__name__} declares no hidden layers; "
                        "name the layers to use explicitly")
    return tuple(names)


def graph_node_names(model: nn.Module) -> list[str]:
    """torchvision's FX node names of `model` in eval mode (functional ops such as
    `layer1.0.add` included); empty when the model cannot be traced."""
    from torchvision.models.feature_extraction import get_graph_node_names

    try:
        return get_graph_node_names(model)[1]
    except Exception:  # noqa: BLE001 - any tracing failure means "no node names"
        return []


def check_layers(model: nn.Module, names: Iterable[str], argument: str, *,
                 graph_nodes: bool = False) -> tuple[str, ...]:
    """Return `names` if all are layers of `model`; otherwise a UserError with close matches.

    With `graph_nodes`, FX node names (see `graph_node_names`) are accepted too.
    """
    valid = layer_names(model)
    known = set(valid)
    names = tuple(names)
    if graph_nodes and any(n not in known for n in names):
        nodes = graph_node_names(model)
        valid += [n for n in nodes if n not in known]
        known |= set(nodes)
    for name in names:
        if name not in known:
            raise unknown(argument, name, valid)
    return names


@contextlib.contextmanager
def evaluating(model: nn.Module) -> Iterator[nn.Module]:
    """`model` in eval mode inside the block, its own mode (train or eval) restored after,
    however the block ends."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def _tensor_output(name: str, output: object) -> torch.Tensor:
    if not isinstance(output, torch.Tensor):
        raise UserError(f"layer {name!r}: expected a module whose output is a tensor, got "
                        f"{type(output).__name__}; choose a submodule of it")
    return output


def _copy(t: torch.Tensor) -> torch.Tensor:
    return t.clone()


@contextlib.contextmanager
def recording(model: nn.Module, names: Iterable[str],
              transform: Callable[[torch.Tensor], torch.Tensor] = _copy
              ) -> Iterator[dict[str, torch.Tensor]]:
    """Record `transform(output)` of each named layer during the forward passes inside.

    `transform` must return new memory (the default copies): a later in-place op such
    as `ReLU(inplace=True)` would otherwise overwrite what was recorded.
    """
    model = base_module(model)
    out: dict[str, torch.Tensor] = {}
    handles = []
    for name in names:
        if name == INPUT:
            def pre_hook(module, args):
                out[INPUT] = transform(args[0].detach())
            handles.append(model.register_forward_pre_hook(pre_hook))
        else:
            def hook(module, args, output, name=name):
                out[name] = transform(_tensor_output(name, output).detach())
            handles.append(model.get_submodule(name).register_forward_hook(hook))
    try:
        yield out
    finally:
        for handle in handles:
            handle.remove()


@contextlib.contextmanager
def replacing(model: nn.Module, name: str,
              fn: Callable[[torch.Tensor], torch.Tensor]) -> Iterator[None]:
    """Replace the output of layer `name` by `fn(output)` during the forward passes inside.

    Gradients flow through `fn` and every layer before and after it.
    """
    model = base_module(model)
    if name == INPUT:
        handle = model.register_forward_pre_hook(lambda module, args: (fn(args[0]), *args[1:]))
    else:
        handle = model.get_submodule(name).register_forward_hook(
            lambda module, args, output: fn(_tensor_output(name, output)))
    try:
        yield
    finally:
        handle.remove()


def node_recorder(model: nn.Module, nodes: Iterable[str],
                  transform: Callable[[torch.Tensor], torch.Tensor] = _copy) -> nn.Module:
    """A traced copy of `model` returning {node: transform(node output)} for FX node names.

    For layers that are not modules (e.g. `layer1.0.add`). The transform is inserted
    right after each node, before any later in-place op can overwrite its output.
    """
    from torchvision.models.feature_extraction import create_feature_extractor

    nodes = tuple(nodes)
    gm = create_feature_extractor(model, return_nodes={n: n for n in nodes})
    output = next(n for n in gm.graph.nodes if n.op == "output")
    taken = {}
    for name, node in output.args[0].items():
        with gm.graph.inserting_after(node):
            taken[name] = gm.graph.call_function(transform, (node,))
    output.args = (taken,)
    gm.graph.lint()
    gm.recompile()
    return gm
