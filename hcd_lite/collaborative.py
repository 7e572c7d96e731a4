"""Collaborative (and adversarial) examples for image rescaling, and HCD.

One projected-gradient loop (:func:`_pgd`, the PGD shape of Madry et al.) optimises
a perturbation ``delta`` of a base image ``v`` with the rescaling model frozen:

* ``"lr"`` stage, Eq. (1) of the HCD paper: ``v = x`` (the LR image), loss of ``up(x + delta)``;
* ``"hr"`` stage, Eq. (2): ``v = y`` (the HR image), loss of ``up(down(y + delta))``;

always against the original HR ``y``. Collaborative examples descend the loss,
adversarial ones ascend it; :func:`hcd` (Algorithm 1) runs the HR stage, downscales,
then runs the LR stage. All functions take a batch ``y`` ``[N, 3, H, W]`` in [0, 1]
with ``H`` and ``W`` divisible by ``model.scale``, and treat each image on its own.

``eps`` and ``alpha`` are L2 norms of the perturbation of a WHOLE image (all channels
and pixels, values in [0, 1] units), as in L2 PGD attacks;
the per-pixel change they allow therefore shrinks as the image grows (RMS per value
``eps / sqrt(3 H W)``). With ``norm="linf"`` they are per-value bounds instead.

Step lengths: ``schedule="constant"`` (the paper's; the default) steps ``alpha`` every
time; ``"geometric"`` steps ``alpha * 2 ** -(t - 1)`` at step ``t``. :data:`FAST` is a
measured preset (``python -m hcd_lite.bench --sections speed``): 2 + 4 geometric steps from
zero starting at ``alpha = eps``, without the per-step PSNR record; with the shipped
IRN x4 on the held-out 256x256 crops it is 5x faster than the default 15 + 15 (3.64 vs
18.39 CPU seconds per image, one thread) for the same mean PSNR gain (+0.563 dB); see
``benchmarks/RESULTS.md``.
"""
from __future__ import annotations

import contextlib
import numbers
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from .images import round_to_8bit
from .metrics import psnr as _psnr, ssim as _ssim
from .models.base import check_batch, check_divisible

NORMS = ("l2", "linf")
LOSSES = ("mse", "l1")
SCHEDULES = ("constant", "geometric")

#: Fast preset for :func:`hcd`: ``hcd(y, model, **FAST)``. ``alpha`` equals the default
#: ``eps`` (the first step reaches the boundary of the ball): scale it with ``eps``.
FAST = dict(steps_hr=2, steps_lr=4, alpha=0.3, schedule="geometric", random_start=False,
            record_psnr=False)


@dataclass
class CollaborativeResult:
    """Output of every entry point; all tensors are detached.

    ``lr``: the LR image a user stores ``[N, 3, H/s, W/s]`` in [0, 1] (on the 1/255 grid
    when ``quantize``); ``sr = model.up(lr)`` ``[N, 3, H, W]`` (not clamped);
    ``delta_hr`` ``[N, 3, H, W]`` / ``delta_lr`` ``[N, 3, H/s, W/s]``: the perturbations
    (``None`` where that stage did not run; ``delta_lr`` is relative to the rounded LR);
    ``history``: one dict per step ``{"stage", "step", "loss", "psnr"}`` with per-image
    lists of the loss and PSNR (dB, Y channel, crop=scale) of the iterate at which that
    step's gradient was taken (before its update; LR not rounded); the PSNRs are NaN
    when run with ``record_psnr=False``.
    """

    lr: torch.Tensor
    sr: torch.Tensor
    delta_hr: torch.Tensor | None
    delta_lr: torch.Tensor | None
    scale: int
    history: list = field(default_factory=list)

    def psnr(self, y: torch.Tensor) -> torch.Tensor:
        """Per-image PSNR (dB) of ``sr`` against the HR ``y``, Y channel, ``crop=scale``."""
        return _psnr(self.sr, y, crop=self.scale)

    def ssim(self, y: torch.Tensor) -> torch.Tensor:
        """Per-image SSIM of ``sr`` against the HR ``y``, Y channel, ``crop=scale``."""
        return _ssim(self.sr, y, crop=self.scale)


