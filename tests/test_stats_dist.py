"""rce.stats._dist gives bit-for-bit the values of scipy.stats (it replaces that import)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from rce.stats import _dist

X = np.array([-np.inf, -40.0, -3.3, -1.959963984540054, -0.5, -0.0, 0.0, 1e-12, 0.7, 1.96,
              2.5758293035489004, 8.0, 40.0, np.inf, np.nan])
Q = np.array([0.0, 1e-300, 1e-12, 0.025, 0.05, 0.5, 0.8, 0.95, 0.975, 0.995, 1 - 1e-12, 1.0,
              -0.1, 1.1, np.nan])
DF = [0.5, 1.0, 2.0, 3.0, 4.0, 9.0, 29.0, 117.0, 1e4, 1e8, np.inf, 0.0, -1.0, np.nan]


def _same(a, b) -> None:
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape
    assert np.array_equal(a, b, equal_nan=True), (a, b)


@pytest.mark.parametrize("df", DF)
def test_t_matches_scipy(df):
    _same(_dist.t_sf(X, df), stats.t.sf(X, df))
    _same(_dist.t_ppf(Q, df), stats.t.ppf(Q, df))
    for x in (-2.1, 0.3, 3.0):
        assert _dist.t_sf(x, df) == stats.t.sf(x, df) or np.isnan(stats.t.sf(x, df))
        assert type(_dist.t_sf(x, df)) is type(stats.t.sf(x, df))


def test_norm_matches_scipy():
    _same(_dist.norm_cdf(X), stats.norm.cdf(X))
    _same(_dist.norm_sf(X), stats.norm.sf(X))
    _same(_dist.norm_ppf(Q), stats.norm.ppf(Q))
    for loc, scale in ((0.1, 0.05), (-3.0, 2.5), (1.0, 0.0), (0.0, -1.0)):
        with np.errstate(divide="ignore", invalid="ignore"):  # scipy warns on scale 0
            sf, cdf = stats.norm.sf(X, loc=loc, scale=scale), stats.norm.cdf(X, loc, scale)
        _same(_dist.norm_sf(X, loc=loc, scale=scale), sf)
        _same(_dist.norm_cdf(X, loc=loc, scale=scale), cdf)
    assert type(_dist.norm_ppf(0.975)) is type(stats.norm.ppf(0.975))


@pytest.mark.parametrize("dfn", [1.0, 2.0, 5.0, 30.0])
@pytest.mark.parametrize("dfd", [1.0, 4.0, 60.0, 1e6, 0.0])
def test_f_matches_scipy(dfn, dfd):
    x = np.array([-1.0, 0.0, 1e-9, 0.5, 1.0, 3.9, 250.0, np.inf, np.nan])
    _same(_dist.f_sf(x, dfn, dfd), stats.f.sf(x, dfn, dfd))


def test_no_scipy_stats_import_for_the_analyses():
    import subprocess
    import sys

    code = ("import sys, rce.stats.gaps, rce.stats.dose_response, rce.evidence, "
            "rce.stats.matching; print('scipy.stats' in sys.modules, 'statsmodels' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
