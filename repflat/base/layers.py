"""Layers by name: the one addressing scheme that capture, training and mixing share,
and the hooks that read or replace a named layer's output.

A layer is one of
- `input`: the model's input itself (mixing there is input mixup);
- a submodule named as `model.named_modules()` names it: its output, as a forward hook
  sees it when the module returns. A module that runs more than once per forward pass
  (torchvision's BasicBlock reuses `self.relu`) has no bare name: each call is
  `name:1`, `name:2`, … (`split_call`), and the bare name is refused once it fires twice,
  so a capture never silently keeps one call of several;
- for capture only, an operation that is not a module, by torchvision's FX node name
  (`layer1.0.add`; see repflat.base.graph, which reads it from a traced copy beside
  the module outputs, each name keeping the meaning it has alone).

A request is checked against the names a model has by repflat.base.naming (close
matches, every valid name); `repflat.layers(model, example)` lists them with their
shapes (repflat.capture.catalog).
"""
from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator

import numpy as np
import torch
from torch import nn

from repflat.errors import UserError
from repflat.rundir.names import INPUT, PROBABILITIES



def base_module(model: nn.Module) -> nn.Module:
    """The model inside a DistributedDataParallel wrapper, so names carry no `module.`."""
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def layer_names(model: nn.Module) -> list[str]:
    """Every addressable layer: `input` and each named submodule, in definition order.

    A module called more than once per forward pass (torchvision's BasicBlock reuses
    `self.relu`) is one name here; each of its calls is addressed as `name:1`,
    `name:2`, … (see `split_call`), and the bare name is refused when it fires more
    than once, so a capture never silently keeps one call of several.
    """
    return [INPUT] + [name for name, _ in model.named_modules() if name]


CALL_SEP = ":"


def split_call(name: str, modules: Iterable[str] = ()) -> tuple[str, int | None]:
    """`("relu", 2)` for `"relu:2"` (the second call of module `relu` in a forward pass);
    `(name, None)` for a name without a call number, or one that is itself a module name
    in `modules`."""
    base, sep, call = name.rpartition(CALL_SEP)
    if not sep or not call.isdigit() or not base or name in set(modules):
        return name, None
    return base, int(call)


def default_layers(model: nn.Module) -> tuple[str, ...]:
    """The model's hidden layers, for models that declare them (repflat's own do)."""
    names = getattr(model, "hidden_layers", None)
    if not names:
        raise UserError(f"{type(model).__name__} declares no hidden layers; "
                        "name the layers to use explicitly", argument="layers")
    return tuple(names)


def runs_twice(name: str, n: int, *, exact: bool = False) -> UserError:
    """The refusal of a bare name whose module runs `n` (or more) times per forward pass."""
    calls = ", ".join(f"{name}{CALL_SEP}{k}" for k in range(1, n + 1)) + ("" if exact else ", …")
    return UserError(f"layer {name!r}: its module runs {n}{'' if exact else ' or more'} times "
                     f"in one forward pass; name the call you mean: {calls}")


def is_module_layer(name: str, modules: Iterable[str]) -> bool:
    """Whether `name` is `input`, a module name or `module:N` among `modules` (the
    names `layer_names` lists), i.e. read by hooks rather than by an FX trace."""
    modules = set(modules)
    base, call = split_call(name, modules)
    return name in modules or (call is not None and call >= 1 and base in modules and base != INPUT)


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


def tensor_output(name: str, output: object) -> torch.Tensor:
    if not isinstance(output, torch.Tensor):
        raise UserError(f"layer {name!r}: expected a module whose output is a tensor, got "
                        f"{type(output).__name__}; choose a submodule of it")
    return output


def _copy(t: torch.Tensor) -> torch.Tensor:
    return t.clone()


