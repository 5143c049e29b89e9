"""The few distribution functions the analyses need, without importing ``scipy.stats``.

``import scipy.stats`` costs 2-6 s on the shared 2-core machine (it builds ~100 distribution
objects and parses their docstrings), about a third of a small district's ``rce analyze``. The
Student t, normal and F functions used here are thin wrappers over ``scipy.special`` -- the very
functions ``scipy.stats`` calls (``t._sf = stdtr(df, -x)``, ``t._ppf = stdtrit(df, q)``,
``norm._cdf = ndtr``, ``norm._ppf = ndtri``, ``f._sf = fdtrc``) -- with the same handling of the
edges (``ppf(0) = -inf``, ``ppf(1) = inf``, NaN outside the parameter space), so every value is
bit-for-bit what ``scipy.stats`` returns (``tests/test_stats_dist.py`` checks this on a grid).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import special as sc

__all__ = ["f_sf", "norm_cdf", "norm_ppf", "norm_sf", "t_ppf", "t_sf"]


def _out(value: np.ndarray) -> Any:
    # scipy.stats returns a numpy scalar for scalar input and an array otherwise.
    return value[()] if value.ndim == 0 else value


def t_sf(x: Any, df: Any) -> Any:
    """Upper tail P(T > x) of Student's t with ``df`` degrees of freedom (``stats.t.sf``)."""
    x, df = np.broadcast_arrays(np.asarray(x, dtype=float), np.asarray(df, dtype=float))
    ok = df > 0
    out = np.full(x.shape, np.nan)
    np.copyto(out, sc.stdtr(df, -x), where=ok & ~np.isnan(x))
    return _out(out)


def t_ppf(q: Any, df: Any) -> Any:
    """Quantile of Student's t (``stats.t.ppf``)."""
    q, df = np.broadcast_arrays(np.asarray(q, dtype=float), np.asarray(df, dtype=float))
    ok = df > 0
    out = np.full(q.shape, np.nan)
    inner = ok & (q > 0) & (q < 1)
    np.copyto(out, sc.stdtrit(df, q) * 1.0 + 0.0, where=inner)
    out[ok & (q == 0)] = -np.inf
    out[ok & (q == 1)] = np.inf
    return _out(out)


def norm_cdf(x: Any, loc: Any = 0.0, scale: Any = 1.0) -> Any:
    """Normal CDF (``stats.norm.cdf``)."""
    return _norm_tail(x, loc, scale, upper=False)


def norm_sf(x: Any, loc: Any = 0.0, scale: Any = 1.0) -> Any:
    """Normal upper tail (``stats.norm.sf``)."""
    return _norm_tail(x, loc, scale, upper=True)


def _norm_tail(x: Any, loc: Any, scale: Any, *, upper: bool) -> Any:
    x, loc, scale = np.broadcast_arrays(np.asarray(x, dtype=float),
                                        np.asarray(loc, dtype=float),
                                        np.asarray(scale, dtype=float))
    with np.errstate(divide="ignore", invalid="ignore"):  # scale <= 0 gives NaN below
        z = (x - loc) / scale if (np.any(loc != 0) or np.any(scale != 1)) else x
    out = np.full(z.shape, np.nan)
    ok = (scale > 0) & ~np.isnan(z)
    np.copyto(out, sc.ndtr(-z) if upper else sc.ndtr(z), where=ok)
    return _out(out)


def norm_ppf(q: Any) -> Any:
    """Standard normal quantile (``stats.norm.ppf``)."""
    q = np.asarray(q, dtype=float)
    out = np.full(q.shape, np.nan)
    inner = (q > 0) & (q < 1)
    np.copyto(out, sc.ndtri(q) * 1.0 + 0.0, where=inner)
    out[q == 0] = -np.inf
    out[q == 1] = np.inf
    return _out(out)


def f_sf(x: Any, dfn: Any, dfd: Any) -> Any:
    """Upper tail of the F distribution (``stats.f.sf``)."""
    x, dfn, dfd = np.broadcast_arrays(np.asarray(x, dtype=float), np.asarray(dfn, dtype=float),
                                      np.asarray(dfd, dtype=float))
    ok = (dfn > 0) & (dfd > 0)
    out = np.full(x.shape, np.nan)
    np.copyto(out, sc.fdtrc(dfn, dfd, np.where(x > 0, x, 0.0)), where=ok & (x > 0))
    out[ok & (x <= 0)] = 1.0
    return _out(out)
