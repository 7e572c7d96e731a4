import zlib
from contextlib import nullcontext

import numpy as np
import pytest
import torch
from PIL import Image

from hcd_lite import load_image, sample_image, save_image, to_numpy_uint8
from hcd_lite.images import EXTENSIONS, read_meta, remove_stale_temps


@pytest.fixture
def rgb8():
    return np.random.default_rng(0).integers(0, 256, (12, 16, 3), dtype=np.uint8)


def check_image(t, h, w):
    assert isinstance(t, torch.Tensor) and t.dtype == torch.float32
    assert t.shape == (1, 3, h, w)
    assert 0 <= t.min() and t.max() <= 1


@pytest.mark.parametrize("ext", ["png", "tif"])
def test_load_8bit_lossless_file(tmp_path, rgb8, ext):
    Image.fromarray(rgb8).save(tmp_path / f"a.{ext}")
    t = load_image(tmp_path / f"a.{ext}")
    check_image(t, 12, 16)
    assert torch.equal(t, torch.from_numpy(rgb8).permute(2, 0, 1)[None].float() / 255)


def test_load_jpeg_and_str_path(tmp_path):
    arr = np.full((16, 16, 3), (200, 100, 50), dtype=np.uint8)
    Image.fromarray(arr).save(tmp_path / "a.jpg", quality=95)
    t = load_image(str(tmp_path / "a.jpg"))
    check_image(t, 16, 16)
    assert torch.allclose(t[0, :, 8, 8], torch.tensor([200, 100, 50]) / 255, atol=3 / 255)


@pytest.mark.parametrize("ext", ["png", "tif"])
def test_load_16bit_grayscale(tmp_path, ext):
    arr = np.array([[0, 32768, 65535], [1000, 65535, 0]], dtype=np.uint16)
    Image.fromarray(arr).save(tmp_path / f"a.{ext}")
    t = load_image(tmp_path / f"a.{ext}")
    check_image(t, 2, 3)
    assert t[0, 0, 1, 1] == 1.0 and t[0, 0, 0, 0] == 0.0
    assert abs(t[0, 0, 0, 1].item() - 0.5) < 1e-4
    assert torch.allclose(t[0, 0], torch.from_numpy(arr / 65535.0).float())
    assert torch.equal(t[0, 0], t[0, 1]) and torch.equal(t[0, 0], t[0, 2])


def test_load_16bit_big_endian_and_32bit_int_pil_modes():
    arr = np.array([[0, 65535], [32768, 1]], dtype=np.uint16)
    big = load_image(Image.fromarray(arr.astype(">u2")))
    wide = load_image(Image.fromarray(arr.astype(np.int32)))
    assert torch.allclose(big[0, 0], torch.from_numpy(arr / 65535.0).float())
    assert torch.equal(big, wide)
    with pytest.raises(ValueError, match="16-bit"):
        load_image(Image.fromarray(np.array([[0, 70000]], dtype=np.int32)))


def test_grayscale_becomes_three_identical_channels(rgb8):
    for src in (rgb8[..., 0], rgb8[..., :1], Image.fromarray(rgb8[..., 0])):
        t = load_image(src)
        check_image(t, 12, 16)
        assert torch.equal(t[0, 0], t[0, 1]) and torch.equal(t[0, 1], t[0, 2])
        assert torch.equal(t[0, 0], torch.from_numpy(rgb8[..., 0]).float() / 255)


def test_rgba_warns_and_drops_alpha(tmp_path, rgb8):
    rgba = np.dstack([rgb8, np.zeros((12, 16), np.uint8)])
    Image.fromarray(rgba).save(tmp_path / "a.png")
    for src in (rgba, tmp_path / "a.png"):
        with pytest.warns(UserWarning, match="alpha"):
            t = load_image(src)
        assert torch.equal(t, load_image(rgb8))


def test_palette_image(rgb8):
    pal = Image.fromarray(rgb8).quantize(8)
    t = load_image(pal)
    check_image(t, 12, 16)
    assert torch.equal(t, load_image(np.asarray(pal.convert("RGB"))))
    assert len(torch.unique(t.flatten(2), dim=2)[0, 0]) <= 8


