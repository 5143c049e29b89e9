"""Fast ordinary least squares on NumPy arrays, with the standard errors Stata reports.

Why not statsmodels' formula API: building a patsy design for two million students takes longer
than the whole fit is allowed to take, and statsmodels keeps several n-by-k copies. Here the design
is built directly (:func:`design_matrix`), the normal equations are solved on the k-by-k cross
product, and cluster sums use ``np.bincount`` -- one pass over the data per column.

Conventions (they match Stata and statsmodels with ``use_t=True``; see validation.md §0.1, §1):

- ``vcov="classical"``: s^2 (X'X)^-1, t(N - K) inference.
- ``vcov="HC1"``: White's sandwich times N / (N - K) (Stata ``, robust``), t(N - K).
- ``vcov="cluster"``: Liang-Zeger sandwich times G/(G-1) * (N-1)/(N-K) (Stata ``vce(cluster)``),
  t(G - 1) inference.
- two-way clustering (``cluster2``): Cameron-Gelbach-Miller V1 + V2 - V12, each term with its own
  small-sample factor (as statsmodels and Petersen's published numbers), t(min(G1, G2) - 1).
- ``absorb``: one set of fixed effects swept out by the within transformation. K counts the
  absorbed levels for classical and HC1 standard errors; when the fixed effects are nested in the
  clusters they are not counted in the cluster small-sample factor (as ``reghdfe`` and ``fixest``
  do; ``areg`` would count them).

Rows with a missing value in y, X, the cluster or the absorbed variable are dropped and counted
(``OlsFit.n_dropped``); columns that are exactly collinear are omitted and named
(``OlsFit.omitted``), never silently given a zero.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import linalg

from rce.errors import DataError
from rce.jsonsafe import json_value
from rce.stats import _dist

VCOV_KINDS = ("classical", "HC1", "cluster")

#: Up to this many columns X'X is built from matrix-vector products (see _crossprod).
_GEMV_MAX_K = 40

#: Relative tolerance on pivots of the scaled cross-product below which a column is collinear.
_COLLINEAR_TOL = 1e-9


@dataclass(frozen=True)
class MissingReport:
    """How many rows a listwise deletion drops, and which columns are responsible.

    Attributes
    ----------
    n_total
        Rows offered.
    n_used
        Rows with every listed column present.
    by_column
        Column -> number of rows where that column is missing (a row missing two columns is
        counted under both, so these may add up to more than ``n_dropped``).
    """

    n_total: int
    n_used: int
    by_column: Mapping[str, int] = field(default_factory=dict)

    @property
    def n_dropped(self) -> int:
        return self.n_total - self.n_used

    def to_dict(self) -> dict[str, Any]:
        return {
            "n_total": self.n_total,
            "n_used": self.n_used,
            "n_dropped": self.n_dropped,
            "by_column": {k: int(v) for k, v in self.by_column.items()},
        }

    def sentence(self) -> str:
        """One plain sentence for a report's notes."""
        if self.n_dropped == 0:
            return f"All {self.n_total:,} students had every variable the model needs."
        parts = ", ".join(f"{k} {v:,}" for k, v in self.by_column.items() if v)
        return (
            f"{self.n_dropped:,} of {self.n_total:,} students were left out because a variable "
            f"the model needs was missing ({parts})."
        )


def missing_report(frame: pd.DataFrame, columns: Sequence[str]) -> MissingReport:
    """Count the rows a listwise deletion on ``columns`` would drop.

    Parameters
    ----------
    frame
        The analysis frame.
    columns
        Columns that must all be present.

    Returns
    -------
    MissingReport
    """
    present = [c for c in columns if c in frame.columns]
    absent = [c for c in columns if c not in frame.columns]
    if absent:
        raise DataError(
            f"the analysis frame has no column {absent[0]!r}",
            where="analysis frame",
            hint="Check the column mapping in rce.toml ([columns]) or drop this variable.",
        )
    isna = frame[present].isna()
    by_col = {c: int(isna[c].sum()) for c in present}
    used = int((~isna.any(axis=1)).sum()) if present else len(frame)
    return MissingReport(n_total=len(frame), n_used=used, by_column=by_col)