def history_curves(history: list, stage: str | None = None) -> dict:
    """Step-indexed arrays from ``result.history`` for plotting.

    Returns ``{"step": [T], "loss": [T, N], "psnr": [T, N]}``; ``step`` counts from 1
    over the selected stage (``"hr"``/``"lr"``) or over all stages in order (``None``).
    """
    rows = [h for h in history if stage is None or h["stage"] == stage]
    return {"step": np.arange(1, len(rows) + 1),
            "loss": np.array([h["loss"] for h in rows]).reshape(len(rows), -1),
            "psnr": np.array([h["psnr"] for h in rows]).reshape(len(rows), -1)}


def _per_image_norm(t: torch.Tensor) -> torch.Tensor:
    return t.flatten(1).norm(dim=1).view(-1, 1, 1, 1)


def _random_start(v: torch.Tensor, eps: float, norm: str, seed: int) -> torch.Tensor:
    """Per image, from its own generator seeded with ``seed``: a random point of the eps-ball."""
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


def _project(v: torch.Tensor, delta: torch.Tensor, eps: float, norm: str) -> torch.Tensor:
    """Project ``delta`` onto the eps-ball, then so that ``v + delta`` stays in [0, 1]."""
    if norm == "l2":
        delta = delta * (eps / _per_image_norm(delta).clamp_min(1e-12)).clamp(max=1)
    else:
        delta = delta.clamp(-eps, eps)
    return (v + delta).clamp(0, 1) - v


def pointwise_loss(diff: torch.Tensor, loss: str) -> torch.Tensor:
    """Per-value loss of ``diff = sr - y``: ``|diff|`` (``"l1"``) or ``diff ** 2`` (``"mse"``)."""
    return diff.abs() if loss == "l1" else diff ** 2


def step_length(alpha: float, schedule: str, t: int) -> float:
    """Length of step ``t`` (from 1): ``alpha`` (constant) or ``alpha / 2 ** (t - 1)``."""
    return alpha if schedule == "constant" else alpha * 0.5 ** (t - 1)


def _pgd(v, forward, y, *, stage, steps, eps, alpha, norm, direction, random_start, seed,
         loss, scale, history, bar, schedule="constant", record_psnr=True,
         grad_fn=None) -> torch.Tensor:
    """Optimise ``delta`` on ``v`` for ``steps`` steps of ``loss(forward(v + delta), y)``.

    ``direction`` +1 descends (collaborative), -1 ascends (adversarial). Returns the
    detached ``delta``; appends one record per step to ``history``. ``grad_fn(v, delta)
    -> (per-image loss, gradient, sr or None)`` replaces the one autograd pass over the
    whole image (:mod:`hcd_lite.tiling` computes it tile by tile).
    """
    delta = torch.zeros_like(v)
    if random_start and steps > 0:
        delta = _project(v, _random_start(v, eps, norm, seed), eps, norm)
    for t in range(1, int(steps) + 1):
        if grad_fn is None:
            delta.requires_grad_(True)
            sr = forward(v + delta)
            diff = sr - y
            per_image = pointwise_loss(diff, loss).flatten(1).mean(dim=1)
            (grad,) = torch.autograd.grad(per_image.sum(), delta)
        else:
            per_image, grad, sr = grad_fn(v, delta.detach())
        with torch.no_grad():
            if norm == "l2":
                grad = grad / (_per_image_norm(grad) + 1e-12)
            else:
                grad = grad.sign()
            delta = _project(v, delta - direction * step_length(alpha, schedule, t) * grad,
                             eps, norm)
        history.append({"stage": stage, "step": t, "loss": per_image.tolist(),
                        "psnr": _psnr(sr, y, crop=scale).tolist()
                        if record_psnr and sr is not None else [float("nan")] * v.shape[0]})
        if bar is not None:
            bar.update(1)
    return delta.detach()


@contextlib.contextmanager
def _progress_bar(enabled, total, desc):
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
def _frozen(model):
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


