"""Reading, writing and converting images.

Every image inside ``hcd_lite`` is a float32 tensor ``[1, 3, H, W]`` (or a batch
``[N, 3, H, W]``) with values in [0, 1]. :func:`load_image` turns files, arrays and
PIL images into that form; :func:`save_image` writes a lossless 8-bit RGB PNG.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

ACCEPTED = ("a path to an image file (PNG, JPEG, TIFF, BMP, WebP, PPM...), a PIL image, "
            "a numpy array (HxW, HxWx1, HxWx3 or HxWx4; uint8, uint16 or float in [0, 1]) "
            "or a float tensor [3, H, W] / [1, 3, H, W] in [0, 1]")

# scikit-image sample photographs that ship inside the wheel (no download needed).
SAMPLE_IMAGES = ("astronaut", "brick", "camera", "cat", "cell", "chelsea", "clock", "coffee",
                 "coins", "colorwheel", "grass", "gravel", "hubble_deep_field",
                 "immunohistochemistry", "moon", "page", "retina", "rocket", "stereo_motorcycle",
                 "text")


def round_to_8bit(t: torch.Tensor) -> torch.Tensor:
    """Clamp to [0, 1] and round to the 256 levels ``k / 255`` of an 8-bit image (zero
    gradient: for storing; training uses
    :func:`hcd_lite.models.base.round_to_8bit_straight_through`)."""
    return (t.clamp(0, 1) * 255).round() / 255


def load_image(src) -> torch.Tensor:
    """Read ``src`` as a float32 tensor ``[1, 3, H, W]`` in [0, 1].

    ``src`` may be a path (PNG/JPEG/TIFF, 8-bit or 16-bit grayscale), a PIL image, a
    numpy array or a tensor. uint8 data is divided by 255 and uint16 data by 65535;
    float data must already lie in [0, 1]. Grayscale is repeated to 3 channels, an
    alpha channel is dropped (with a ``UserWarning``), palette images become RGB.
    """
    if isinstance(src, (str, Path)):
        return _from_pil(_open(Path(src)))
    if isinstance(src, Image.Image):
        return _from_pil(src)
    if isinstance(src, torch.Tensor):
        return _from_tensor(src)
    if isinstance(src, np.ndarray):
        return _from_numpy(src)
    raise TypeError(f"cannot load an image from a {type(src).__name__}; expected {ACCEPTED}")


def _open(path: Path) -> Image.Image:
    if not path.is_file():
        raise FileNotFoundError(f"no image file at {path}")
    try:
        with Image.open(path) as im:
            im.load()
            return ImageOps.exif_transpose(im)
    except (UnidentifiedImageError, OSError) as err:
        raise ValueError(f"cannot read {path} as an image ({err}); expected a PNG, JPEG, "
                         "TIFF, BMP, WebP or PPM/PGM file") from err


def _from_pil(im: Image.Image) -> torch.Tensor:
    if im.mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    elif im.mode in ("LA", "La", "PA", "RGBa"):
        im = im.convert("RGBA")
    elif im.mode == "1":
        im = im.convert("L")
    elif im.mode == "I":  # 32-bit integer mode, used by some readers for 16-bit data
        arr = np.asarray(im)
        if arr.size and (arr.min() < 0 or arr.max() > 65535):
            raise ValueError(f"32-bit integer image with values in [{arr.min()}, {arr.max()}]; "
                             "only 8-bit and 16-bit images are supported")
        return _from_numpy(arr.astype(np.uint16))
    elif im.mode not in ("L", "RGB", "RGBA", "F") and not im.mode.startswith("I;16"):
        im = im.convert("RGB")  # CMYK, YCbCr, LAB, HSV
    return _from_numpy(np.asarray(im))


def _from_tensor(t: torch.Tensor) -> torch.Tensor:
    if t.dim() == 4 and t.shape[0] == 1:
        t = t[0]
    if t.dim() != 3 or t.shape[0] != 3:
        raise ValueError(f"a tensor image must have shape [3, H, W] or [1, 3, H, W], got "
                         f"{list(t.shape)}")
    t = t.detach().cpu()
    if t.is_floating_point():
        t = t.float()
    return _from_numpy(t.permute(1, 2, 0).numpy())


def _from_numpy(arr: np.ndarray) -> torch.Tensor:
    if arr.size == 0:
        raise ValueError(f"empty image array of shape {arr.shape}")
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 3, 4):
        raise ValueError(f"image array must be HxW, HxWx1, HxWx3 or HxWx4 (channels last), "
                         f"got shape {arr.shape}")
    if arr.shape[2] == 4:
        warnings.warn("image has an alpha channel; it was dropped (RGB kept)", UserWarning,
                      stacklevel=3)
        arr = arr[:, :, :3]
    kind, size = arr.dtype.kind, arr.dtype.itemsize
    if kind == "u" and size in (1, 2):
        arr = arr.astype(np.float32) / (255.0 if size == 1 else 65535.0)
    elif kind == "f":
        arr = arr.astype(np.float32)
        if not np.isfinite(arr).all():
            raise ValueError("image array contains NaN or infinite values")
        if arr.min() < 0 or arr.max() > 1:
            raise ValueError(f"float image values must lie in [0, 1], got [{arr.min():g}, "
                             f"{arr.max():g}]; divide 8-bit data by 255 first")
    else:
        raise TypeError(f"unsupported image dtype {arr.dtype}; expected uint8, uint16 or "
                        "float in [0, 1]")
    t = torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1)
    return t.expand(3, -1, -1).unsqueeze(0).contiguous()


def to_numpy_uint8(t: torch.Tensor) -> np.ndarray:
    """One image ``[1, 3, H, W]`` or ``[3, H, W]`` in [0, 1] -> ``HxWx3`` uint8 (clamped, rounded)
    for display."""
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"expected a torch.Tensor, got {type(t).__name__}")
    if t.dim() == 4:
        if t.shape[0] != 1:
            raise ValueError(f"expected a single image, got a batch of {t.shape[0]}; "
                             "pass one image at a time, e.g. t[i]")
        t = t[0]
    if t.dim() != 3 or t.shape[0] != 3:
        raise ValueError(f"expected shape [3, H, W] or [1, 3, H, W], got {list(t.shape)}")
    if not t.is_floating_point():
        raise TypeError(f"expected a float tensor in [0, 1], got {t.dtype}")
    t = t.detach().float().cpu()
    if not torch.isfinite(t).all():
        raise ValueError("image contains NaN or infinite values")
    return (t.clamp(0, 1) * 255).round().permute(1, 2, 0).to(torch.uint8).numpy()


def save_image(t: torch.Tensor, path) -> Path:
    """Write one image ``[1, 3, H, W]`` or ``[3, H, W]`` as a lossless 8-bit RGB PNG.

    Values are clamped to [0, 1] and rounded; parent folders are created. Returns the path.
    """
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"save_image writes lossless PNG files; use a .png path, got {path}")
    arr = to_numpy_uint8(t)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr, "RGB").save(path, format="PNG")
    return path


def sample_image(name: str) -> torch.Tensor:
    """A scikit-image sample photograph (bundled, no download) as ``[1, 3, H, W]`` in [0, 1].

    ``name`` is one of :data:`SAMPLE_IMAGES`, e.g. ``'astronaut'``, ``'chelsea'``,
    ``'coffee'`` or ``'rocket'``.
    """
    if name not in SAMPLE_IMAGES:
        raise ValueError(f"unknown or not bundled sample image {name!r} (other scikit-image "
                         f"images need a download); choose one of {', '.join(SAMPLE_IMAGES)}")
    import skimage.data

    img = getattr(skimage.data, name)()
    return load_image(img[0] if isinstance(img, tuple) else img)  # stereo pair: left view
