"""What Works Clearinghouse arithmetic: baseline equivalence bands, attrition boundaries,
the clustering correction, and the study-rating emulation.

Sources (``methods.md`` §3): WWC Procedures/Standards Handbooks v4.1 (Table II.1 attrition
boundaries; App. F / eq. E.21 clustering correction), WWC FAQ on baseline equivalence. This module
emulates the arithmetic of a WWC review; it is never a WWC rating.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from rce.errors import DataError
from rce.stats import _dist
from rce.stats import effect_sizes as es
from rce.stats._impact_common import fmt, json_safe, pct

#: Baseline-equivalence band edges (|g| or |Cox index|), inclusive at each edge (WWC FAQ).
EQUIVALENCE_SATISFIED = 0.05
EQUIVALENCE_ADJUST = 0.25

#: WWC default intraclass correlations for the clustering correction (Hedges 2007; WWC
#: Procedures Handbook v4.1 App. F): achievement outcomes 0.20, behavioural/other 0.10.
DEFAULT_ICC = {"achievement": 0.20, "behavioral": 0.10}

#: WWC Standards Handbook v4.1 Table II.1: the highest differential attrition (percentage points)
#: that still counts as low attrition, for overall attrition 0..65 percent. Under the cautious
#: boundary an overall rate of 58% or more is high attrition whatever the differential (None).
#: Transcribed from zl1212-ship-it/baselinr@c4018eb:R/attrition_boundary.R; the selected points
#: printed in methods.md §3.4 agree.
_CAUTIOUS = (
    5.7, 5.8, 5.9, 5.9, 6.0, 6.1, 6.2, 6.3, 6.3, 6.3, 6.3, 6.2, 6.2, 6.1, 6.0,
    5.9, 5.9, 5.8, 5.7, 5.5, 5.4, 5.3, 5.2, 5.1, 4.9, 4.8, 4.7, 4.5, 4.4, 4.3,
    4.1, 4.0, 3.8, 3.6, 3.5, 3.3, 3.2, 3.1, 2.9, 2.8, 2.6, 2.5, 2.3, 2.1, 2.0,
    1.8, 1.6, 1.5, 1.3, 1.2, 1.0, 0.9, 0.7, 0.6, 0.4, 0.3, 0.2, 0.0,
    None, None, None, None, None, None, None, None,
)  # fmt: skip
_OPTIMISTIC = (
    10.0, 10.1, 10.2, 10.3, 10.4, 10.5, 10.7, 10.8, 10.9, 10.9, 10.9, 10.9,
    10.9, 10.8, 10.8, 10.7, 10.6, 10.5, 10.3, 10.2, 10.0, 9.9, 9.7, 9.5, 9.4,
    9.2, 9.0, 8.8, 8.6, 8.4, 8.2, 8.0, 7.8, 7.6, 7.4, 7.2, 7.0, 6.7, 6.5, 6.3,
    6.0, 5.8, 5.6, 5.3, 5.1, 4.9, 4.6, 4.4, 4.2, 3.9, 3.7, 3.5, 3.2, 3.0, 2.8,
    2.6, 2.3, 2.1, 1.9, 1.6, 1.4, 1.1, 0.9, 0.7, 0.5, 0.3,
)  # fmt: skip
ATTRITION_BOUNDARIES: dict[str, tuple[float | None, ...]] = {
    "cautious": _CAUTIOUS,
    "optimistic": _OPTIMISTIC,
}


def equivalence_verdict(g: float | None) -> str:
    """Classify a baseline effect size into the WWC equivalence bands.

    Returns
    -------
    str
        ``"satisfied"`` (|g| ≤ 0.05), ``"adjust"`` (0.05 < |g| ≤ 0.25: satisfies equivalence
        only if the variable is adjusted for in the impact model), ``"fails"`` (|g| > 0.25) or
        ``"not computed"`` (g missing).
    """
    if g is None or not math.isfinite(g):
        return "not computed"
    a = abs(g)
    # A tiny tolerance so a value printed as 0.05 is not pushed over by float error.
    if a <= EQUIVALENCE_SATISFIED + 1e-12:
        return "satisfied"
    if a <= EQUIVALENCE_ADJUST + 1e-12:
        return "adjust"
    return "fails"


# --- attrition --------------------------------------------------------------------------------


def attrition_boundary(overall: float, boundary: str = "cautious") -> float | None:
    """Highest differential attrition (a proportion) still counted as low attrition.

    Parameters
    ----------
    overall
        Overall attrition as a proportion in [0, 1]. The WWC table is indexed by whole percents;
        the rate is rounded to the nearest percent (half up) before the lookup, as the WWC does.
    boundary
        ``"cautious"`` (the intervention could affect who stays) or ``"optimistic"``. The review
        protocol, not the analyst, picks it.

    Returns
    -------
    float or None
        The boundary as a proportion, or None when the overall rate is beyond the table (every
        differential is then high attrition).
    """
    if boundary not in ATTRITION_BOUNDARIES:
        raise DataError(
            f"unknown attrition boundary {boundary!r}",
            where="attrition boundary",
            hint="Use 'cautious' or 'optimistic'.",
        )
    if not (0.0 <= overall <= 1.0) or math.isnan(overall):
        raise DataError(
            "overall attrition must be a proportion between 0 and 1",
            where="attrition boundary",
            hint="Pass e.g. 0.12 for 12% attrition.",
        )
    pct_overall = math.floor(overall * 100 + 0.5 + 1e-9)
    table = ATTRITION_BOUNDARIES[boundary]
    if pct_overall >= len(table):
        return None
    value = table[pct_overall]
    return None if value is None else value / 100.0


def attrition_level(overall: float, differential: float, boundary: str = "cautious") -> str:
    """``"low"`` or ``"high"`` attrition under the chosen WWC boundary."""
    limit = attrition_boundary(overall, boundary)
    if limit is None:
        return "high"
    return "low" if differential <= limit + 1e-9 else "high"


@dataclass(frozen=True)
class AttritionResult:
    """Overall and differential attrition of a randomized study against both WWC boundaries."""

    n_randomized_treatment: int
    n_randomized_control: int
    n_analytic_treatment: int
    n_analytic_control: int
    attrition_treatment: float
    attrition_control: float
    overall: float
    differential: float
    boundary_cautious: float | None
    boundary_optimistic: float | None
    level_cautious: str
    level_optimistic: str
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (NaN -> None)."""
        return json_safe(self.__dict__.copy())

    def to_frame(self) -> pd.DataFrame:
        """One row per boundary: overall, differential, the limit and the verdict."""
        return pd.DataFrame(
            {
                "boundary": ["cautious", "optimistic"],
                "overall_attrition": [self.overall] * 2,
                "differential_attrition": [self.differential] * 2,
                "max_differential": [self.boundary_cautious, self.boundary_optimistic],
                "attrition": [self.level_cautious, self.level_optimistic],
            }
        )

    def summary(self) -> str:
        """Readable text."""
        return (
            f"Attrition: overall {pct(self.overall, 1)}, differential {pct(self.differential, 1)} "
            f"(treatment {pct(self.attrition_treatment, 1)}, control "
            f"{pct(self.attrition_control, 1)}); {self.level_cautious} under the WWC cautious "
            f"boundary, {self.level_optimistic} under the optimistic boundary."
        )


