"""The images the project trains and evaluates on; all ship with scikit-image (no download).

Training uses the bundled images in ``TRAIN_IMAGES`` plus any PNG/JPEG placed in
``data/train/``. The three classic photographs in ``HELDOUT_IMAGES`` are never used
for training: every evaluation in the book and the benchmark runs on them.
"""
from __future__ import annotations

from pathlib import Path

import skimage.data
import torch

from .images import EXTENSIONS, load_image, sample_image
from .models.base import crop_to_multiple

REPO_DATA = Path(__file__).resolve().parents[1] / "data"

HELDOUT_IMAGES = ("astronaut", "chelsea", "coffee")
TRAIN_IMAGES = ("rocket", "immunohistochemistry", "hubble_deep_field", "retina",
                "stereo_motorcycle", "colorwheel", "camera", "brick", "grass", "gravel",
                "moon", "cell", "clock", "coins", "page", "text")


def training_images() -> list[tuple[str, torch.Tensor]]:
    """(name, [1, 3, H, W]) pairs for training: bundled samples plus ``data/train/*``."""
    pairs = [(n, sample_image(n)) for n in TRAIN_IMAGES]
    pairs.append(("stereo_motorcycle_right", load_image(skimage.data.stereo_motorcycle()[1])))
    extra = sorted(p for p in (REPO_DATA / "train").glob("*") if p.suffix.lower() in EXTENSIONS)
    pairs += [(f"data/train/{p.name}", load_image(p)) for p in extra]
    return pairs


def heldout_images(multiple: int = 4) -> dict[str, torch.Tensor]:
    """The held-out evaluation images, [1, 3, H, W], cropped to a multiple of ``multiple``."""
    out = {}
    for name in HELDOUT_IMAGES:
        out[name] = crop_to_multiple(sample_image(name), multiple)
    return out


def center_crop(y: torch.Tensor, size: int) -> torch.Tensor:
    """Central ``size`` x ``size`` crop of ``[..., H, W]`` (the book's fast stand-in)."""
    h, w = y.shape[-2:]
    if size > min(h, w):
        raise ValueError(f"crop size {size} is larger than the image ({h}x{w})")
    top, left = (h - size) // 2, (w - size) // 2
    return y[..., top: top + size, left: left + size]


class PatchSampler:
    """Random HR patches with flips and 90-degree rotations, drawn from a seeded generator."""

    def __init__(self, images: list[torch.Tensor], patch: int, seed: int = 0):
        small = [i for i, t in enumerate(images) if min(t.shape[-2:]) < patch]
        if small:
            raise ValueError(f"training images {small} are smaller than the patch size {patch}")
        self.images, self.patch = images, patch
        self.gen = torch.Generator().manual_seed(seed)

    def _randint(self, high: int) -> int:
        return int(torch.randint(high, (1,), generator=self.gen))

    def sample(self, batch: int) -> torch.Tensor:
        """A [batch, 3, patch, patch] tensor."""
        out = []
        for _ in range(batch):
            img = self.images[self._randint(len(self.images))]
            h, w = img.shape[-2:]
            top, left = self._randint(h - self.patch + 1), self._randint(w - self.patch + 1)
            p = img[0, :, top: top + self.patch, left: left + self.patch]
            if self._randint(2):
                p = p.flip(-1)
            out.append(torch.rot90(p, self._randint(4), (-2, -1)))
        return torch.stack(out)
