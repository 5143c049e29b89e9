"""Faster code paths give the same numbers as the code they replaced.

Each reference below is the previous implementation, kept verbatim, so a later change to the fast
path that alters any result fails here (performance work, benchmarks/README.md "rce analyze end
to end").
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest

from rce.errors import DataError
from rce.stats.matching import _independent, _logistic, _logit_newton
from rce.stats.ols import (
    _WEBB,
    BOOTSTRAP_TIE_RTOL,
    _crossprod,
    _demean,
    _group_sums,
    _independent_columns,
    _nested,
    _prepare,
    design_matrix,
    wild_cluster_bootstrap,
)


def _old_wild(y, X, *, names, term, cluster, absorb=None, reps=9999, seed=0):
    # Previous rce.stats.ols.wild_cluster_bootstrap: a k-by-k sandwich per bootstrap draw.
    names = list(names)
    if term not in names:
        raise DataError(f"no regressor named {term!r}", where="model", hint=None)
    prep = _prepare(y, X, names, cluster, None, absorb)
    yv, Xv = prep.y, prep.X
    names = prep.names
    if prep.fe is not None:
        _demean(prep.fe, Xv, prep.n_fe)
        _demean(prep.fe, yv[:, None], prep.n_fe)
    Xv = np.asfortranarray(Xv)
    keep = _independent_columns(_crossprod(Xv))
    kept = [nm for nm, kp in zip(names, keep, strict=True) if kp]
    if term not in kept:
        raise DataError(f"{term!r} is collinear with the other regressors", where="model")
    Xv = np.asfortranarray(Xv[:, keep])
    j = kept.index(term)
    n, k = Xv.shape
    G = prep.g1
    c = prep.c1
    if G < 2:
        raise DataError("the wild cluster bootstrap needs at least 2 clusters", where="model")
    k_eff = k if prep.fe is None or _nested(prep.fe, prep.n_fe, c, G) else k + prep.n_fe
    factor = G / (G - 1) * (n - 1) / (n - k_eff)
    A = np.linalg.inv(_crossprod(Xv))
    beta = A @ (Xv.T @ yv)
    e = yv - Xv @ beta
    S_unres = _group_sums(c, Xv * e[:, None], G)
    V = A @ (S_unres.T @ S_unres) @ A * factor
    t_obs = beta[j] / math.sqrt(V[j, j])
    # Restricted fit (term excluded) gives the null-imposing residuals.
    Xr = np.delete(Xv, j, axis=1)
    br = np.linalg.solve(Xr.T @ Xr, Xr.T @ yv)
    er = yv - Xr @ br
    S = _group_sums(c, Xv * er[:, None], G)  # X_g' e_r,g
    # X_g' X_g for every cluster, to update residual scores without touching n rows again.
    XgXg = np.zeros((G, k, k))
    for g in range(G):
        rows = c == g
        XgXg[g] = Xv[rows].T @ Xv[rows]
    if reps >= 6**G:
        grids = np.meshgrid(*([np.arange(6)] * G), indexing="ij")
        W = _WEBB[np.stack([gr.ravel() for gr in grids], axis=1)]
    else:
        rng = np.random.default_rng(seed)
        W = _WEBB[rng.integers(0, 6, size=(reps, G))]
    # b* - b_r = A sum_g w_g S_g ; cluster scores of the bootstrap residuals:
    # X_g' e*_g = w_g S_g - X_g'X_g (b* - b_r).
    delta = (W @ S) @ A.T  # (B, k)
    t_star = np.empty(len(W))
    for b in range(len(W)):
        scores = W[b][:, None] * S - np.einsum("gij,j->gi", XgXg, delta[b])
        Vb = A @ (scores.T @ scores) @ A * factor
        t_star[b] = delta[b, j] / math.sqrt(Vb[j, j]) if Vb[j, j] > 0 else 0.0
    p = float(np.mean(np.abs(t_star) >= abs(t_obs) * (1 - BOOTSTRAP_TIE_RTOL)))
    return p, float(t_obs)


def _old_independent(X):
    keep = []
    kept = []
    for j in range(X.shape[1]):
        col = X[:, j]
        cand = np.column_stack([*kept, col]) if kept else col[:, None]
        ok = np.linalg.matrix_rank(cand) == cand.shape[1]
        if ok and j > 0 and np.all(col == col[0]):
            ok = False
        keep.append(bool(ok))
        if ok:
            kept.append(col)
    return keep


def _panel(seed: int, g: int, n: int, slope: float) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    school = rng.integers(0, g, n)
    x = rng.normal(size=n) + 0.3 * school
    z = rng.normal(size=n)
    y = slope * x + 0.5 * z + rng.normal(size=g)[school] + rng.normal(size=n)
    return pd.DataFrame({"y": y, "x": x, "z": z, "school": school.astype(str)})


@pytest.mark.parametrize(("seed", "g", "slope", "reps"),
                         [(1, 5, 0.0, 9999), (2, 5, 0.3, 9999), (3, 4, 0.1, 9999),
                          (4, 9, 0.05, 1999), (5, 12, 0.0, 999)])
def test_wild_bootstrap_same_as_per_draw_sandwich(seed, g, slope, reps):
    df = _panel(seed, g, 240, slope)
    X, names = design_matrix(df, numeric=["x", "z"])
    for absorb in (None, df["school"]):
        new = wild_cluster_bootstrap(df["y"], X, names=names, term="x", cluster=df["school"],
                                     absorb=absorb, reps=reps, seed=seed)
        p_old, t_old = _old_wild(df["y"], X, names=names, term="x", cluster=df["school"],
                                 absorb=absorb, reps=reps, seed=seed)
        assert new["p_value"] == p_old
        assert new["t_observed"] == t_old


def test_independent_same_as_rank_per_column():
    rng = np.random.default_rng(3)
    n = 500
    a, b = rng.normal(size=n), rng.integers(0, 3, n).astype(float)
    cols = [np.ones(n), a, b, a + b, (b == 1).astype(float), (b == 2).astype(float),
            np.zeros(n), 2 * a, np.full(n, 3.0), rng.normal(size=n), (b == 0).astype(float)]
    X = np.column_stack(cols)
    assert _independent(X) == _old_independent(X)
    assert _independent(np.asfortranarray(X[:, 1:])) == _old_independent(X[:, 1:])
    small = X[:6]
    assert _independent(small) == _old_independent(small)


def test_logit_same_as_statsmodels_newton():
    sm = pytest.importorskip("statsmodels.api")
    rng = np.random.default_rng(0)
    for trial in range(8):
        n, k = int(rng.integers(60, 4000)), int(rng.integers(1, 12))
        X = np.column_stack([np.ones(n), rng.normal(size=(n, k - 1))])
        if trial % 2:
            X = np.asfortranarray(X)
        y = (rng.random(n) < _logistic(X, rng.normal(size=k) * 0.5)).astype(float)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = sm.Logit(y, X).fit(disp=0, maxiter=200)
        params, separated, converged = _logit_newton(y, X, maxiter=200)
        assert np.array_equal(params, fit.params)
        assert np.array_equal(_logistic(X, params), fit.predict(X))
        assert converged == fit.mle_retvals["converged"]
        assert not separated
