import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from hcd_lite import (ABLATION_SCHEMES, FAST, PAPER, Bicubic, CollaborativeResult,
                      RescalingModel, ablation, adversarial_hr, adversarial_lr, collaborative_hr,
                      collaborative_lr, hcd, history_curves, load_pretrained, psnr, rescale,
                      sample_image)

torch.set_num_threads(1)

OPTIMISERS = [collaborative_lr, collaborative_hr, hcd, adversarial_lr, adversarial_hr]


class TinyNet(RescalingModel):
    """A learnable rescaler: average-pool down, bilinear + residual conv up."""

    def __init__(self, scale=2):
        super().__init__(scale)
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 3, 3, padding=1)
        self.conv.bias.requires_grad_(False)  # mixed flags must be restored as they were

    def _down(self, y):
        return F.avg_pool2d(y, self.scale)

    def _up(self, x):
        u = F.interpolate(x, scale_factor=self.scale, mode="bilinear", align_corners=False)
        return u + 0.1 * self.conv(u)


@pytest.fixture(scope="module")
def y():
    """Two 48x48 natural crops; the second has saturated pixels to exercise clipping."""
    img = sample_image("astronaut")
    a = img[..., 100:148, 200:248]
    b = img[..., 300:348, 120:168].clone()
    b[..., :8, :] = 1.0
    b[..., -8:, :] = 0.0
    return torch.cat([a, b]).contiguous()


def run(fn, y, model, steps=5, **kw):
    if fn is hcd:
        return hcd(y, model, steps, steps, **kw)
    return fn(y, model, steps, **kw)


@pytest.mark.parametrize("fn", OPTIMISERS)
@pytest.mark.parametrize("norm, eps", [("l2", 0.2), ("linf", 2 / 255)])
def test_projection_and_range(y, fn, norm, eps):
    model = Bicubic(2)
    r = run(fn, y, model, eps=eps, alpha=0.5 if norm == "l2" else 1 / 255, norm=norm,
            quantize=False)
    assert isinstance(r, CollaborativeResult)
    if r.delta_hr is not None:
        d = r.delta_hr
        bound = d.flatten(1).norm(dim=1) if norm == "l2" else d.flatten(1).abs().amax(dim=1)
        assert torch.all(bound <= eps + 1e-6) and torch.all(bound > 0)
        assert (y + d).min() >= -1e-6 and (y + d).max() <= 1 + 1e-6
    if r.delta_lr is not None:
        d = r.delta_lr
        bound = d.flatten(1).norm(dim=1) if norm == "l2" else d.flatten(1).abs().amax(dim=1)
        assert torch.all(bound <= eps + 1e-6) and torch.all(bound > 0)
    assert r.lr.min() >= 0 and r.lr.max() <= 1
    assert r.lr.shape == (2, 3, 24, 24) and r.sr.shape == y.shape


def test_step_inside_the_ball_has_length_alpha(y):
    r = collaborative_lr(y[:1], Bicubic(2), 1, eps=10.0, alpha=0.05, random_start=False,
                         quantize=False)
    assert abs(r.delta_lr.norm().item() - 0.05) < 1e-6
    r = collaborative_lr(y[:1], Bicubic(2), 1, eps=0.1, alpha=1 / 255, norm="linf",
                         random_start=False, quantize=False)
    assert torch.allclose(r.delta_lr.abs(), torch.tensor(1 / 255))


@pytest.mark.parametrize("fn", OPTIMISERS)
@pytest.mark.parametrize("kw", [dict(eps=0.0), dict(steps=0)])
def test_no_budget_or_no_steps_equals_rescale(y, fn, kw):
    model = Bicubic(2)
    ref = rescale(y, model)
    r = run(fn, y, model, **{"steps": 4, **kw})
    assert torch.equal(r.lr, ref.lr) and torch.equal(r.sr, ref.sr)


@pytest.mark.parametrize("scale", [2, 4])
def test_collaborative_helps_adversarial_hurts(y, scale):
    model = Bicubic(scale)
    base = rescale(y, model).psnr(y)
    assert torch.all(collaborative_lr(y, model).psnr(y) > base + 0.1)
    assert torch.all(collaborative_hr(y, model).psnr(y) > base)
    assert torch.all(hcd(y, model).psnr(y) >= base)
    assert torch.all(adversarial_lr(y, model).psnr(y) < base - 0.1)
    assert torch.all(adversarial_hr(y, model).psnr(y) < base)


