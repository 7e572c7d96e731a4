"""Plain convolutional backbones: a learned encoder-decoder pair and bicubic + EDSR-style SR.

Both work at LR resolution (pixel-unshuffle in, pixel-shuffle out) and predict a residual
on top of bicubic resampling, which makes them cheap on a CPU and quick to train.
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import nn

from .base import RescalingModel
from .bicubic import bicubic_down, bicubic_up


class ResBlock(nn.Module):
    """conv-ReLU-conv with an identity skip (EDSR style, no batch norm)."""

    def __init__(self, width: int):
        super().__init__()
        self.conv1 = nn.Conv2d(width, width, 3, padding=1)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1)

    def forward(self, x):
        return x + self.conv2(F.relu(self.conv1(x)))


def conv_trunk(channels_in: int, channels_out: int, width: int, blocks: int) -> nn.Sequential:
    """Head conv, ``blocks`` residual blocks, tail conv (zero-initialised: starts at 0)."""
    tail = nn.Conv2d(width, channels_out, 3, padding=1)
    nn.init.zeros_(tail.weight)
    nn.init.zeros_(tail.bias)
    return nn.Sequential(nn.Conv2d(channels_in, width, 3, padding=1),
                         *[ResBlock(width) for _ in range(blocks)], tail)


class SRNet(nn.Module):
    """LR [N, 3, h, w] -> HR residual over bicubic upscaling, via pixel shuffle."""

    def __init__(self, scale: int, width: int, blocks: int):
        super().__init__()
        self.scale = scale
        self.trunk = conv_trunk(3, 3 * scale ** 2, width, blocks)

    def forward(self, x):
        return bicubic_up(x, self.scale, sharp=True) + F.pixel_shuffle(self.trunk(x), self.scale)


class EncoderDecoder(RescalingModel):
    """A CNN downscaler and a CNN upscaler trained jointly (the TAD & TAU idea)."""

    def __init__(self, scale: int, width: int = 32, blocks: int = 3):
        super().__init__(scale)
        self.config = dict(width=width, blocks=blocks)
        self.encoder = conv_trunk(3 * scale ** 2, 3, width, blocks)
        self.decoder = SRNet(scale, width, blocks)

    def _down(self, y):
        return bicubic_down(y, self.scale) + self.encoder(F.pixel_unshuffle(y, self.scale))

    def _up(self, x):
        return self.decoder(x)


class BicubicSR(RescalingModel):
    """Fixed bicubic downscaling + a small EDSR-style super-resolution network."""

    def __init__(self, scale: int, width: int = 32, blocks: int = 4):
        super().__init__(scale)
        self.config = dict(width=width, blocks=blocks)
        self.sr = SRNet(scale, width, blocks)

    def _down(self, y):
        return bicubic_down(y, self.scale)

    def _up(self, x):
        return self.sr(x)
