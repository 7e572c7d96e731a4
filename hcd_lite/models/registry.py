"""The one registry of backbones: names, display labels, configurations, checksum-verified loading.

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

from dataclasses import dataclass

from .base import RescalingModel
from .bicubic import Bicubic
from .convnets import BicubicSR, EncoderDecoder
from .hcflow import HCFlow
from .irn import IRN


@dataclass(frozen=True)
class Entry:
    """One backbone: its display ``label``, its class, its configuration per scale (the
    compact ones we train, sized to run HCD on a laptop CPU) and whether weights ship."""

    label: str
    cls: type
    configs: dict
    ships_weights: bool = True


#: Every backbone by name; its ``label``, class, configuration per scale and weights.
REGISTRY = {
    "bicubic": Entry("Bicubic & Bicubic", Bicubic, {2: {}, 4: {}}, ships_weights=False),
    "bicubic_sr": Entry("Bicubic & SR net", BicubicSR,
                        {2: dict(width=48, blocks=6), 4: dict(width=48, blocks=6)}),
    "encoder_decoder": Entry("Encoder-decoder", EncoderDecoder,
                             {2: dict(width=48, blocks=4), 4: dict(width=48, blocks=4)}),
    "irn": Entry("IRN-lite", IRN, {2: dict(blocks=3, width=16, z_mode="zero"),
                                   4: dict(blocks=3, width=16, z_mode="zero")}),
    # Sized to about IRN-lite's parameter count at each scale (186k / 580k).
    "hcflow": Entry("HCFlow-lite", HCFlow,
                    {2: dict(steps=2, width=16, cond_width=32, cond_blocks=3),
                     4: dict(steps=3, width=16, cond_width=32, cond_blocks=3)}),
    # IRN trained and used with z ~ N(0, 1), as published. No weights ship for it: chapter 9
    # trains it next to the zero-latent IRN to compare the two latent modes.
    "irn_sampled_z": Entry("IRN-lite (sampled z)", IRN,
                           {2: dict(blocks=3, width=16, z_mode="sample")}, ships_weights=False),
}

#: The backbones the book and the quality benchmark compare, weakest family first.
BACKBONES = ("bicubic", "bicubic_sr", "encoder_decoder", "irn", "hcflow")
#: ``(name, scale)`` of every model ``python -m hcd_lite.train`` can train.
TRAINABLE = tuple((name, scale) for name, e in REGISTRY.items() if e.cls is not Bicubic
                  for scale in e.configs)


def label(name: str) -> str:
    """The display label of a backbone, e.g. ``"IRN-lite"``."""
    return _entry(name).label


def _entry(name: str) -> Entry:
    if name not in REGISTRY:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(REGISTRY)}")
    return REGISTRY[name]


def weights_dir() -> Path:
    """Folder of the shipped weights (``$HCD_LITE_WEIGHTS`` or the repo's ``data/weights``)."""
    default = Path(__file__).resolve().parents[2] / "data" / "weights"
    return Path(os.environ.get("HCD_LITE_WEIGHTS", default))


def _config(name: str, scale: int) -> dict:
    """The registered configuration of ``name`` at ``scale`` (a clear error if there is none)."""
    entry = _entry(name)
    if scale not in entry.configs:
        raise ValueError(f"no {name!r} model at scale {scale}; scales: {sorted(entry.configs)}")
    return entry.configs[scale]


def build_model(name: str, scale: int, **config) -> RescalingModel:
    """An untrained model; ``config`` overrides the registered configuration."""
    return _entry(name).cls(scale, **{**_config(name, scale), **config})


def sha256(path: Path) -> str:
    """Hex sha256 of a file."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def load_manifest(name: str, scale: int) -> dict:
    """The training manifest of a shipped model (raises a clear error if it is missing)."""
    _config(name, scale)
    path = weights_dir() / f"{name}_x{scale}.json"
    if not path.exists():
        raise FileNotFoundError(
            f"no weights manifest {path}; train the model with "
            f"`python -m hcd_lite.train --model {name} --scale {scale}` or set HCD_LITE_WEIGHTS")
    try:
        manifest = json.loads(path.read_text())
    except ValueError as err:
        raise ValueError(f"weights manifest {path} is not valid JSON ({err}); restore it with "
                         "git or retrain the model") from None
    missing = [k for k in ("config", "sha256")
               if not isinstance(manifest, dict) or k not in manifest]
    if missing:
        raise ValueError(f"weights manifest {path} lacks {', '.join(missing)}; restore it with "
                         "git or retrain the model")
    return manifest


def training_stages(manifest: dict) -> list[dict]:
    """The training runs behind a manifest, first to last (more than one after ``--init``).

    Runs recorded before ``--loss`` existed used the L1 reconstruction loss."""
    return [{"loss": "l1", **st} for st in manifest.get("stages") or [manifest]]


def verified_weights(path: Path, manifest: dict) -> dict:
    """The state dict in ``path`` (loaded ``weights_only``) after checking its manifest's sha256."""
    if not path.exists():
        raise FileNotFoundError(f"weights file {path} is missing; re-clone the repository or "
                                f"retrain with: "
                                f"{manifest.get('command', 'python -m hcd_lite.train')}")
    digest = sha256(path)
    if digest != manifest["sha256"]:
        raise ValueError(f"checksum mismatch for {path}: expected sha256 {manifest['sha256']}, "
                         f"got {digest}; the file is corrupted or was replaced "
                         "(restore it with git)")
    return torch.load(path, map_location="cpu", weights_only=True)


def load_pretrained(name: str, scale: int) -> RescalingModel:
    """A shipped backbone, frozen and in eval mode, after checking its sha256.

    ``name`` is ``"irn"``, ``"hcflow"``, ``"encoder_decoder"`` or ``"bicubic_sr"`` (scale 2 or 4).
    ``"irn_sampled_z"`` (IRN with a random latent) loads only after you train it yourself
    (``python -m hcd_lite.train --model irn_sampled_z --scale 2``).
    """
    if _entry(name).cls is Bicubic:
        raise ValueError("Bicubic has no weights; use hcd_lite.Bicubic(scale) or "
                         "load_backbone('bicubic', scale)")
    manifest = load_manifest(name, scale)
    model = build_model(name, scale, **manifest["config"])
    model.load_state_dict(verified_weights(weights_dir() / f"{name}_x{scale}.pt", manifest))
    return model.freeze()


def load_backbone(name: str, scale: int) -> RescalingModel:
    """Any registered backbone, ready to use: ``"bicubic"`` (no weights) or shipped weights."""
    return Bicubic(scale) if _entry(name).cls is Bicubic else load_pretrained(name, scale)
