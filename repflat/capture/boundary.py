"""Decision boundaries of any torch model with 2-D inputs, in a notebook.

The display (`repflat.analysis.report.plotting.boundary.BoundaryDisplay`) is numpy only
and the torch side may not import it (the layers: analysis never imports torch, torch
code never imports the report). So the torch side supplies what the display's
`from_function` takes, a scikit-learn-style `predict_proba` for the model:

    from repflat.capture.boundary import model_proba
    from repflat.analysis.report.plotting.boundary import BoundaryDisplay
    display = BoundaryDisplay.from_function(model_proba(model), X_train)  # one grid pass
    display.plot(response="confidence"); display.plot(response="entropy")
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from repflat.base.layers import forward_features
from repflat.errors import expected, first_line
from repflat.rundir.names import PROBABILITIES


class ModelProba:
    """`predict_proba` of a torch classifier: points (n, d) → softmax(model(points)) (n, K).

    Parameters
    ----------
    model : torch.nn.Module
        Maps a float tensor of inputs (n, d) to logits (n, n_classes); evaluated in eval
        mode without gradients (its training mode is restored afterwards).
    device : torch.device or str, optional
        Where to run it; default: where its parameters are (the CPU without any).
    batch_size : int, default 8192
        Points per forward pass.
    """

    def __init__(self, model: nn.Module, *, device: torch.device | str | None = None,
                 batch_size: int = 8192):
        if not isinstance(model, nn.Module):
            raise expected("model", "a torch.nn.Module", type(model).__name__)
        if batch_size < 1:
            raise expected("batch_size", "an integer >= 1", batch_size)
        params = list(model.parameters())
        self.model, self.batch_size = model, batch_size
        self.device = torch.device(device) if device is not None else (
            params[0].device if params else torch.device("cpu"))
        floating = [p.dtype for p in params if p.is_floating_point()]
        self.dtype = torch.empty((), dtype=floating[0] if floating else torch.float32).numpy().dtype

    def __call__(self, points) -> np.ndarray:
        """Class probabilities (n, K), float32, of the points (n, d)."""
        x = np.ascontiguousarray(np.asarray(points), dtype=self.dtype)
        try:
            out = forward_features(self.model, x, (), device=self.device, batch_size=self.batch_size)
        except RuntimeError as err:  # a model that does not take (n, d) inputs
            raise expected("model", f"a module taking inputs of shape (n, {x.shape[-1]})",
                           first_line(err)) from None
        return out[PROBABILITIES]

    def __repr__(self) -> str:
        return f"ModelProba({type(self.model).__name__}, device={str(self.device)!r})"


def model_proba(model: nn.Module, *, device: torch.device | str | None = None,
                batch_size: int = 8192) -> ModelProba:
    """A `predict_proba` for `model`, for `BoundaryDisplay.from_function`.

    Parameters
    ----------
    model : torch.nn.Module
        Maps a float tensor of inputs (n, d) to logits (n, n_classes); evaluated in eval
        mode without gradients, probabilities = softmax(logits).
    device : torch.device or str, optional
        Where to run it; default: where its parameters are (the CPU without any).
    batch_size : int, default 8192
        Points per forward pass.

    Returns
    -------
    ModelProba
        Callable: points (n, d) array-like → class probabilities (n, n_classes).
    """
    return ModelProba(model, device=device, batch_size=batch_size)
