"""Models to capture from: a repflat run, a torchvision model by name, a weights file.

Every file is read with `torch.load(..., weights_only=True)`: a checkpoint can hold
tensors and plain containers, never objects whose unpickling would run code.
"""
from __future__ import annotations

import math
import os
import pickle
from pathlib import Path

import torch
from torch import nn

from repflat.config import RunConfig, TargetModel, load_run_config
from repflat.errors import UserError, expected, first_line, unknown
from repflat.files import open_regular
from repflat.rundir.names import CHECKPOINT_FILE, CONFIG_FILE
from repflat.training.checkpoint import hollow_tensor, stored_values


def load_weights(path: str | Path, argument: str = "weights", *, follow: bool = True) -> dict:
    """The checkpoint or state dict in `path`, loaded without unpickling objects.

    `follow=False` for a file found inside a run directory: a link there is refused."""
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        raise expected(argument, "an existing checkpoint or state-dict file", str(path))
    fd = open_regular(path, argument, follow=follow)
    try:
        with os.fdopen(fd, "rb") as fh:
            state = torch.load(fh, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, OSError) as err:
        raise UserError(f"{path} is not a repflat checkpoint or a state dict (torch.load with "
                        f"weights_only=True refused it: {first_line(err, 200)})",
                        argument=argument) from None
    try:
        hollow = hollow_tensor(state)
    except RecursionError:
        hollow = "(nested too deeply to check)"
    if hollow is not None:
        raise UserError(f"{path} holds a tensor {hollow[:80]!r} whose shape promises more "
                        "values than it stores (a stride-0 view); weights are dense tensors",
                        argument=argument)
    return state


def state_dict_of(obj: object, path: str | Path, argument: str = "weights") -> dict:
    """The tensors of a loaded checkpoint: repflat's {"model": ...}, the common
    {"state_dict": ...}, or a bare state dict."""
    if isinstance(obj, dict):
        for key in ("model", "state_dict"):
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
        if obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
            return obj
    raise expected(argument, "a state dict (a mapping of names to tensors)", f"{path}")


def load_into(model: nn.Module, state: dict, path: str | Path, argument: str) -> nn.Module:
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        detail = " ".join(str(err).split())[:300]
        raise UserError(f"the weights in {path} do not fit the model ({detail})",
                        argument=argument) from None
    return model


def classification_models() -> list[str]:
    import torchvision  # only where a torchvision model is asked for (benchmarks/import_costs.py)

    return sorted(torchvision.models.list_models(module=torchvision.models))


def torchvision_model(name: str, weights: str | Path | None = None,
                      num_classes: int | None = None, seed: int | None = None) -> nn.Module:
    """A torchvision classifier by name, with weights from a local file (never downloaded).

    Without `num_classes`, a weights file decides it from its classifier's shape. Without
    weights the model keeps its random initialisation, drawn after `torch.manual_seed(seed)`
    when `seed` is given (the same model every time), without touching the caller's
    random state.
    """
    names = classification_models()
    if name not in names:
        raise unknown("model", name, names)
    state = state_dict_of(load_weights(weights), weights) if weights else None
    kwargs = {} if num_classes is None else {"num_classes": num_classes}
    with torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.manual_seed(seed)
        import torchvision

        model = torchvision.models.get_model(name, weights=None, **kwargs)
    if state is None:
        return model
    if num_classes is None:  # a fine-tuned head: take its size from the file
        fresh = model.state_dict()
        heads = {k: v.shape[0] for k, v in state.items()
                 if k in fresh and v.shape != fresh[k].shape and fresh[k].shape[:1] == (1000,)}
        if heads and len(set(heads.values())) == 1:
            import torchvision

            model = torchvision.models.get_model(name, weights=None, num_classes=next(iter(heads.values())))
    return load_into(model, state, weights, "weights")


def run_model(run: str | Path) -> tuple[nn.Module, RunConfig, int]:
    """The trained model of a repflat run directory, its config and its epoch."""
    from repflat.training.models import build_model

    run = Path(run)
    if not (run / CONFIG_FILE).is_file():
        raise expected("run_dir", "a repflat run directory (with config.yaml)", str(run))
    cfg = load_run_config(run / CONFIG_FILE, follow=False)
    if isinstance(cfg.model, TargetModel):  # a received run must not make repflat run code
        raise UserError(f"{run}'s model is a class of your own ({cfg.model.target}), which "
                        "repflat imports only from a file you run; build it yourself and pass "
                        "it to repflat.extract", argument="run_dir")
    ckpt = load_weights(run / CHECKPOINT_FILE, "run_dir", follow=False)
    fields = {"model": dict, "input_shape": list, "n_classes": int, "epoch": int}
    if not isinstance(ckpt, dict) or not all(isinstance(ckpt.get(k), t) for k, t in fields.items()) \
            or not all(isinstance(d, int) and d > 0 for d in ckpt["input_shape"]) or ckpt["n_classes"] < 1:
        raise expected("run_dir", "a finished run (checkpoint.pt with model, input_shape, "
                       "n_classes and epoch)", str(run))
    stored = stored_values(ckpt["model"])  # the model's first and last layers are in it
    for key, size in (("n_classes", ckpt["n_classes"]), ("input_shape", math.prod(ckpt["input_shape"]))):
        if size > stored:
            raise UserError(f"{run / CHECKPOINT_FILE} says {key} is {str(ckpt[key])[:60]}, more than "
                            f"the {stored:,} values of its weights; refusing to build that model",
                            argument="run_dir")
    model = build_model(cfg.model, tuple(ckpt["input_shape"]), ckpt["n_classes"], seed=0)
    return load_into(model, ckpt["model"], run / CHECKPOINT_FILE, "run_dir"), cfg, ckpt["epoch"]
