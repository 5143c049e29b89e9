"""Propensity-score matching: logit score, exact strata, greedy nearest neighbour, calipers,
ratio and replacement options, balance tables and overlap diagnostics.

Conventions (``validation.md`` §4; reproduces MatchIt's ``matchit(treat ~ ..., data = lalonde)``
balance tables exactly):

- propensity score = fitted probability of a logit of treatment on the covariates (categories as
  dummies);
- greedy matching takes treated units in *descending* score order ("largest"); each takes the
  closest still-unused comparison unit (ties: the earlier row), within its exact-match stratum and
  caliper; with ``ratio = k`` there are k rounds, as in MatchIt;
- the estimand is the ATT -- the effect on the treated. It is never switched: when users
  outnumber non-users some users stay unmatched and are reported (the RCE Coach instead flipped
  the treatment flag, silently estimating the effect on non-users);
- balance: MatchIt's standardized mean difference divides by the SD of the *treated group in the
  unmatched sample* (also after matching; √(p(1-p)) for 0/1 variables); the WWC convention divides
  by the pooled within-group SD of the sample at hand with ω (Cox index for 0/1 variables);
  variance ratio = var_T / var_C (continuous variables only).

What matching cannot show: it balances only what was measured. Motivation, teacher enthusiasm and
anything else that drives both use and achievement remain possible confounders.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from rce.errors import DataError
from rce.stats import effect_sizes as es
from rce.stats._impact_common import fmt, json_safe, pct
from rce.stats.ols import design_matrix

DISTANCES = ("logit", "ps")
#: Bins of the propensity-score histograms used for the overlap coefficient.
_OVERLAP_BINS = 20


@dataclass(frozen=True)
class PropensityModel:
    """A fitted logit propensity model."""

    score: pd.Series  # P(treated | covariates), indexed like the rows used
    names: tuple[str, ...]
    coef: pd.Series
    n: int
    notes: tuple[str, ...] = ()

    @property
    def logit(self) -> pd.Series:
        """Log-odds of the score (the usual matching distance)."""
        p = self.score.clip(1e-12, 1 - 1e-12)
        return np.log(p / (1 - p))


def propensity_score(
    frame: pd.DataFrame,
    treatment: str,
    covariates: Sequence[str],
    *,
    categorical: Sequence[str] = (),
) -> PropensityModel:
    """Fit a logit of ``treatment`` (0/1) on numeric ``covariates`` and ``categorical`` dummies.

    Rows with any missing value must have been removed by the caller (``match`` does this and
    counts them).
    """
    X, names = design_matrix(frame, numeric=list(covariates), categorical=list(categorical))
    y = frame[treatment].to_numpy(dtype=float)
    keep = _independent(X)
    X, names = X[:, keep], [n for n, k in zip(names, keep, strict=True) if k]
    notes: list[str] = []
    # exp() overflows on (quasi-)separated data; that case is reported in the notes instead.
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        try:
            params, separated, converged = _logit_newton(y, X, maxiter=200)
        except np.linalg.LinAlgError:
            raise DataError(
                "the propensity model could not be fitted (singular covariates)",
                where="matching",
                hint="Drop covariates that are constant or duplicate each other.",
            ) from None
    if separated:
        notes.append("The propensity model shows (quasi-)perfect separation: some students "
                     "have no comparable counterpart.")
    if not converged:
        notes.append("The propensity model did not fully converge.")
    score = pd.Series(_logistic(X, params), index=frame.index, name="propensity_score")
    return PropensityModel(score, tuple(names), pd.Series(params, index=names), len(y),
                           tuple(dict.fromkeys(notes)))


def _logistic(X: np.ndarray, params: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-(np.dot(X, params) + 0.0)))


def _logit_newton(
    y: np.ndarray, X: np.ndarray, *, maxiter: int = 200, tol: float = 1e-8, ridge: float = 1e-10
) -> tuple[np.ndarray, bool, bool]:
    """Logit maximum likelihood by Newton-Raphson; returns (params, separated, converged).

    Step for step the arithmetic of statsmodels' ``Logit(y, X).fit(method="newton")`` (start at
    zero, score and Hessian of the mean log-likelihood, ridge 1e-10 on the Hessian's diagonal,
    stop when no coefficient moves more than ``tol``), so the coefficients are the same to the
    last bit (``tests/test_matching.py`` compares them) without importing statsmodels, which
    cost 2-4 s of every ``rce analyze``. Separation is flagged as statsmodels does: fitted
    probabilities equal to the 0/1 outcome (``np.allclose``) after some step.

    Raises
    ------
    numpy.linalg.LinAlgError
        When the Hessian at the solution cannot be inverted (as statsmodels does).
    """
    nobs = y.shape[0]

    def score(params: np.ndarray) -> np.ndarray:
        return -np.dot(y - _logistic(X, params), X) / nobs

    def hess(params: np.ndarray) -> np.ndarray:
        L = _logistic(X, params)
        return np.dot(L * (1 - L) * X.T, X) / nobs  # -(Hessian)/n; negation is exact

    iterations = 0
    separated = False
    oldparams: Any = np.inf
    newparams = np.asarray([0.0] * X.shape[1])
    while iterations < maxiter and np.any(np.abs(newparams - oldparams) > tol):
        H = np.asarray(hess(newparams))
        H[np.diag_indices(H.shape[0])] += ridge
        oldparams = newparams
        newparams = oldparams - np.linalg.solve(H, score(oldparams))
        if np.allclose(_logistic(X, newparams) - y, 0):
            separated = True
        iterations += 1
    np.linalg.inv(hess(newparams))  # the covariance step; singular means not identified
    return newparams, separated, iterations != maxiter


def _independent(X: np.ndarray) -> list[bool]:
    # Drop zero-variance dummies and exactly collinear columns, greedily left to right. The
    # columns of X = QR have the singular values of the columns of R, so the rank of each
    # candidate set is taken on the small R (one QR of X instead of an SVD of an n-by-j matrix
    # per column), with numpy's matrix_rank tolerance for the n-row matrix.
    n = X.shape[0]
    R = np.linalg.qr(X, mode="r") if n > X.shape[1] else X
    keep: list[bool] = []
    kept: list[int] = []
    eps = np.finfo(float).eps
    for j in range(X.shape[1]):
        cand = R[:, [*kept, j]]
        sv = np.linalg.svd(cand, compute_uv=False)
        tol = sv.max(initial=0.0) * max(n, cand.shape[1]) * eps
        ok = int(np.count_nonzero(sv > tol)) == cand.shape[1]
        col = X[:, j]
        if ok and j > 0 and np.all(col == col[0]):
            ok = False
        keep.append(bool(ok))
        if ok:
            kept.append(j)
    return keep


# --- greedy nearest neighbour -----------------------------------------------------------------


def nearest_neighbor(
    distance: pd.Series,
    treated: pd.Series,
    *,
    order: pd.Series | None = None,
    strata: pd.Series | None = None,
    caliper: float | None = None,
    ratio: int = 1,
    replace: bool = False,
) -> pd.DataFrame:
    """Greedy nearest-neighbour matching on a scalar distance.

    Parameters
    ----------
    distance
        Matching distance per row (propensity score or its logit).
    treated
        Boolean/0-1 per row (same index).
    order
        Treated units are processed in descending order of this (default ``distance``).
    strata
        Exact-match stratum per row; matches never cross strata.
    caliper
        Largest allowed |distance difference| (in distance units); None for no caliper.
    ratio
        Comparison units per treated unit (k rounds, as MatchIt).
    replace
        Whether a comparison unit may be used more than once.

    Returns
    -------
    DataFrame
        One row per (treated, comparison) pair: ``treated``, ``control`` (row labels),
        ``round``, ``abs_distance``.
    """
    if ratio < 1:
        raise DataError("the matching ratio must be at least 1", where="analysis.match_ratio",
                        hint=None)
    t = treated.astype(bool).to_numpy()
    d = distance.to_numpy(dtype=float)
    o = (order if order is not None else distance).to_numpy(dtype=float)
    s = (np.zeros(len(d), dtype=np.int64) if strata is None
         else pd.factorize(strata, use_na_sentinel=True)[0])
    labels = distance.index.to_numpy()
    pairs: list[tuple[Any, Any, int, float]] = []
    for stratum in np.unique(s):
        if stratum < 0:
            continue
        ti = np.flatnonzero((s == stratum) & t)
        ci = np.flatnonzero((s == stratum) & ~t)
        if len(ti) == 0 or len(ci) == 0:
            continue
        ti = ti[np.argsort(-o[ti], kind="mergesort")]
        cd = d[ci]
        available = np.ones(len(ci), dtype=bool)
        active = np.ones(len(ti), dtype=bool)  # treated still taking matches this round
        # With replacement a treated unit may share controls with others, never reuse its own.
        own: list[np.ndarray] = [np.ones(len(ci), dtype=bool) for _ in range(len(ti))] \
            if replace else []
        for rnd in range(1, ratio + 1):
            for a, i in enumerate(ti):
                if not active[a]:
                    continue
                gap = np.abs(cd - d[i])
                mask = own[a] if replace else available
                if caliper is not None:
                    mask = mask & (gap <= caliper)
                if not mask.any():
                    active[a] = False
                    continue
                k = int(np.argmin(np.where(mask, gap, np.inf)))
                pairs.append((labels[i], labels[ci[k]], rnd, float(gap[k])))
                if replace:
                    own[a][k] = False
                else:
                    available[k] = False
    return pd.DataFrame(pairs, columns=["treated", "control", "round", "abs_distance"])


def match_weights(pairs: pd.DataFrame) -> pd.Series:
    """ATT matching weights: 1 for each matched treated unit; a comparison unit gets Σ 1/k_i over
    the treated units i it serves (k_i = matches of i), rescaled so comparison weights sum to the
    number of distinct comparison units used (MatchIt's convention)."""
    if pairs.empty:
        return pd.Series(dtype=float)
    k = pairs.groupby("treated")["control"].transform("size").astype(float)
    wc = (1.0 / k).groupby(pairs["control"]).sum()
    wc = wc * len(wc) / wc.sum()
    wt = pd.Series(1.0, index=pd.unique(pairs["treated"]))
    return pd.concat([wt, wc])


# --- balance ----------------------------------------------------------------------------------


def _wmean(x: np.ndarray, w: np.ndarray) -> float:
    return float(np.sum(w * x) / np.sum(w))


def _wvar(x: np.ndarray, w: np.ndarray) -> float:
    # Unbiased weighted variance (MatchIt's col_w_var); equals var(ddof=1) for unit weights.
    sw = w.sum()
    m = np.sum(w * x) / sw
    denom = sw - np.sum(w**2) / sw
    return float(np.sum(w * (x - m) ** 2) / denom) if denom > 0 else math.nan


def is_binary(x: pd.Series) -> bool:
    """True when a numeric column holds only 0 and 1 (missing values ignored)."""
    v = pd.unique(x.dropna())
    return len(v) <= 2 and set(np.asarray(v, dtype=float).tolist()) <= {0.0, 1.0}


def balance_table(
    frame: pd.DataFrame,
    treatment: str,
    variables: Sequence[str],
    *,
    weights: pd.Series | None = None,
    reference_sd: dict[str, float] | None = None,
) -> pd.DataFrame:
    """Standardized differences and variance ratios of ``variables`` between the groups.

    Parameters
    ----------
    frame
        The sample (all data, or the matched sample).
    treatment
        0/1 column.
    variables
        Numeric columns (0/1 for binary variables).
    weights
        Optional matching weights (default all 1).
    reference_sd
        SD per variable for MatchIt's SMD denominator; default the treated-group SD of ``frame``
        (pass the unmatched sample's values when tabulating a matched sample).

    Returns
    -------
    DataFrame
        ``variable, binary, mean_treatment, mean_comparison, smd, smd_wwc, var_ratio,
        n_treatment, n_comparison`` where ``smd`` uses MatchIt's denominator (treated SD of the
        unmatched sample; √(p(1-p)) for 0/1) and ``smd_wwc`` is the WWC effect size on this sample
        (Hedges' g with pooled SD and ω; Cox index for 0/1).
    """
    t = frame[treatment].to_numpy(dtype=float) == 1
    w = (np.ones(len(frame)) if weights is None
         else weights.reindex(frame.index).to_numpy(dtype=float))
    rows = []
    ref = reference_sd or treated_sd(frame, treatment, variables)
    for v in variables:
        x = frame[v].to_numpy(dtype=float)
        binary = is_binary(frame[v])
        xt, xc, wt, wc = x[t], x[~t], w[t], w[~t]
        mt, mc = _wmean(xt, wt), _wmean(xc, wc)
        sd = ref.get(v, math.nan)
        smd = (mt - mc) / sd if sd and math.isfinite(sd) and sd > 0 else math.nan
        vr = math.nan if binary else _wvar(xt, wt) / _wvar(xc, wc)
        rows.append(
            {
                "variable": v,
                "binary": binary,
                "mean_treatment": mt,
                "mean_comparison": mc,
                "smd": smd,
                "smd_wwc": _wwc_es(xt, xc, wt, wc, binary),
                "var_ratio": vr,
                "n_treatment": int(t.sum()),
                "n_comparison": int((~t).sum()),
            }
        )
    return pd.DataFrame(rows)


def treated_sd(frame: pd.DataFrame, treatment: str, variables: Sequence[str]) -> dict[str, float]:
    """MatchIt's SMD denominators: SD of each variable in the treated group (√(p(1-p)) for 0/1)."""
    t = frame[treatment].to_numpy(dtype=float) == 1
    out = {}
    for v in variables:
        x = frame[v].to_numpy(dtype=float)[t]
        if is_binary(frame[v]):
            p = float(x.mean()) if len(x) else math.nan
            out[v] = math.sqrt(p * (1 - p))
        else:
            out[v] = float(np.std(x, ddof=1)) if len(x) > 1 else math.nan
    return out


def _wwc_es(xt, xc, wt, wc, binary) -> float:
    nt, nc = len(xt), len(xc)
    if nt < 2 or nc < 2:
        return math.nan
    mt, mc = _wmean(xt, wt), _wmean(xc, wc)
    if binary:
        if not (0 < mt < 1 and 0 < mc < 1):
            return 0.0 if mt == mc else math.nan
        return es.cox_index(mt, mc, nt, nc)
    sd_t, sd_c = math.sqrt(_wvar(xt, wt)), math.sqrt(_wvar(xc, wc))
    return es.hedges_g_from_summary(mt, mc, sd_t, sd_c, nt, nc).g


# --- overlap ----------------------------------------------------------------------------------


def overlap_coefficient(a: np.ndarray, b: np.ndarray, bins: int = _OVERLAP_BINS) -> float:
    """Share of two distributions' mass that overlaps: Σ min(f_a, f_b) over common histogram
    bins (1 = identical, 0 = disjoint). Used on the logit propensity score."""
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    if len(a) == 0 or len(b) == 0:
        return math.nan
    lo, hi = min(a.min(), b.min()), max(a.max(), b.max())
    if hi <= lo:
        return 1.0
    edges = np.linspace(lo, hi, bins + 1)
    fa = np.histogram(a, edges)[0] / len(a)
    fb = np.histogram(b, edges)[0] / len(b)
    return float(np.minimum(fa, fb).sum())


@dataclass(frozen=True)
class Overlap:
    """Common-support diagnostics of the propensity score."""

    treated_min: float
    treated_max: float
    comparison_min: float
    comparison_max: float
    treated_outside_support: int
    share_treated_outside_support: float
    overlap_before: float
    overlap_after: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict."""
        return json_safe(self.__dict__.copy())


# --- the whole procedure ----------------------------------------------------------------------


@dataclass(frozen=True)
class MatchResult:
    """A matched comparison: pairs, the matched sample, balance before/after, overlap."""

    estimand: str
    pairs: pd.DataFrame
    matched: pd.DataFrame  # rows of the input (index kept) with 'weight' and 'propensity_score'
    balance_before: pd.DataFrame
    balance_after: pd.DataFrame
    overlap: Overlap
    n_treated: int
    n_comparison: int
    n_treated_matched: int
    n_comparison_matched: int
    n_dropped_missing: int
    distance: str
    caliper_sd: float | None
    caliper: float | None
    ratio: int
    replace: bool
    exact: tuple[str, ...]
    propensity: PropensityModel
    notes: tuple[str, ...] = field(default=())

    @property
    def share_treated_matched(self) -> float:
        """Matched users / users offered."""
        return self.n_treated_matched / self.n_treated if self.n_treated else math.nan

    def to_frame(self) -> pd.DataFrame:
        """The balance table, before and after matching side by side (love-plot input)."""
        b = self.balance_before.set_index("variable")
        a = self.balance_after.set_index("variable")
        out = b[["binary", "mean_treatment", "mean_comparison", "smd", "smd_wwc", "var_ratio"]]
        out = out.add_suffix("_before").rename(columns={"binary_before": "binary"})
        aft = a[["mean_treatment", "mean_comparison", "smd", "smd_wwc", "var_ratio"]]
        return out.join(aft.add_suffix("_after")).reset_index()

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (no row labels or identifiers; only counts and balance)."""
        return json_safe(
            {
                "estimand": self.estimand,
                "n_treated": self.n_treated,
                "n_comparison": self.n_comparison,
                "n_treated_matched": self.n_treated_matched,
                "n_comparison_matched": self.n_comparison_matched,
                "share_treated_matched": self.share_treated_matched,
                "n_dropped_missing": self.n_dropped_missing,
                "distance": self.distance,
                "caliper_sd": self.caliper_sd,
                "ratio": self.ratio,
                "replace": self.replace,
                "exact": list(self.exact),
                "balance_before": self.balance_before,
                "balance_after": self.balance_after,
                "overlap": self.overlap.to_dict(),
                "smd_denominator": "treated-group SD of the unmatched sample (MatchIt); "
                "smd_wwc: pooled within-group SD with omega, Cox index for 0/1 (WWC)",
                "notes": list(self.notes),
            }
        )

    def summary(self) -> str:
        """Readable text."""
        cal = "no caliper" if self.caliper_sd is None else f"caliper {self.caliper_sd:g} SD"
        lines = [
            f"Matched comparison ({self.estimand}): {self.n_treated_matched} of {self.n_treated} "
            f"users matched ({pct(self.share_treated_matched)}) to {self.n_comparison_matched} "
            f"of {self.n_comparison} non-users; {self.ratio}:1 nearest neighbour on the "
            f"{'logit of the ' if self.distance == 'logit' else ''}propensity score, {cal}"
            + (f", exact on {', '.join(self.exact)}" if self.exact else "") + ".",
            f"Propensity overlap {fmt(self.overlap.overlap_before, 2)} before, "
            f"{fmt(self.overlap.overlap_after, 2)} after matching.",
            "Balance (SMD, MatchIt convention; before -> after):",
        ]
        for _, r in self.to_frame().iterrows():
            lines.append(f"  {r['variable']}: {fmt(r['smd_before'])} -> {fmt(r['smd_after'])}")
        lines.extend(self.notes)
        return "\n".join(lines)


def match(
    frame: pd.DataFrame,
    treatment: str,
    covariates: Sequence[str],
    *,
    categorical: Sequence[str] = (),
    exact: Sequence[str] = (),
    caliper: float | None = None,
    distance: str = "logit",
    ratio: int = 1,
    replace: bool = False,
) -> MatchResult:
    """Propensity-score matching for the ATT, with balance before and after.

    Parameters
    ----------
    frame
        One row per unit.
    treatment
        0/1 column (1 = user / treated).
    covariates
        Numeric covariates of the propensity model (0/1 for binary ones).
    categorical
        Categorical covariates, entered as dummies (and tabulated per level).
    exact
        Columns to match exactly on (e.g. grade, school); they also enter the propensity model
        as categories unless already listed.
    caliper
        Caliper in SDs of the distance (full-sample SD, as MatchIt); None for none. The project
        default (``plan.analysis.caliper``) is 0.2 SD of the logit (Austin 2011).
    distance
        ``"logit"`` (logit of the score) or ``"ps"`` (the score itself; MatchIt's default).
    ratio, replace
        Comparison units per treated unit; matching with replacement.

    Returns
    -------
    MatchResult
    """
    if distance not in DISTANCES:
        raise DataError(f"unknown matching distance {distance!r}", where="matching",
                        hint="Use 'logit' or 'ps'.")
    needed = [treatment, *covariates, *categorical, *exact]
    missing_cols = [c for c in dict.fromkeys(needed) if c not in frame.columns]
    if missing_cols:
        raise DataError(f"the analysis frame has no column {missing_cols[0]!r}",
                        where="matching", hint="Check the covariate list.")
    complete = frame[list(dict.fromkeys(needed))].notna().all(axis=1)
    data = frame.loc[complete].copy()
    n_dropped = int((~complete).sum())
    tr = pd.to_numeric(data[treatment], errors="coerce")
    if not tr.isin([0, 1]).all():
        raise DataError("the treatment column must be 0/1", where=f"column {treatment}",
                        hint=None)
    data[treatment] = tr.astype(float)
    n_t, n_c = int((tr == 1).sum()), int((tr == 0).sum())
    if n_t < 2 or n_c < 2:
        raise DataError(
            f"matching needs at least 2 users and 2 non-users with complete data "
            f"(found {n_t} and {n_c})",
            where="matching",
            hint="A matched comparison needs comparable non-users.",
        )
    cats = list(dict.fromkeys([*categorical, *[e for e in exact if e not in covariates]]))
    model = propensity_score(data, treatment, covariates, categorical=cats)
    data["propensity_score"] = model.score
    dist = model.logit if distance == "logit" else model.score
    cal_abs = None if caliper is None else float(caliper * dist.std(ddof=1))
    strata = None
    if exact:
        strata = data[exact[0]].astype(str)
        for col in exact[1:]:  # vectorized concatenation (row-wise join is slow)
            strata = strata + "|" + data[col].astype(str)
    pairs = nearest_neighbor(dist, data[treatment] == 1, order=model.score, strata=strata,
                             caliper=cal_abs, ratio=ratio, replace=replace)
    weights = match_weights(pairs)
    matched = data.loc[weights.index].copy()
    matched["weight"] = weights.to_numpy()

    # Balance variables: numeric covariates, every level of each categorical, and the distance.
    bal_frame, bal_vars = _balance_frame(data, treatment, covariates, categorical)
    bal_frame["distance"] = model.score
    bal_vars = ["distance", *bal_vars]
    ref = treated_sd(bal_frame, treatment, bal_vars)
    before = balance_table(bal_frame, treatment, bal_vars, reference_sd=ref)
    mb = bal_frame.loc[weights.index]
    after = balance_table(mb, treatment, bal_vars, weights=weights, reference_sd=ref)

    lt = dist[data[treatment] == 1].to_numpy()
    lc = dist[data[treatment] == 0].to_numpy()
    outside = int(((lt < lc.min()) | (lt > lc.max())).sum())
    mt_ = dist.loc[pairs["treated"].unique()].to_numpy() if len(pairs) else np.array([])
    mc_ = dist.loc[pd.unique(pairs["control"])].to_numpy() if len(pairs) else np.array([])
    ps = model.score
    overlap = Overlap(
        treated_min=float(ps[data[treatment] == 1].min()),
        treated_max=float(ps[data[treatment] == 1].max()),
        comparison_min=float(ps[data[treatment] == 0].min()),
        comparison_max=float(ps[data[treatment] == 0].max()),
        treated_outside_support=outside,
        share_treated_outside_support=outside / n_t,
        overlap_before=overlap_coefficient(lt, lc),
        overlap_after=overlap_coefficient(mt_, mc_),
    )
    n_tm = int(pairs["treated"].nunique()) if len(pairs) else 0
    n_cm = int(pairs["control"].nunique()) if len(pairs) else 0
    notes = list(model.notes)
    notes.append("Estimand: average effect on the treated (ATT) -- on the users who could be "
                 "matched; it is never switched to the effect on non-users.")
    if n_tm < n_t:
        notes.append(f"{n_t - n_tm} of {n_t} users found no comparable non-user "
                     f"({'within the caliper' if caliper is not None else 'left'}"
                     f"{' in their ' + '/'.join(exact) if exact else ''}) and are not in the "
                     "estimate: it describes the matched users only.")
    if n_t > n_c * ratio and not replace:
        notes.append(f"Users outnumber non-users ({n_t} vs {n_c}): without replacement at most "
                     f"{n_c // ratio} users can be matched. Matching with replacement "
                     "(analysis.match_with_replacement) keeps more users in the ATT at the cost "
                     "of a larger variance.")
    if n_dropped:
        notes.append(f"{n_dropped} students with a missing matching variable were left out.")
    return MatchResult(
        estimand="ATT",
        pairs=pairs,
        matched=matched,
        balance_before=before,
        balance_after=after,
        overlap=overlap,
        n_treated=n_t,
        n_comparison=n_c,
        n_treated_matched=n_tm,
        n_comparison_matched=n_cm,
        n_dropped_missing=n_dropped,
        distance=distance,
        caliper_sd=caliper,
        caliper=cal_abs,
        ratio=ratio,
        replace=replace,
        exact=tuple(exact),
        propensity=model,
        notes=tuple(notes),
    )


def _balance_frame(
    data: pd.DataFrame, treatment: str, covariates: Sequence[str], categorical: Sequence[str]
) -> tuple[pd.DataFrame, list[str]]:
    cols: dict[str, Any] = {treatment: data[treatment]}
    names: list[str] = []
    for c in covariates:
        cols[c] = pd.to_numeric(data[c], errors="coerce").astype(float)
        names.append(c)
    for c in categorical:
        X, lv = design_matrix(data, categorical=[c], drop_first=False, intercept=False)
        for j, n in enumerate(lv):
            cols[n] = X[:, j]
            names.append(n)
    return pd.DataFrame(cols, index=data.index), names