def _validate(y, model, steps, eps, alpha, norm, loss, schedule="constant"):
    if not all(hasattr(model, a) for a in ("scale", "down", "up")):
        raise TypeError(f"model must have .scale, .down(y) and .up(x) (see "
                        f"hcd_lite.RescalingModel), got {type(model).__name__}")
    check_batch(y, "HR image y")
    check_divisible(y, model.scale)
    if y.min() < 0 or y.max() > 1:
        raise ValueError(f"HR image y must have values in [0, 1], got [{y.min().item():g}, "
                         f"{y.max().item():g}]; divide 8-bit data by 255 or use load_image()")
    for stage, s in steps.items():
        if isinstance(s, bool) or not isinstance(s, numbers.Integral) or s < 0:
            raise ValueError(f"the number of {stage.upper()} steps must be an int >= 0, "
                             f"got {s!r}")
    if eps < 0 or alpha < 0:
        raise ValueError(f"eps and alpha must be >= 0, got eps={eps}, alpha={alpha}")
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")


def stage_forward(model, stage: str):
    """What a stage's perturbed image passes through: ``up(down(.))`` for ``"hr"``, ``up`` for
    ``"lr"``."""
    return (lambda v: model.up(model.down(v))) if stage == "hr" else model.up


def run_stages(y, model, stages, quantize, optimise):
    """Algorithm 1's sequence on a detached ``y``: the HR stage (when ``"hr" in stages``),
    downscale and store (rounded to 8 bits when ``quantize``, else clamped to [0, 1]), the
    LR stage (when ``"lr" in stages``), store, upscale. ``optimise(stage, v)`` returns the
    perturbation of ``v``. Returns ``(lr, sr, delta_hr, delta_lr)``."""
    store = round_to_8bit if quantize else (lambda x: x.clamp(0, 1))
    hr, delta_hr, delta_lr = y, None, None
    if "hr" in stages:
        delta_hr = optimise("hr", y)
        hr = (y + delta_hr).clamp(0, 1)
    with torch.no_grad():
        lr = store(model.down(hr))
    if "lr" in stages:
        delta_lr = optimise("lr", lr)
        lr = store(lr + delta_lr)
    with torch.no_grad():
        sr = model.up(lr)
    return lr.detach(), sr.detach(), delta_hr, delta_lr


def _run(y, model, stages, *, eps=0.0, alpha=0.0, direction=1, norm="l2",
         random_start=True, loss="mse", quantize=True, seed=0, progress=None,
         schedule="constant", record_psnr=True, grad_fns=None):
    """Run the HR stage and/or the LR stage (``stages``: ``{"hr": steps, "lr": steps}``);
    ``grad_fns``: optional ``{"hr": grad_fn, "lr": grad_fn}`` for :func:`_pgd`."""
    _validate(y, model, stages, eps, alpha, norm, loss, schedule)
    total = sum(stages.values())
    if progress is None:
        progress = total * y.numel() / 3 > 15 * 512 * 512
    history = []
    desc = "collaborative" if direction > 0 else "adversarial"
    y = y.detach()
    with _progress_bar(progress, total, desc) as bar, torch.enable_grad(), _frozen(model):
        def optimise(stage, v):
            return _pgd(v, stage_forward(model, stage), y, stage=stage, steps=stages[stage],
                        eps=eps, alpha=alpha, norm=norm, direction=direction,
                        random_start=random_start, seed=seed, loss=loss, scale=model.scale,
                        history=history, bar=bar, schedule=schedule,
                        record_psnr=record_psnr, grad_fn=(grad_fns or {}).get(stage))
        lr, sr, delta_hr, delta_lr = run_stages(y, model, stages, quantize, optimise)
    return CollaborativeResult(lr=lr, sr=sr, delta_hr=delta_hr, delta_lr=delta_lr,
                               scale=model.scale, history=history)


