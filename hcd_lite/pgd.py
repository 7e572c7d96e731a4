"""The projected-gradient engine behind every collaborative and adversarial example.

:func:`pgd` optimises a perturbation ``delta`` of a base image ``v`` with the rescaling model
frozen (the PGD shape of Madry et al.): an optional random start in the ball, then per step a
normalised gradient step of length ``alpha`` (``direction=+1`` descends the loss:
collaborative; ``-1`` ascends it: adversarial) and a projection onto the ball of radius
``eps`` and onto images in [0, 1]. The image passes through ``forward``, which
:func:`stage_forward` picks per stage:

* ``"lr"`` stage, Eq. (1) of the HCD paper: ``v = x`` (the LR image), ``forward = up``;
* ``"hr"`` stage, Eq. (2): ``v = y`` (the HR image), ``forward = up(down(.))``;

the loss is always against the original HR ``y``. :func:`run_stages` chains the stages as
Algorithm 1 does (HR stage, downscale, store, LR stage, store, upscale). Settings come from an
:class:`hcd_lite.options.Options`; :mod:`hcd_lite.collaborative` holds the entry points and
:mod:`hcd_lite.tiling` reuses this engine with a tiled gradient (``grad_fn``).
"""
from __future__ import annotations

import contextlib
import math

import torch
from torch import nn

from .images import round_to_8bit
from .metrics import psnr
from .models.base import check_batch, check_divisible
from .options import Options


def per_image_norm(t: torch.Tensor) -> torch.Tensor:
    """L2 norm of each image of a batch ``[N, ...]``, shaped ``[N, 1, 1, 1]``."""
    return t.flatten(1).norm(dim=1).view(-1, 1, 1, 1)


def random_start(v: torch.Tensor, eps: float, norm: str, seed: int) -> torch.Tensor:
    """Per image, from its own generator seeded with ``seed``: a random point of the eps-ball
    (so a batch starts where its images would start one by one)."""
    starts = []
    for _ in range(v.shape[0]):
        g = torch.Generator().manual_seed(seed)
        if norm == "l2":
            d = torch.randn(v.shape[1:], generator=g, dtype=torch.float64)
            d = d / d.norm() * eps * torch.rand((), generator=g, dtype=torch.float64)
        else:
            d = (torch.rand(v.shape[1:], generator=g, dtype=torch.float64) * 2 - 1) * eps
        starts.append(d)
    return torch.stack(starts).to(v.device, v.dtype)


def project(v: torch.Tensor, delta: torch.Tensor, eps: float, norm: str) -> torch.Tensor:
    """Project ``delta`` onto the eps-ball, then so that ``v + delta`` stays in [0, 1]."""
    if norm == "l2":
        delta = delta * (eps / per_image_norm(delta).clamp_min(1e-12)).clamp(max=1)
    else:
        delta = delta.clamp(-eps, eps)
    return (v + delta).clamp(0, 1) - v


def pointwise_loss(diff: torch.Tensor, loss: str) -> torch.Tensor:
    """Per-value loss of ``diff = sr - y``: ``|diff|`` (``"l1"``) or ``diff ** 2`` (``"mse"``)."""
    return diff.abs() if loss == "l1" else diff ** 2


def step_length(alpha: float, schedule: str, t: int) -> float:
    """Length of step ``t`` (from 1): ``alpha`` (constant) or ``alpha / 2 ** (t - 1)``."""
    return alpha if schedule == "constant" else alpha * 0.5 ** (t - 1)


def pgd(v, forward, y, options: Options, *, stage: str, steps: int, scale: int,
        direction: int = 1, history: list | None = None, bar=None, grad_fn=None,
        record=None) -> torch.Tensor:
    """Optimise ``delta`` on ``v`` for ``steps`` steps of ``options.loss(forward(v + delta), y)``.

    Returns the detached ``delta`` (same shape as ``v``). ``direction`` +1 descends, -1
    ascends. Appends one record per step to ``history`` (``{"stage", "step", "loss",
    "psnr"}``, per-image lists; the PSNR, Y channel with ``crop=scale``, is of ``record(v +
    delta)`` when given, else of the forward output, at the iterate the step's gradient was
    taken; NaN unless ``options.record_psnr``). ``bar``: a tqdm bar advanced once per step.
    ``grad_fn(v, delta) -> (per-image loss, gradient, output or None)`` replaces the one
    autograd pass over the whole image (:mod:`hcd_lite.tiling` computes it tile by tile).
    """
    o = options
    history = [] if history is None else history
    delta = torch.zeros_like(v)
    if o.random_start and steps > 0:
        delta = project(v, random_start(v, o.eps, o.norm, o.seed), o.eps, o.norm)
    for t in range(1, int(steps) + 1):
        if grad_fn is None:
            delta.requires_grad_(True)
            sr = forward(v + delta)
            per_image = pointwise_loss(sr - y, o.loss).flatten(1).mean(dim=1)
            (grad,) = torch.autograd.grad(per_image.sum(), delta)
        else:
            per_image, grad, sr = grad_fn(v, delta.detach())
        with torch.no_grad():
            if o.record_psnr and record is not None:
                sr = record(v + delta)
            shown = (psnr(sr, y, crop=scale).tolist() if o.record_psnr and sr is not None
                     else [math.nan] * v.shape[0])
            if o.norm == "l2":
                grad = grad / (per_image_norm(grad) + 1e-12)
            else:
                grad = grad.sign()
            step = direction * step_length(o.alpha, o.schedule, t)
            delta = project(v, delta - step * grad, o.eps, o.norm)
        history.append({"stage": stage, "step": t, "loss": per_image.tolist(), "psnr": shown})
        if bar is not None:
            bar.update(1)
    return delta.detach()


