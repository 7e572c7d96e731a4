import pytest
import torch
import torch.nn.functional as F

import hcd_lite
from hcd_lite import Bicubic, CollaborativeResult, collaborative_hr, collaborative_lr, hcd
from hcd_lite.oracle import oracle_lr

torch.set_num_threads(1)


def smooth(n, size, seed=0):
    """``n`` smooth images ``[n, 3, size, size]`` in [0.2, 0.8]: bilinear blow-ups of 3x3 noise."""
    g = torch.Generator().manual_seed(seed)
    noise = torch.rand(n, 3, 3, 3, generator=g, dtype=torch.float64)
    return 0.2 + 0.6 * F.interpolate(noise, size=(size, size), mode="bilinear")


@pytest.fixture(scope="module")
def crop():
    """A 48x48 crop of astronaut (face and helmet edge), [1, 3, 48, 48]."""
    return hcd_lite.sample_image("astronaut")[..., 100:148, 200:248].contiguous()


def test_cg_matches_explicit_least_squares():
    model, y = Bicubic(2), smooth(2, 8)
    basis = torch.eye(3 * 4 * 4, dtype=torch.float64).view(-1, 3, 4, 4)
    matrix = model.up(basis).flatten(1).T                      # [192, 48]: column j = up(e_j)
    exact = torch.linalg.lstsq(matrix, y.flatten(1).T).solution.T.reshape(2, 3, 4, 4)
    assert exact.min() > 0 and exact.max() < 1                 # the clamp is inactive
    r = oracle_lr(y, model, quantize=False)
    assert isinstance(r, CollaborativeResult) and r.delta_hr is None
    assert torch.allclose(r.lr, exact, atol=1e-8)
    assert len(r.history) < 100                                # CG stopped on its tolerance


def test_adam_reaches_the_least_squares_loss_on_a_linear_upscaler(crop):
    model = Bicubic(2)
    cg = oracle_lr(crop, model, quantize=False)
    adam = oracle_lr(crop, model, linear=False, quantize=False)
    assert len(adam.history) == 200
    cg_loss, adam_loss = (F.mse_loss(r.sr, crop).item() for r in (cg, adam))
    assert adam_loss == pytest.approx(cg_loss, rel=1e-3)  # Adam projects: it may edge ahead


@pytest.mark.parametrize("model", [Bicubic(2), hcd_lite.load_pretrained("irn", 2)],
                         ids=["bicubic", "irn"])
def test_oracle_beats_every_eps_bounded_result(crop, model):
    best = oracle_lr(crop, model).psnr(crop)
    for fn in (hcd_lite.rescale, collaborative_lr, collaborative_hr, hcd):
        assert torch.all(best > fn(crop, model).psnr(crop)), fn.__name__


@pytest.mark.parametrize("linear", [True, False])
def test_batch_equals_per_image_and_is_deterministic(crop, linear):
    model = Bicubic(2)
    y = torch.cat([crop, crop.flip(-1)])
    batch = oracle_lr(y, model, linear=linear, steps=20)
    for i in range(2):
        single = oracle_lr(y[i:i + 1], model, linear=linear, steps=20)
        assert torch.allclose(batch.lr[i], single.lr[0], atol=1 / 255 + 1e-6)
        assert (batch.lr[i] != single.lr[0]).float().mean() < 1e-3  # rare rounding ties
    assert torch.equal(batch.lr, oracle_lr(y, model, linear=linear, steps=20).lr)
    assert torch.equal(batch.lr, (batch.lr * 255).round() / 255)     # stored as 8 bits


def test_model_frozen_and_restored(crop):
    model = hcd_lite.load_pretrained("irn", 2)
    flags = [p.requires_grad for p in model.parameters()]
    oracle_lr(crop, model, steps=2)
    assert [p.requires_grad for p in model.parameters()] == flags


@pytest.mark.parametrize("y, kw, error", [
    (torch.rand(3, 48, 48), {}, ValueError),
    (torch.rand(1, 3, 47, 48), {}, ValueError),
    (torch.rand(1, 3, 48, 48) + 1, {}, ValueError),
    (torch.rand(1, 3, 48, 48), {"steps": 0}, ValueError),
    (torch.rand(1, 3, 48, 48), {"lr": 0.0}, ValueError),
])
def test_bad_input_raises(y, kw, error):
    with pytest.raises(error):
        oracle_lr(y, Bicubic(2), **kw)
