"""Figures the chapters share: image grids, perturbation maps, convergence curves."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch

from .images import to_numpy_uint8


def perturbation_magnitude(delta: torch.Tensor) -> np.ndarray:
    """Per-pixel L2 norm over the colour channels of one perturbation ``[1, 3, H, W]`` -> HxW."""
    return delta[0].norm(dim=0).cpu().numpy()


def show_images(images: dict, cols: int | None = None, size: float = 3.0, cmap="magma",
                cbar_label: str | None = None):
    """A grid of titled panels; values are ``[1, 3, H, W]`` tensors in [0, 1] or HxW arrays
    (shown as heat maps with a colour bar labelled ``cbar_label``, e.g. the unit). Returns the
    figure."""
    cols = cols or len(images)
    rows = -(-len(images) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(size * cols, size * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, (title, img) in zip(axes.flat, images.items()):
        if isinstance(img, torch.Tensor):
            ax.imshow(to_numpy_uint8(img), interpolation="nearest")
        else:
            bar = fig.colorbar(ax.imshow(img, cmap=cmap, interpolation="nearest"), ax=ax,
                               shrink=0.8)
            if cbar_label:
                bar.set_label(cbar_label, fontsize=9)
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def plot_curves(curves: dict, xlabel: str, ylabel: str, ax=None, marker="o"):
    """Line plot of ``{label: (x, y)}``; returns the axes."""
    if ax is None:
        ax = plt.subplots(figsize=(5, 3.2))[1]
    for label, (x, y) in curves.items():
        ax.plot(x, y, marker=marker, ms=3, label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    if len(curves) > 1:
        ax.legend(fontsize=8)
    return ax