def test_numpy_pil_tensor_inputs_agree(rgb8):
    ref = load_image(rgb8)
    assert torch.equal(load_image(Image.fromarray(rgb8)), ref)
    assert torch.equal(load_image(rgb8.astype(np.float64) / 255), ref)
    assert torch.equal(load_image(ref[0]), ref)
    assert torch.equal(load_image(ref.double()), ref)
    assert torch.equal(load_image((rgb8.astype(np.uint16) * 257)), ref)


@pytest.mark.parametrize("bad, err, msg", [
    (np.zeros((4, 4), bool), TypeError, "uint8, uint16"),
    (np.zeros((4, 4), np.int64), TypeError, "uint8, uint16"),
    (np.zeros((4, 4, 2), np.uint8), ValueError, "HxWx3"),
    (np.zeros((2, 4, 4, 3), np.uint8), ValueError, "HxWx3"),
    (np.zeros((0, 4, 3), np.uint8), ValueError, "empty"),
    (np.full((4, 4, 3), 2.0), ValueError, r"\[0, 1\]"),
    (np.full((4, 4, 3), np.nan), ValueError, "NaN"),
    (torch.rand(2, 3, 4, 4), ValueError, r"\[3, H, W\]"),
    (torch.rand(1, 4, 4), ValueError, r"\[3, H, W\]"),
    ([[0, 1]], TypeError, "numpy array"),
])
def test_bad_inputs_raise(bad, err, msg):
    with pytest.raises(err, match=msg):
        load_image(bad)


def test_bad_files_raise(tmp_path):
    with pytest.raises(FileNotFoundError, match="no image file"):
        load_image(tmp_path / "missing.png")
    (tmp_path / "junk.png").write_bytes(b"not an image")
    with pytest.raises(ValueError, match=" ".join(EXTENSIONS)):
        load_image(tmp_path / "junk.png")
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(ValueError, match="empty file"):
        load_image(tmp_path / "empty.png")


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")


def test_image_above_the_decompression_bomb_limit_raises_a_clear_error(tmp_path):
    ihdr = (70_000).to_bytes(4, "big") * 2 + bytes([8, 2, 0, 0, 0])  # 4.9e9 pixels claimed
    (tmp_path / "bomb.png").write_bytes(b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr)
                                        + png_chunk(b"IEND", b""))
    with pytest.raises(ValueError, match="bomb.png.*MAX_IMAGE_PIXELS"):
        load_image(tmp_path / "bomb.png")


def write_png16(path, arr):
    """A 16-bit RGB/RGBA PNG of ``arr`` (HxWx3/4 uint16), rows with PNG's Sub filter (whose
    unfiltering depends on the 6/8 bytes per pixel); Pillow cannot write these."""
    h, w, c = arr.shape
    rows = []
    for row in arr:
        raw = np.frombuffer(row.astype(">u2").tobytes(), np.uint8).astype(int)
        left = np.concatenate([np.zeros(2 * c, int), raw[:-2 * c]])
        rows.append(b"\x01" + ((raw - left) % 256).astype(np.uint8).tobytes())
    ihdr = w.to_bytes(4, "big") + h.to_bytes(4, "big") + bytes([16, 2 if c == 3 else 6, 0, 0, 0])
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr)
                     + png_chunk(b"IDAT", zlib.compress(b"".join(rows))) + png_chunk(b"IEND", b""))


@pytest.mark.parametrize("channels", [3, 4])
def test_load_16bit_colour_png_at_full_precision(tmp_path, channels):
    arr = np.random.default_rng(0).integers(0, 65536, (5, 7, channels), dtype=np.uint16)
    write_png16(tmp_path / "a.png", arr)
    with Image.open(tmp_path / "a.png") as im:  # what Pillow alone gives: the high bytes
        assert np.array_equal(np.asarray(im), (arr >> 8).astype(np.uint8))
    with pytest.warns(UserWarning, match="alpha") if channels == 4 else nullcontext():
        t = load_image(tmp_path / "a.png")
    expected = torch.from_numpy(arr[..., :3] / 65535.0).permute(2, 0, 1)[None].float()
    assert torch.allclose(t, expected, atol=1e-7, rtol=0)
    assert not torch.allclose(t * 255, (t * 255).round())  # not on the 1/255 grid


