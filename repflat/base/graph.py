"""Layers that are not modules (FX function nodes), read beside module outputs with one meaning.

The naming scheme (repflat.base.layers) is module names, `module:N` for the N-th call
of a module that runs more than once per forward pass, `input`, and, for operations that
are not modules, torchvision's FX node names of function and method calls
(`layer1.0.add`, `flatten`; `get_graph_node_names`). FX's names for *module* calls
(`layer1.0.relu_1`) are not layers here: they name a module call, which is
`layer1.0.relu:2`, and the error says so.

A module name means the module's output as a forward hook sees it, whatever else is
asked. When a request holds a function node, the model is traced once (eval mode, by a
tracer that also records where every module call starts and ends) and every name is read
from that one graph: a function node right after it runs, a module call right after the
call returns, at the same point its hook would fire; a module inside a module FX does
not trace through (a leaf such as `nn.TransformerEncoderLayer`) is read by its hook,
which fires in the traced copy too (it calls the same module objects). Reading copies the
value at once, so a later in-place op cannot change what was read.
"""
from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import fx, nn

from repflat.base.layers import (CALL_SEP, base_module, evaluating, hooked, layer_names,
                                   runs_twice, split_call, tensor_output)
from repflat.errors import UserError
from repflat.rundir.names import INPUT

NOT_TENSORS = {"size", "dim", "numel", "getattr", "type", "__len__"}
"""Function nodes whose value is a number or an attribute, never a tensor: not layers."""


def _tracer_kwargs() -> dict:
    # what torchvision's get_graph_node_names uses, so node names are the ones it lists
    import torchvision

    leaves = [obj for _, obj in inspect.getmembers(torchvision.ops)
              if inspect.isclass(obj) and issubclass(obj, nn.Module)]
    return {"autowrap_modules": (math, torchvision.ops), "leaf_modules": leaves}


def _tracer_class():
    from torchvision.models.feature_extraction import NodePathTracer

    class CallTracer(NodePathTracer):
        """torchvision's tracer, also recording every module call: (module name, its
        output, the last node created before it returned), in the order calls return
        (the order their forward hooks fire)."""

        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.calls: list[tuple[str, object, fx.Node]] = []

        def call_module(self, m, forward, args, kwargs):
            out = super().call_module(m, forward, args, kwargs)
            self.calls.append((self.path_of_module(m), out, next(iter(reversed(self.graph.nodes)))))
            return out

    return CallTracer


@dataclass
class Trace:
    """A model traced in eval mode: its graph, torchvision's node names, and each module's
    calls as (output, end node) in call order."""

    root: nn.Module
    graph: fx.Graph
    qualname: dict[fx.Node, str]
    calls: dict[str, list[tuple[object, fx.Node]]] = field(default_factory=dict)

    @property
    def leaves(self) -> set[str]:
        """Modules called as one node (FX does not trace through them)."""
        return {n.target for n in self.graph.nodes if n.op == "call_module"}

    def inside_leaf(self, module: str) -> bool:
        return any(module.startswith(leaf + ".") for leaf in self.leaves)

    def count(self, module: str) -> int | None:
        """How often `module` runs per forward pass; None when the trace cannot see it
        (it lies inside a leaf module)."""
        return None if self.inside_leaf(module) else len(self.calls.get(module, ()))

    def functions(self, modules: set[str]) -> dict[str, fx.Node]:
        """The function and method nodes that may be tensors, by torchvision name (a name
        that is also a module's is the module's)."""
        return {self.qualname[n]: n for n in self.graph.nodes
                if n.op in ("call_function", "call_method") and n in self.qualname
                and self.qualname[n] not in modules
                and getattr(n.target, "__name__", n.target) not in NOT_TENSORS}

    def module_call_names(self) -> dict[str, str]:
        """torchvision's name of each module-call node, mapped to its name here
        (`layer1.0.relu_1` → `layer1.0.relu:2`)."""
        out, seen = {}, {}
        for node in self.graph.nodes:
            if node.op == "call_module" and node in self.qualname:
                k = seen[node.target] = seen.get(node.target, 0) + 1
                out[self.qualname[node]] = node.target
                if self.count(node.target) and self.count(node.target) > 1:
                    out[self.qualname[node]] = f"{node.target}{CALL_SEP}{k}"
        return {fx_name: ours for fx_name, ours in out.items() if fx_name != ours}


