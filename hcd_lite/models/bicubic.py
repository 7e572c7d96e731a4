"""The weight-free baseline: bicubic downscaling and bicubic upscaling."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .base import RescalingModel


def bicubic_down(y: torch.Tensor, scale: int) -> torch.Tensor:
    """Antialiased bicubic downscaling by ``scale`` (like MATLAB's ``imresize``)."""
    h, w = y.shape[-2:]
    return F.interpolate(y, size=(h // scale, w // scale), mode="bicubic",
                         align_corners=False, antialias=True)


def bicubic_up(x: torch.Tensor, scale: int) -> torch.Tensor:
    """Bicubic upscaling by ``scale``."""
    h, w = x.shape[-2:]
    return F.interpolate(x, size=(h * scale, w * scale), mode="bicubic", align_corners=False)


class Bicubic(RescalingModel):
    """Bicubic & Bicubic: the fixed pair every learned rescaler is compared with.

    >>> m = Bicubic(4)
    >>> m.up(m.down(torch.rand(1, 3, 64, 64))).shape
    torch.Size([1, 3, 64, 64])
    """

    def _down(self, y):
        return bicubic_down(y, self.scale)

    def _up(self, x):
        return bicubic_up(x, self.scale)
