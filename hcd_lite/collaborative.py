"""Collaborative (and adversarial) examples for image rescaling, and HCD.

Every entry point optimises a perturbation with the rescaling model frozen, using the one
projected-gradient engine of :mod:`hcd_lite.pgd`, and always against the original HR ``y``:

* :func:`collaborative_lr`, Eq. (1) of the HCD paper: the LR image ``x = down(y)``;
* :func:`collaborative_hr`, Eq. (2): the HR image ``y`` before the downscaler;
* :func:`hcd`, Algorithm 1: the HR stage, downscale and store, then the LR stage;
* :func:`adversarial_lr` / :func:`adversarial_hr`: the same with gradient ascent;
* :func:`rescale`: the baseline without optimisation;
* :func:`ablation`: the paper's ablation (Table 2, with Fig. 2's adversarial example) in one call.

Settings come from an :class:`~hcd_lite.options.Options` (``options=PAPER`` by default,
:data:`~hcd_lite.options.FAST` for the measured fast preset); keyword overrides change single
fields: ``hcd(y, model, options=FAST, eps=0.1)``. All functions take a batch ``y``
``[N, 3, H, W]`` in [0, 1] with ``H`` and ``W`` divisible by ``model.scale``, and treat each
image on its own: a batch gives the result of its images one by one, up to floating-point
noise that the 8-bit rounding of the LR can turn into a grey level (a few thousandths of a dB).
"""
from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from .metrics import psnr as _psnr, ssim as _ssim
from .options import PAPER, Options
from .pgd import (check_inputs, frozen, pgd, progress_bar, run_stages, stage_forward,
                  stored_reconstruction)

__all__ = ["CollaborativeResult", "history_curves", "run", "collaborative_lr",
           "collaborative_hr", "hcd", "adversarial_lr", "adversarial_hr", "rescale",
           "ABLATION_SCHEMES", "ablation"]


@dataclass
class CollaborativeResult:
    """Output of every entry point; all tensors are detached.

    ``lr``: the LR image a user stores ``[N, 3, H/s, W/s]`` in [0, 1] (on the 1/255 grid
    when ``quantize``); ``sr = model.up(lr)`` ``[N, 3, H, W]`` (not clamped);
    ``delta_hr`` ``[N, 3, H, W]`` / ``delta_lr`` ``[N, 3, H/s, W/s]``: the perturbations
    (``None`` where that stage did not run; ``delta_lr`` is relative to the rounded LR);
    ``history``: one dict per step ``{"stage", "step", "loss", "psnr"}`` with per-image
    lists of the loss and PSNR (dB, Y channel, crop=scale) of the iterate at which that
    step's gradient was taken (before its update): in the HR stage, of the LR as it would be
    stored (clamped, rounded when ``quantize``), so the curve ends where the stored result
    starts; in the LR stage, of the LR iterate before rounding. The PSNRs are NaN when run
    with ``record_psnr=False``. ``seconds``: wall-clock time of the run (NaN for a result read
    off another run, like the HR-only scheme of :func:`ablation`).
    """

    lr: torch.Tensor
    sr: torch.Tensor
    delta_hr: torch.Tensor | None
    delta_lr: torch.Tensor | None
    scale: int
    history: list = field(default_factory=list)
    seconds: float = math.nan

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


def run(y, model, stages: dict, options: Options = PAPER, *, direction: int = 1,
        progress=None, grad_fns: dict | None = None) -> CollaborativeResult:
    """Run the HR stage and/or the LR stage in Algorithm 1's order.

    ``stages``: ``{"hr": steps, "lr": steps}`` (either may be missing; ``{}`` is the
    baseline). ``direction``: +1 collaborative, -1 adversarial. ``progress``: a tqdm bar
    (``None``: only for jobs with ``steps * N * H * W > 15 * 512 * 512``). ``grad_fns``:
    optional ``{"hr": grad_fn, "lr": grad_fn}`` for :func:`hcd_lite.pgd.pgd`.
    """
    start = time.perf_counter()
    check_inputs(y, model)
    options = options.replace(**{f"steps_{stage}": n for stage, n in stages.items()})
    total = sum(stages.values())
    if progress is None:
        progress = total * y.numel() / 3 > 15 * 512 * 512
    history = []
    desc = "collaborative" if direction > 0 else "adversarial"
    y = y.detach()
    record = stored_reconstruction(model, options.quantize)
    with progress_bar(progress, total, desc) as bar, torch.enable_grad(), frozen(model):
        def optimise(stage, v):
            return pgd(v, stage_forward(model, stage), y, options, stage=stage,
                       steps=stages[stage], scale=model.scale, direction=direction,
                       history=history, bar=bar, grad_fn=(grad_fns or {}).get(stage),
                       record=record if stage == "hr" else None)
        lr, sr, delta_hr, delta_lr = run_stages(y, model, stages, options.quantize, optimise)
    return CollaborativeResult(lr=lr, sr=sr, delta_hr=delta_hr, delta_lr=delta_lr,
                               scale=model.scale, history=history,
                               seconds=time.perf_counter() - start)


