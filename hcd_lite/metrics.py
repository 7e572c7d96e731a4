"""PSNR and SSIM with the convention of the image-rescaling literature (IRN, HCFlow, HCD).

The convention, applied identically by :func:`psnr` and :func:`ssim`:

1. ``quantize=True`` (default): both images are clamped to [0, 1] and rounded to
   8 bits, as if saved as PNG.
2. ``y_channel=True`` (default): RGB in [0, 1] is converted to the luma Y of ITU-R
   BT.601 YCbCr, studio range, ``Y = 16 + 65.481 R + 128.553 G + 24.966 B``
   (MATLAB ``rgb2ycbcr``), so Y lies in [16, 235] on the 0-255 scale. It is not
   rounded. With ``y_channel=False`` the three RGB channels are used, scaled to 0-255.
3. ``crop`` pixels are removed on every side (use ``crop=scale`` for rescaling).
4. PSNR ``= 10 log10(255^2 / MSE)`` with data range 255, MSE over all remaining
   values of one image; identical images give ``inf``.
   SSIM (Wang et al. 2004): 11x11 Gaussian window with sigma 1.5, K1 = 0.01,
   K2 = 0.03, data range 255, valid filtering (no padding), mean of the SSIM map
   over pixels (and over channels for RGB).

Computation is in float64 without gradients; results are float64 CPU tensors ``[N]``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .images import round_to_8bit

_Y_WEIGHTS = (65.481, 128.553, 24.966)


def rgb_to_y(t: torch.Tensor) -> torch.Tensor:
    """RGB ``[N, 3, H, W]`` in [0, 1] -> BT.601 luma ``[N, 1, H, W]`` on the 0-255 scale.

    Y lies in [16, 235]; the dtype and device of ``t`` are kept, nothing is rounded.
    """
    w = torch.tensor(_Y_WEIGHTS, dtype=t.dtype, device=t.device).view(1, 3, 1, 1)
    return 16 + (t * w).sum(dim=1, keepdim=True)


def _prepare(a, b, crop, y_channel, quantize):
    """Validate, quantize, convert to Y (or RGB) on the 0-255 scale and crop both images."""
    pair = []
    for name, t in (("a", a), ("b", b)):
        if not isinstance(t, torch.Tensor) or not t.is_floating_point():
            raise TypeError(f"{name} must be a float tensor in [0, 1]")
        if t.dim() == 3:
            t = t.unsqueeze(0)
        if t.dim() != 4 or t.shape[1] != 3:
            raise ValueError(f"{name} must have shape [N, 3, H, W] or [3, H, W], got "
                             f"{list(t.shape)}")
        pair.append(t.detach().to("cpu" if t.device.type == "mps" else t.device, torch.float64))
    a, b = pair
    if a.shape != b.shape:
        raise ValueError(f"images must have the same shape, got {list(a.shape)} and "
                         f"{list(b.shape)}")
    crop = int(crop)
    h, w = a.shape[-2:]
    if crop < 0 or 2 * crop >= min(h, w):
        raise ValueError(f"crop={crop} must be >= 0 and leave pixels of a {h}x{w} image")
    if quantize:
        a, b = round_to_8bit(a), round_to_8bit(b)
    a, b = (rgb_to_y(a), rgb_to_y(b)) if y_channel else (a * 255, b * 255)
    return a[..., crop:h - crop, crop:w - crop], b[..., crop:h - crop, crop:w - crop]


@torch.no_grad()
def psnr(a: torch.Tensor, b: torch.Tensor, crop: int = 0, y_channel: bool = True,
         quantize: bool = True) -> torch.Tensor:
    """Per-image PSNR in dB (float64 ``[N]``, ``inf`` if equal) of ``[N, 3, H, W]`` images in
    [0, 1]; the convention is in the module docstring."""
    a, b = _prepare(a, b, crop, y_channel, quantize)
    mse = (a - b).pow(2).flatten(1).mean(dim=1)
    return (10 * torch.log10(255.0 ** 2 / mse)).cpu()


def _gaussian_window(size: int = 11, sigma: float = 1.5, **kw) -> torch.Tensor:
    x = torch.arange(size, **kw) - size // 2
    g = torch.exp(-x ** 2 / (2 * sigma ** 2))
    return g / g.sum()


@torch.no_grad()
def ssim(a: torch.Tensor, b: torch.Tensor, crop: int = 0, y_channel: bool = True,
         quantize: bool = True) -> torch.Tensor:
    """Per-image SSIM (float64 ``[N]``) of ``[N, 3, H, W]`` images in [0, 1]; the convention
    is in the module docstring."""
    a, b = _prepare(a, b, crop, y_channel, quantize)
    n, c, h, w = a.shape
    if min(h, w) < 11:
        raise ValueError(f"SSIM needs at least 11x11 pixels after cropping, got {h}x{w}")
    g = _gaussian_window(dtype=a.dtype, device=a.device)

    def blur(t):  # separable valid Gaussian filtering of every channel
        t = F.conv2d(t.reshape(n * c, 1, *t.shape[-2:]), g.view(1, 1, 11, 1))
        return F.conv2d(t, g.view(1, 1, 1, 11))

    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a ** 2
    var_b = blur(b * b) - mu_b ** 2
    cov = blur(a * b) - mu_a * mu_b
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)
         / ((mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2)))
    return s.reshape(n, -1).mean(dim=1).cpu()
