"""Mean differences and standardized effect sizes, following the WWC's formulas.

References (methods.md §3.1-3.2, validation.md §5-6):

- Welch's unequal-variance t interval (R ``t.test`` default; ``sleep`` example reproduced).
- Hedges' g = omega * (difference) / pooled SD, with the WWC small-sample factor
  omega = 1 - 3 / (4N - 9), N = n_T + n_C (identical to Hedges' J = 1 - 3/(4 df - 1), df = N - 2;
  the exact gamma-function J differs in the 5th decimal and is *not* used). For covariate-adjusted
  findings the numerator is the adjusted difference and the denominator stays the unadjusted
  pooled SD.
- SE(g) = sqrt((n_T + n_C)/(n_T n_C) + g^2 / (2 (n_T + n_C))) (WWC v4.1).
- Cox index for binary outcomes: omega * (logit p_T - logit p_C) / 1.65.
- Improvement index = 100 * Phi(g) - 50 (percentile points).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from rce.errors import DataError
from rce.jsonsafe import finite_or_none
from rce.stats import _dist


def _clean(values: Any, what: str) -> np.ndarray:
    arr = np.asarray(values, dtype=float).ravel()
    return arr[np.isfinite(arr)]


@dataclass(frozen=True)
class WelchResult:
    """Difference in means (x minus y) with Welch's unequal-variance t inference.

    NaN statistics (and ``notes``) when either group has fewer than 2 values.
    """

    diff: float
    se: float
    df: float
    t: float
    p_value: float
    ci_low: float
    ci_high: float
    n_x: int
    n_y: int
    mean_x: float
    mean_y: float
    level: float = 0.95
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (NaN -> None)."""
        return {
            "diff": finite_or_none(self.diff),
            "se": finite_or_none(self.se),
            "df": finite_or_none(self.df),
            "t": finite_or_none(self.t),
            "p_value": finite_or_none(self.p_value),
            "ci_low": finite_or_none(self.ci_low),
            "ci_high": finite_or_none(self.ci_high),
            "n_x": self.n_x,
            "n_y": self.n_y,
            "mean_x": finite_or_none(self.mean_x),
            "mean_y": finite_or_none(self.mean_y),
            "level": self.level,
            "notes": list(self.notes),
        }

    def summary(self) -> str:
        pct = round(self.level * 100)
        return (
            f"difference {self.diff:.4g} (Welch SE {self.se:.4g}, df {self.df:.2f}), "
            f"{pct}% CI [{self.ci_low:.4g}, {self.ci_high:.4g}], p = {self.p_value:.4g}; "
            f"n = {self.n_x} vs {self.n_y}"
        )


def welch_from_summary(
    mean_x: float,
    var_x: float,
    n_x: int,
    mean_y: float,
    var_y: float,
    n_y: int,
    level: float = 0.95,
) -> WelchResult:
    """Welch's test from group means, variances (n - 1 denominator) and sizes."""
    diff = mean_x - mean_y
    if n_x < 2 or n_y < 2:
        nan = float("nan")
        return WelchResult(diff, nan, nan, nan, nan, nan, nan, n_x, n_y, mean_x, mean_y, level,
                           ("Fewer than 2 students in a group: no interval.",))
    vx, vy = var_x / n_x, var_y / n_y
    se = math.sqrt(vx + vy)
    if se == 0:
        nan = float("nan")
        return WelchResult(diff, 0.0, nan, nan, nan, diff, diff, n_x, n_y, mean_x, mean_y, level,
                           ("Both groups have no spread: no test.",))
    df = (vx + vy) ** 2 / (vx**2 / (n_x - 1) + vy**2 / (n_y - 1))
    t = diff / se
    p = float(2 * _dist.t_sf(abs(t), df))
    crit = float(_dist.t_ppf(0.5 + level / 2, df))
    return WelchResult(diff, se, df, t, p, diff - crit * se, diff + crit * se, n_x, n_y,
                       mean_x, mean_y, level)


def welch(x: Any, y: Any, level: float = 0.95) -> WelchResult:
    """Welch two-sample t test and interval for mean(x) - mean(y).

    Missing values are ignored. Matches R ``t.test(x, y)`` (validation.md §5: sleep data,
    t = -1.8608, df = 17.776, p = 0.07939).

    Parameters
    ----------
    x, y
        The two samples.
    level
        Confidence level.

    Returns
    -------
    WelchResult
    """
    a, b = _clean(x, "x"), _clean(y, "y")
    va = float(a.var(ddof=1)) if len(a) > 1 else float("nan")
    vb = float(b.var(ddof=1)) if len(b) > 1 else float("nan")
    ma = float(a.mean()) if len(a) else float("nan")
    mb = float(b.mean()) if len(b) else float("nan")
    return welch_from_summary(ma, va, len(a), mb, vb, len(b), level)


def omega(n_total: int) -> float:
    """WWC small-sample correction 1 - 3/(4N - 9), N = n_T + n_C."""
    if n_total < 3:
        raise DataError(
            f"Hedges' correction needs at least 3 students in total, not {n_total}",
            where="effect size",
            hint=None,
        )
    return 1 - 3 / (4 * n_total - 9)


def pooled_sd_from_summary(sd_t: float, n_t: int, sd_c: float, n_c: int) -> float:
    """Pooled within-group SD: sqrt(((n_T-1) s_T^2 + (n_C-1) s_C^2) / (n_T + n_C - 2))."""
    if n_t + n_c < 3:
        return float("nan")
    return math.sqrt(((n_t - 1) * sd_t**2 + (n_c - 1) * sd_c**2) / (n_t + n_c - 2))


