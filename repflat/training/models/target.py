"""Your own nn.Module class as a run's model: `model: {target: "mypkg.models:MyNet"}`.

Building it imports `mypkg.models`, which runs that module's code: the config file that
names it is as trusted as the code (README, threat model). Only a file the user runs
(`repflat train`, `repflat run`) builds one; a run directory someone else made never
makes repflat import anything (repflat.training.models.sources refuses).
"""
from __future__ import annotations

import contextlib
import importlib
import inspect
import sys
from collections.abc import Iterator
from pathlib import Path

from torch import nn

from repflat.config import TargetModel
from repflat.errors import UserError, expected, first_line, unknown


@contextlib.contextmanager
def _on_path(directory: str) -> Iterator[None]:
    """`directory` first on sys.path inside the block (the import of the user's module)."""
    added = directory not in sys.path
    if added:
        sys.path.insert(0, directory)
    try:
        yield
    finally:
        if added and directory in sys.path:
            sys.path.remove(directory)


def import_target(cfg: TargetModel) -> type[nn.Module]:
    """The class `cfg.target` names, imported from `cfg.path` (then sys.path)."""
    module_name, _, attribute = cfg.target.partition(":")
    with _on_path(str(Path(cfg.path))):
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as err:
            raise UserError(f"cannot import {module_name!r} ({first_line(err)}) from {cfg.path} "
                            "or sys.path", argument="model.target") from None
        except Exception as err:  # noqa: BLE001 - the user's module failed: say how, in one line
            raise UserError(f"importing {module_name!r} raised {type(err).__name__}: "
                            f"{first_line(err)}", argument="model.target") from None
    found: object = module
    for part in attribute.split("."):
        if not hasattr(found, part):
            classes = [n for n, v in vars(module).items()
                       if isinstance(v, type) and issubclass(v, nn.Module) and v.__module__ == module.__name__]
            raise unknown("model.target", attribute, classes, what=f"class of {module_name}")
        found = getattr(found, part)
    if not (isinstance(found, type) and issubclass(found, nn.Module)):
        raise expected("model.target", "an nn.Module subclass", f"{cfg.target} ({type(found).__name__})")
    return found


def build_target(cfg: TargetModel, input_shape: tuple[int, ...], n_classes: int) -> nn.Module:
    """An instance of the user's class with `cfg.kwargs`, plus the data's `n_classes` and
    `input_shape` where the class takes them and the config does not set them."""
    cls = import_target(cfg)
    kwargs = dict(cfg.kwargs)
    try:
        parameters = inspect.signature(cls).parameters
    except (TypeError, ValueError):
        parameters = {}
    for key, value in (("n_classes", n_classes), ("input_shape", tuple(input_shape))):
        if key in parameters and key not in kwargs:
            kwargs[key] = value
    try:
        inspect.signature(cls).bind(**kwargs)
    except TypeError as err:
        raise UserError(f"{cfg.target} does not take these arguments ({first_line(err)})",
                        argument="model.kwargs") from None
    except ValueError:
        pass  # no signature to check against: the call below says
    try:
        model = cls(**kwargs)
    except Exception as err:  # noqa: BLE001 - the user's __init__ refused its arguments
        raise UserError(f"{cfg.target}(**kwargs) raised {type(err).__name__}: {first_line(err)}",
                        argument="model.kwargs") from None
    if cfg.hidden_layers:
        model.hidden_layers = cfg.hidden_layers
    return model
