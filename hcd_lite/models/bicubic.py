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


def bicubic_up(x: torch.Tensor, scale: int, sharp: bool = False) -> torch.Tensor:
    """Bicubic upscaling by ``scale``.

    By default with Keys' kernel a = -0.5, as ``bicubic_down`` and MATLAB's ``imresize`` (the
    field's Bicubic & Bicubic baseline). ``sharp=True``: PyTorch's plain bicubic (a = -0.75), the
    fixed skip path the shipped SR networks were trained with.
    """
    h, w = x.shape[-2:]
    return F.interpolate(x, size=(h * scale, w * scale), mode="bicubic", align_corners=False,
                         antialias=not sharp)  # torch's antialiased path uses a = -0.5


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