def design_matrix(
    frame: pd.DataFrame,
    *,
    numeric: Sequence[str] = (),
    categorical: Sequence[str] = (),
    drop_first: bool = True,
    intercept: bool = True,
    reference: Mapping[str, Any] | None = None,
) -> tuple[np.ndarray, list[str]]:
    """Build a float design matrix directly from columns (no patsy).

    Missing values stay missing: a row with a missing numeric value or a missing category has NaN
    in the corresponding columns (never 0 -- the pandas ``==`` trap of validation.md §0.2), so
    :func:`fit_ols` drops and counts it.

    Parameters
    ----------
    frame
        Source data.
    numeric
        Columns used as they are (converted to float; booleans become 0/1).
    categorical
        Columns expanded into indicator columns named ``"col[level]"``.
    drop_first
        Drop the reference level of each categorical (needed with an intercept or absorbed
        effects).
    intercept
        Prepend a column of ones named ``"Intercept"``.
    reference
        Reference level per categorical column; default the most frequent level (ties: the first
        in sorted order), so the reference is the largest group.

    Returns
    -------
    (X, names)
        ``X`` is a Fortran-ordered (column-major) float64 array of shape (n, k).
    """
    n = len(frame)
    reference = dict(reference or {})
    # First pass: what every column will be, so the matrix is allocated once and filled in place.
    specs: list[tuple[str, str, Any]] = []  # (name, kind, payload)
    if intercept:
        specs.append(("Intercept", "one", None))
    for col in numeric:
        if col not in frame.columns:
            raise DataError(
                f"the analysis frame has no column {col!r}", where="analysis frame", hint=None
            )
        s = frame[col]
        if pd.api.types.is_bool_dtype(s.dtype):
            values = s.astype("float64").to_numpy(dtype=float, na_value=np.nan)
        else:
            try:
                values = pd.to_numeric(s, errors="raise").to_numpy(dtype=float, na_value=np.nan)
            except (TypeError, ValueError):
                raise DataError(
                    f"column {col!r} must be numeric for this model",
                    where=f"analysis frame, column {col}",
                    hint="Check that the column holds numbers (no text such as 'N/A').",
                ) from None
        specs.append((col, "num", values))
    for col in categorical:
        if col not in frame.columns:
            raise DataError(
                f"the analysis frame has no column {col!r}", where="analysis frame", hint=None
            )
        codes, uniques = pd.factorize(frame[col], sort=True)
        if len(uniques) == 0:
            continue
        missing = codes < 0
        counts = np.bincount(codes[~missing], minlength=len(uniques))
        levels = list(uniques)
        if col in reference and reference[col] in levels:
            ref_code = levels.index(reference[col])
        else:
            ref_code = int(np.argmax(counts))
        any_missing = bool(missing.any())
        for j, level in enumerate(levels):
            if drop_first and j == ref_code:
                continue
            specs.append((f"{col}[{level}]", "dummy", (codes, j, missing if any_missing else None)))
    names = [sp[0] for sp in specs]
    # Column-major: every later pass (demeaning, cluster sums) walks one column at a time.
    X = np.empty((n, len(specs)), dtype=float, order="F")
    for j, (_, kind, payload) in enumerate(specs):
        if kind == "one":
            X[:, j] = 1.0
        elif kind == "num":
            X[:, j] = payload
        else:
            codes, level, missing = payload
            # Writing the comparison straight into the float column: assigning a bool array
            # instead goes through a slow generic cast (2 s vs 0.1 s for 2M x 25).
            np.equal(codes, level, out=X[:, j], casting="unsafe")
            if missing is not None:
                X[missing, j] = np.nan
    return X, names


def _codes(values: Any, n: int, what: str) -> np.ndarray:
    """Integer codes 0..G-1 for a grouping variable; -1 where missing."""
    if isinstance(values, pd.Series | pd.Index | pd.Categorical):
        # Factorize the pandas object itself: an Arrow string column hashes far faster than the
        # object array .to_numpy() would produce.
        series = values
    else:
        arr = np.asarray(values)
        if arr.ndim != 1:
            raise DataError(f"the {what} variable must be one-dimensional", where=what)
        series = pd.Series(arr)
    if len(series) != n:
        raise DataError(
            f"the {what} variable has {len(series)} values for {n} rows",
            where=what,
            hint="Pass one value per row of the design matrix.",
        )
    codes, _ = pd.factorize(series, sort=False)
    return np.asarray(codes, dtype=np.int64)


