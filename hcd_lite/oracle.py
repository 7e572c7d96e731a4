"""The unconstrained oracle: the best LR image a FIXED upscaler can be given.

:func:`oracle_lr` solves ``x* = argmin_x mean((up(x) - y) ** 2)`` over LR images ``x`` in
[0, 1] with no eps-ball: an upper bound on what any collaborative example (an LR or HR
perturbation of at most ``eps``) can reach with the same upscaler, up to the solver's accuracy,
the 8-bit storage and the metric (it minimises the RGB MSE; PSNR-Y weighs the channels
otherwise, so on tiny crops, where ``eps`` allows large changes, HCD can edge past it).

* Linear upscalers (:class:`hcd_lite.Bicubic`; ``linear=True``): least squares solved by
  conjugate gradients on the normal equations (CGLS) in float64, the adjoint of ``up`` taken
  by autograd, until the normal-equation residual falls below ``tol``; the solution is then
  clamped to [0, 1] (exact when no value leaves the range).
* Learned upscalers (everything else): Adam on ``x`` from ``down(y)`` with the model frozen,
  projecting onto [0, 1] after every step, for exactly ``steps`` steps.

Both are deterministic (no random start).
"""
from __future__ import annotations

import torch

from .collaborative import CollaborativeResult
from .models.bicubic import Bicubic
from .pgd import check_inputs, frozen, progress_bar, store

__all__ = ["oracle_lr"]


def _per_image(t: torch.Tensor) -> torch.Tensor:
    """Sum of squares of each image of ``[N, ...]``, shaped ``[N, 1, 1, 1]``."""
    return (t ** 2).flatten(1).sum(dim=1).view(-1, 1, 1, 1)


def _record(history: list, t: int, residual: torch.Tensor) -> None:
    history.append({"stage": "lr", "step": t,
                    "loss": residual.pow(2).flatten(1).mean(dim=1).tolist(),
                    "psnr": [float("nan")] * residual.shape[0]})


def _cgls(y, model, x, steps, tol, history, bar):
    """Least squares ``min ||up(x) - y||`` for a linear ``up``, per image (float64)."""
    base = torch.zeros_like(x, requires_grad=True)
    graph = model.up(base)

    def adjoint(v):
        return torch.autograd.grad(graph, base, v, retain_graph=True)[0]

    r = y - model.up(x)
    s = adjoint(r)
    p, gamma = s, _per_image(s)
    stop = tol ** 2 * _per_image(adjoint(y))
    for t in range(1, steps + 1):
        _record(history, t, r)
        if bar is not None:
            bar.update(1)
        if torch.all(gamma <= stop):
            break
        q = model.up(p)
        a = torch.where(gamma > stop, gamma / _per_image(q).clamp_min(1e-300), 0)
        x, r = x + a * p, r - a * q
        s = adjoint(r)
        gamma, previous = _per_image(s), gamma
        p = s + gamma / previous.clamp_min(1e-300) * p
    return x.detach()


def _adam(y, model, x, steps, lr, history, bar):
    """Projected Adam on the LR image ``x`` (each image's loss is its own mean)."""
    x = x.clone().requires_grad_(True)
    opt = torch.optim.Adam([x], lr=lr)
    for t in range(1, steps + 1):
        diff = model.up(x) - y
        _record(history, t, diff.detach())
        opt.zero_grad()
        diff.pow(2).flatten(1).mean(dim=1).sum().backward()
        opt.step()
        with torch.no_grad():
            x.clamp_(0, 1)
        if bar is not None:
            bar.update(1)
    return x.detach()


def oracle_lr(y, model, *, linear: bool | None = None, steps: int | None = None,
              lr: float = 3e-3, tol: float = 1e-10, quantize: bool = True,
              progress=None) -> CollaborativeResult:
    """The best LR image for ``model.up`` with no eps-bound (see the module docstring).

    ``y``: HR batch ``[N, 3, H, W]`` in [0, 1], H and W divisible by ``model.scale``; each
    image is solved on its own. ``linear``: solve by CGLS (``up`` must be linear and take
    float64); ``None`` picks it for :class:`hcd_lite.Bicubic` and Adam otherwise.
    ``steps``: at most that many CG iterations (default 1000; stops at relative
    normal-equation residual ``tol``) or exactly that many Adam steps (default 200) of
    learning rate ``lr`` (in [0, 1] units per value). ``quantize``: store the LR rounded to
    8 bits (else clamped to [0, 1]).
    ``progress``: a tqdm bar (``None``: for jobs over ``15 * 512 * 512`` step-pixels).

    Returns a :class:`~hcd_lite.collaborative.CollaborativeResult` with ``lr`` (stored)
    ``[N, 3, H/s, W/s]``, ``sr = up(lr)`` ``[N, 3, H, W]``, ``delta_lr = lr - stored
    down(y)``, ``delta_hr = None`` and ``history``: per step the per-image MSE of ``up(x)``
    against ``y`` at the iterate (PSNR entries NaN).
    """
    check_inputs(y, model)
    linear = isinstance(model, Bicubic) if linear is None else linear
    steps = (1000 if linear else 200) if steps is None else steps
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be an int >= 1, got {steps!r}")
    if not lr > 0 or not tol > 0:
        raise ValueError(f"lr and tol must be > 0, got lr={lr!r}, tol={tol!r}")
    if progress is None:
        progress = steps * y.numel() / 3 > 15 * 512 * 512
    y, history = y.detach(), []
    with torch.no_grad():
        start = model.down(y).clamp(0, 1)
    with progress_bar(progress, steps, "oracle") as bar, torch.enable_grad(), frozen(model):
        if linear:
            x = _cgls(y.double(), model, start.double(), steps, tol, history, bar).to(y.dtype)
        else:
            x = _adam(y, model, start, steps, lr, history, bar)
    with torch.no_grad():
        lr_img = store(x, quantize)
        sr = model.up(lr_img)
    return CollaborativeResult(lr=lr_img, sr=sr, delta_hr=None,
                               delta_lr=lr_img - store(start, quantize), scale=model.scale,
                               history=history)