def attrition(
    n_randomized_treatment: int,
    n_randomized_control: int,
    n_analytic_treatment: int,
    n_analytic_control: int,
) -> AttritionResult:
    """Overall and differential attrition (WWC) from randomized and analytic counts.

    Overall = 1 - analytic n / randomized n; differential = |attrition_T - attrition_C|.
    """
    if min(n_randomized_treatment, n_randomized_control) <= 0:
        raise DataError(
            "attrition needs at least one randomized unit in each group",
            where="assignment",
            hint="Check the assignment column.",
        )
    if n_analytic_treatment > n_randomized_treatment or n_analytic_control > n_randomized_control:
        raise DataError(
            "more students analysed than randomized",
            where="assignment",
            hint="The analytic sample must be a subset of the randomized sample.",
        )
    a_t = 1 - n_analytic_treatment / n_randomized_treatment
    a_c = 1 - n_analytic_control / n_randomized_control
    overall = 1 - (n_analytic_treatment + n_analytic_control) / (
        n_randomized_treatment + n_randomized_control
    )
    diff = abs(a_t - a_c)
    return AttritionResult(
        n_randomized_treatment=int(n_randomized_treatment),
        n_randomized_control=int(n_randomized_control),
        n_analytic_treatment=int(n_analytic_treatment),
        n_analytic_control=int(n_analytic_control),
        attrition_treatment=a_t,
        attrition_control=a_c,
        overall=overall,
        differential=diff,
        boundary_cautious=attrition_boundary(overall, "cautious"),
        boundary_optimistic=attrition_boundary(overall, "optimistic"),
        level_cautious=attrition_level(overall, diff, "cautious"),
        level_optimistic=attrition_level(overall, diff, "optimistic"),
        notes=(
            "WWC Standards Handbook v4.1 Table II.1; the review protocol picks the cautious or "
            "optimistic boundary, not the analyst.",
        ),
    )


