import math

import pytest

from hcd_lite import FAST, PAPER, Bicubic, Options, budget_factor, collaborative_lr, sample_image
from hcd_lite.data import center_crop


def test_options_are_validated_and_replace_checks_names():
    with pytest.raises(ValueError, match="eps must be a finite number >= 0"):
        Options(eps=-0.1)
    with pytest.raises(ValueError, match="steps_lr must be an int >= 0"):
        Options(steps_lr=1.5)
    with pytest.raises(ValueError, match="norm must be one of"):
        PAPER.replace(norm="l1")
    with pytest.raises(TypeError, match="unknown option"):
        PAPER.replace(epsilon=0.1)
    assert PAPER.replace(steps_lr=5).steps_lr == 5 and PAPER.steps_lr == 15


def test_scaled_multiplies_the_budget_and_the_step_only():
    o = FAST.scaled(0.5)
    assert (o.eps, o.alpha) == (FAST.eps * 0.5, FAST.alpha * 0.5)
    assert o.replace(eps=FAST.eps, alpha=FAST.alpha) == FAST


def test_budget_factor_keeps_the_change_per_value():
    """A crop run with the scaled options changes its LR values by the same RMS per value as
    the full budget spread over the full image's values."""
    y = sample_image("astronaut")[..., :128, :128]
    crop = center_crop(y, 32)
    factor = budget_factor(crop.numel(), y.numel())
    assert factor == pytest.approx(0.25)
    o = PAPER.scaled(factor).replace(random_start=False, steps_lr=30, quantize=False)
    delta = collaborative_lr(crop, Bicubic(2), options=o).delta_lr     # spends its budget
    rms_crop = delta.norm() / math.sqrt(delta.numel())
    rms_full = PAPER.eps / math.sqrt(y.numel() / 4)                     # LR values of y
    assert float(rms_crop) == pytest.approx(rms_full, rel=0.02)


@pytest.mark.parametrize("args", [(0, 10), (10, 0), (-1, 10), (True, 10), ("3", 10)])
def test_budget_factor_refuses_sizes_that_are_not_counts(args):
    with pytest.raises(ValueError, match="must be a number of values > 0"):
        budget_factor(*args)


def test_the_presets_are_the_documented_settings():
    assert (PAPER.steps_hr, PAPER.steps_lr, PAPER.eps, PAPER.alpha) == (15, 15, 0.3, 20 / 255)
    assert PAPER.random_start and PAPER.schedule == "constant"
    assert (FAST.steps_hr, FAST.steps_lr, FAST.alpha, FAST.schedule) == (2, 4, 0.3, "geometric")
    assert not FAST.random_start
