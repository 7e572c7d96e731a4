"""The shipped backbones: their configurations and checksum-verified loading.

Weights live in ``data/weights/<name>_x<scale>.pt`` next to a JSON manifest written by
``python -m hcd_lite.train`` (configuration, command, data, steps, wall time, validation
PSNR and the sha256 of the weight file). Set ``HCD_LITE_WEIGHTS`` to use another folder.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch

from .base import RescalingModel
from .convnets import BicubicSR, EncoderDecoder
from .hcflow import HCFlow
from .irn import IRN

MODELS = {"irn": IRN, "irn_sampled_z": IRN, "encoder_decoder": EncoderDecoder,
          "bicubic_sr": BicubicSR, "hcflow": HCFlow}

# The compact configurations we train and ship (chosen to run HCD on a laptop CPU).
SHIPPED_CONFIGS = {
    ("irn", 2): dict(blocks=3, width=16, z_mode="zero"),
    ("irn", 4): dict(blocks=3, width=16, z_mode="zero"),
    # The same IRN trained and used with z ~ N(0, 1), as published. No weights ship for it:
    # chapter 9 trains it next to the zero-latent IRN to compare the two latent modes.
    ("irn_sampled_z", 2): dict(blocks=3, width=16, z_mode="sample"),
    ("encoder_decoder", 2): dict(width=48, blocks=4),
    ("encoder_decoder", 4): dict(width=48, blocks=4),
    ("bicubic_sr", 2): dict(width=48, blocks=6),
    ("bicubic_sr", 4): dict(width=48, blocks=6),
    # Sized to about IRN-lite's parameter count at each scale (186k / 580k).
    ("hcflow", 2): dict(steps=2, width=16, cond_width=32, cond_blocks=3),
    ("hcflow", 4): dict(steps=3, width=16, cond_width=32, cond_blocks=3),
}


def weights_dir() -> Path:
    """Folder of the shipped weights (``$HCD_LITE_WEIGHTS`` or the repo's ``data/weights``)."""
    default = Path(__file__).resolve().parents[2] / "data" / "weights"
    return Path(os.environ.get("HCD_LITE_WEIGHTS", default))


def build_model(name: str, scale: int, **config) -> RescalingModel:
    """An untrained model; ``config`` overrides the shipped configuration."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(MODELS)}")
    if (name, scale) not in SHIPPED_CONFIGS:
        raise ValueError(f"no {name!r} model at scale {scale}; available: {sorted(SHIPPED_CONFIGS)}")
    return MODELS[name](scale, **{**SHIPPED_CONFIGS[(name, scale)], **config})


def sha256(path: Path) -> str:
    """Hex sha256 of a file."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def load_manifest(name: str, scale: int) -> dict:
    """The training manifest of a shipped model (raises a clear error if it is missing)."""
    path = weights_dir() / f"{name}_x{scale}.json"
    if not path.exists():
        raise FileNotFoundError(
            f"no weights manifest {path}; train the model with "
            f"`python -m hcd_lite.train --model {name} --scale {scale}` or set HCD_LITE_WEIGHTS")
    return json.loads(path.read_text())


def training_stages(manifest: dict) -> list[dict]:
    """The training runs behind a manifest, first to last (more than one after ``--init``).

    Runs recorded before ``--loss`` existed used the L1 reconstruction loss."""
    return [{"loss": "l1", **st} for st in manifest.get("stages") or [manifest]]


def verified_weights(path: Path, manifest: dict) -> dict:
    """The state dict in ``path`` (loaded ``weights_only``) after checking its manifest's sha256."""
    if not path.exists():
        raise FileNotFoundError(f"weights file {path} is missing; re-clone the repository or "
                                f"retrain with: {manifest.get('command', 'python -m hcd_lite.train')}")
    digest = sha256(path)
    if digest != manifest["sha256"]:
        raise ValueError(f"checksum mismatch for {path}: expected sha256 {manifest['sha256']}, "
                         f"got {digest}; the file is corrupted or was replaced (restore it with git)")
    return torch.load(path, map_location="cpu", weights_only=True)


def load_pretrained(name: str, scale: int) -> RescalingModel:
    """A shipped backbone, frozen and in eval mode, after checking its sha256.

    ``name`` is ``"irn"``, ``"hcflow"``, ``"encoder_decoder"`` or ``"bicubic_sr"`` (scale 2 or 4).
    ``"irn_sampled_z"`` (IRN with a random latent) loads only after you train it yourself
    (``python -m hcd_lite.train --model irn_sampled_z --scale 2``).
    """
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(MODELS)}")
    manifest = load_manifest(name, scale)
    model = build_model(name, scale, **manifest["config"])
    model.load_state_dict(verified_weights(weights_dir() / f"{name}_x{scale}.pt", manifest))
    return model.freeze()
