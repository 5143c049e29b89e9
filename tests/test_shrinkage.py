"""Empirical-Bayes partial pooling (validation.md §10: BDA3 §5.5 eight schools)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rce.errors import DataError
from rce.stats.shrinkage import eb_shrink

Y8 = [28, 8, -3, 7, -1, 1, 18, 12]
S8 = [15, 10, 16, 11, 9, 11, 10, 18]


@pytest.mark.parametrize("method", ["reml", "dl"])
def test_eight_schools_pool_completely(method):
    # Between-school variance is estimated at 0 for the eight schools, so every school is pooled
    # to the complete-pooling mean 7.686 with posterior variance 16.58 (sd 4.072), BDA3 §5.5.
    r = eb_shrink(Y8, S8, method=method, labels="ABCDEFGH")
    assert r.tau2 == 0
    assert r.mu == pytest.approx(7.686, abs=5e-4)
    np.testing.assert_allclose(r.pooled, 7.686, atol=5e-4)
    np.testing.assert_allclose(r.pooled_se, 4.072, atol=5e-4)
    np.testing.assert_allclose(r.shrinkage, 1.0)
    assert any("0" in n for n in r.notes)
    json.dumps(r.to_dict())
    assert "A:" in r.summary()


def test_small_groups_move_more():
    est = np.array([0.0, 10.0, 10.0, -5.0, 4.0])
    se = np.array([1.0, 1.0, 8.0, 1.5, 2.0])  # group 3 is tiny (big SE)
    r = eb_shrink(est, se)
    assert r.tau2 > 0
    moved = np.abs(r.pooled - est)
    assert moved[2] > moved[1]
    assert r.shrinkage[2] > r.shrinkage[1]
    # Pooled values lie between the raw value and mu.
    lo, hi = np.minimum(est, r.mu), np.maximum(est, r.mu)
    assert np.all((r.pooled >= lo - 1e-12) & (r.pooled <= hi + 1e-12))


def test_reml_solves_its_score_equation():
    rng = np.random.default_rng(2)
    se = rng.uniform(0.5, 3, 12)
    est = rng.normal(0, 2, 12) + rng.normal(0, se)
    r = eb_shrink(est, se)
    v = se**2
    w = 1 / (v + r.tau2)
    mu = (w * est).sum() / w.sum()
    # REML score: sum w^2 ((y-mu)^2 - v - tau2) + sum(w^2)/sum(w)... in fixed-point form.
    fixed = ((w**2) * ((est - mu) ** 2 - v)).sum() / (w**2).sum() + 1 / w.sum()
    assert r.tau2 == pytest.approx(max(fixed, 0), rel=1e-8)


def test_missing_and_bad_input():
    r = eb_shrink([1.0, np.nan, 3.0, 2.0], [1.0, 1.0, 1.0, np.nan])
    assert np.isnan(r.pooled[1]) and np.isnan(r.pooled[3])
    assert np.isfinite(r.pooled[[0, 2]]).all()
    one = eb_shrink([1.0], [1.0])
    assert np.isnan(one.pooled).all() and one.notes
    with pytest.raises(DataError):
        eb_shrink([1, 2], [1, 2], method="bayes")
    with pytest.raises(DataError):
        eb_shrink([1, 2], [1])
