"""The layer names of repflat's own models, read from their configs, without torch.

A config names layers in five places (mixing.layers, capture.layers, capture.plane,
evaluation.premise_layers, an experiment's analysis.layers). For the built-in models
(mlp, the PreActResNets, WRN-28-10) every name is known from the config alone, so a
typo is refused while the file is parsed, with its FILE:LINE, before torch is imported
(which costs seconds). A torchvision architecture's names are known only by building
it: those are checked when the run is built (repflat.base.naming), as before.

`model_layers` lists what `repflat.base.layers.layer_names` lists for the built model:
`input`, then every module of `named_modules()` in definition order (a test builds each
model and compares). A name is a layer when `is_layer` says so, the rule of
`repflat.base.layers.is_module_layer`: a listed name, or `module:N` (N ≥ 1), its N-th
call in one forward pass.
"""
from __future__ import annotations

from collections.abc import Iterable

from repflat.config.toy import FILE_DATA, TOY_DATA
from repflat.errors import unknown

INPUT = "input"
"""repflat.rundir.names.INPUT (the run directory's floor is above this one; a test keeps
the two equal)."""
CALL_SEP = ":"
"""repflat.base.layers.CALL_SEP: `relu:2` is the second call of module `relu`."""
DEFAULT_PLANE = "bottleneck"
"""capture.plane's default: the MLP's bottleneck, skipped on a model without one."""


def _mlp(cfg) -> tuple[list[str], tuple[str, ...]]:
    """repflat.training.models.mlp.MLP: blocks fc1.., bottleneck, fc.. (each a Sequential
    of Linear, [BatchNorm1d], activation (not the bottleneck's), [Dropout (p > 0)]), then
    `logits`."""
    plan = [f"fc{i + 1}" for i in range(len(cfg.widths))]
    plan += ["bottleneck"] if cfg.bottleneck is not None else []
    plan += [f"fc{len(cfg.widths) + i + 1}" for i in range(len(cfg.widths_after))]
    names = []
    for block in plan:
        fc = block != "bottleneck"
        parts = 1 + cfg.batch_norm + fc + (fc and cfg.dropout > 0)
        names += [block] + [f"{block}.{k}" for k in range(parts)]
    return names + ["logits"], tuple(plan)


def _stage(name: str, blocks: int, shortcut_first: bool) -> list[str]:
    """repflat.training.models.resnets._stage: a Sequential of PreActBlocks."""
    out = [name]
    for b in range(blocks):
        parts = ["bn1", "relu1", "conv1", "bn2", "relu2", "drop", "conv2"]
        parts += ["shortcut"] if b == 0 and shortcut_first else []
        out += [f"{name}.{b}"] + [f"{name}.{b}.{p}" for p in parts]
    return out


def _resnet(cfg) -> tuple[list[str], tuple[str, ...]]:
    if cfg.name == "wrn28_10":  # 16 → 160 channels: every stage opens with a projection
        stages = tuple(f"block{i}" for i in (1, 2, 3))
        names = ["conv1"] + [n for s in stages for n in _stage(s, 4, True)]
        return names + ["bn", "relu", "pool", "fc"], stages
    blocks = {"preactresnet18": (2, 2, 2, 2), "preactresnet34": (3, 4, 6, 3)}[cfg.name]
    stages = tuple(f"layer{i + 1}" for i in range(len(blocks)))
    # 64 channels in and out at stride 1: layer1 needs no projection, the others do
    names = ["conv1"] + [n for i, s in enumerate(stages) for n in _stage(s, blocks[i], i > 0)]
    return names + ["pool", "linear"], stages


def _cnn1d(cfg) -> tuple[list[str], tuple[str, ...]]:
    """repflat.training.models.mnist1d.Cnn1d: conv1..conv3 (each a Sequential of Conv1d,
    ReLU, [Dropout (p > 0)]), then `logits`."""
    stages = ("conv1", "conv2", "conv3")
    parts = 2 + (cfg.dropout > 0)
    return [n for s in stages for n in (s, *(f"{s}.{k}" for k in range(parts)))] + ["logits"], stages