def _group_sums(codes: np.ndarray, M: np.ndarray, n_groups: int) -> np.ndarray:
    """Column sums of M within groups: shape (n_groups, k)."""
    out = np.empty((n_groups, M.shape[1]))
    for j in range(M.shape[1]):
        out[:, j] = np.bincount(codes, weights=M[:, j], minlength=n_groups)
    return out


def _demean(codes: np.ndarray, M: np.ndarray, n_groups: int) -> None:
    """Subtract group means from each column of M in place (M is ours)."""
    counts = np.bincount(codes, minlength=n_groups).astype(float)
    counts[counts == 0] = 1.0
    for j in range(M.shape[1]):
        means = np.bincount(codes, weights=M[:, j], minlength=n_groups) / counts
        M[:, j] -= means[codes]


@dataclass(frozen=True)
class OlsFit:
    """An OLS fit with its standard errors and inference.

    Attributes
    ----------
    coef, se, t, p_value, ci_low, ci_high
        Series indexed by regressor name (omitted collinear columns are not included).
    vcov_matrix
        The estimated covariance matrix of the coefficients (DataFrame).
    n
        Rows used.
    k
        Regressors estimated (excluding absorbed fixed effects).
    n_clusters
        Clusters (for two-way clustering, the smaller of the two counts); None otherwise.
    df
        Degrees of freedom of the t and F reference distributions.
    vcov
        "classical", "HC1", "cluster" or "cluster2".
    level
        Confidence level of the intervals.
    n_dropped
        Rows dropped because y, a regressor, the cluster or the absorbed variable was missing.
    n_absorbed
        Levels of the absorbed fixed effect (0 when none).
    omitted
        Regressors dropped as exactly collinear.
    r2
        R-squared (within R-squared when effects are absorbed).
    df_resid
        N - K - absorbed levels.
    notes
        Caveats that travel with the fit.
    """

    coef: pd.Series
    se: pd.Series
    t: pd.Series
    p_value: pd.Series
    ci_low: pd.Series
    ci_high: pd.Series
    vcov_matrix: pd.DataFrame
    n: int
    k: int
    n_clusters: int | None
    df: float
    vcov: str
    level: float
    n_dropped: int = 0
    n_absorbed: int = 0
    omitted: tuple[str, ...] = ()
    r2: float = float("nan")
    df_resid: int = 0
    notes: tuple[str, ...] = ()

    @property
    def names(self) -> list[str]:
        return list(self.coef.index)

    def to_frame(self) -> pd.DataFrame:
        """One row per regressor: estimate, se, t, p_value, ci_low, ci_high."""
        return pd.DataFrame(
            {
                "estimate": self.coef,
                "se": self.se,
                "t": self.t,
                "p_value": self.p_value,
                "ci_low": self.ci_low,
                "ci_high": self.ci_high,
            }
        ).rename_axis("term")

    def term(self, name: str) -> dict[str, Any]:
        """JSON-safe estimate, se, ci_low, ci_high, p_value of one regressor."""
        if name not in self.coef.index:
            raise DataError(
                f"the model has no estimate for {name!r}",
                where="model",
                hint="It may have been omitted as collinear (see the model's notes).",
            )
        return {
            "estimate": json_value(self.coef[name]),
            "se": json_value(self.se[name]),
            "ci_low": json_value(self.ci_low[name]),
            "ci_high": json_value(self.ci_high[name]),
            "p_value": json_value(self.p_value[name]),
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (NaN -> None)."""
        return {
            "n": self.n,
            "k": self.k,
            "n_clusters": self.n_clusters,
            "df": json_value(self.df),
            "vcov": self.vcov,
            "level": self.level,
            "n_dropped": self.n_dropped,
            "n_absorbed": self.n_absorbed,
            "omitted": list(self.omitted),
            "r2": json_value(self.r2),
            "terms": [{"term": name, **self.term(name)} for name in self.coef.index],
            "notes": list(self.notes),
        }

    def summary(self) -> str:
        """Readable coefficient table."""
        pct = round(self.level * 100)
        kind = {
            "classical": "classical (homoskedastic) standard errors",
            "HC1": "heteroskedasticity-robust (HC1) standard errors",
            "cluster": f"standard errors clustered by {self.n_clusters} groups",
            "cluster2": f"two-way clustered standard errors (min {self.n_clusters} groups)",
        }[self.vcov]
        lines = [
            f"OLS, n = {self.n:,}, {kind}; t({self.df:g}) inference, {pct}% intervals",
        ]
        if self.n_absorbed:
            lines.append(f"Absorbed fixed effects: {self.n_absorbed} levels")
        if self.n_dropped:
            lines.append(f"Rows dropped for missing values: {self.n_dropped:,}")
        width = max([len(n) for n in self.coef.index] + [4])
        lines.append(
            f"{'term':<{width}}  {'estimate':>11} {'se':>10} {'t':>8} {'p':>7}  "
            f"{'ci_low':>11} {'ci_high':>11}"
        )
        for name in self.coef.index:
            lines.append(
                f"{name:<{width}}  {self.coef[name]:>11.4f} {self.se[name]:>10.4f} "
                f"{self.t[name]:>8.3f} {self.p_value[name]:>7.4f}  "
                f"{self.ci_low[name]:>11.4f} {self.ci_high[name]:>11.4f}"
            )
        if self.omitted:
            lines.append("Omitted (collinear): " + ", ".join(self.omitted))
        lines.extend(f"Note: {n}" for n in self.notes)
        return "\n".join(lines)

    def wald_test(self, terms: Sequence[str]) -> dict[str, Any]:
        """Joint test that the named coefficients are all zero, with this fit's covariance.

        Uses F = W / q on (q, df) degrees of freedom, as Stata's ``test`` after ``regress``
        (with clustering, df = G - 1). When the q-by-q covariance block has rank below q (a
        cluster-robust covariance has rank at most G - 1), the test is reported as not available.

        Returns
        -------
        dict with ``F``, ``df_num``, ``df_den``, ``p_value``, ``available`` and ``reason``.
        """
        missing = [t for t in terms if t not in self.coef.index]
        if missing:
            raise DataError(
                f"the model has no estimate for {missing[0]!r}", where="model", hint=None
            )
        q = len(terms)
        b = self.coef[list(terms)].to_numpy()
        V = self.vcov_matrix.loc[list(terms), list(terms)].to_numpy()
        rank = int(np.linalg.matrix_rank(V, tol=1e-10 * max(float(np.abs(V).max()), 1e-300)))
        if q == 0 or rank < q:
            return {
                "F": None,
                "df_num": q,
                "df_den": json_value(self.df),
                "p_value": None,
                "available": False,
                "reason": (
                    f"the covariance of the {q} tested terms has rank {rank} < {q}"
                    + (
                        f" (a covariance clustered on {self.n_clusters} groups has rank at most "
                        f"{self.n_clusters - 1})"
                        if self.n_clusters
                        else ""
                    )
                ),
            }
        W = float(b @ np.linalg.solve(V, b))
        F = W / q
        p = float(_dist.f_sf(F, q, self.df))
        return {
            "F": F,
            "df_num": q,
            "df_den": json_value(self.df),
            "p_value": p,
            "available": True,
            "reason": "",
        }


@dataclass(frozen=True)
class _Prepared:
    y: np.ndarray
    X: np.ndarray
    names: list[str]
    c1: np.ndarray | None
    g1: int
    c2: np.ndarray | None
    g2: int
    fe: np.ndarray | None
    n_fe: int
    n_dropped: int


def _prepare(y, X, names, cluster, cluster2, absorb, overwrite=False) -> _Prepared:
    y = np.asarray(y, dtype=float)
    X = np.asarray(X, dtype=float)
    if absorb is not None and len(names) and names[0] == "Intercept":
        # The intercept is swept out with the fixed effects; a column slice of a Fortran array
        # is a view, so dropping it here costs nothing.
        X = X[:, 1:] if X.ndim == 2 else X
        names = names[1:]
    if X.ndim == 1:
        X = X[:, None]
    n = len(y)
    if X.shape[0] != n:
        raise DataError(
            f"the outcome has {n} rows but the design matrix has {X.shape[0]}",
            where="model",
            hint="Build y and X from the same rows.",
        )
    if len(names) != X.shape[1]:
        raise DataError(
            f"{len(names)} names given for {X.shape[1]} columns", where="model", hint=None
        )
    # A row sum is NaN exactly when a value in the row is (one BLAS pass instead of an n-by-k mask).
    ok = np.isfinite(y) & np.isfinite(X @ np.ones(X.shape[1]))
    c1 = _codes(cluster, n, "cluster") if cluster is not None else None
    c2 = _codes(cluster2, n, "second cluster") if cluster2 is not None else None
    if absorb is not None and absorb is cluster:
        fe = c1  # the usual case: school effects, clustered by school
    else:
        fe = _codes(absorb, n, "absorbed") if absorb is not None else None
    for c in (c1, c2, fe):
        if c is not None:
            ok &= c >= 0
    n_dropped = int(n - ok.sum())
    all_ok = n_dropped == 0
    if not all_ok:
        y = y[ok]
        X = X[ok]

    def recode(c):
        if c is None:
            return None, 0
        if all_ok:
            return c, int(c.max()) + 1 if len(c) else 0
        # Dense codes again after dropping rows (a level may have lost all its rows).
        c = c[ok]
        used = np.bincount(c, minlength=1) > 0
        mapping = np.cumsum(used) - 1
        return mapping[c], int(used.sum())

    c1, g1 = recode(c1)
    c2, g2 = recode(c2)
    fe, n_fe = recode(fe)
    if fe is not None:
        if all_ok and not overwrite:
            # Never modify the caller's arrays: the within transformation works in place.
            X = np.array(X, dtype=float, order="F", copy=True)
            y = y.copy()
        elif not X.flags.f_contiguous:
            X = np.asfortranarray(X)
    return _Prepared(y, X, list(names), c1, g1, c2, g2, fe, n_fe, n_dropped)


def _crossprod(X: np.ndarray) -> np.ndarray:
    """X'X for a Fortran-ordered X, one matrix-vector product per column.

    Not ``X.T @ X``: numpy sends that to SYRK, and multi-threaded OpenBLAS level-3 calls
    measured 1-25 s on 2,000,000 x 24 when other processes share the two cores, against a steady
    0.3 s for these memory-bound GEMV passes.
    """
    k = X.shape[1]
    if k > _GEMV_MAX_K:
        # Wide designs (many indicators): the k/2 passes over X cost more than a level-3 call.
        return np.asarray(X.T @ np.ascontiguousarray(X))
    out = np.empty((k, k))
    for j in range(k):
        # Upper triangle only: X[:, j:] is a contiguous view, so the passes shrink as j grows.
        row = X[:, j] @ X[:, j:]
        out[j, j:] = row
        out[j:, j] = row
    return out


def _independent_columns(XtX: np.ndarray) -> np.ndarray:
    """Boolean mask of columns kept after dropping exact collinearity (pivoted QR on X'X)."""
    k = XtX.shape[0]
    d = np.sqrt(np.clip(np.diag(XtX), 0, None))
    scale = np.where(d > 0, d, 1.0)
    S = XtX / np.outer(scale, scale)
    keep = np.zeros(k, bool)
    nonzero = d > _COLLINEAR_TOL * max(float(d.max()) if k else 1.0, 1e-300)
    idx = np.flatnonzero(nonzero)
    if len(idx) == 0:
        return keep
    sub = S[np.ix_(idx, idx)]
    _, R, piv = linalg.qr(sub, pivoting=True)
    diag = np.abs(np.diag(R))
    rank = int((diag > _COLLINEAR_TOL * diag[0]).sum()) if diag.size and diag[0] > 0 else 0
    keep[idx[np.sort(piv[:rank])]] = True
    return keep


def _cluster_meat(codes: np.ndarray, n_groups: int, X: np.ndarray, e: np.ndarray) -> np.ndarray:
    U = np.empty((n_groups, X.shape[1]))
    for j in range(X.shape[1]):
        U[:, j] = np.bincount(codes, weights=X[:, j] * e, minlength=n_groups)
    return U.T @ U


def fit_ols(
    y: Any,
    X: Any,
    *,
    names: Sequence[str],
    cluster: Any = None,
    cluster2: Any = None,
    vcov: str = "cluster",
    level: float = 0.95,
    absorb: Any = None,
    overwrite_X: bool = False,
    demeaned: bool = False,
) -> OlsFit:
    """Least squares with classical, HC1, one-way or two-way cluster-robust standard errors.

    Parameters
    ----------
    y
        Outcome, shape (n,).
    X
        Regressors, shape (n, k) (include an intercept column unless effects are absorbed; an
        intercept that becomes zero after absorbing is omitted automatically).
    names
        One name per column of X.
    cluster
        Cluster identifier per row (any hashable values); required for ``vcov="cluster"``.
    cluster2
        Second cluster identifier for two-way (Cameron-Gelbach-Miller) clustering.
    vcov
        "classical", "HC1" or "cluster".
    level
        Confidence level of the intervals.
    absorb
        Fixed-effect identifier per row, swept out by the within transformation.
    overwrite_X
        Allow the within transformation to work in place on ``X`` and ``y`` (saves a copy of
        the design on large data; the caller must not reuse them).
    demeaned
        ``X`` and ``y`` were already within-transformed by ``absorb`` (e.g. once for several
        fits sharing the same rows); ``absorb`` is then used only for the degrees of freedom.
        Rows must be complete: a row dropped here would have been part of the group means.

    Returns
    -------
    OlsFit
    """
    if vcov not in VCOV_KINDS:
        raise DataError(
            f"unknown standard-error type {vcov!r}",
            where="model",
            hint=f"Use one of: {', '.join(VCOV_KINDS)}.",
        )
    if vcov == "cluster" and cluster is None:
        raise DataError(
            "clustered standard errors need a cluster variable",
            where="model",
            hint="Pass cluster= (e.g. the school of each student) or use vcov='HC1'.",
        )
    if not 0 < level < 1:
        raise DataError(f"confidence level {level} is not between 0 and 1", where="model")
    names = list(names)
    prep = _prepare(y, X, names, cluster if vcov == "cluster" else None,
                    cluster2 if vcov == "cluster" else None, absorb, overwrite_X or demeaned)
    yv, Xv = prep.y, prep.X
    names = prep.names
    n = len(yv)
    if demeaned and prep.n_dropped:
        raise DataError(
            f"{prep.n_dropped} rows have missing values but the data were already demeaned",
            where="model",
            hint="Drop incomplete rows before the within transformation.",
        )
    if prep.fe is not None and not demeaned:
        _demean(prep.fe, Xv, prep.n_fe)
        _demean(prep.fe, yv[:, None], prep.n_fe)
    if not Xv.flags.f_contiguous:
        Xv = np.asfortranarray(Xv)
    XtX = _crossprod(Xv)
    keep = _independent_columns(XtX)
    omitted = tuple(nm for nm, kp in zip(names, keep, strict=True) if not kp)
    if prep.fe is not None:
        # The intercept always vanishes under the within transformation; that is not news.
        omitted_report = tuple(o for o in omitted if o != "Intercept")
    else:
        omitted_report = omitted
    kept_names = [nm for nm, kp in zip(names, keep, strict=True) if kp]
    k = len(kept_names)
    if k == 0:
        raise DataError("the model has no estimable regressor", where="model", hint=None)
    if not keep.all():
        Xv = np.asfortranarray(Xv[:, keep])
        XtX = XtX[np.ix_(keep, keep)]
    k_fe = prep.n_fe if prep.fe is not None else 0
    df_resid = n - k - k_fe
    if df_resid <= 0:
        raise DataError(
            f"{n} usable rows are too few for {k + k_fe} parameters",
            where="model",
            hint="Use fewer covariates or more students.",
        )
    Xty = Xv.T @ yv
    try:
        cho = linalg.cho_factor(XtX)
        beta = linalg.cho_solve(cho, Xty)
        bread = linalg.cho_solve(cho, np.eye(k))
    except linalg.LinAlgError:
        bread = np.linalg.pinv(XtX)
        beta = bread @ Xty
    e = yv - Xv @ beta
    ssr = float(e @ e)
    tss = float(((yv - yv.mean()) ** 2).sum()) if prep.fe is None else float(yv @ yv)
    if prep.fe is None and "Intercept" not in kept_names:
        tss = float(yv @ yv)
    r2 = 1 - ssr / tss if tss > 0 else float("nan")
    notes: list[str] = []
    n_clusters: int | None = None
    kind = vcov
    if vcov == "classical":
        V = bread * (ssr / df_resid)
        df = float(df_resid)
    elif vcov == "HC1":
        meat = _crossprod(np.asfortranarray(Xv * np.abs(e)[:, None]))
        V = bread @ meat @ bread * (n / df_resid)
        df = float(df_resid)
    else:
        # Fixed effects nested in the clusters cost no cluster degrees of freedom (reghdfe).
        def k_for(codes, g):
            if prep.fe is None:
                return k
            nested = _nested(prep.fe, prep.n_fe, codes, g)
            return k if nested else k + k_fe

        def vc(codes, g):
            if g < 2:
                raise DataError(
                    f"clustered standard errors need at least 2 clusters; the data have {g}",
                    where="model",
                    hint="Use vcov='HC1' or cluster on a finer unit (class or teacher).",
                )
            kk = k_for(codes, g)
            factor = g / (g - 1) * (n - 1) / (n - kk)
            return bread @ _cluster_meat(codes, g, Xv, e) @ bread * factor

        V = vc(prep.c1, prep.g1)
        n_clusters = prep.g1
        if prep.c2 is not None:
            # Intersection clusters for the V12 term.
            inter = prep.c1 * prep.g2 + prep.c2
            uniq, inter = np.unique(inter, return_inverse=True)
            V = V + vc(prep.c2, prep.g2) - vc(inter, len(uniq))
            n_clusters = min(prep.g1, prep.g2)
            kind = "cluster2"
            eigval, eigvec = np.linalg.eigh((V + V.T) / 2)
            if np.any(eigval < 0):
                # Cameron, Gelbach & Miller (2011) §2.3: zero the negative eigenvalues so the
                # covariance is positive semi-definite.
                V = (eigvec * np.clip(eigval, 0, None)) @ eigvec.T
                notes.append(
                    "The two-way cluster covariance was not positive semi-definite; its negative "
                    "eigenvalues were set to 0 (Cameron, Gelbach & Miller 2011)."
                )
        df = float(n_clusters - 1)
        if n_clusters < 20:
            notes.append(
                f"Only {n_clusters} clusters: cluster-robust standard errors are imprecise with "
                f"so few, so inference uses t({n_clusters - 1}) and the intervals are wide."
            )
    with np.errstate(invalid="ignore"):
        se = np.sqrt(np.diag(V))
    tval = beta / se
    p = 2 * _dist.t_sf(np.abs(tval), df)
    crit = _dist.t_ppf(0.5 + level / 2, df)
    idx = pd.Index(kept_names)
    if omitted_report:
        notes.append("Omitted as collinear: " + ", ".join(omitted_report) + ".")
    return OlsFit(
        coef=pd.Series(beta, index=idx, dtype=float),
        se=pd.Series(se, index=idx, dtype=float),
        t=pd.Series(tval, index=idx, dtype=float),
        p_value=pd.Series(p, index=idx, dtype=float),
        ci_low=pd.Series(beta - crit * se, index=idx, dtype=float),
        ci_high=pd.Series(beta + crit * se, index=idx, dtype=float),
        vcov_matrix=pd.DataFrame(V, index=idx, columns=idx),
        n=n,
        k=k,
        n_clusters=n_clusters,
        df=df,
        vcov=kind,
        level=level,
        n_dropped=prep.n_dropped,
        n_absorbed=k_fe,
        omitted=omitted_report,
        r2=r2,
        df_resid=df_resid,
        notes=tuple(notes),
    )


def _nested(fe: np.ndarray, n_fe: int, clusters: np.ndarray, g: int) -> bool:
    """True when every fixed-effect level lies inside a single cluster."""
    first = np.full(n_fe, -1, dtype=np.int64)
    first[fe[::-1]] = clusters[::-1]
    return bool(np.all(first[fe] == clusters))


# Webb's six-point distribution: +-sqrt(1/2), +-1, +-sqrt(3/2) with equal probability.
_WEBB = np.array([-math.sqrt(1.5), -1.0, -math.sqrt(0.5), math.sqrt(0.5), 1.0, math.sqrt(1.5)])

#: A bootstrap t within this relative distance of the observed t counts as a tie (at least as
#: extreme). The six constant weight vectors (every cluster weighted c) give t* = +-t exactly in
#: exact arithmetic, so an enumerated p-value is at least 6 / 6**G; computed, those six land on
#: either side of |t| by rounding, and an absolute margin of 1e-12 dropped some or all of them
#: (p = 0 or 2/216 instead of at least 6/216 with 3 clusters; which ones moved with the CPU).
BOOTSTRAP_TIE_RTOL = 1e-7


def wild_cluster_bootstrap(
    y: Any,
    X: Any,
    *,
    names: Sequence[str],
    term: str,
    cluster: Any,
    absorb: Any = None,
    reps: int = 9999,
    seed: int = 0,
) -> dict[str, Any]:
    """Wild cluster restricted (WCR) bootstrap p-value for H0: coefficient of ``term`` = 0.

    Webb six-point weights; when 6**G <= ``reps`` every weight vector is enumerated, so the
    p-value is exact for the bootstrap distribution (with 5 schools, 7,776 draws). The p-value
    is the share of draws with |t*| >= |t|, ties included (see ``BOOTSTRAP_TIE_RTOL``), so an
    enumerated one is never below 6 / 6**G. The bootstrap t uses the same CR1 standard error as
    :func:`fit_ols`. Roodman et al. (2019) recommend this when there are fewer than about 20
    clusters.

    Returns
    -------
    dict with ``p_value``, ``reps``, ``enumerated``, ``weights``, ``t_observed``.
    """
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
    # X'X products go through _crossprod: `Xr.T @ Xr` on the copy np.delete makes (and the
    # per-cluster products below) took 0.8 s each at 16,000 rows in numpy's matmul.
    Xr = np.asfortranarray(np.delete(Xv, j, axis=1))
    br = np.linalg.solve(_crossprod(Xr), Xr.T @ yv)
    er = yv - Xr @ br
    S = _group_sums(c, Xv * er[:, None], G)  # X_g' e_r,g
    # X_g' X_g for every cluster, to update residual scores without touching n rows again.
    XgXg = np.zeros((G, k, k))
    for g in range(G):
        rows = c == g
        XgXg[g] = _crossprod(np.asfortranarray(Xv[rows]))
    if reps >= 6**G:
        grids = np.meshgrid(*([np.arange(6)] * G), indexing="ij")
        W = _WEBB[np.stack([gr.ravel() for gr in grids], axis=1)]
        enumerated = True
    else:
        rng = np.random.default_rng(seed)
        W = _WEBB[rng.integers(0, 6, size=(reps, G))]
        enumerated = False
    # b* - b_r = A sum_g w_g S_g ; cluster scores of the bootstrap residuals:
    # X_g' e*_g = w_g S_g - X_g'X_g (b* - b_r).
    delta = (W @ S) @ A.T  # (B, k)
    # Only V*[j, j] is needed: with a = A[:, j] (A is symmetric), V*[j, j] = factor *
    # sum_g (a' X_g' e*_g)^2 and a' X_g' e*_g = w_g (S_g a) - delta' (X_g'X_g a), so all B draws
    # take two small matrix products instead of a k-by-k sandwich per draw (7,776 of them with
    # 5 schools: 1-2 s per call before).
    a = A[:, j]
    q = W * (S @ a)[None, :] - delta @ (XgXg @ a).T  # (B, G)
    vjj = factor * np.einsum("bg,bg->b", q, q)
    positive = vjj > 0
    t_star = np.zeros(len(W))
    t_star[positive] = delta[positive, j] / np.sqrt(vjj[positive])
    p = float(np.mean(np.abs(t_star) >= abs(t_obs) * (1 - BOOTSTRAP_TIE_RTOL)))
    return {
        "p_value": p,
        "reps": len(W),
        "enumerated": enumerated,
        "weights": "webb",
        "t_observed": float(t_obs),
    }