# --- clustering correction --------------------------------------------------------------------


@dataclass(frozen=True)
class ClusterCorrection:
    """WWC (Hedges 2007) correction of a student-level t statistic for cluster assignment."""

    t: float
    t_adjusted: float
    df: float
    p_value: float
    n_total: float
    mean_cluster_size: float
    icc: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (NaN -> None)."""
        return json_safe(self.__dict__.copy())

    def summary(self) -> str:
        """Readable text."""
        return (
            f"WWC clustering correction (ICC {self.icc:.2f}, mean cluster size "
            f"{self.mean_cluster_size:.1f}): t {fmt(self.t)} -> {fmt(self.t_adjusted)}, "
            f"df {fmt(self.df, 1)}, p {fmt(self.p_value, 4)}."
        )


def cluster_correction(
    t: float, n_total: float, mean_cluster_size: float, icc: float = DEFAULT_ICC["achievement"]
) -> ClusterCorrection:
    """Correct a t statistic computed as if students were independent (WWC eq. E.21).

    t_a = t·√{[(N-2) - 2(n-1)rho] / [(N-2)(1 + (n-1)rho)]},
    h = [(N-2) - 2(n-1)rho]² / [(N-2)(1-rho)² + n(N-2n)rho² + 2(N-2n)rho(1-rho)],
    p two-sided from t(h). rho = 0 leaves t unchanged with h = N - 2.

    Parameters
    ----------
    t
        Student-level t statistic (e.g. g / SE(g)).
    n_total
        Number of students N.
    mean_cluster_size
        Average students per cluster n.
    icc
        Intraclass correlation rho (WWC default 0.20 for achievement, 0.10 otherwise).
    """
    N, n, rho = float(n_total), float(mean_cluster_size), float(icc)
    if not (0.0 <= rho <= 1.0):
        raise DataError("ICC must be between 0 and 1", where="clustering correction", hint=None)
    if N <= 2 or n < 1:
        raise DataError(
            "clustering correction needs more than 2 students and clusters of at least 1",
            where="clustering correction",
            hint=None,
        )
    num = (N - 2) - 2 * (n - 1) * rho
    ta = t * math.sqrt(num / ((N - 2) * (1 + (n - 1) * rho)))
    h = num**2 / (
        (N - 2) * (1 - rho) ** 2 + n * (N - 2 * n) * rho**2 + 2 * (N - 2 * n) * rho * (1 - rho)
    )
    p = float(2 * _dist.t_sf(abs(ta), h))
    return ClusterCorrection(
        t=float(t), t_adjusted=ta, df=h, p_value=p, n_total=N, mean_cluster_size=n, icc=rho
    )


# --- baseline equivalence ---------------------------------------------------------------------


@dataclass(frozen=True)
class EquivalenceRow:
    """One baseline variable on the analytic sample."""

    variable: str
    kind: str  # "continuous" (Hedges' g) or "binary" (Cox index)
    mean_treatment: float
    mean_comparison: float
    g: float
    verdict: str


@dataclass(frozen=True)
class BaselineEquivalence:
    """WWC baseline equivalence of the analytic sample, one row per baseline variable."""

    rows: tuple[EquivalenceRow, ...]
    n_treatment: int
    n_comparison: int
    notes: tuple[str, ...] = ()
    #: Variables on which equivalence must be shown (WWC review protocols name the pretest in the
    #: outcome's domain); empty means every row. Other rows are reported, not gating.
    required: tuple[str, ...] = ()

    def _gating(self) -> tuple[EquivalenceRow, ...]:
        if not self.required:
            return self.rows
        return tuple(r for r in self.rows if r.variable in self.required)

    @property
    def satisfied(self) -> bool:
        """True when no required variable fails (those in the 'adjust' band must then be in the
        impact model)."""
        rows = self._gating()
        return bool(rows) and all(r.verdict in ("satisfied", "adjust") for r in rows)

    @property
    def failing_required(self) -> tuple[str, ...]:
        """Required variables with |g| > 0.25 (or not computable)."""
        return tuple(r.variable for r in self._gating() if r.verdict not in ("satisfied",
                                                                              "adjust"))

    @property
    def must_adjust(self) -> tuple[str, ...]:
        """Variables in the 0.05-0.25 band: they must be covariates in the impact model."""
        return tuple(r.variable for r in self.rows if r.verdict == "adjust")

    @property
    def failing(self) -> tuple[str, ...]:
        """Variables with |g| > 0.25."""
        return tuple(r.variable for r in self.rows if r.verdict == "fails")

    def to_frame(self) -> pd.DataFrame:
        """One row per variable."""
        return pd.DataFrame([r.__dict__ for r in self.rows])

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict; ``rows`` carry ``variable, g, verdict`` (design.md ``impact`` keys)."""
        return json_safe(
            {
                "rows": [r.__dict__ for r in self.rows],
                "n_treatment": self.n_treatment,
                "n_comparison": self.n_comparison,
                "satisfied": self.satisfied,
                "required": list(self.required),
                "must_adjust": list(self.must_adjust),
                "notes": list(self.notes),
            }
        )

    def summary(self) -> str:
        """Readable text."""
        lines = [f"Baseline equivalence (WWC), n = {self.n_treatment} vs {self.n_comparison}:"]
        for r in self.rows:
            label = "Cox index" if r.kind == "binary" else "g"
            lines.append(f"  {r.variable}: {label} {fmt(r.g)} -> {r.verdict}")
        return "\n".join(lines)


