"""Bootstrap confidence intervals over images, and the words a verdict needs.

A benchmark compares methods on the same few images, so the unit of resampling is the image:
pass the per-image PAIRED differences (say HCD minus LR-only PSNR, in dB) to
:func:`bootstrap_ci`; with several seeds per image pass a ``[images, seeds]`` array and whole
images are resampled. With three images the interval is coarse (a resample can only repeat
those three values); :func:`sign` says whether it still excludes zero.

    >>> ci = bootstrap_ci([0.31, 0.12, 0.25])
    >>> sign(ci), format_ci(ci)
    (1, '+0.227 [+0.120, +0.310]')
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np


class CI(NamedTuple):
    """``estimate``: the statistic on the data; ``low``/``high``: the interval's ends."""

    estimate: float
    low: float
    high: float


def bootstrap_ci(values, *, stat=np.mean, level: float = 0.95, n_resamples: int = 10000,
                 seed: int = 0) -> CI:
    """Percentile bootstrap interval of ``stat`` over images.

    ``values``: ``[n]`` (one value per image) or ``[n, k]`` (k seeds per image; an image's
    row is averaged over its seeds after resampling whole rows), finite, ``n >= 1``.
    ``stat(array, axis=-1)``: a reduction such as ``np.mean`` or ``np.median``. ``level``: the
    two-sided coverage in (0, 1). Deterministic for a given ``seed``.
    """
    v = np.asarray(values, dtype=float)
    if v.ndim == 2:
        v = v.mean(axis=1)
    if v.ndim != 1 or v.size == 0:
        raise ValueError(f"values must be a non-empty [n] or [n, k] array, got shape {v.shape}")
    if not np.isfinite(v).all():
        raise ValueError("values contain NaN or infinite entries")
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), got {level!r}")
    if int(n_resamples) < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples!r}")
    rng = np.random.default_rng(seed)
    resampled = stat(v[rng.integers(0, v.size, size=(int(n_resamples), v.size))], axis=-1)
    low, high = np.quantile(resampled, [(1 - level) / 2, (1 + level) / 2])
    return CI(float(stat(v, axis=-1)), float(low), float(high))


def sign(ci: CI) -> int:
    """+1 when the interval lies above zero, -1 when below, 0 when it contains zero."""
    return 1 if ci.low > 0 else -1 if ci.high < 0 else 0


def format_ci(ci: CI, digits: int = 3) -> str:
    """``'+0.227 [+0.120, +0.310]'``: the estimate and the interval, signed."""
    return f"{ci.estimate:+.{digits}f} [{ci.low:+.{digits}f}, {ci.high:+.{digits}f}]"
