import math

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from hcd_lite import psnr, rgb_to_y, ssim


@pytest.fixture
def pair():
    g = torch.Generator().manual_seed(0)
    a = torch.rand(2, 3, 32, 40, generator=g)
    b = (a + 0.08 * torch.randn(2, 3, 32, 40, generator=g)).clamp(0, 1)
    return a, b


def y_ref(t):
    """Independent Y (0-255) of one [3, H, W] image after 8-bit rounding, in numpy."""
    rgb = np.round(t.double().clamp(0, 1).numpy() * 255) / 255
    return 16 + 65.481 * rgb[0] + 128.553 * rgb[1] + 24.966 * rgb[2]


def test_rgb_to_y_range_and_values():
    t = torch.tensor([[0, 0, 0], [1, 1, 1], [1, 0, 0]], dtype=torch.float64).T.reshape(1, 3, 1, 3)
    y = rgb_to_y(t)
    assert y.shape == (1, 1, 1, 3)
    expected = torch.tensor([16.0, 235.0, 16 + 65.481], dtype=torch.float64)
    assert torch.allclose(y.flatten(), expected)


@pytest.mark.parametrize("crop", [0, 4])
def test_psnr_and_ssim_match_skimage_on_y(pair, crop):
    a, b = pair
    p, s = psnr(a, b, crop=crop), ssim(a, b, crop=crop)
    assert p.shape == s.shape == (2,)
    for i in range(2):
        ya, yb = y_ref(a[i]), y_ref(b[i])
        if crop:
            ya, yb = ya[crop:-crop, crop:-crop], yb[crop:-crop, crop:-crop]
        assert abs(p[i].item() - peak_signal_noise_ratio(ya, yb, data_range=255)) < 1e-4
        ref = structural_similarity(ya, yb, gaussian_weights=True, sigma=1.5,
                                    use_sample_covariance=False, data_range=255)
        assert abs(s[i].item() - ref) < 1e-4


def test_rgb_metrics_match_skimage(pair):
    a, b = pair
    qa, qb = (np.round(t[0].clamp(0, 1).numpy().transpose(1, 2, 0).astype(np.float64) * 255)
              for t in pair)
    ref_p = peak_signal_noise_ratio(qa, qb, data_range=255)
    ref_s = structural_similarity(qa, qb, gaussian_weights=True, sigma=1.5, channel_axis=2,
                                  use_sample_covariance=False, data_range=255)
    assert abs(psnr(a, b, y_channel=False)[0].item() - ref_p) < 1e-4
    assert abs(ssim(a, b, y_channel=False)[0].item() - ref_s) < 1e-4


def test_crop_ignores_border(pair):
    a, _ = pair
    b = a.clone()
    b[..., :3, :] = 1 - b[..., :3, :]
    assert psnr(a, b, crop=3).isinf().all() and torch.all(ssim(a, b, crop=3) == 1)
    assert torch.all(psnr(a, b, crop=2) < 40)


def test_quantize_flag(pair):
    a = (pair[0] * 255).round() / 255
    b = a + 0.4 / 255 * (a < 0.5)  # below half an 8-bit step
    assert psnr(a, b).isinf().all()
    assert torch.all(psnr(a, b, quantize=False) < 100)


def test_identical_is_inf_and_single_image_accepted(pair):
    a, _ = pair
    assert math.isinf(psnr(a[0], a[0]).item()) and psnr(a[0], a[0]).shape == (1,)
    assert torch.allclose(ssim(a[0], a[0]), torch.ones(1, dtype=torch.float64))


def test_known_psnr_value():
    a = torch.zeros(1, 3, 8, 8)
    b = torch.full((1, 3, 8, 8), 10 / 255)
    assert abs(psnr(a, b, y_channel=False).item() - 10 * math.log10(255 ** 2 / 100)) < 1e-9


def test_works_with_grad_and_no_grad(pair):
    a, b = pair
    a = a.clone().requires_grad_(True)
    p = psnr(a, b)
    with torch.no_grad():
        assert torch.equal(psnr(a, b), p)
    assert not p.requires_grad and not ssim(a, b).requires_grad


def test_errors(pair):
    a, b = pair
    with pytest.raises(ValueError, match="same shape"):
        psnr(a, b[..., :-1])
    with pytest.raises(ValueError, match=r"\[N, 3, H, W\]"):
        ssim(a[:, :1], b[:, :1])
    with pytest.raises(ValueError, match="crop"):
        psnr(a, b, crop=16)
    with pytest.raises(ValueError, match="11x11"):
        ssim(a, b, crop=11)
    with pytest.raises(TypeError, match="float"):
        psnr((a * 255).byte(), b)
