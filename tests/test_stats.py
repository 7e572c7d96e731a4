import numpy as np
import pytest

from hcd_lite.stats import CI, bootstrap_ci, format_ci, sign


def test_interval_contains_the_sample_mean_and_is_deterministic():
    values = np.random.default_rng(1).normal(0.3, 0.2, size=12)
    ci = bootstrap_ci(values)
    assert isinstance(ci, CI) and ci.estimate == pytest.approx(values.mean())
    assert ci.low < ci.estimate < ci.high
    assert bootstrap_ci(values) == ci and bootstrap_ci(values, seed=1) != ci


def test_interval_shrinks_with_more_data_and_a_lower_level():
    rng = np.random.default_rng(0)
    few, many = rng.normal(size=10), rng.normal(size=1000)
    width = [c.high - c.low for c in (bootstrap_ci(few), bootstrap_ci(many))]
    assert width[1] < width[0] / 5
    narrow = bootstrap_ci(few, level=0.5)
    assert narrow.high - narrow.low < width[0]


def test_identical_values_give_a_zero_width_interval():
    ci = bootstrap_ci([0.1] * 5)
    assert ci.low == ci.high == pytest.approx(0.1)


def test_seeds_per_image_resample_whole_images():
    per_image = np.array([[0.1, 0.3], [0.5, 0.7], [0.2, 0.2]])
    assert bootstrap_ci(per_image) == bootstrap_ci(per_image.mean(axis=1))


def test_median_statistic():
    ci = bootstrap_ci([1.0, 2.0, 30.0], stat=np.median)
    assert ci.estimate == 2.0 and 1.0 <= ci.low <= ci.high <= 30.0


@pytest.mark.parametrize("values, kw", [
    ([], {}), ([1.0, np.nan], {}), ([1.0, np.inf], {}), (np.zeros((2, 2, 2)), {}),
    ([1.0, 2.0], {"level": 1.0}), ([1.0, 2.0], {"n_resamples": 0}),
])
def test_invalid_input_raises(values, kw):
    with pytest.raises(ValueError):
        bootstrap_ci(values, **kw)


def test_sign_and_wording():
    assert sign(CI(0.2, 0.1, 0.3)) == 1
    assert sign(CI(-0.2, -0.3, -0.1)) == -1
    assert sign(CI(0.1, -0.1, 0.3)) == 0 and sign(CI(0.0, 0.0, 0.3)) == 0
    assert format_ci(CI(0.2271, 0.12, 0.31)) == "+0.227 [+0.120, +0.310]"
