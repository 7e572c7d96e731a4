"""IRN: the Invertible Rescaling Network of Xiao et al. (ECCV 2020), written from its paper.

HR image -> Haar wavelet level(s) -> affine coupling blocks -> first 3 channels are the
LR image, the remaining ``3 * (scale**2 - 1)`` channels are the latent ``z``. Upscaling
runs the same network backwards on ``[LR, z]``. With ``blocks=8, width=32`` (the
published hyper-parameters) the parameter names and shapes are those of the official
release, so its ``IRN_x2.pth`` / ``IRN_x4.pth`` load with :meth:`IRN.from_official`.

``z_mode`` chooses what the upscaler uses for the unknown latent: ``"sample"`` draws
z ~ N(0, 1) (the published model; the draw is seeded, so ``up`` is deterministic) and
``"zero"`` uses z = 0 (our compact models are trained that way: far better on a CPU budget).
"""
from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .base import RescalingModel


class DenseBlock(nn.Module):
    """Five 3x3 convolutions with dense connections: the coupling subnet of IRN."""

    def __init__(self, channels_in: int, channels_out: int, width: int = 32):
        super().__init__()
        self.conv1 = nn.Conv2d(channels_in, width, 3, 1, 1)
        self.conv2 = nn.Conv2d(channels_in + width, width, 3, 1, 1)
        self.conv3 = nn.Conv2d(channels_in + 2 * width, width, 3, 1, 1)
        self.conv4 = nn.Conv2d(channels_in + 3 * width, width, 3, 1, 1)
        self.conv5 = nn.Conv2d(channels_in + 4 * width, channels_out, 3, 1, 1)
        for conv in (self.conv1, self.conv2, self.conv3, self.conv4):
            nn.init.xavier_normal_(conv.weight)
            conv.weight.data.mul_(0.1)
            nn.init.zeros_(conv.bias)
        nn.init.zeros_(self.conv5.weight)  # each coupling starts as the identity
        nn.init.zeros_(self.conv5.bias)

    def forward(self, x):
        feats = [x]
        for conv in (self.conv1, self.conv2, self.conv3, self.conv4):
            feats.append(F.leaky_relu(conv(torch.cat(feats, 1)), 0.2))
        return self.conv5(torch.cat(feats, 1))


class HaarDownsampling(nn.Module):
    """One level of the Haar transform: [N, C, H, W] <-> [N, 4C, H/2, W/2], orthogonal up to 1/4.

    The first C output channels are the 2x2 block means (the low-pass band).
    """

    def __init__(self, channels: int):
        super().__init__()
        self.channels = channels
        w = torch.ones(4, 1, 2, 2)
        w[1, 0, 0, 1] = w[1, 0, 1, 1] = -1  # horizontal detail
        w[2, 0, 1, 0] = w[2, 0, 1, 1] = -1  # vertical detail
        w[3, 0, 1, 0] = w[3, 0, 0, 1] = -1  # diagonal detail
        # A (frozen) parameter, as in the official release, so state dicts match.
        self.haar_weights = nn.Parameter(torch.cat([w] * channels, 0), requires_grad=False)

    def forward(self, x, rev: bool = False):
        n, c = x.shape[0], self.channels
        if not rev:
            h, w = x.shape[2] // 2, x.shape[3] // 2
            out = F.conv2d(x, self.haar_weights, stride=2, groups=c) / 4.0
            return out.reshape(n, c, 4, h, w).transpose(1, 2).reshape(n, 4 * c, h, w)
        h, w = x.shape[2], x.shape[3]
        out = x.reshape(n, 4, c, h, w).transpose(1, 2).reshape(n, 4 * c, h, w)
        return F.conv_transpose2d(out, self.haar_weights, stride=2, groups=c)


class InvBlockExp(nn.Module):
    """Affine coupling: x1 += F(x2); x2 = x2 * exp(s(x1)) + G(x1), s = c * (2 sigmoid(H) - 1)."""

    def __init__(self, channels: int, split: int, width: int, clamp: float = 1.0):
        super().__init__()
        self.split1, self.split2, self.clamp = split, channels - split, clamp
        self.F = DenseBlock(self.split2, self.split1, width)
        self.G = DenseBlock(self.split1, self.split2, width)
        self.H = DenseBlock(self.split1, self.split2, width)

    def _log_scale(self, x1):
        return self.clamp * (torch.sigmoid(self.H(x1)) * 2 - 1)

    def forward(self, x, rev: bool = False):
        x1, x2 = x[:, : self.split1], x[:, self.split1:]
        if not rev:
            y1 = x1 + self.F(x2)
            y2 = x2 * torch.exp(self._log_scale(y1)) + self.G(y1)
        else:
            y2 = (x2 - self.G(x1)) / torch.exp(self._log_scale(x1))
            y1 = x1 - self.F(y2)
        return torch.cat((y1, y2), 1)


class IRN(RescalingModel):
    """Invertible rescaler; ``blocks`` coupling blocks of ``width`` after each Haar level."""

    def __init__(self, scale: int, blocks: int = 8, width: int = 32, z_mode: str = "zero",
                 z_seed: int = 0):
        super().__init__(scale)
        if z_mode not in ("zero", "sample"):
            raise ValueError(f"z_mode must be 'zero' or 'sample', got {z_mode!r}")
        self.z_mode, self.z_seed = z_mode, z_seed
        self.config = dict(blocks=blocks, width=width, z_mode=z_mode)
        ops, channels = [], 3
        for _ in range(int(math.log2(scale))):
            ops.append(HaarDownsampling(channels))
            channels *= 4
            ops.extend(InvBlockExp(channels, 3, width) for _ in range(blocks))
        self.operations = nn.ModuleList(ops)

    def _run(self, t, rev: bool):
        for op in (reversed(self.operations) if rev else self.operations):
            t = op(t, rev)
        return t

    def encode(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """HR -> (LR [N, 3, h, w], latent z [N, 3*(scale^2-1), h, w])."""
        out = self._run(y, rev=False)
        return out[:, :3], out[:, 3:]

    def decode(self, x: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
        """(LR, z) -> HR; ``z=None`` uses the model's ``z_mode``."""
        if z is None:
            shape = (x.shape[0], 3 * (self.scale ** 2 - 1), *x.shape[2:])
            if self.z_mode == "zero":
                z = x.new_zeros(shape)
            else:
                gen = torch.Generator(device=x.device).manual_seed(self.z_seed)
                z = torch.randn(shape, generator=gen, device=x.device, dtype=x.dtype)
        return self._run(torch.cat((x, z), 1), rev=True)

    def _down(self, y):
        return self.encode(y)[0]

    def _up(self, x):
        return self.decode(x)

    @classmethod
    def from_official(cls, path: str | Path, scale: int) -> "IRN":
        """Load a checkpoint of the official IRN release (8 blocks of width 32, z ~ N(0, 1))."""
        state = torch.load(path, map_location="cpu", weights_only=True)
        if isinstance(state, dict) and "state_dict" in state:
            state = state["state_dict"]
        state = {k.removeprefix("module."): v for k, v in state.items()}
        model = cls(scale, blocks=8, width=32, z_mode="sample")
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as err:
            raise ValueError(f"{path} is not an official IRN x{scale} checkpoint: {err}") from err
        return model.freeze()
