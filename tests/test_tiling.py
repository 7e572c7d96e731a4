"""Tiled collaborative downscaling: tile layout, gradients, blending, budget, and equality
with untiled runs, in both modes."""
import math

import pytest
import torch

from hcd_lite import Bicubic, collaborative_hr, collaborative_lr, hcd, rescale, sample_image
from hcd_lite.tiling import (AUTO_TILE, TiledResult, _project_whole, _tiled_grad,
                             blend_weights, core_parts, global_boxes, resolve_tile, tile_boxes,
                             tile_starts, tiled)

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def y128():
    return sample_image("astronaut")[..., 80:208, 160:288].contiguous()


@pytest.mark.parametrize("size, tile, overlap, scale", [
    (128, 64, 16, 4), (128, 64, 0, 2), (100, 32, 8, 4), (1356, 512, 32, 4),
    (2040, 512, 32, 4), (96, 96, 8, 4), (40, 64, 16, 4), (130, 48, 46, 2)])
def test_tile_starts_cover_and_overlap(size, tile, overlap, scale):
    starts = tile_starts(size, tile, overlap, scale)
    length = min(tile, size)
    assert starts[0] == 0 and starts[-1] + length == size
    assert all(s % scale == 0 for s in starts)
    assert all(b > a for a, b in zip(starts, starts[1:]))
    assert all(a + length - b >= overlap for a, b in zip(starts, starts[1:]))
    covered = torch.zeros(size, dtype=torch.bool)
    for s in starts:
        covered[s:s + length] = True
    assert covered.all()
    # the fewest tiles that keep the overlap
    assert len(starts) == (1 if tile >= size else math.ceil((size - overlap) / (tile - overlap)))


def test_blend_weights_are_a_partition_of_unity():
    boxes = tile_boxes(100, 72, 32, 8, 4)
    assert len({(b[2], b[3]) for b in boxes}) == 1  # all tiles have the same size
    weights = blend_weights(boxes, 100, 72)
    total = torch.zeros(100, 72, dtype=torch.float64)
    for (t, left, h, w), m in zip(boxes, weights):
        assert m.shape == (h, w) and m.min() > 0 and m.max() <= 1 + 1e-12
        total[t:t + h, left:left + w] += m
    assert torch.allclose(total, torch.ones_like(total))
    # a pixel that only the first tile covers keeps weight 1; the ramp is linear
    assert weights[0][0, 0] == 1
    row = weights[0][0]
    ov = boxes[0][3] - boxes[1][1]
    ramp = row[-ov:]
    assert torch.allclose(ramp[:-1] - ramp[1:], torch.full((ov - 1,), 1 / ov, dtype=torch.float64))


@pytest.mark.parametrize("mode", ["global", "independent"])
@pytest.mark.parametrize("method, fn", [("baseline", rescale), ("lr", collaborative_lr),
                                        ("hr", collaborative_hr), ("hcd", hcd)])
def test_one_tile_equals_untiled(method, fn, mode):
    y = sample_image("astronaut")[..., 100:148, 200:240].contiguous()
    model = Bicubic(2)
    ref = fn(y, model) if method == "baseline" else (
        hcd(y, model, 4, 4) if method == "hcd" else fn(y, model, 4))
    r = tiled(method, y, model, tile=64, overlap=16, steps_hr=4, steps_lr=4, mode=mode)
    assert isinstance(r, TiledResult) and r.tiles == [(0, 0, 48, 40)] and r.mode == mode
    assert r.eps_tile == 0.3 and r.tile_fraction == 1
    assert torch.equal(r.lr, ref.lr) and torch.equal(r.sr, ref.sr)
    kw = dict(steps_hr=4, steps_lr=4) if method == "hcd" else dict(steps=4)
    assert torch.equal(tiled(fn, y, model, tile=48, overlap=8, mode=mode, **kw).sr, r.sr)
    untiled = tiled(fn, y, model, tile=None, mode=mode, **kw)  # tile=None: no tiling
    assert untiled.tiles == [(0, 0, 48, 40)] and torch.equal(untiled.sr, ref.sr)


def test_global_boxes_partition_the_image():
    for height, width, tile, overlap, scale in [(128, 128, 64, 16, 4), (1356, 2040, 512, 32, 4),
                                                (100, 60, 48, 8, 2), (40, 40, 64, 16, 4)]:
        cores, windows = global_boxes(height, width, tile, overlap, scale)
        count = torch.zeros(height, width, dtype=torch.int64)
        for (t, left, h, w), (wt, wl, wh, ww) in zip(cores, windows):
            count[t:t + h, left:left + w] += 1
            assert wt <= t and wl <= left and t + h <= wt + wh and left + w <= wl + ww
            assert wt + wh <= height and wl + ww <= width  # inside the image...
            assert all(v % scale == 0 for v in (t, left, h, w, wt, wl))
            assert wt == 0 or t - wt >= overlap  # ...with the context where it has room
            assert wt + wh == height or wt + wh - t - h >= overlap
        assert torch.all(count == 1)  # the cores partition the image
        assert len({(w[2], w[3]) for w in windows}) == 1 and windows[0][2] <= tile
    assert core_parts(1356, 448, 4) == [(0, 336), (336, 340), (676, 340), (1016, 340)]


