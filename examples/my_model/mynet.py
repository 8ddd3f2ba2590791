"""A model of your own, trained and analysed by `repflat run` like the built-in ones.

Any nn.Module subclass works. Layers are its submodules by name (`body.0`, `neck`), as
`model.named_modules()` gives them; `hidden_layers` (optional) says which to capture and
mix at when the experiment file names none. `n_classes` and `input_shape` are filled in
from the data when the constructor takes them; everything else comes from `kwargs`.
"""
from __future__ import annotations

import math

from torch import nn


class MyNet(nn.Module):
    def __init__(self, input_shape: tuple[int, ...], n_classes: int, width: int = 32,
                 neck: int = 2):
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(math.prod(input_shape), width), nn.ReLU(),
                                  nn.Linear(width, width), nn.ReLU())
        self.neck = nn.Linear(width, neck)  # linear, so its plane shows Corollary 1's subspaces
        self.head = nn.Sequential(nn.Linear(neck, width), nn.ReLU(), nn.Linear(width, n_classes))
        self.hidden_layers = ("body.2", "body.4", "neck", "head.1")

    def forward(self, x):
        return self.head(self.neck(self.body(x)))
