"""HCFlow-lite: a compact hierarchical conditional flow for rescaling, written from the HCFlow
paper (Liang et al., ICCV 2021) and our reading of its public description.

One level per factor 2. Each level: Haar squeeze (``C -> 4C`` channels) -> ``steps`` flow
steps (an invertible 1x1 convolution, then an affine coupling) -> split into the *kept*
stream and the *high-frequency latent* ``a``. The kept stream of the last level is the
LR image (3 channels); before that, half of the channels are kept.

The difference from IRN is the conditional hierarchy. IRN pushes its latent towards 0 and
decodes with ``z = 0``. Here each latent is predicted from the coarser images: a small CNN
(:class:`LatentPredictor`) sees the kept stream of its level (for the last level: the LR
image) plus the features of the coarser level's predictor, upsampled, and outputs the mean
of ``a``. Training pushes ``a - mean`` towards 0, so upscaling fills every latent with its
prediction (``temperature=0``, the default) or adds seeded Gaussian noise of that standard
deviation. Simplifications against the published model: unit variance (no learned scale),
no actnorm, no conditional flow steps after the split, and much smaller networks.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .base import RescalingModel
from .convnets import ResBlock
from .irn import HaarDownsampling, InvBlockExp


class InvConv1x1(nn.Module):
    """Invertible 1x1 convolution (Glow's channel mixing), initialised to the identity."""

    def __init__(self, channels: int):
        super().__init__()
        self.weight = nn.Parameter(torch.eye(channels))

    def forward(self, x, rev: bool = False):
        w = torch.linalg.inv(self.weight) if rev else self.weight
        return F.conv2d(x, w[:, :, None, None])


class FlowStep(nn.Module):
    """Channel mixing, then an affine coupling whose first ``split`` channels condition the rest."""

    def __init__(self, channels: int, split: int, width: int):
        super().__init__()
        self.mix = InvConv1x1(channels)
        self.coupling = InvBlockExp(channels, split, width)

    def forward(self, x, rev: bool = False):
        if rev:
            return self.mix(self.coupling(x, rev=True), rev=True)
        return self.coupling(self.mix(x))


class LatentPredictor(nn.Module):
    """Features and the predicted mean of a level's latent from the kept stream (and the
    coarser level's features)."""

    def __init__(self, channels_in: int, latent_channels: int, width: int, blocks: int):
        super().__init__()
        self.head = nn.Conv2d(channels_in, width, 3, padding=1)
        self.body = nn.Sequential(*[ResBlock(width) for _ in range(blocks)])
        self.mean = nn.Conv2d(width, latent_channels, 3, padding=1)
        nn.init.zeros_(self.mean.weight)  # starts by predicting 0, as IRN's z = 0
        nn.init.zeros_(self.mean.bias)

    def forward(self, kept, coarser_features=None):
        if coarser_features is not None:
            up = F.interpolate(coarser_features, scale_factor=2, mode="nearest")
            kept = torch.cat((kept, up), 1)
        features = self.body(self.head(kept))
        return features, self.mean(features)


class HCFlow(RescalingModel):
    """Hierarchical conditional flow rescaler; ``steps`` flow steps of coupling ``width`` per
    level, latent predictors of ``cond_width`` channels and ``cond_blocks`` residual blocks."""

    def __init__(self, scale: int, steps: int = 2, width: int = 16, cond_width: int = 32,
                 cond_blocks: int = 2, noise_seed: int = 0):
        super().__init__(scale)
        self.noise_seed = noise_seed
        self.config = dict(steps=steps, width=width, cond_width=cond_width,
                           cond_blocks=cond_blocks)
        levels = int(math.log2(scale))
        self.squeezes, self.flows = nn.ModuleList(), nn.ModuleList()
        self.predictors = nn.ModuleList()
        self.kept_channels, channels = [], 3
        for level in range(levels):
            last = level == levels - 1
            self.squeezes.append(HaarDownsampling(channels))
            channels *= 4
            kept = 3 if last else channels // 2
            self.flows.append(nn.Sequential(*[
                FlowStep(channels, kept if k % 2 == 0 else channels // 2, width)
                for k in range(steps)]))
            self.predictors.append(LatentPredictor(kept + (0 if last else cond_width),
                                                   channels - kept, cond_width, cond_blocks))
            self.kept_channels.append(kept)
            channels = kept

    def encode(self, y: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """HR -> (LR [N, 3, h, w], per-level residuals ``a - predicted mean``, finest first)."""
        t, kept, latents = y, [], []
        for squeeze, flow, k in zip(self.squeezes, self.flows, self.kept_channels):
            t = flow(squeeze(t))
            kept.append(t[:, :k])
            latents.append(t[:, k:])
            t = t[:, :k]
        residuals, features = [None] * len(latents), None
        for level in reversed(range(len(latents))):
            features, mean = self.predictors[level](kept[level], features)
            residuals[level] = latents[level] - mean
        return t, residuals

    def decode(self, x: torch.Tensor, residuals: list[torch.Tensor] | None = None,
               temperature: float = 0.0) -> torch.Tensor:
        """(LR, residuals) -> HR. ``residuals=None`` fills each latent with its predicted mean
        plus ``temperature`` times seeded N(0, 1) noise."""
        gen = None
        if residuals is None and temperature > 0:
            gen = torch.Generator(device=x.device).manual_seed(self.noise_seed)
        t, features = x, None
        for level in reversed(range(len(self.flows))):
            features, latent = self.predictors[level](t, features)
            if residuals is not None:
                latent = latent + residuals[level]
            elif gen is not None:
                latent = latent + temperature * torch.randn(
                    latent.shape, generator=gen, device=x.device, dtype=x.dtype)
            t = torch.cat((t, latent), 1)
            for step in reversed(self.flows[level]):
                t = step(t, rev=True)
            t = self.squeezes[level](t, rev=True)
        return t

    def _down(self, y):
        return self.encode(y)[0]

    def _up(self, x):
        return self.decode(x)