def _single(stage, y, model, steps, options, direction, progress, overrides):
    o = options.replace(**overrides)
    n = getattr(o, f"steps_{stage}") if steps is None else steps
    return run(y, model, {stage: n}, o, direction=direction, progress=progress)


def collaborative_lr(y, model, steps=None, *, options: Options = PAPER, progress=None,
                     **overrides) -> CollaborativeResult:
    """Collaborative LR example, Eq. (1): descend ``loss(up(x + delta_x), y)``.

    ``x = down(y)``, stored first (rounded to 8 bits when ``options.quantize``: the stored LR
    is what the upscaler sees). ``steps`` defaults to ``options.steps_lr``; ``overrides``
    change fields of ``options`` (``eps=0.1``); ``progress`` as in :func:`run`.
    """
    return _single("lr", y, model, steps, options, 1, progress, overrides)


def collaborative_hr(y, model, steps=None, *, options: Options = PAPER, progress=None,
                     **overrides) -> CollaborativeResult:
    """Collaborative HR example, Eq. (2): descend ``loss(up(down(y + delta_y)), y)``.

    The stored LR is ``down(y + delta_y)``; ``steps`` defaults to ``options.steps_hr``;
    other arguments as in :func:`collaborative_lr`.
    """
    return _single("hr", y, model, steps, options, 1, progress, overrides)


def hcd(y, model, steps_hr=None, steps_lr=None, *, options: Options = PAPER, progress=None,
        **overrides) -> CollaborativeResult:
    """Hierarchical Collaborative Downscaling (Algorithm 1).

    The HR stage for ``steps_hr`` steps, then ``x = down(y + delta_y)`` (stored), then the LR
    stage on ``x`` for ``steps_lr`` steps, both against the original ``y`` with the same
    ``eps``/``alpha``. Step counts default to the options'; other arguments as in
    :func:`collaborative_lr`.
    """
    o = options.replace(**overrides)
    stages = {"hr": o.steps_hr if steps_hr is None else steps_hr,
              "lr": o.steps_lr if steps_lr is None else steps_lr}
    return run(y, model, stages, o, progress=progress)


def adversarial_lr(y, model, steps=None, *, options: Options = PAPER, progress=None,
                   **overrides) -> CollaborativeResult:
    """Adversarial LR example: :func:`collaborative_lr` with gradient ASCENT."""
    return _single("lr", y, model, steps, options, -1, progress, overrides)


def adversarial_hr(y, model, steps=None, *, options: Options = PAPER, progress=None,
                   **overrides) -> CollaborativeResult:
    """Adversarial HR example: :func:`collaborative_hr` with gradient ASCENT."""
    return _single("hr", y, model, steps, options, -1, progress, overrides)


def rescale(y, model, quantize=True) -> CollaborativeResult:
    """The baseline without optimisation: ``lr = down(y)`` (clamped to [0, 1], rounded to
    8 bits when ``quantize``) and ``sr = up(lr)``; deltas are ``None``, history empty."""
    return run(y, model, {}, PAPER.replace(quantize=quantize))


#: The schemes of :func:`ablation`, in the order the paper's Table 2 and Fig. 2 rank them.
ABLATION_SCHEMES = ("adversarial LR", "baseline", "HR only", "LR only", "HCD")


def ablation(y, model, options: Options = PAPER, *, adversarial: bool = True,
             hcd_result: CollaborativeResult | None = None,
             progress=None) -> dict[str, CollaborativeResult]:
    """The paper's ablation on ``y``: ``{scheme: result}`` in the order of
    :data:`ABLATION_SCHEMES` (``"adversarial LR"`` only when ``adversarial``).

    The schemes are :func:`adversarial_lr`, :func:`rescale`, the HR stage alone,
    :func:`collaborative_lr` and :func:`hcd`, all with ``options``. The HR stage alone is read
    off the HCD run: HCD's first stage is the collaborative HR example (same options, same
    random start), so downscaling and upscaling ``y + delta_hr`` gives it without a run of its
    own; its ``delta_hr`` and HR history are HCD's, its ``seconds`` NaN. ``hcd_result``: an
    ``hcd(y, model, options=options)`` already computed, reused instead of a new run.
    """
    if hcd_result is None:
        hcd_result = hcd(y, model, options=options, progress=progress)
    elif hcd_result.delta_hr is None or hcd_result.delta_hr.shape != y.shape:
        raise ValueError("hcd_result must be an hcd() run of this y (its delta_hr has shape "
                         f"{getattr(hcd_result.delta_hr, 'shape', None)}, y {tuple(y.shape)})")
    hr_only = rescale((y + hcd_result.delta_hr).clamp(0, 1), model, options.quantize)
    runs = {}
    if adversarial:
        runs["adversarial LR"] = adversarial_lr(y, model, options=options, progress=progress)
    runs["baseline"] = rescale(y, model, options.quantize)
    runs["HR only"] = dataclasses.replace(
        hr_only, delta_hr=hcd_result.delta_hr, seconds=math.nan,
        history=[h for h in hcd_result.history if h["stage"] == "hr"])
    runs["LR only"] = collaborative_lr(y, model, options=options, progress=progress)
    runs["HCD"] = hcd_result
    return runs