def pooled_sd(x: Any, y: Any) -> float:
    """Pooled within-group standard deviation of two samples (missing values ignored)."""
    a, b = _clean(x, "x"), _clean(y, "y")
    if len(a) < 2 or len(b) < 2:
        return float("nan")
    return pooled_sd_from_summary(float(a.std(ddof=1)), len(a), float(b.std(ddof=1)), len(b))


@dataclass(frozen=True)
class HedgesG:
    """Hedges' g with the WWC omega correction.

    Attributes
    ----------
    g
        omega * difference / pooled SD.
    d
        The uncorrected standardized difference (Cohen's d with the pooled SD).
    se
        WWC standard error of g.
    omega
        The small-sample factor used.
    difference
        The (possibly covariate-adjusted) mean difference in the numerator.
    pooled_sd
        The unadjusted pooled within-group SD in the denominator.
    """

    g: float
    d: float
    se: float
    omega: float
    difference: float
    pooled_sd: float
    n_t: int
    n_c: int

    def to_dict(self) -> dict[str, Any]:
        return {
            k: (finite_or_none(v) if isinstance(v, float) else v) for k, v in self.__dict__.items()
        }


def se_hedges_g(g: float, n_t: int, n_c: int) -> float:
    """WWC v4.1 standard error of g: sqrt((n_T+n_C)/(n_T n_C) + g^2/(2(n_T+n_C)))."""
    return math.sqrt((n_t + n_c) / (n_t * n_c) + g**2 / (2 * (n_t + n_c)))


def hedges_g_from_summary(
    mean_t: float,
    mean_c: float,
    sd_t: float,
    sd_c: float,
    n_t: int,
    n_c: int,
    *,
    adjusted_difference: float | None = None,
) -> HedgesG:
    """Hedges' g from summary statistics (WWC: omega * difference / unadjusted pooled SD).

    ``adjusted_difference`` replaces the raw mean difference in the numerator for
    covariate-adjusted findings.
    """
    diff = (mean_t - mean_c) if adjusted_difference is None else adjusted_difference
    s = pooled_sd_from_summary(sd_t, n_t, sd_c, n_c)
    if not (n_t >= 1 and n_c >= 1 and n_t + n_c >= 3) or not math.isfinite(s) or s == 0:
        nan = float("nan")
        return HedgesG(nan, nan, nan, nan, diff, s, n_t, n_c)
    w = omega(n_t + n_c)
    d = diff / s
    g = w * d
    return HedgesG(g, d, se_hedges_g(g, n_t, n_c), w, diff, s, n_t, n_c)


def hedges_g(x: Any, y: Any, *, adjusted_difference: float | None = None) -> HedgesG:
    """Hedges' g for treatment sample ``x`` against comparison sample ``y``.

    Parameters
    ----------
    x, y
        Outcome values of the two groups (missing values ignored).
    adjusted_difference
        Covariate-adjusted mean difference to use as the numerator (WWC practice); the
        denominator stays the unadjusted pooled SD.

    Returns
    -------
    HedgesG
    """
    a, b = _clean(x, "x"), _clean(y, "y")
    if len(a) < 2 or len(b) < 2:
        nan = float("nan")
        return HedgesG(nan, nan, nan, nan, nan, nan, len(a), len(b))
    return hedges_g_from_summary(
        float(a.mean()), float(b.mean()), float(a.std(ddof=1)), float(b.std(ddof=1)),
        len(a), len(b), adjusted_difference=adjusted_difference,
    )


def cohens_d(x: Any, y: Any) -> float:
    """(mean x - mean y) / pooled SD, without a small-sample correction."""
    a, b = _clean(x, "x"), _clean(y, "y")
    s = pooled_sd(a, b)
    if not math.isfinite(s) or s == 0:
        return float("nan")
    return float((a.mean() - b.mean()) / s)


def glass_delta(x: Any, y: Any) -> float:
    """(mean x - mean y) / SD of the comparison group y (not a WWC quantity)."""
    a, b = _clean(x, "x"), _clean(y, "y")
    if len(b) < 2:
        return float("nan")
    return float((a.mean() - b.mean()) / b.std(ddof=1))


def cox_index(p_t: float, p_c: float, n_t: int, n_c: int) -> float:
    """WWC Cox index for a binary outcome: omega * (logit p_T - logit p_C) / 1.65.

    Proportions of exactly 0 or 1 have no logit; the WWC then uses the Cox index only after a
    continuity adjustment, which the caller must choose -- here they raise a DataError.
    """
    for p in (p_t, p_c):
        if not 0 < p < 1:
            raise DataError(
                f"the Cox index needs proportions strictly between 0 and 1 (got {p})",
                where="effect size",
                hint="A group where everyone (or no one) succeeded has no logit.",
            )
    logit = lambda p: math.log(p / (1 - p))  # noqa: E731
    return omega(n_t + n_c) * (logit(p_t) - logit(p_c)) / 1.65


def improvement_index(g: float) -> float:
    """WWC improvement index 100 * Phi(g) - 50: percentile-rank change of the average student."""
    if g is None or not math.isfinite(g):
        return float("nan")
    return float(100 * _dist.norm_cdf(g) - 50)
