"""The optimisers' settings in one object, and the two presets every caller reads.

:data:`PAPER` is Algorithm 1 of the HCD paper (15 HR + 15 LR steps, L2 budget ``eps = 0.3``,
steps of ``alpha = 20/255``, random start, MSE, the LR stored as 8 bits). :data:`FAST` is a
measured preset (``python -m hcd_lite.perf --sections speed``): 2 + 4 geometric steps from
zero, starting at ``alpha = eps``, without the per-step PSNR record; with the shipped IRN x4
on the held-out 256x256 crops it gives the same mean PSNR gain as :data:`PAPER` for about a
fifth of the CPU time (``benchmarks/RESULTS.md``).

``eps`` and ``alpha`` are L2 norms of the perturbation of a WHOLE image (all channels and
pixels, values in [0, 1] units), so the change per value they allow shrinks as the image
grows (RMS per value ``eps / sqrt(3 H W)``); with ``norm="linf"`` they are per-value bounds.

    >>> from hcd_lite.options import PAPER
    >>> PAPER.replace(steps_lr=5).steps_lr
    5
"""
from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass

NORMS = ("l2", "linf")
LOSSES = ("mse", "l1")
SCHEDULES = ("constant", "geometric")


@dataclass(frozen=True)
class Options:
    """Settings of the collaborative / adversarial optimisers (validated on creation).

    ``steps_hr`` / ``steps_lr``: steps of the HR and LR stage (int >= 0); ``eps``: radius of
    the ball around the unperturbed image; ``alpha``: step length (same units); ``norm``:
    ``"l2"`` or ``"linf"``; ``random_start``: start at a random point of the ball (drawn per
    image from a generator seeded with ``seed``); ``loss``: ``"mse"`` or ``"l1"``;
    ``quantize``: store the LR as 8 bits (clamped to [0, 1] otherwise); ``schedule``:
    ``"constant"`` (``alpha`` every step) or ``"geometric"`` (``alpha * 2 ** -(t - 1)`` at
    step ``t``); ``record_psnr``: record the PSNR of every step in ``history``.
    """

    steps_hr: int = 15
    steps_lr: int = 15
    eps: float = 0.3
    alpha: float = 20 / 255
    norm: str = "l2"
    random_start: bool = True
    loss: str = "mse"
    quantize: bool = True
    seed: int = 0
    schedule: str = "constant"
    record_psnr: bool = True

    def __post_init__(self):
        for name in ("steps_hr", "steps_lr", "seed"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
                raise ValueError(f"{name} must be an int >= 0, got {value!r}")
        for name in ("eps", "alpha"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real) \
                    or not math.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        for name, allowed in (("norm", NORMS), ("loss", LOSSES), ("schedule", SCHEDULES)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")

    def replace(self, **changes) -> Options:
        """A copy with ``changes`` applied (and validated); unknown names raise ``TypeError``."""
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise TypeError(f"unknown option(s) {sorted(unknown)}; valid: "
                            f"{[f.name for f in dataclasses.fields(self)]}")
        return dataclasses.replace(self, **changes)

    def scaled(self, factor: float) -> Options:
        """A copy with ``eps`` and ``alpha`` multiplied by ``factor`` (the same walk in a
        ball ``factor`` times as large), e.g. the same budget per value on a crop:
        ``factor = budget_factor(crop.numel(), image.numel())``."""
        return self.replace(eps=self.eps * factor, alpha=self.alpha * factor)


def budget_factor(n_values: int, n_reference: int) -> float:
    """The factor for :meth:`Options.scaled` that gives an image of ``n_values`` values the
    RMS change per value that the unscaled budget gives one of ``n_reference`` values (a crop
    and its full image: ``budget_factor(crop.numel(), image.numel())``), ``sqrt(n / n_ref)``."""
    for name, n in (("n_values", n_values), ("n_reference", n_reference)):
        if isinstance(n, bool) or not isinstance(n, numbers.Real) or not n > 0:
            raise ValueError(f"{name} must be a number of values > 0, got {n!r}")
    return math.sqrt(n_values / n_reference)


#: Algorithm 1 of the paper: 15 HR + 15 LR steps of 20/255 in an L2 ball of 0.3, random start.
PAPER = Options()
#: The measured fast preset: 2 + 4 geometric steps from zero, the first as long as ``eps``.
FAST = Options(steps_hr=2, steps_lr=4, alpha=PAPER.eps, schedule="geometric",
               random_start=False, record_psnr=False)
