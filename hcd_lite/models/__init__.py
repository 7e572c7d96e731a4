"""Rescaling backbones: all share the ``.scale`` / ``.down`` / ``.up`` interface."""
from .base import RescalingModel, crop_to_multiple
from .bicubic import Bicubic
from .convnets import BicubicSR, EncoderDecoder
from .hcflow import HCFlow
from .irn import IRN
from .pretrained import load_pretrained

__all__ = ["RescalingModel", "Bicubic", "IRN", "HCFlow", "EncoderDecoder", "BicubicSR",
           "load_pretrained", "crop_to_multiple"]
