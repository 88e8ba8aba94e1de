"""lesson5.smooth.EWMA against closed forms."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lesson5.smooth import EWMA


def test_constant_input_gives_the_constant_from_the_first_value_and_nan_before():
    ew = EWMA()
    assert math.isnan(ew.value)
    assert EWMA(0.9).update(7.0) == pytest.approx(7.0, rel=1e-15)
    for _ in range(50):
        assert ew.update(3.25) == pytest.approx(3.25, rel=1e-14)


def test_equals_the_normalised_weighted_sum():
    rng = np.random.default_rng(0)
    xs = rng.normal(size=200)
    beta = 0.98
    ew = EWMA(beta)
    for n in range(1, len(xs) + 1):
        got = ew.update(xs[n - 1])
        w = beta ** np.arange(n - 1, -1, -1)  # the newest value weighs 1, the oldest beta^(n-1)
        assert got == pytest.approx((w * xs[:n]).sum() / w.sum(), rel=1e-10, abs=1e-13)


def test_beta_zero_is_the_last_value_and_bad_beta_refused():
    ew = EWMA(0.0)
    ew.update(1.0)
    assert ew.update(5.0) == 5.0
    with pytest.raises(ValueError, match="beta"):
        EWMA(1.0)