def trace(model: nn.Module) -> Trace | None:
    """`model` (eval mode) traced with its module calls; None when FX cannot trace it
    (data-dependent control flow, say)."""
    model = base_module(model)
    tracer = _tracer_class()(**_tracer_kwargs())
    with evaluating(model):
        try:
            graph = tracer.trace(model)
        except Exception:  # noqa: BLE001 - any tracing failure means "no graph"
            return None
    calls: dict[str, list] = {}
    for name, out, end in tracer.calls:
        calls.setdefault(name, []).append((out, end))
    return Trace(model, graph, dict(tracer.node_to_qualname), calls)


def module_call(tr: Trace, name: str, modules: set[str]) -> tuple[fx.Node, fx.Node] | None:
    """(value node, end node) of module layer `name` (`module` or `module:N`) in the
    trace; None when it lies inside a leaf (its hook reads it); a UserError when it does
    not run, runs more than once under a bare name, or does not give a tensor."""
    base, call = split_call(name, modules)
    n = tr.count(base)
    if n is None:
        return None
    if n == 0:
        raise did_not_run(name)
    if call is None and n > 1:
        raise runs_twice(name, n, exact=True)
    if call is not None and call > n:
        raise UserError(f"layer {name!r}: module {base!r} runs {n} time{'s' if n > 1 else ''} "
                        f"in one forward pass; valid calls: "
                        + ", ".join(f"{base}{CALL_SEP}{k}" for k in range(1, n + 1)))
    out, end = tr.calls[base][(call or 1) - 1]
    if not isinstance(out, fx.Proxy):
        tensor_output(name, out)  # raises for a tuple, a dict, a number ...
        raise UserError(f"layer {name!r}: its output is a constant tensor that does not "
                        "depend on the input")
    return out.node, end


def did_not_run(name: str) -> UserError:
    return UserError(f"layer {name!r}: its module does not run in the model's forward pass "
                     "(in eval mode), so it has no output to read")


def _reader(name: str, transform: Callable[[torch.Tensor], torch.Tensor]) -> Callable:
    def read(value):
        return transform(tensor_output(name, value).detach())
    return read


class GraphReader(nn.Module):
    """Calls the model once and returns {name: transform(value)} for every name: graph
    nodes from a traced copy, modules inside leaf modules by their hooks, in one pass."""

    def __init__(self, model: nn.Module, tr: Trace, names: Sequence[str],
                 transform: Callable[[torch.Tensor], torch.Tensor]):
        super().__init__()
        modules = set(layer_names(base_module(model)))
        functions = tr.functions(modules)
        graph = fx.Graph()
        old_to_new: dict[fx.Node, fx.Node] = {}
        graph.graph_copy(tr.graph, old_to_new)  # the output node is left out
        placeholders = [n for n in tr.graph.nodes if n.op == "placeholder"]
        read: dict[str, fx.Node] = {}
        self.hooked: list[str] = []
        for name in names:
            if name == INPUT:  # read after the last placeholder: they come first in a graph
                value, end = placeholders[0], placeholders[-1]
            elif name in functions:
                value = end = functions[name]
            else:
                found = module_call(tr, name, modules)
                if found is None:
                    self.hooked.append(name)
                    continue
                value, end = found
            with graph.inserting_after(old_to_new[end]):
                read[name] = graph.call_function(_reader(name, transform), (old_to_new[value],))
        graph.output(read)
        self.gm = fx.GraphModule(tr.root, graph, type(tr.root).__name__)
        self.model, self.transform = base_module(model), transform

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        if not self.hooked:
            return self.gm(x)
        out: dict[str, torch.Tensor] = {}

        def keep(name: str, output: torch.Tensor) -> None:
            out[name] = self.transform(output.detach())

        with hooked(self.model, self.hooked, keep, root=self.gm):
            out |= self.gm(x)
        missing = [n for n in self.hooked if n not in out]
        if missing:
            raise did_not_run(missing[0])
        return out


def fx_hint(tr: Trace | None, name: str) -> str:
    """What torchvision's FX name `name` is called here, as ' (…)', when it names the input
    or a module call (`layer1.0.relu_1` is `layer1.0.relu:2`); else ''."""
    if tr is None:
        return ""
    if any(tr.qualname.get(n) == name for n in tr.graph.nodes if n.op == "placeholder"):
        return f" (FX's name for the model's input: here it is {INPUT!r})"
    ours = tr.module_call_names().get(name)
    return f" (FX's name for a call of a module: here it is {ours!r})" if ours else ""


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
