"""The rescaling-model interface shared by every backbone.

A rescaling model is any object with an integer ``scale`` and two differentiable
functions on ``[N, 3, H, W]`` float batches in [0, 1]:

* ``down(y)``: HR ``[N, 3, H, W]`` -> LR ``[N, 3, H/scale, W/scale]``
* ``up(x)``: LR ``[N, 3, h, w]`` -> HR ``[N, 3, h*scale, w*scale]``

:class:`RescalingModel` is a convenient ``nn.Module`` base that checks shapes
before calling the subclass's ``_down``/``_up``; the optimisers in
:mod:`hcd_lite.collaborative` accept any object with the three attributes.
"""
from __future__ import annotations

import torch
from torch import nn


def check_batch(t: torch.Tensor, name: str = "image") -> None:
    """Raise a clear error unless ``t`` is a finite float ``[N, 3, H, W]`` tensor."""
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}; "
                        "use hcd_lite.load_image() to read an image file or array")
    if t.dim() != 4 or t.shape[1] != 3:
        raise ValueError(f"{name} must have shape [N, 3, H, W], got {list(t.shape)}; "
                         "use hcd_lite.load_image() (it returns [1, 3, H, W]) or "
                         "t.unsqueeze(0) for a single [3, H, W] image")
    if not t.is_floating_point():
        raise TypeError(f"{name} must be a float tensor in [0, 1], got {t.dtype}; "
                        "divide 8-bit data by 255 or use hcd_lite.load_image()")
    if not torch.isfinite(t).all():
        raise ValueError(f"{name} contains NaN or infinite values")


def check_divisible(y: torch.Tensor, scale: int) -> None:
    """Raise a clear error unless the HR height and width are multiples of ``scale``."""
    h, w = y.shape[-2:]
    if h % scale or w % scale:
        raise ValueError(
            f"image size {h}x{w} is not divisible by the scale {scale}; "
            f"crop it first with hcd_lite.crop_to_multiple(y, {scale}) "
            f"(gives {h - h % scale}x{w - w % scale})")


def crop_to_multiple(y: torch.Tensor, scale: int) -> torch.Tensor:
    """Crop the bottom/right edge of ``y`` ``[..., H, W]`` so H and W are multiples of ``scale``."""
    h, w = y.shape[-2:]
    return y[..., : h - h % scale, : w - w % scale]


def round_to_8bit_straight_through(x: torch.Tensor) -> torch.Tensor:
    """Round to the 256 levels of an 8-bit image in the forward pass, passing gradients
    straight through (identity backward; for training). :func:`hcd_lite.images.round_to_8bit`
    is the same rounding with no gradient."""
    return x + ((x.clamp(0, 1) * 255).round() / 255 - x).detach()


class RescalingModel(nn.Module):
    """Base class for a downscaler/upscaler pair; subclasses implement ``_down`` and ``_up``."""

    def __init__(self, scale: int):
        super().__init__()
        if scale not in (2, 4):
            raise ValueError(f"scale must be 2 or 4, got {scale}")
        self.scale = scale

    def down(self, y: torch.Tensor) -> torch.Tensor:
        """HR ``[N, 3, H, W]`` -> LR ``[N, 3, H/scale, W/scale]``."""
        check_batch(y, "HR image")
        check_divisible(y, self.scale)
        return self._down(y)

    def up(self, x: torch.Tensor) -> torch.Tensor:
        """LR ``[N, 3, h, w]`` -> HR ``[N, 3, h*scale, w*scale]``."""
        check_batch(x, "LR image")
        return self._up(x)

    def _down(self, y: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _up(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def freeze(self) -> "RescalingModel":
        """Put the model in eval mode with every parameter frozen; returns ``self``."""
        self.eval()
        for p in self.parameters():
            p.requires_grad_(False)
        return self
