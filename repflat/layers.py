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

INPUT = "input"


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


def check_layers(model: nn.Module, names: Iterable[str], argument: str) -> tuple[str, ...]:
    """Return `names` if all are layers of `model`; otherwise a UserError with close matches."""
    valid = layer_names(model)
    known = set(valid)
    for name in names:
        if name not in known:
            raise unknown(argument, name, valid)
    return tuple(names)


def _tensor_output(name: str, output: object) -> torch.Tensor:
    if not isinstance(output, torch.Tensor):
        raise UserError(f"layer {name!r}: expected a module whose output is a tensor, got "
                        f"{type(output).__name__}; choose a submodule of it")
    return output


@contextlib.contextmanager
def recording(model: nn.Module, names: Iterable[str]) -> Iterator[dict[str, torch.Tensor]]:
    """Record a copy of each named layer's output during the forward passes inside.

    The copy matters: a later in-place op (`ReLU(inplace=True)`) would otherwise
    overwrite what was recorded.
    """
    out: dict[str, torch.Tensor] = {}
    handles = []
    for name in names:
        if name == INPUT:
            def pre_hook(module, args):
                out[INPUT] = args[0].detach().clone()
            handles.append(model.register_forward_pre_hook(pre_hook))
        else:
            def hook(module, args, output, name=name):
                out[name] = _tensor_output(name, output).detach().clone()
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
    if name == INPUT:
        handle = model.register_forward_pre_hook(lambda module, args: (fn(args[0]), *args[1:]))
    else:
        handle = model.get_submodule(name).register_forward_hook(
            lambda module, args, output: fn(_tensor_output(name, output)))
    try:
        yield
    finally:
        handle.remove()
