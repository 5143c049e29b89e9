"""Multiple-comparison adjustments.

The WWC adjusts findings within an outcome domain with the Benjamini-Hochberg step-up procedure
(methods.md §3.6); rce applies it within each subgroup dimension. Reference: Benjamini & Hochberg
(1995) §4, 15 p-values -> 4 rejections at q = 0.05, first adjusted p = 0.0015 (validation.md §9).
"""

from __future__ import annotations

from typing import Any

import numpy as np


def bh_adjust(p_values: Any) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (R ``p.adjust(p, "BH")``).

    Missing p-values (NaN) are left out of the family and stay NaN.

    Parameters
    ----------
    p_values
        Sequence of p-values in [0, 1].

    Returns
    -------
    numpy.ndarray
        Adjusted p-values in the input order: min over j >= i of m p_(j) / j, capped at 1.
    """
    p = np.asarray(p_values, dtype=float).ravel()
    out = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    m = int(ok.sum())
    if m == 0:
        return out
    pv = p[ok]
    order = np.argsort(pv, kind="mergesort")
    ranked = pv[order] * m / np.arange(1, m + 1)
    adj = np.minimum.accumulate(ranked[::-1])[::-1]
    adj = np.minimum(adj, 1.0)
    res = np.empty(m)
    res[order] = adj
    out[ok] = res
    return out


def bh_reject(p_values: Any, q: float = 0.05) -> np.ndarray:
    """Boolean rejections of the BH step-up procedure at false-discovery rate ``q``.

    The largest k with p_(k) <= k q / m is found and findings 1..k are rejected.
    """
    adj = bh_adjust(p_values)
    return np.where(np.isfinite(adj), adj <= q, False)


def holm_adjust(p_values: Any) -> np.ndarray:
    """Holm step-down adjusted p-values (family-wise error rate), NaN left out."""
    p = np.asarray(p_values, dtype=float).ravel()
    out = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    m = int(ok.sum())
    if m == 0:
        return out
    pv = p[ok]
    order = np.argsort(pv, kind="mergesort")
    ranked = pv[order] * (m - np.arange(m))
    adj = np.minimum(np.maximum.accumulate(ranked), 1.0)
    res = np.empty(m)
    res[order] = adj
    out[ok] = res
    return out
