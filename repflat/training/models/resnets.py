"""The paper's image classifiers with named stages: PreActResNet-18/34 and WRN-28-10.

Stages are submodules, so capture and mixing address them by name: `layer1`..`layer4`
(PreActResNet) or `block1`..`block3` (WRN). The paper's "after block k" is the output
of stage k; its eligible set {input, after block 1, after block 2} is
`[input, layer1, layer2]` here.

PreActResNet follows the official manifold mixup code (He et al.'s pre-activation
blocks; a 3×3 stem with stride 1, or 2 for 64×64 inputs; no normalisation after the
last stage; global average pooling). WRN-28-10 follows Zagoruyko & Komodakis (2016):
16-channel stem, three stages of four blocks of widths 160, 320, 640, then BN-ReLU.
"""
from __future__ import annotations

from torch import nn


class PreActBlock(nn.Module):
    """BN-ReLU-conv3×3, BN-ReLU-conv3×3, plus the shortcut (a 1×1 conv when shapes change)."""

    def __init__(self, c_in: int, c_out: int, stride: int, dropout: float = 0.0):
        super().__init__()
        self.bn1, self.relu1 = nn.BatchNorm2d(c_in), nn.ReLU()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn2, self.relu2 = nn.BatchNorm2d(c_out), nn.ReLU()
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.shortcut = (nn.Conv2d(c_in, c_out, 1, stride, bias=False)
                         if stride != 1 or c_in != c_out else None)

    def forward(self, x):
        out = self.relu1(self.bn1(x))
        # the projection shortcut sees the pre-activated input, as in He et al. (2016)
        skip = x if self.shortcut is None else self.shortcut(out)
        out = self.conv1(out)
        out = self.conv2(self.drop(self.relu2(self.bn2(out))))
        return out + skip


def _stage(c_in: int, c_out: int, blocks: int, stride: int, dropout: float = 0.0) -> nn.Sequential:
    return nn.Sequential(*(PreActBlock(c_in if i == 0 else c_out, c_out, stride if i == 0 else 1,
                                       dropout) for i in range(blocks)))


class PreActResNet(nn.Module):
    def __init__(self, blocks: tuple[int, ...], n_classes: int, in_channels: int = 3,
                 stem_stride: int = 1, width: int = 64):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, width, 3, stem_stride, 1, bias=False)
        widths = [width * 2 ** i for i in range(len(blocks))]
        c = width
        for i, (n, w) in enumerate(zip(blocks, widths)):
            self.add_module(f"layer{i + 1}", _stage(c, w, n, 1 if i == 0 else 2))
            c = w
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.linear = nn.Linear(c, n_classes)
        self.hidden_layers = tuple(f"layer{i + 1}" for i in range(len(blocks)))

    def forward(self, x):
        x = self.conv1(x)
        for name in self.hidden_layers:
            x = getattr(self, name)(x)
        return self.linear(self.pool(x).flatten(1))


class WideResNet(nn.Module):
    def __init__(self, depth: int, widen: int, n_classes: int, in_channels: int = 3,
                 stem_stride: int = 1, dropout: float = 0.0):
        super().__init__()
        if (depth - 4) % 6:
            raise ValueError(f"WRN depth must be 6n + 4, got {depth}")
        n = (depth - 4) // 6
        self.conv1 = nn.Conv2d(in_channels, 16, 3, stem_stride, 1, bias=False)
        widths = [16 * widen, 32 * widen, 64 * widen]
        self.block1 = _stage(16, widths[0], n, 1, dropout)
        self.block2 = _stage(widths[0], widths[1], n, 2, dropout)
        self.block3 = _stage(widths[1], widths[2], n, 2, dropout)
        self.bn, self.relu = nn.BatchNorm2d(widths[2]), nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(widths[2], n_classes)
        self.hidden_layers = ("block1", "block2", "block3")

    def forward(self, x):
        x = self.block3(self.block2(self.block1(self.conv1(x))))
        return self.fc(self.pool(self.relu(self.bn(x))).flatten(1))
