"""Rescaling backbones: all share the ``.scale`` / ``.down`` / ``.up`` interface, and one
registry (:mod:`hcd_lite.models.registry`) names, labels and loads them."""
from .base import RescalingModel, crop_to_multiple
from .bicubic import Bicubic
from .convnets import BicubicSR, EncoderDecoder
from .hcflow import HCFlow
from .irn import IRN
from .registry import BACKBONES, REGISTRY, label, load_backbone, load_pretrained

__all__ = ["RescalingModel", "Bicubic", "IRN", "HCFlow", "EncoderDecoder", "BicubicSR",
           "BACKBONES", "REGISTRY", "label", "load_backbone", "load_pretrained",
           "crop_to_multiple"]