@pytest.mark.parametrize("scale", [2, 4])
def test_loss_decreases_and_increases(y, scale):
    model = Bicubic(scale)
    for fn, sign in [(collaborative_lr, 1), (collaborative_hr, 1), (adversarial_lr, -1),
                     (adversarial_hr, -1)]:
        h = history_curves(fn(y, model, 8, random_start=False).history)["loss"]
        assert torch.all(sign * torch.tensor(h[-1] - h[0]) < 0), fn.__name__


@pytest.mark.parametrize("fn", OPTIMISERS)
def test_batch_equals_per_image_and_seeding(y, fn):
    model = Bicubic(2)
    batch = run(fn, y, model, seed=3)
    for i in range(2):
        single = run(fn, y[i:i + 1], model, seed=3)
        assert torch.allclose(batch.lr[i], single.lr[0], atol=1e-5)
        assert torch.allclose(batch.sr[i], single.sr[0], atol=1e-5)
    again = run(fn, y, model, seed=3, quantize=False)
    assert torch.equal(again.sr, run(fn, y, model, seed=3, quantize=False).sr)
    assert not torch.equal(again.sr, run(fn, y, model, seed=4, quantize=False).sr)


def test_random_start_is_inside_the_ball(y):
    norms = [collaborative_lr(y[:1], Bicubic(2), 1, eps=0.3, alpha=0.0, seed=s,
                              quantize=False).delta_lr.norm().item() for s in range(4)]
    assert all(0 < n < 0.3 - 1e-4 for n in norms) and len(set(norms)) == 4
    d = collaborative_lr(y[:1], Bicubic(2), 1, eps=0.1, alpha=0.0, norm="linf",
                         quantize=False).delta_lr
    assert d.abs().max() <= 0.1 and d.abs().median() < 0.09 and d.std() > 0.03


def test_random_start_differs_from_zero_start(y):
    model = Bicubic(2)
    a = collaborative_lr(y, model, 1, quantize=False, random_start=False)
    b = collaborative_lr(y, model, 1, quantize=False)
    assert not torch.equal(a.lr, b.lr)


def test_model_frozen_and_restored(y):
    model = TinyNet(2).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    flags = [p.requires_grad for p in model.parameters()]
    r = hcd(y, model, 3, 3)
    assert r.psnr(y).shape == (2,)
    assert [p.requires_grad for p in model.parameters()] == flags == [True, False]
    assert all(p.grad is None for p in model.parameters())
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())
    assert model.training
    assert not r.lr.requires_grad and not r.sr.requires_grad
    assert not r.delta_hr.requires_grad and not r.delta_lr.requires_grad


def test_learned_model_improves(y):
    model = TinyNet(2)
    assert torch.all(collaborative_lr(y, model).psnr(y) > rescale(y, model).psnr(y))


def test_quantize_grid(y):
    model = Bicubic(2)
    for fn in (collaborative_lr, collaborative_hr, rescale):
        on = fn(y, model).lr
        off = fn(y, model, quantize=False).lr
        assert torch.allclose(on * 255, (on * 255).round(), atol=1e-4)
        assert not torch.allclose(off * 255, (off * 255).round(), atol=1e-4)


def test_history(y):
    model = Bicubic(2)
    r = hcd(y, model, steps_hr=3, steps_lr=4)
    assert [(h["stage"], h["step"]) for h in r.history] == [
        ("hr", 1), ("hr", 2), ("hr", 3), ("lr", 1), ("lr", 2), ("lr", 3), ("lr", 4)]
    assert all(len(h["loss"]) == 2 and len(h["psnr"]) == 2 for h in r.history)
    assert len(collaborative_lr(y, model, 6).history) == 6
    first = collaborative_lr(y, model, 1, random_start=False).history[0]["psnr"]
    assert torch.allclose(torch.tensor(first, dtype=torch.float64), rescale(y, model).psnr(y))
    curves = history_curves(r.history, stage="lr")
    assert curves["step"].tolist() == [1, 2, 3, 4] and curves["psnr"].shape == (4, 2)
    assert rescale(y, model).history == [] and rescale(y, model).delta_hr is None


def test_result_metrics(y):
    model = Bicubic(4)
    r = collaborative_lr(y, model, 2)
    assert torch.equal(r.psnr(y), psnr(r.sr, y, crop=4))
    assert torch.all((r.ssim(y) > 0) & (r.ssim(y) <= 1))


def test_works_under_no_grad_and_with_grad_input(y):
    model = Bicubic(2)
    ref = collaborative_lr(y, model, 2)
    with torch.no_grad():
        assert torch.equal(collaborative_lr(y, model, 2).sr, ref.sr)
    assert torch.equal(collaborative_lr(y.clone().requires_grad_(True), model, 2).sr, ref.sr)


