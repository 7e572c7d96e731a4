"""hcd_lite: image rescaling and Hierarchical Collaborative Downscaling (HCD) in PyTorch."""
from importlib.metadata import PackageNotFoundError, version

from . import models
from .collaborative import (ABLATION_SCHEMES, CollaborativeResult, ablation, adversarial_hr,
                            adversarial_lr, collaborative_hr, collaborative_lr, hcd,
                            history_curves, rescale)
from .images import load_image, sample_image, save_image, to_numpy_uint8
from .metrics import psnr, rgb_to_y, ssim
from .models import *  # noqa: F401,F403  (every name in models.__all__)
from .options import FAST, PAPER, Options, budget_factor

try:  # the one source is pyproject.toml
    __version__ = version("hcd-lite")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = [
    "load_image", "save_image", "sample_image", "to_numpy_uint8",
    "psnr", "ssim", "rgb_to_y",
    "Options", "PAPER", "FAST", "budget_factor",
    "collaborative_lr", "collaborative_hr", "hcd", "adversarial_lr", "adversarial_hr",
    "rescale", "ablation", "ABLATION_SCHEMES", "CollaborativeResult", "history_curves",
    *models.__all__,
]
