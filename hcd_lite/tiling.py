"""Collaborative downscaling of large images in overlapping tiles.

HCD back-propagates through the downscaler and the upscaler, so its memory grows with the
image area (IRN-lite x4 on CPU: a peak RSS of 2.4 GiB for a 512x512 image, an estimated
20 GiB for a 2040x1356 DIV2K image). :func:`tiled` bounds it by the tile size. Two modes:

``mode="global"`` (default): the optimisation stays the whole-image one and only the
gradient is computed in tiles. The image is partitioned into disjoint *cores*; each core is
processed inside a ``tile`` x ``tile`` *window* that adds ``overlap`` pixels of context on
every side (windows overlap by ``2 * overlap``; at the border the window shifts inwards so
all windows have one size and can be batched). For every step, each window runs forward
and backward through the frozen networks with the loss restricted to its core's output
pixels; the gradients of the overlapping windows are added up. The cores partition the
output, so the tile losses sum to the whole-image loss and the summed gradient is the
whole-image gradient, exact up to the networks' receptive field beyond ``overlap`` pixels
(zero for Bicubic). The normalised step and the projection onto the eps-ball stay global
(:func:`hcd_lite.pgd.pgd` with a tiled ``grad_fn``), so **eps and alpha keep
their whole-image meaning: there is no per-tile budget** and no seam (one perturbation,
no blending needed). Same steps, same history, same random start as untiled. Measured
(``python -m hcd_lite.perf --sections tiling``, IRN-lite x4, 512x512, 15 + 15 steps):
256-pixel tiles give the untiled PSNR to 0.0001 dB with a peak RSS of 0.74 GiB instead
of 2.40 GiB, for 1.8x the CPU time (9 windows of 236x236 cover 1.9x the image area);
a 2040x1356 image in 512-pixel tiles (20 windows of 404x472, 1.4x the area) peaks at
2.0 GiB (``--sections div2k``; the peak does not depend on the number of steps).

``mode="independent"``: every ``tile`` x ``tile`` tile (overlapping by at least
``overlap``, :func:`tile_boxes`) runs its own optimisation, the tiles' ``delta_hr`` are
blended with linear ramps across the overlaps (a partition of unity,
:func:`blend_weights`); then ``x = down(y + delta_hr)`` on the whole image, the LR stage
in the same tiles in LR coordinates, blended the same way. **Budget**: a tile covering
the fraction ``f = tile_area / image_area`` gets ``eps_tile = eps * sqrt(f)`` and
``alpha_tile = alpha * sqrt(f)`` (the same RMS change per value as the whole image);
blending is a convex combination per pixel, so the blended squared norm is at most
``sum_i sum_p W_i(p) delta_i(p)^2`` (about ``eps^2``) and the blend is rescaled onto the
whole-image ball if longer, so ``||delta|| <= eps`` per stage. With ``norm="linf"`` the
bound is per value and every tile keeps ``eps``. Fixed per-tile budgets cannot move the
budget to the textured regions the way the whole-image optimisation does: measured with
IRN-lite x4 on a 512x512 image in 256-pixel tiles, it loses about 0.09 dB of the gain
(``python -m hcd_lite.perf --sections tiling``; ``benchmarks/RESULTS.md``), which is why
it is not the default.

In both modes ``tile`` and ``overlap`` are HR pixels and multiples of the scale; the
whole-image ``down``/``up`` without autograd (for the stored LR and the SR) are cheap;
when the image fits in one tile the result equals the untiled one exactly.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from . import collaborative
from .collaborative import CollaborativeResult
from .options import PAPER, Options
from .pgd import (check_inputs, frozen, per_image_norm, pgd, pointwise_loss, progress_bar,
                  run_stages, stage_forward)

METHODS = ("baseline", "lr", "hr", "hcd")
MODES = ("global", "independent")
_ALIASES = {collaborative.rescale: "baseline", collaborative.collaborative_lr: "lr",
            collaborative.collaborative_hr: "hr", collaborative.hcd: "hcd"}

#: ``--tile auto`` tiles images with more pixels than this (and uses ``AUTO_TILE``).
AUTO_THRESHOLD = 512 * 512
AUTO_TILE = 512
DEFAULT_OVERLAP = 32


@dataclass
class TiledResult(CollaborativeResult):
    """A :class:`~hcd_lite.CollaborativeResult` (``lr``, ``sr``, ``delta_hr``, ``delta_lr``:
    whole-image tensors; ``history`` as untiled in ``"global"`` mode, empty in
    ``"independent"`` mode) plus the tiling: ``mode``; ``tiles``, the HR boxes
    ``(top, left, height, width)`` that went through the networks (the windows); ``cores``,
    the disjoint HR boxes whose loss each window computed (``"global"`` only);
    ``eps_tile``/``alpha_tile``, the budget and step length one tile's optimisation used
    (the whole-image ``eps``/``alpha`` in ``"global"`` mode); ``tile_fraction``, the
    fraction of the image area one tile covers."""

    mode: str = "global"
    tiles: list = field(default_factory=list)
    cores: list = field(default_factory=list)
    eps_tile: float = 0.0
    alpha_tile: float = 0.0
    tile_fraction: float = 1.0


def tile_starts(size: int, tile: int, overlap: int, scale: int = 1) -> list[int]:
    """Offsets of the tiles along one axis of length ``size``.

    One tile at 0 when ``tile >= size``; otherwise the fewest tiles of length ``tile``
    that overlap by at least ``overlap``, spread evenly from 0 to ``size - tile``, every
    offset a multiple of ``scale`` (``size``, ``tile`` and ``overlap`` must be multiples).
    """
    if tile >= size:
        return [0]
    units, t, o = size // scale, tile // scale, overlap // scale
    n = math.ceil((units - o) / (t - o))
    return [i * (units - t) // (n - 1) * scale for i in range(n)]


def tile_boxes(height: int, width: int, tile: int, overlap: int,
               scale: int = 1) -> list[tuple[int, int, int, int]]:
    """HR boxes ``(top, left, h, w)`` of the tiles, row by row; all have the same size."""
    th, tw = min(tile, height), min(tile, width)
    return [(top, left, th, tw) for top in tile_starts(height, tile, overlap, scale)
            for left in tile_starts(width, tile, overlap, scale)]


def core_parts(size: int, core: int, scale: int = 1) -> list[tuple[int, int]]:
    """``(start, length)`` of the fewest nearly equal parts of at most ``core`` pixels that
    partition ``[0, size)``; starts and lengths are multiples of ``scale``."""
    n, units = math.ceil(size / core), size // scale
    cuts = [i * units // n * scale for i in range(n + 1)]
    return [(cuts[i], cuts[i + 1] - cuts[i]) for i in range(n)]


def _window(start: int, length: int, window: int, size: int, overlap: int) -> int:
    """Start of the ``window``-long window around a core: ``overlap`` of context before it,
    shifted inwards at the borders (all windows have the same length)."""
    return min(max(start - overlap, 0), size - window)


def global_boxes(height: int, width: int, tile: int, overlap: int, scale: int = 1):
    """``(cores, windows)`` of ``mode="global"``: disjoint cores of at most
    ``tile - 2 * overlap`` pixels partitioning the image (one core across a side that
    fits in ``tile``), and for each a window containing
    it with ``overlap`` pixels of context on every side where the image allows (at most
    ``tile``, all of one size; HR boxes ``(top, left, h, w)``)."""
    core = tile - 2 * overlap
    rows, cols = [core_parts(size, core if size > tile else size, scale)
                  for size in (height, width)]  # a side that fits in a tile: one part
    # as small as the cores allow: the longest core plus the context on both sides
    wh = min(height, max(h for _, h in rows) + 2 * overlap)
    ww = min(width, max(w for _, w in cols) + 2 * overlap)
    cores, windows = [], []
    for top, h in rows:
        for left, w in cols:
            cores.append((top, left, h, w))
            windows.append((_window(top, h, wh, height, overlap),
                            _window(left, w, ww, width, overlap), wh, ww))
    return cores, windows


def _tiled_grad(forward, y, cores, windows, k, loss, batch, record):
    """A ``grad_fn`` for :func:`hcd_lite.pgd.pgd`: the gradient of the
    whole-image mean loss of ``forward(v + delta)`` against ``y``, window by window
    (``batch`` windows at a time), each contributing the loss of its core; boxes are in
    the coordinates of ``v``, ``k`` maps them to those of ``y`` (1 or the scale)."""
    numel = y[0].numel()

    def grad_fn(v, delta):
        n = v.shape[0]
        grad = torch.zeros_like(delta)
        per_image = torch.zeros(n, dtype=y.dtype, device=y.device)
        sr = torch.empty_like(y) if record else None
        for i in range(0, len(cores), batch):
            chunk = range(i, min(i + batch, len(cores)))
            d = torch.cat([delta[..., t:t + h, s:s + w] for t, s, h, w in
                           (windows[j] for j in chunk)]).requires_grad_(True)
            vin = torch.cat([v[..., t:t + h, s:s + w] for t, s, h, w in
                             (windows[j] for j in chunk)])
            out = forward(vin + d)
            total = 0
            for m, j in enumerate(chunk):
                (ct, cl, ch, cw), (wt, wl, _, _) = cores[j], windows[j]
                o = out[m * n:(m + 1) * n, :, (ct - wt) * k:(ct - wt + ch) * k,
                        (cl - wl) * k:(cl - wl + cw) * k]
                diff = o - y[..., ct * k:(ct + ch) * k, cl * k:(cl + cw) * k]
                part = pointwise_loss(diff, loss).flatten(1).sum(1) / numel
                total = total + part.sum()
                per_image += part.detach()
                if record:
                    sr[..., ct * k:(ct + ch) * k, cl * k:(cl + cw) * k] = o.detach()
            (g,) = torch.autograd.grad(total, d)
            for m, j in enumerate(chunk):
                t, s, h, w = windows[j]
                grad[..., t:t + h, s:s + w] += g[m * n:(m + 1) * n]
        return per_image, grad, sr

    return grad_fn


def _ramps(starts: list[int], length: int, size: int) -> torch.Tensor:
    """``[len(starts), length]`` 1-D weights: linear ramps across each overlap, 1 elsewhere."""
    out = torch.ones(len(starts), length, dtype=torch.float64)
    pos = torch.arange(length, dtype=torch.float64)
    for i, s in enumerate(starts):
        if i > 0:  # overlap with the previous tile: ramp up
            ov = starts[i - 1] + length - s
            out[i] = torch.minimum(out[i], ((pos + 0.5) / ov).clamp(max=1))
        if i < len(starts) - 1:  # overlap with the next tile: ramp down
            ov = s + length - starts[i + 1]
            out[i] = torch.minimum(out[i], ((length - pos - 0.5) / ov).clamp(max=1))
    return out


def blend_weights(boxes, height: int, width: int) -> list[torch.Tensor]:
    """One ``[h, w]`` float64 weight map per box; they sum to 1 at every pixel of the
    ``height`` x ``width`` image (a partition of unity made of linear ramps)."""
    tops = sorted({b[0] for b in boxes})
    lefts = sorted({b[1] for b in boxes})
    th, tw = boxes[0][2], boxes[0][3]
    rows, cols = _ramps(tops, th, height), _ramps(lefts, tw, width)
    maps = [rows[tops.index(t)][:, None] * cols[lefts.index(left)][None, :]
            for t, left, _, _ in boxes]
    total = torch.zeros(height, width, dtype=torch.float64)
    for (t, left, h, w), m in zip(boxes, maps):
        total[t:t + h, left:left + w] += m
    return [m / total[t:t + h, left:left + w] for (t, left, h, w), m in zip(boxes, maps)]


def _scaled(boxes, scale):
    return [(t // scale, left // scale, h // scale, w // scale) for t, left, h, w in boxes]


def _project_whole(delta, eps, norm):
    """Rescale the blended ``delta`` onto the whole-image L2 ball if it is longer than
    ``eps`` (beyond float rounding); ``v + delta`` stays in [0, 1] since ``v`` is."""
    if norm == "l2":
        n = per_image_norm(delta)
        if bool((n > eps * (1 + 1e-5)).any()):
            delta = delta * (eps / n.clamp_min(1e-12)).clamp(max=1)
    return delta


def _stage(v, y, model, forward, boxes_v, boxes_y, weights, options, *, stage, steps, batch,
           bar):
    """Optimise ``delta`` on every tile of ``v`` (boxes ``boxes_v``) against the matching
    tile of ``y`` and blend them into a whole-image ``delta``."""
    delta = torch.zeros_like(v)
    for i in range(0, len(boxes_v), batch):
        chunk = range(i, min(i + batch, len(boxes_v)))
        vt = torch.cat([v[:, :, t:t + h, s:s + w] for t, s, h, w in
                        (boxes_v[j] for j in chunk)])
        yt = torch.cat([y[:, :, t:t + h, s:s + w] for t, s, h, w in
                        (boxes_y[j] for j in chunk)])
        d = pgd(vt, forward, yt, options, stage=stage, steps=steps, scale=model.scale)
        n = v.shape[0]
        for k, j in enumerate(chunk):
            t, s, h, w = boxes_v[j]
            wmap = weights[j].to(v.dtype)
            if len(boxes_v) == 1:  # one tile: keep the untiled result bit for bit
                delta = d[k * n:(k + 1) * n].clone()
            else:
                delta[:, :, t:t + h, s:s + w] += d[k * n:(k + 1) * n] * wmap
        if bar is not None:
            bar.update(len(chunk))
    return delta


def tiled(method, y: torch.Tensor, model, *, tile: int | None = AUTO_TILE,
          overlap: int = DEFAULT_OVERLAP, mode: str = "global", batch: int = 1,
          steps: int | None = None, options: Options = PAPER, progress=None,
          **overrides) -> TiledResult:
    """Run ``method`` on ``y`` ``[N, 3, H, W]`` in tiles of at most ``tile`` x ``tile``
    pixels (module docstring).

    ``method``: ``"baseline"``, ``"lr"``, ``"hr"`` or ``"hcd"`` (or the functions
    :func:`~hcd_lite.rescale`, :func:`~hcd_lite.collaborative_lr`,
    :func:`~hcd_lite.collaborative_hr`, :func:`~hcd_lite.hcd`). ``tile=None``: no tiling,
    the whole image in one pass (exactly those functions). ``tile`` and ``overlap``
    (HR pixels, multiples of ``model.scale``): the window size and the context on each
    side of a core (``"global"``, ``overlap < tile / 2``) or the tile size and the least
    overlap of neighbours (``"independent"``, ``overlap < tile``). ``batch`` windows go
    through the networks together (faster for small tiles, ``batch`` times the memory).
    ``steps`` sets the steps of the single-stage methods (default: the options' step count
    of that stage); ``options`` and ``overrides`` as in :func:`hcd_lite.hcd`, ``eps`` and
    ``alpha`` whole-image budgets. ``"independent"`` mode keeps no history.
    """
    method = _ALIASES.get(method, method)
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    scale = model.scale
    o = options.replace(**overrides)
    stages = {"baseline": {}, "lr": {"lr": o.steps_lr if steps is None else steps},
              "hr": {"hr": o.steps_hr if steps is None else steps},
              "hcd": {"hr": o.steps_hr, "lr": o.steps_lr}}[method]
    o = o.replace(**{f"steps_{stage}": n for stage, n in stages.items()})
    check_inputs(y, model)
    if tile is None:  # untiled: one window covering the whole image
        tile, overlap, mode = max(y.shape[-2:]), 0, "global"
    for name, value in (("tile", tile), ("overlap", overlap)):
        if isinstance(value, bool) or not isinstance(value, int) or value % scale:
            raise ValueError(f"{name} must be an int multiple of the scale {scale}, "
                             f"got {value!r}")
    limit = tile / 2 if mode == "global" else tile
    if tile <= 0 or not 0 <= overlap < limit:
        raise ValueError(f"need tile > 0 and 0 <= overlap < "
                         f"{'tile / 2' if mode == 'global' else 'tile'} in mode {mode!r}, "
                         f"got tile={tile}, overlap={overlap}")
    if batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    if mode == "independent":
        return _independent(stages, y, model, o, tile=tile, overlap=overlap, batch=batch,
                            progress=bool(progress))

    height, width = y.shape[-2:]
    cores, windows = global_boxes(height, width, tile, overlap, scale)
    grad_fns = None
    if len(cores) > 1:  # one window: the untiled computation itself
        lr_cores, lr_windows = _scaled(cores, scale), _scaled(windows, scale)
        # the HR stage's history records the stored LR's reconstruction (collaborative.run),
        # so its windows need not assemble their outputs
        grad_fns = {"hr": _tiled_grad(stage_forward(model, "hr"), y.detach(), cores,
                                      windows, 1, o.loss, batch, False),
                    "lr": _tiled_grad(stage_forward(model, "lr"), y.detach(), lr_cores,
                                      lr_windows, scale, o.loss, batch, o.record_psnr)}
    r = collaborative.run(y, model, stages, o, progress=progress, grad_fns=grad_fns)
    frac = windows[0][2] * windows[0][3] / (height * width)
    return TiledResult(lr=r.lr, sr=r.sr, delta_hr=r.delta_hr, delta_lr=r.delta_lr,
                       scale=scale, history=r.history, mode="global", tiles=windows,
                       cores=cores, eps_tile=o.eps, alpha_tile=o.alpha, tile_fraction=frac)


def _independent(stages, y, model, options, *, tile, overlap, batch, progress) -> TiledResult:
    """``mode="independent"`` (module docstring)."""
    scale = model.scale
    height, width = y.shape[-2:]
    boxes = tile_boxes(height, width, tile, overlap, scale)
    frac = boxes[0][2] * boxes[0][3] / (height * width)
    per_tile = options.scaled(math.sqrt(frac) if options.norm == "l2" else 1.0)
    per_tile = per_tile.replace(record_psnr=False)
    y = y.detach()
    with progress_bar(progress, len(boxes) * len(stages), "tiles") as bar, \
            torch.enable_grad(), frozen(model):
        def optimise(stage, v):
            s = scale if stage == "lr" else 1
            v_boxes = _scaled(boxes, s)
            weights = blend_weights(v_boxes, height // s, width // s)
            delta = _stage(v, y, model, stage_forward(model, stage), v_boxes, boxes, weights,
                           per_tile, stage=stage, steps=stages[stage], batch=batch, bar=bar)
            return _project_whole(delta, options.eps, options.norm)
        lr, sr, delta_hr, delta_lr = run_stages(y, model, stages, options.quantize, optimise)
    return TiledResult(lr=lr, sr=sr, delta_hr=delta_hr, delta_lr=delta_lr,
                       scale=scale, history=[], mode="independent", tiles=boxes,
                       eps_tile=per_tile.eps, alpha_tile=per_tile.alpha, tile_fraction=frac)


def resolve_tile(option, height: int, width: int) -> int | None:
    """The ``--tile`` option: ``"off"`` -> ``None`` (no tiling), ``"auto"`` -> ``AUTO_TILE``
    when ``height * width > AUTO_THRESHOLD`` else ``None``, a number -> that tile size."""
    option = str(option).lower()
    if option == "off":
        return None
    if option == "auto":
        return AUTO_TILE if height * width > AUTO_THRESHOLD else None
    try:
        size = int(option)
    except ValueError:
        raise ValueError(f"tile must be 'auto', 'off' or a size in pixels, got {option!r}") \
            from None
    if size <= 0:
        raise ValueError(f"tile size must be > 0, got {size}")
    return size
