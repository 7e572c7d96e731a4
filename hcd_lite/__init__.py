"""hcd_lite: image rescaling and Hierarchical Collaborative Downscaling (HCD) in PyTorch."""
from . import models
from .collaborative import (CollaborativeResult, adversarial_hr, adversarial_lr,
                            collaborative_hr, collaborative_lr, hcd, history_curves, rescale)
from .images import load_image, sample_image, save_image, to_numpy_uint8
from .metrics import psnr, rgb_to_y, ssim
from .models import *  # noqa: F401,F403  (every name in models.__all__)

__version__ = "0.1.0"

__all__ = [
    "load_image", "save_image", "sample_image", "to_numpy_uint8",
    "psnr", "ssim", "rgb_to_y",
    "collaborative_lr", "collaborative_hr", "hcd", "adversarial_lr", "adversarial_hr",
    "rescale", "CollaborativeResult", "history_curves",
    *models.__all__,
]