@pytest.mark.parametrize("stage", ["hr", "lr"])
def test_tiled_gradient_equals_whole_image_gradient(y128, stage):
    model, scale = Bicubic(4), 4
    gen = torch.Generator().manual_seed(0)
    if stage == "hr":
        v, forward, k = y128, (lambda t: model.up(model.down(t))), 1
    else:
        v, forward, k = model.down(y128), model.up, scale
    delta = 0.01 * torch.randn(v.shape, generator=gen)
    d = delta.clone().requires_grad_(True)
    loss = ((forward(v + d) - y128) ** 2).flatten(1).mean(1)
    (ref,) = torch.autograd.grad(loss.sum(), d)
    cores, windows = global_boxes(128, 128, 64, 16, scale)
    if stage == "lr":
        cores = [tuple(c // scale for c in b) for b in cores]
        windows = [tuple(c // scale for c in b) for b in windows]
    per_image, grad, sr = _tiled_grad(forward, y128, cores, windows, k, "mse", 3, True)(v, delta)
    assert torch.allclose(per_image, loss.detach(), rtol=1e-5)
    assert torch.allclose(grad, ref, atol=1e-6 * ref.abs().max())
    assert torch.allclose(sr, forward(v + delta), atol=1e-6)


@pytest.mark.parametrize("mode, scale", [("global", 2), ("global", 4), ("independent", 2),
                                         ("independent", 4)])
def test_tiled_psnr_close_to_untiled(y128, mode, scale):
    model = Bicubic(scale)
    base = rescale(y128, model).psnr(y128)
    ref = hcd(y128, model)
    full = ref.psnr(y128)
    r = tiled("hcd", y128, model, tile=64, overlap=16, mode=mode)
    assert len(r.tiles) == (16 if mode == "global" else 9)
    assert torch.all(full - base > 0.2)  # HCD helps...
    assert torch.all(r.psnr(y128) - base > 0.2)  # ...tiled too...
    assert torch.all((r.psnr(y128) - full).abs() < 0.05)  # ...by nearly the same amount
    if mode == "global":  # the same optimisation: the same perturbation, the same history
        assert torch.allclose(r.delta_hr, ref.delta_hr, atol=1e-4)
        assert len(r.history) == 30
        assert r.history[-1]["psnr"] == pytest.approx(ref.history[-1]["psnr"], abs=1e-3)


def test_budget_bookkeeping(y128):
    model = Bicubic(2)
    y = torch.cat([y128, y128.flip(-1)])
    g = tiled("hcd", y, model, tile=64, overlap=16, steps_hr=5, steps_lr=5, eps=0.2,
              alpha=0.1, quantize=False)
    assert g.eps_tile == 0.2 and g.alpha_tile == 0.1  # global: the whole-image budget...
    for d in (g.delta_hr, g.delta_lr):  # ...used in full (less a little [0, 1] clipping)
        norms = d.flatten(1).norm(dim=1)
        assert torch.all(norms <= 0.2 + 1e-5) and torch.all(norms > 0.199)
    r = tiled("hcd", y, model, tile=64, overlap=16, steps_hr=5, steps_lr=5, eps=0.2,
              alpha=0.1, quantize=False, mode="independent")
    frac = 64 * 64 / (128 * 128)
    assert r.tile_fraction == frac
    assert math.isclose(r.eps_tile, 0.2 * math.sqrt(frac))
    assert math.isclose(r.alpha_tile, 0.1 * math.sqrt(frac))
    for d in (r.delta_hr, r.delta_lr):
        norms = d.flatten(1).norm(dim=1)
        assert torch.all(norms <= 0.2 + 1e-5) and torch.all(norms > 0.1)
    assert r.lr.shape == (2, 3, 64, 64) and r.sr.shape == y.shape
    assert (y + r.delta_hr).min() >= -1e-6 and (y + r.delta_hr).max() <= 1 + 1e-6
    # linf: a per-value bound, the same for every tile
    r = tiled("hr", y128, model, tile=64, overlap=16, steps=3, eps=2 / 255, alpha=1 / 255,
              norm="linf", mode="independent")
    assert r.eps_tile == 2 / 255 and r.delta_hr.abs().max() <= 2 / 255 + 1e-7
    # the blended perturbation is put back on the whole-image ball when it is longer
    d = torch.ones(2, 3, 4, 4)
    out = _project_whole(d, 0.5, "l2")
    assert torch.allclose(out.flatten(1).norm(dim=1), torch.tensor([0.5, 0.5]))
    assert torch.equal(_project_whole(d * 0.01, 0.5, "l2"), d * 0.01)


@pytest.mark.parametrize("mode", ["global", "independent"])
def test_batched_tiles_equal_one_by_one(y128, mode):
    model = Bicubic(4)
    a = tiled("hcd", y128, model, tile=64, overlap=16, steps_hr=3, steps_lr=3, mode=mode)
    b = tiled("hcd", y128, model, tile=64, overlap=16, steps_hr=3, steps_lr=3, batch=4,
              mode=mode)
    assert torch.allclose(a.sr, b.sr, atol=1e-5) and torch.allclose(a.lr, b.lr, atol=1 / 255)


@pytest.mark.parametrize("mode", ["global", "independent"])
def test_progress_bar_changes_nothing_and_is_closed(y128, mode, capsys):
    model = Bicubic(4)
    a = tiled("hcd", y128, model, tile=64, overlap=16, steps_hr=2, steps_lr=2, mode=mode,
              progress=False)
    b = tiled("hcd", y128, model, tile=64, overlap=16, steps_hr=2, steps_lr=2, mode=mode,
              progress=True)
    assert torch.equal(a.lr, b.lr) and torch.equal(a.sr, b.sr)
    err = capsys.readouterr().err
    assert ("tiles" if mode == "independent" else "collaborative") in err and "100%" in err


@pytest.mark.parametrize("kw, msg", [
    (dict(tile=30), "multiple of the scale"), (dict(overlap=6), "multiple of the scale"),
    (dict(tile=32, overlap=16), "overlap < tile / 2"),
    (dict(tile=32, overlap=32, mode="independent"), "overlap < tile"), (dict(batch=0), "batch"),
    (dict(method="adversarial_lr"), "method"), (dict(mode="seams"), "mode")])
def test_bad_arguments(y128, kw, msg):
    kw = {"method": "hcd", **kw}
    with pytest.raises(ValueError, match=msg):
        tiled(kw.pop("method"), y128, Bicubic(4), **kw)


def test_resolve_tile():
    assert resolve_tile("off", 4000, 4000) is None
    assert resolve_tile("auto", 512, 512) is None
    assert resolve_tile("auto", 2040, 1356) == AUTO_TILE
    assert resolve_tile("256", 10, 10) == 256
    with pytest.raises(ValueError, match="auto"):
        resolve_tile("big", 10, 10)


def test_speed_options_of_the_optimiser(y128):
    """The options the fast path and the tiles use: step schedule, PSNR record, FAST."""
    from hcd_lite.options import FAST
    from hcd_lite.pgd import step_length

    assert [step_length(0.3, "geometric", t) for t in (1, 2, 3)] == [0.3, 0.15, 0.075]
    assert step_length(0.3, "constant", 7) == 0.3
    y = y128[..., :64, :64]
    one = collaborative_lr(y, Bicubic(2), 1, eps=10.0, alpha=0.05, random_start=False,
                           quantize=False, schedule="geometric")
    two = collaborative_lr(y, Bicubic(2), 2, eps=10.0, alpha=0.05, random_start=False,
                           quantize=False, schedule="geometric")
    assert abs(one.delta_lr.norm().item() - 0.05) < 1e-6
    assert abs((two.delta_lr - one.delta_lr).norm().item() - 0.025) < 1e-6
    r = hcd(y, Bicubic(4), 2, 2, record_psnr=False)
    assert all(math.isnan(p) for h in r.history for p in h["psnr"])
    assert torch.equal(r.sr, hcd(y, Bicubic(4), 2, 2).sr)  # the record changes nothing else
    with pytest.raises(ValueError, match="schedule"):
        hcd(y, Bicubic(4), schedule="cosine")
    model = Bicubic(4)
    base = rescale(y128, model).psnr(y128)
    paper = hcd(y128, model).psnr(y128) - base
    fast = hcd(y128, model, options=FAST).psnr(y128) - base
    assert torch.all(fast > 0.9 * paper) and len(hcd(y128, model, options=FAST).history) == 6


def test_default_overlap_gives_the_untiled_result_with_a_learned_model():
    """The default context around each core covers the receptive field of a shipped network:
    global tiling then reproduces the untiled run, which no overlap (0) does not."""
    from hcd_lite import load_pretrained
    from hcd_lite.options import FAST

    model = load_pretrained("irn", 2)
    y = sample_image("astronaut")[..., 160:288, 160:288].contiguous()
    ref = tiled("lr", y, model, tile=None, options=FAST)
    default = tiled("lr", y, model, tile=96, options=FAST)
    bare = tiled("lr", y, model, tile=96, overlap=0, options=FAST)
    assert len(default.cores) > 1
    err_default = (default.delta_lr - ref.delta_lr).abs().max().item()
    err_bare = (bare.delta_lr - ref.delta_lr).abs().max().item()
    assert err_default < 1e-4 < err_bare
    assert abs(default.psnr(y) - ref.psnr(y)).item() < 1e-3