def _gru(cfg) -> tuple[list[str], tuple[str, ...]]:
    """repflat.training.models.mnist1d.Gru: `gru` (GruStates, holding `gru.rnn`), `logits`."""
    return ["gru", "gru.rnn", "logits"], ("gru",)


def _known(model) -> tuple[list[str], tuple[str, ...]] | None:
    name = getattr(model, "name", None)
    if name == "mlp":
        return _mlp(model)
    if name == "cnn1d":
        return _cnn1d(model)
    if name == "gru":
        return _gru(model)
    if name in ("preactresnet18", "preactresnet34", "wrn28_10"):
        return _resnet(model)
    return None  # torchvision, or the user's own class: known once built


def model_layers(model) -> tuple[str, ...] | None:
    """Every layer name of the model a model config builds (`input` first, then its
    modules in definition order); None when only building it tells (torchvision)."""
    known = _known(model)
    return None if known is None else (INPUT, *known[0])


def hidden_layers(model) -> tuple[str, ...] | None:
    """The model's hidden layers (its `hidden_layers`, the default capture and mixing
    set); None when only building it tells."""
    if getattr(model, "name", None) in ("torchvision", "target"):
        return tuple(model.hidden_layers) or None  # else the built model's own, if any
    known = _known(model)
    return None if known is None else known[1]


def is_layer(name: str, modules: Iterable[str]) -> bool:
    """Whether `name` is one of `modules` (as `model_layers` lists them) or `module:N`,
    N ≥ 1, for a module of them other than `input`."""
    modules = set(modules)
    if name in modules:
        return True
    base, sep, call = name.rpartition(CALL_SEP)
    return bool(sep) and call.isdigit() and int(call) >= 1 and base in modules and base != INPUT


def unknown_layer(names: Iterable[str], modules: tuple[str, ...]) -> str | None:
    """The first of `names` that is not a layer among `modules`; None when every one is."""
    return next((n for n in names if not is_layer(n, modules)), None)


def captured_layers(run) -> tuple[str, ...] | None:
    """The layers a run config captures: its capture.layers, else its model's hidden
    layers, after `input` where the inputs may be points of the plane (a toy set, or a
    file of points, whose width only reading it tells); None when only building the
    model tells."""
    if run.capture.layers:
        return tuple(run.capture.layers)
    hidden = hidden_layers(run.model)
    if hidden is None:
        return None
    points = isinstance(run.data, (*TOY_DATA, *FILE_DATA))
    return (INPUT, *hidden) if points else hidden


def check_run_layers(run, where: str = "") -> None:
    """Refuse a layer name a run config gives that its model lacks (the error names the
    key below `where` and lists the valid names). Nothing is refused for a model whose
    names only building it tells; nor the default plane, `bottleneck`, on a model without
    one (it is documented to be skipped there)."""
    modules = model_layers(run.model)
    if modules is None:
        return
    at = f"{where}." if where else ""
    for key, names in (("mixing.layers", run.mixing.layers), ("capture.layers", run.capture.layers),
                       ("evaluation.premise_layers", run.evaluation.premise_layers)):
        bad = unknown_layer(names, modules)
        if bad is not None:
            raise unknown(at + key, bad, modules)
    plane = run.capture.plane
    if plane is not None and plane != DEFAULT_PLANE and not is_layer(plane, modules):
        raise unknown(at + "capture.plane", plane, modules)


def check_analysis_layers(analysis, runs) -> None:
    """Refuse analysis.layers and analysis.spectra_layers naming a layer some arm does not
    capture (each arm's first run stands for its seeds), when its model tells without
    being built; the rest is checked when the arms are built (repflat.training.sweep)."""
    seen = set()
    for run in runs:
        if run.name in seen:
            continue
        seen.add(run.name)
        captured = captured_layers(run)
        if captured is None:
            continue
        for key in ("layers", "spectra_layers"):
            for layer in getattr(analysis, key):
                if layer not in captured:
                    raise unknown(f"analysis.{key} (captured by arm {run.name!r})", layer, captured)