def collaborative_lr(y, model, steps=15, eps=0.3, alpha=20 / 255, *, norm="l2",
                     random_start=True, loss="mse", quantize=True, seed=0,
                     progress=None, schedule="constant",
                     record_psnr=True) -> CollaborativeResult:
    """Collaborative LR example, Eq. (1): descend ``loss(up(x + delta_x), y)``.

    ``x = down(y)``, rounded to 8 bits first when ``quantize`` (the stored LR is what the
    upscaler sees). ``y``: HR batch ``[N, 3, H, W]`` in [0, 1], H and W divisible by
    ``model.scale``. ``eps``: L2 radius of the perturbation of each whole image
    (per-value bound for ``norm="linf"``), ``alpha``: step length in the same units.
    ``random_start``: start at a random point of the eps-ball drawn per image from a
    generator seeded with ``seed`` (a batch gives the same result as its images one by
    one). ``loss``: ``"mse"`` or ``"l1"`` (mean per image). ``quantize``: round the final
    LR to 8 bits before ``sr = up(lr)``. ``progress``: tqdm bar (``None``: only for jobs
    with ``steps * N * H * W > 15 * 512 * 512``). ``schedule``: ``"constant"`` step
    length ``alpha`` or ``"geometric"`` (``alpha``, ``alpha/2``, ...; see :data:`FAST`).
    ``record_psnr=False`` skips the per-step PSNR of ``history`` (NaN there; it costs
    up to half the time of a cheap model such as Bicubic). The same arguments apply to
    every entry point of this module.
    """
    return _run(y, model, {"lr": steps}, eps=eps, alpha=alpha, direction=1, norm=norm,
                random_start=random_start, loss=loss, quantize=quantize, seed=seed,
                progress=progress, schedule=schedule, record_psnr=record_psnr)


def collaborative_hr(y, model, steps=15, eps=0.3, alpha=20 / 255, *, norm="l2",
                     random_start=True, loss="mse", quantize=True, seed=0,
                     progress=None, schedule="constant",
                     record_psnr=True) -> CollaborativeResult:
    """Collaborative HR example, Eq. (2): descend ``loss(up(down(y + delta_y)), y)``.

    The stored LR is ``down(y + delta_y)``; arguments as in :func:`collaborative_lr`.
    """
    return _run(y, model, {"hr": steps}, eps=eps, alpha=alpha, direction=1, norm=norm,
                random_start=random_start, loss=loss, quantize=quantize, seed=seed,
                progress=progress, schedule=schedule, record_psnr=record_psnr)


def hcd(y, model, steps_hr=15, steps_lr=15, eps=0.3, alpha=20 / 255, *, norm="l2",
        random_start=True, loss="mse", quantize=True, seed=0,
        progress=None, schedule="constant", record_psnr=True) -> CollaborativeResult:
    """Hierarchical Collaborative Downscaling (Algorithm 1).

    The HR stage for ``steps_hr`` steps, then ``x = down(y + delta_y)`` (rounded when
    ``quantize``), then the LR stage on ``x`` for ``steps_lr`` steps, both against the
    original ``y``; the same ``eps``/``alpha`` for both. Arguments as in
    :func:`collaborative_lr`.
    """
    return _run(y, model, {"hr": steps_hr, "lr": steps_lr}, eps=eps, alpha=alpha,
                direction=1, norm=norm, random_start=random_start, loss=loss,
                quantize=quantize, seed=seed, progress=progress, schedule=schedule,
                record_psnr=record_psnr)


def adversarial_lr(y, model, steps=15, eps=0.3, alpha=20 / 255, *, norm="l2",
                   random_start=True, loss="mse", quantize=True, seed=0,
                   progress=None, schedule="constant",
                   record_psnr=True) -> CollaborativeResult:
    """Adversarial LR example: :func:`collaborative_lr` with gradient ASCENT."""
    return _run(y, model, {"lr": steps}, eps=eps, alpha=alpha, direction=-1, norm=norm,
                random_start=random_start, loss=loss, quantize=quantize, seed=seed,
                progress=progress, schedule=schedule, record_psnr=record_psnr)


def adversarial_hr(y, model, steps=15, eps=0.3, alpha=20 / 255, *, norm="l2",
                   random_start=True, loss="mse", quantize=True, seed=0,
                   progress=None, schedule="constant",
                   record_psnr=True) -> CollaborativeResult:
    """Adversarial HR example: :func:`collaborative_hr` with gradient ASCENT."""
    return _run(y, model, {"hr": steps}, eps=eps, alpha=alpha, direction=-1, norm=norm,
                random_start=random_start, loss=loss, quantize=quantize, seed=seed,
                progress=progress, schedule=schedule, record_psnr=record_psnr)


def rescale(y, model, quantize=True) -> CollaborativeResult:
    """The baseline without optimisation: ``lr = down(y)`` (clamped to [0, 1], rounded to
    8 bits when ``quantize``) and ``sr = up(lr)``; deltas are ``None``, history empty."""
    return _run(y, model, {}, quantize=quantize)
