"""Benjamini-Hochberg and Holm (validation.md §9: Benjamini & Hochberg 1995 §4)."""

from __future__ import annotations

import numpy as np
from scipy import stats

from rce.stats.multiplicity import bh_adjust, bh_reject, holm_adjust

BH_P = [0.0001, 0.0004, 0.0019, 0.0095, 0.0201, 0.0278, 0.0298, 0.0344, 0.0459, 0.3240, 0.4262,
        0.5719, 0.6528, 0.7590, 1.000]


def test_bh_paper_example():
    rej = bh_reject(BH_P, 0.05)
    assert rej.sum() == 4 and rej[:4].all()
    adj = bh_adjust(BH_P)
    np.testing.assert_allclose(adj[:6], [0.0015, 0.003, 0.0095, 0.035625, 0.0603, 0.063857],
                               atol=5e-7)


def test_holm_example():
    adj = holm_adjust(BH_P)
    np.testing.assert_allclose(adj[:6], [0.0015, 0.0056, 0.0247, 0.114, 0.2211, 0.278],
                               atol=5e-7)
    assert (adj <= 0.05).sum() == 3


def test_bh_agrees_with_scipy_in_any_order_and_skips_nan():
    rng = np.random.default_rng(5)
    p = rng.uniform(size=30) ** 2
    np.testing.assert_allclose(bh_adjust(p), stats.false_discovery_control(p), rtol=1e-12)
    with_nan = np.r_[p[:5], np.nan, p[5:10]]
    out = bh_adjust(with_nan)
    assert np.isnan(out[5])
    np.testing.assert_allclose(out[~np.isnan(out)], stats.false_discovery_control(p[:10]))
    assert bh_adjust([]).size == 0
    assert not bh_reject([np.nan]).any()