def test_float64_input_becomes_float32(rgb8):
    for src in (rgb8 / 255.0, torch.from_numpy(rgb8 / 255.0).permute(2, 0, 1)):
        assert load_image(src).dtype == torch.float32


def test_save_load_round_trip_exact(tmp_path, rgb8):
    t = load_image(rgb8)
    path = save_image(t[0], tmp_path / "sub" / "dir" / "a.png")
    assert path.is_file()
    assert torch.equal(load_image(path), t)
    with Image.open(path) as im:
        assert im.mode == "RGB" and im.format == "PNG"


def test_save_clamps_and_rounds(tmp_path):
    t = torch.tensor([-0.5, 0.5 / 255 + 1e-4, 1.7]).view(1, 3, 1, 1)
    save_image(t, tmp_path / "a.png")
    assert np.asarray(Image.open(tmp_path / "a.png"))[0, 0].tolist() == [0, 1, 255]


def test_save_metadata_and_read_meta(tmp_path, rgb8):
    meta = {"model": "irn", "scale": 4, "source": {"sha256": "ab"}}
    save_image(load_image(rgb8), tmp_path / "a.png", meta=meta)
    assert read_meta(tmp_path / "a.png") == meta
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp file left
    Image.fromarray(rgb8).save(tmp_path / "plain.png")
    Image.fromarray(rgb8).save(tmp_path / "b.jpg")
    for path in ("plain.png", "b.jpg", "missing.png"):
        assert read_meta(tmp_path / path) is None
    for bad in ([1, 2], "x", 3):
        save_image(load_image(rgb8), tmp_path / "bad.png", meta=bad)
        with pytest.warns(UserWarning, match="not a JSON object"):
            assert read_meta(tmp_path / "bad.png") is None


def test_failed_save_keeps_the_old_file(tmp_path, rgb8, monkeypatch):
    path = save_image(load_image(rgb8), tmp_path / "a.png")
    old = path.read_bytes()

    def broken(self, fp, *args, **kwargs):
        open(fp, "wb").write(b"half a PNG")
        raise OSError("No space left on device")

    monkeypatch.setattr(Image.Image, "save", broken)
    with pytest.raises(OSError, match="No space"):
        save_image(torch.zeros(1, 3, 4, 4), path)
    assert path.read_bytes() == old and sorted(p.name for p in tmp_path.iterdir()) == ["a.png"]


def test_remove_stale_temps_removes_only_those_of_the_given_paths(tmp_path):
    names = [".a.png.k3x_9abc.part", ".a.png.short.part", ".b.png.k3x_9abc.part", ".a.png",
             "a.png.k3x_9abc.part"]
    for name in names:
        (tmp_path / name).write_text("")
    assert remove_stale_temps([tmp_path / "a.png", tmp_path / "gone" / "c.png"]) == [
        tmp_path / ".a.png.k3x_9abc.part"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names[1:])


def test_save_refuses_batch_and_non_png(tmp_path):
    with pytest.raises(ValueError, match="batch of 2"):
        save_image(torch.rand(2, 3, 4, 4), tmp_path / "a.png")
    with pytest.raises(ValueError, match=".png"):
        save_image(torch.rand(3, 4, 4), tmp_path / "a.jpg")


def test_to_numpy_uint8(rgb8):
    out = to_numpy_uint8(load_image(rgb8))
    assert out.dtype == np.uint8 and out.shape == (12, 16, 3)
    assert np.array_equal(out, rgb8)


def test_sample_image():
    t = sample_image("chelsea")
    check_image(t, 300, 451)
    gray = sample_image("camera")
    assert torch.equal(gray[0, 0], gray[0, 2])
    with pytest.raises(ValueError, match="astronaut"):
        sample_image("eagle")
