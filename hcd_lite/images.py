"""Reading, writing and converting images: the package's one home for image files.

Every image inside ``hcd_lite`` is a float32 tensor ``[1, 3, H, W]`` (or a batch
``[N, 3, H, W]``) with values in [0, 1]. :func:`load_image` turns files (any of
:data:`EXTENSIONS`), arrays and PIL images into that form; :func:`save_image` writes a lossless
8-bit RGB PNG atomically (:func:`atomic_write`), optionally with JSON metadata that
:func:`read_meta` reads back.
"""
from __future__ import annotations

import json
import os
import re
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, PngImagePlugin, UnidentifiedImageError

#: File name endings :func:`load_image` is meant for (lower case), e.g. for folder listings.
EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp", ".ppm", ".pgm")
#: PNG text chunk keyword of the JSON metadata :func:`save_image` writes.
PNG_KEY = "hcd_lite"
ACCEPTED = (f"a path to an image file ({' '.join(EXTENSIONS)}), a PIL image, "
            "a numpy array (HxW, HxWx1, HxWx3 or HxWx4; uint8, uint16 or float in [0, 1]) "
            "or a float tensor [3, H, W] / [1, 3, H, W] in [0, 1]")
# raw modes of 16-bit colour PNGs, which Pillow reads as 8 bits (see _open)
_WIDE_PNG = ("RGB;16B", "RGBA;16B")
# the hidden temporary file of atomic_write: .<name>.<8 random characters>.part
_TEMP = re.compile(r"\.(?P<name>.+)\.[a-z0-9_]{8}\.part")

#: scikit-image sample photographs that ship inside the wheel (no download needed).
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

    ``src`` may be a path (any of :data:`EXTENSIONS`; 8 or 16 bits per value, 16-bit colour
    PNGs included), a PIL image, a numpy array or a tensor. uint8 data is divided by 255 and
    uint16 data by 65535; float data (float64 too) must already lie in [0, 1]; the result is
    always float32. Grayscale is repeated to 3 channels, an alpha channel is dropped (with a
    ``UserWarning``), palette images become RGB.
    """
    if isinstance(src, (str, Path)):
        im = _open(Path(src))
        return _from_numpy(im) if isinstance(im, np.ndarray) else _from_pil(im)
    if isinstance(src, Image.Image):
        return _from_pil(src)
    if isinstance(src, torch.Tensor):
        return _from_tensor(src)
    if isinstance(src, np.ndarray):
        return _from_numpy(src)
    raise TypeError(f"cannot load an image from a {type(src).__name__}; expected {ACCEPTED}")


def _open(path: Path) -> Image.Image | np.ndarray:
    """The image at ``path``, EXIF-oriented (16-bit colour PNGs as a uint16 array)."""
    if not path.is_file():
        raise FileNotFoundError(f"no image file at {path}")
    if path.stat().st_size == 0:
        raise ValueError(f"{path} is an empty file")
    try:
        with Image.open(path) as im:
            wide = im.format == "PNG" and len(im.tile) == 1 and im.tile[0].args in _WIDE_PNG
        if not wide:
            return _decode(path)
        # Pillow reads these as 8 bits: decode twice, keeping the high then the low bytes
        high, low = (np.asarray(_decode(path, end), np.uint16) for end in "BL")
        return high << 8 | low
    except Image.DecompressionBombError as err:
        raise ValueError(f"{path}: {err} Downscale it, or if you trust the file, raise "
                         "PIL.Image.MAX_IMAGE_PIXELS before reading it") from None
    except (UnidentifiedImageError, OSError) as err:
        raise ValueError(f"cannot read {path} as an image ({err}); expected one of "
                         f"{' '.join(EXTENSIONS)}") from err


def _decode(path: Path, end: str | None = None) -> Image.Image:
    """Load and EXIF-orient ``path``; ``end`` ``"B"``/``"L"`` picks the high/low byte of a
    16-bit colour PNG."""
    with Image.open(path) as im:
        if end:
            im.tile = [t._replace(args=t.args[:-1] + end) for t in im.tile]
        im.load()
        return ImageOps.exif_transpose(im)


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


def save_image(t: torch.Tensor, path, meta: dict | None = None) -> Path:
    """Write one image ``[1, 3, H, W]`` or ``[3, H, W]`` as a lossless 8-bit RGB PNG.

    Values are clamped to [0, 1] and rounded; parent folders are created; the file is
    written atomically (:func:`atomic_write`). ``meta`` (a JSON-serialisable dict) goes into
    the PNG text chunk :data:`PNG_KEY` (:func:`read_meta`). Returns the path.
    """
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"save_image writes lossless PNG files; use a .png path, got {path}")
    arr = to_numpy_uint8(t)
    info = PngImagePlugin.PngInfo()
    if meta is not None:
        info.add_text(PNG_KEY, json.dumps(meta, sort_keys=True))
    return atomic_write(path, lambda tmp: Image.fromarray(arr, "RGB").save(
        tmp, format="PNG", pnginfo=info))


def read_meta(path) -> dict | None:
    """The metadata :func:`save_image` stored in the PNG at ``path``; ``None`` when the
    file is not such a PNG (a ``UserWarning`` when the chunk is there but not a JSON
    object)."""
    try:
        with Image.open(path) as im:
            text = getattr(im, "text", {}).get(PNG_KEY)
    except (OSError, ValueError, Image.DecompressionBombError):
        return None
    if text is None:
        return None
    try:
        meta = json.loads(text)
    except ValueError:
        meta = None
    if not isinstance(meta, dict):
        warnings.warn(f"{Path(path).name}: its {PNG_KEY!r} metadata is not a JSON object; "
                      "ignored", UserWarning, stacklevel=2)
        return None
    return meta


def atomic_write(path, write) -> Path:
    """Call ``write(tmp)`` on a hidden temporary file ``.<name>.<random>.part`` next to
    ``path``, then ``os.replace`` it onto ``path``: ``path`` is either absent, the old file
    or complete. The temporary file is removed on any error, Ctrl-C included (after a
    ``kill -9``, :func:`remove_stale_temps` removes it)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    os.close(fd)
    try:
        write(Path(tmp))
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)  # mkstemp creates 0600; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def remove_stale_temps(paths) -> list[Path]:
    """Delete the temporary files :func:`atomic_write` left for ``paths`` (a killed run);
    returns them. Other files, other runs' temporary files included, are left alone."""
    targets = {Path(p) for p in paths}
    removed = []
    for folder in {p.parent for p in targets if p.parent.is_dir()}:
        for f in folder.iterdir():
            m = _TEMP.fullmatch(f.name)
            if m and folder / m["name"] in targets and f.is_file():
                f.unlink()
                removed.append(f)
    return removed


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