def output_hooks(model: nn.Module, names: Iterable[str],
                 on_output: Callable[[str, torch.Tensor], torch.Tensor | None], *,
                 root: nn.Module | None = None) -> list:
    """Call `on_output(name, output)` at each named layer (its chosen call, for
    `module:N`) during forward passes; a tensor it returns replaces the output. Returns
    the hook handles (remove them to stop).

    One hook per module counts its calls in each forward pass of `root` (default
    `model`; a traced copy calling the same modules, say), reset by a pre-hook on it; a
    bare name whose module runs more than once is refused, since which call it means
    would be a guess.
    """
    model = base_module(model)
    modules = set(layer_names(model))
    count: dict[str, int] = {}
    handles = [(root or model).register_forward_pre_hook(lambda module, args: count.clear())]
    wanted: dict[str, list[tuple[str, int | None]]] = {}
    for name in names:
        if name == INPUT:
            def pre_hook(module, args):
                new = on_output(INPUT, args[0])
                return None if new is None else (new, *args[1:])
            handles.append(model.register_forward_pre_hook(pre_hook))
            continue
        base, call = split_call(name, modules)
        wanted.setdefault(base, []).append((name, call))
    for base, asked in wanted.items():
        def hook(module, args, output, base=base, asked=asked):
            n = count[base] = count.get(base, 0) + 1
            for name, call in asked:
                if call is None and n > 1:
                    raise runs_twice(name, n)
                if call is None or call == n:
                    new = on_output(name, tensor_output(name, output))
                    output = output if new is None else new
            return output
        handles.append(model.get_submodule(base).register_forward_hook(hook))
    return handles


@contextlib.contextmanager
def hooked(model: nn.Module, names: Iterable[str],
           on_output: Callable[[str, torch.Tensor], torch.Tensor | None], *,
           root: nn.Module | None = None) -> Iterator[None]:
    """`output_hooks` for the block inside, removed however it ends."""
    handles = output_hooks(model, names, on_output, root=root)
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


@contextlib.contextmanager
def recording(model: nn.Module, names: Iterable[str],
              transform: Callable[[torch.Tensor], torch.Tensor] = _copy
              ) -> Iterator[dict[str, torch.Tensor]]:
    """Record `transform(output)` of each named layer during the forward passes inside.

    `transform` must return new memory (the default copies): a later in-place op such
    as `ReLU(inplace=True)` would otherwise overwrite what was recorded.
    """
    out: dict[str, torch.Tensor] = {}

    def keep(name: str, output: torch.Tensor) -> None:
        out[name] = transform(output.detach())

    with hooked(model, names, keep):
        yield out


@contextlib.contextmanager
def replacing(model: nn.Module, name: str,
              fn: Callable[[torch.Tensor], torch.Tensor]) -> Iterator[None]:
    """Replace the output of layer `name` by `fn(output)` during the forward passes inside.

    Gradients flow through `fn` and every layer before and after it.
    """
    with hooked(model, (name,), lambda _, output: fn(output)):
        yield


@torch.no_grad()
def forward_features(model: nn.Module, x: np.ndarray, layers: tuple[str, ...], *,
                     device: torch.device, batch_size: int = 8192,
                     plane: tuple[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """Features of `layers` (and `probabilities`) for in-memory inputs `x`, in eval mode.

    `plane=(layer, points)` substitutes `points` for that layer's output, so the
    network downstream of it is evaluated on arbitrary hidden coordinates.
    """
    parts: dict[str, list[np.ndarray]] = {name: [] for name in (*layers, PROBABILITIES)}
    with evaluating(model):
        for start in range(0, len(x), batch_size):
            xb = torch.as_tensor(x[start:start + batch_size]).to(device)
            with recording(model, layers) as rec:
                if plane is None:
                    logits = model(xb)
                else:
                    hb = torch.as_tensor(plane[1][start:start + batch_size]).to(device)
                    with replacing(model, plane[0], lambda h, hb=hb: hb):
                        logits = model(xb)
            rec[PROBABILITIES] = torch.softmax(logits.float(), dim=1)
            for name in parts:
                parts[name].append(rec[name].flatten(1).float().cpu().numpy())
    return {name: np.concatenate(chunks) for name, chunks in parts.items()}