def _is_binary(s: pd.Series) -> bool:
    vals = pd.unique(s.dropna())
    return len(vals) <= 2 and set(np.asarray(vals, dtype=float).tolist()) <= {0.0, 1.0}


def baseline_equivalence(
    frame: pd.DataFrame,
    treatment: str,
    variables: list[str] | tuple[str, ...],
    *,
    required: tuple[str, ...] = (),
) -> BaselineEquivalence:
    """WWC baseline equivalence on the analytic sample.

    Continuous variables use Hedges' g (pooled within-group SD, ω correction); 0/1 variables use
    the Cox index ω·[logit(p_T) - logit(p_C)]/1.65 (``methods.md`` §3.1). Each is classified
    into the ≤ 0.05 / ≤ 0.25 / > 0.25 bands.

    Parameters
    ----------
    frame
        The analytic sample (after matching / attrition).
    treatment
        0/1 column: 1 = treatment group.
    variables
        Numeric baseline columns (dummy-code categories first).
    required
        The variables whose equivalence decides ``satisfied`` (default: all).
    """
    t = frame[treatment].astype(float)
    rows = []
    notes = []
    for v in variables:
        x = pd.to_numeric(frame[v], errors="coerce").astype(float)
        ok = x.notna() & t.notna()
        xt, xc = x[ok & (t == 1)], x[ok & (t == 0)]
        if len(xt) < 2 or len(xc) < 2:
            rows.append(EquivalenceRow(v, "continuous", math.nan, math.nan, math.nan,
                                       "not computed"))
            continue
        if _is_binary(x[ok]):
            g = _cox_index(xt, xc)
            kind = "binary"
        else:
            g = float(es.hedges_g(xt.to_numpy(), xc.to_numpy()).g)
            kind = "continuous"
        rows.append(EquivalenceRow(v, kind, float(xt.mean()), float(xc.mean()), g,
                                   equivalence_verdict(g)))
    if any(r.kind == "binary" and not math.isfinite(r.g) for r in rows):
        notes.append("A Cox index is undefined when a group's proportion is 0 or 1.")
    notes.append(
        "Computed on the analytic sample: Hedges' g with the pooled within-group SD and "
        "ω = 1 - 3/(4N - 9); Cox index for 0/1 variables (WWC)."
    )
    n_t = int((t == 1).sum())
    n_c = int((t == 0).sum())
    return BaselineEquivalence(rows=tuple(rows), n_treatment=n_t, n_comparison=n_c,
                               notes=tuple(notes), required=tuple(required))