def test_progress_bar(y, capsys):
    collaborative_lr(y[:1], Bicubic(2), 2, progress=True)
    assert "2/2" in capsys.readouterr().err
    collaborative_lr(y[:1], Bicubic(2), 2)
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("args, kw, err, msg", [
    (lambda y: y[0], {}, ValueError, r"unsqueeze"),
    (lambda y: y[:, :1], {}, ValueError, r"\[N, 3, H, W\]"),
    (lambda y: y[..., :47, :], {}, ValueError, "crop_to_multiple"),
    (lambda y: y * 2, {}, ValueError, r"\[0, 1\]"),
    (lambda y: y.masked_fill(y > 0.9, float("nan")), {}, ValueError, "NaN"),
    (lambda y: y, dict(eps=-0.1), ValueError, "eps"),
    (lambda y: y, dict(eps=float("nan")), ValueError, "finite"),
    (lambda y: y, dict(eps=float("inf")), ValueError, "finite"),
    (lambda y: y, dict(alpha=float("nan")), ValueError, "finite"),
    (lambda y: y, dict(epsilon=0.3), TypeError, "unknown option"),
    (lambda y: y, dict(alpha=-1.0), ValueError, "alpha"),
    (lambda y: y, dict(steps=-1), ValueError, "int >= 0"),
    (lambda y: y, dict(steps=2.5), ValueError, "int >= 0"),
    (lambda y: y, dict(norm="l1"), ValueError, "linf"),
    (lambda y: y, dict(loss="ssim"), ValueError, "mse"),
])
def test_bad_inputs(y, args, kw, err, msg):
    with pytest.raises(err, match=msg):
        collaborative_lr(args(y), Bicubic(2), **kw)


def test_bad_model(y):
    with pytest.raises(TypeError, match="scale"):
        collaborative_lr(y, object())


def test_float64_image_with_a_float32_model_is_refused_clearly(y):
    with pytest.raises(TypeError, match=r"y.float\(\)"):
        collaborative_lr(y.double(), load_pretrained("irn", 2), 1)


class NaNDown(Bicubic):
    def _down(self, y):
        return super()._down(y) * float("nan")


def test_a_model_that_returns_nan_is_named():
    y = torch.rand(1, 3, 16, 16)
    with pytest.raises(ValueError, match=r"model.down\(\) returned NaN"):
        collaborative_lr(y, NaNDown(2), 1)
    with pytest.raises(ValueError, match="NaN or infinite"):
        hcd(y, NaNDown(2), 1, 1)


def test_every_run_reports_its_wall_clock_seconds(y):
    for r in (rescale(y, Bicubic(2)), hcd(y, Bicubic(2), 1, 1)):
        assert 0 < r.seconds < 60


@pytest.mark.parametrize("scale", [2, 4])
def test_ablation_runs_the_schemes_in_the_papers_order(y, scale):
    model = load_pretrained("irn", scale)
    runs = ablation(y, model, FAST)
    assert tuple(runs) == ABLATION_SCHEMES
    p = {k: r.psnr(y) for k, r in runs.items()}
    assert torch.all(p["adversarial LR"] < p["baseline"])
    assert all(torch.all(p[k] > p["baseline"]) for k in ("HR only", "LR only", "HCD"))
    assert torch.equal(runs["baseline"].sr, rescale(y, model).sr)


def test_ablation_reads_the_hr_stage_off_the_hcd_run(y):
    """HR only equals a collaborative_hr run with the same options (and its random start)."""
    model, options = TinyNet(2), PAPER.replace(steps_hr=3, steps_lr=3)
    runs = ablation(y, model, options, adversarial=False)
    assert tuple(runs) == ("baseline", "HR only", "LR only", "HCD")
    alone = collaborative_hr(y, model, options=options)
    hr = runs["HR only"]
    assert torch.allclose(hr.delta_hr, alone.delta_hr, atol=1e-5)
    assert torch.allclose(hr.psnr(y), alone.psnr(y), atol=1e-3)
    assert hr.delta_lr is None and math.isnan(hr.seconds)
    assert [h["stage"] for h in hr.history] == ["hr"] * 3
    assert torch.equal(runs["LR only"].sr, collaborative_lr(y, model, options=options).sr)


def test_ablation_reuses_a_given_hcd_run_and_refuses_a_wrong_one(y):
    model, options = Bicubic(2), FAST
    both = hcd(y, model, options=options)
    runs = ablation(y, model, options, adversarial=False, hcd_result=both)
    assert runs["HCD"] is both
    assert torch.equal(runs["HR only"].delta_hr, both.delta_hr)
    for wrong in (collaborative_lr(y, model, options=options), hcd(y[:1], model, options=options)):
        with pytest.raises(ValueError, match="hcd_result must be an hcd"):
            ablation(y, model, options, hcd_result=wrong)