@contextlib.contextmanager
def progress_bar(enabled: bool, total: int, desc: str):
    """A tqdm bar of ``total`` steps when ``enabled`` (else ``None``), closed on exit."""
    if not enabled:
        yield None
        return
    from tqdm.auto import tqdm
    bar = tqdm(total=total, desc=desc)
    try:
        yield bar
    finally:
        bar.close()


@contextlib.contextmanager
def frozen(model):
    """Disable ``requires_grad`` on the model's parameters, restoring the flags afterwards."""
    params = list(model.parameters()) if isinstance(model, nn.Module) else []
    flags = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in zip(params, flags):
            p.requires_grad_(flag)


def check_inputs(y: torch.Tensor, model) -> None:
    """Raise a clear error unless ``model`` has ``.scale``/``.down``/``.up`` and ``y`` is an
    HR batch ``[N, 3, H, W]`` in [0, 1] with H and W divisible by ``model.scale``."""
    if not all(hasattr(model, a) for a in ("scale", "down", "up")):
        raise TypeError(f"model must have .scale, .down(y) and .up(x) (see "
                        f"hcd_lite.RescalingModel), got {type(model).__name__}")
    check_batch(y, "HR image y")
    check_divisible(y, model.scale)
    params = list(model.parameters()) if isinstance(model, nn.Module) else []
    if params and y.dtype != params[0].dtype:
        raise TypeError(f"HR image y is {y.dtype} but the model's weights are {params[0].dtype}; "
                        "convert it, e.g. y.float() (load_image returns float32)")
    if not torch.isfinite(y).all():
        raise ValueError("HR image y contains NaN or infinite values")
    if y.min() < 0 or y.max() > 1:
        raise ValueError(f"HR image y must have values in [0, 1], got [{y.min().item():g}, "
                         f"{y.max().item():g}]; divide 8-bit data by 255 or use load_image()")


def stage_forward(model, stage: str):
    """What a stage's perturbed image passes through: ``up(down(.))`` for ``"hr"``, ``up`` for
    ``"lr"``."""
    return (lambda v: model.up(model.down(v))) if stage == "hr" else model.up


def store(x: torch.Tensor, quantize: bool) -> torch.Tensor:
    """The LR image as stored: rounded to 8 bits when ``quantize``, else clamped to [0, 1]."""
    return round_to_8bit(x) if quantize else x.clamp(0, 1)


def stored_reconstruction(model, quantize: bool):
    """``f(hr) = up(store(down(clamp(hr))))``: what the upscaler returns for a perturbed HR
    image once its LR is stored (the HR stage's history records the PSNR of this)."""
    return lambda hr: model.up(store(model.down(hr.clamp(0, 1)), quantize))


def run_stages(y, model, stages: dict, quantize: bool, optimise):
    """Algorithm 1's sequence on a detached ``y``: the HR stage (when ``"hr" in stages``),
    downscale and :func:`store`, the LR stage (when ``"lr" in stages``), store, upscale.
    ``optimise(stage, v)`` returns the perturbation of ``v``. Returns ``(lr, sr, delta_hr,
    delta_lr)``."""
    hr, delta_hr, delta_lr = y, None, None
    if "hr" in stages:
        delta_hr = optimise("hr", y)
        hr = (y + delta_hr).clamp(0, 1)
    with torch.no_grad():
        lr = _finite(store(model.down(hr), quantize), "model.down()")
    if "lr" in stages:
        delta_lr = optimise("lr", lr)
        lr = store(lr + delta_lr, quantize)
    with torch.no_grad():
        sr = _finite(model.up(lr), "model.up()")
    return lr.detach(), sr.detach(), delta_hr, delta_lr


def _finite(t: torch.Tensor, what: str) -> torch.Tensor:
    if not torch.isfinite(t).all():
        raise ValueError(f"{what} returned NaN or infinite values; check the model")
    return t