def _cox_index(xt: pd.Series, xc: pd.Series) -> float:
    from rce.stats.effect_sizes import cox_index

    p_t, p_c = float(xt.mean()), float(xc.mean())
    if p_t in (0.0, 1.0) or p_c in (0.0, 1.0):
        # No logit exists; identical all-0 / all-1 groups are trivially equivalent, otherwise the
        # WWC would need a continuity adjustment we do not invent.
        return 0.0 if p_t == p_c else math.nan
    return cox_index(p_t, p_c, len(xt), len(xc))


# --- rating emulation -------------------------------------------------------------------------


@dataclass(frozen=True)
class Criterion:
    """One evidence criterion: its name, whether it is met, and why."""

    name: str
    met: bool | None
    detail: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict."""
        return {"name": self.name, "met": self.met, "detail": self.detail}


def wwc_rating(
    design: str,
    *,
    attrition_low: bool | None,
    equivalence_satisfied: bool | None,
) -> tuple[str, tuple[Criterion, ...]]:
    """Emulate the WWC group-design rating of one study.

    A low-attrition RCT can meet standards without reservations; a high-attrition RCT or a
    matched comparison (QED) meets standards with reservations only when baseline equivalence
    holds, otherwise it does not meet standards (``methods.md`` §3.4; baselinr ``wwc_rating``).

    Parameters
    ----------
    design
        ``"randomized"``, ``"matched"`` (QED), or anything else (not eligible).
    attrition_low
        For randomized designs: whether attrition is low under the boundary the protocol picks.
    equivalence_satisfied
        Whether baseline equivalence holds on the analytic sample (with required adjustments).

    Returns
    -------
    (rating, criteria)
        rating is one of ``"Meets WWC standards without reservations"``, ``"Meets WWC standards
        with reservations"``, ``"Does not meet WWC standards"``, ``"Not eligible for review"``,
        ``"Not rated (WWC RDD standards not emulated)"``.
    """
    crit: list[Criterion] = []
    if design == "randomized":
        crit.append(Criterion("design", True, "Randomized controlled trial."))
        if attrition_low is None:
            crit.append(Criterion("attrition", None, "Attrition could not be computed."))
        else:
            crit.append(
                Criterion(
                    "attrition",
                    attrition_low,
                    "Low attrition under the WWC boundary."
                    if attrition_low
                    else "High attrition: baseline equivalence must be shown.",
                )
            )
        if attrition_low:
            crit.append(
                Criterion(
                    "baseline equivalence",
                    True if equivalence_satisfied is None else bool(equivalence_satisfied),
                    "Not required for a low-attrition RCT."
                    if equivalence_satisfied is None
                    else ("Shown on the analytic sample." if equivalence_satisfied
                          else "Not shown (not required for a low-attrition RCT, but reported)."),
                )
            )
            return "Meets WWC standards without reservations", tuple(crit)
    elif design == "regression-discontinuity":
        crit.append(Criterion(
            "design", None,
            "Regression discontinuity: the WWC reviews these under separate RDD standards "
            "(bandwidth, manipulation, attrition) that rce does not emulate."))
        return "Not rated (WWC RDD standards not emulated)", tuple(crit)
    elif design == "matched":
        crit.append(
            Criterion("design", True, "Quasi-experimental matched comparison (at best 'with "
                                      "reservations').")
        )
    else:
        crit.append(Criterion("design", False, f"Design '{design}' is not a group design the "
                                               "WWC reviews."))
        return "Not eligible for review", tuple(crit)
    eq_ok = bool(equivalence_satisfied)
    crit.append(
        Criterion(
            "baseline equivalence",
            eq_ok,
            "The required baseline measures differ by at most 0.25 SD on the analytic sample; "
            "differences above 0.05 are adjusted for in the impact model."
            if eq_ok
            else "A required baseline measure differs by more than 0.25 SD, or equivalence could "
            "not be computed.",
        )
    )
    rating = (
        "Meets WWC standards with reservations" if eq_ok else "Does not meet WWC standards"
    )
    return rating, tuple(crit)
