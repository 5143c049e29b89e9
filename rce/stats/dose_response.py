"""Dose-response: outcome on months of habitual use, adjusted and clustered.

The model (one per outcome measure)::

    outcome_i = b * months_i + c * baseline_i + grade + demographics + school_s + e_i

with school fixed effects absorbed (usage and growth both differ by school, so the per-month slope
is estimated *within* schools) and standard errors clustered by school (or class / teacher when
the plan says so): Stata's CR1 small-sample factor and t(G - 1) inference. With fewer than 20
clusters a wild cluster restricted bootstrap p-value (Webb weights; enumerated when 6^G is small)
is reported beside the t(G - 1) p-value.

Beside the adjusted slope the result carries the naive slope (no covariates, no fixed effects),
mean outcomes by months of use with intervals, a test of linearity (categorical months, and a
cubic polynomial, against the straight line; cluster-robust Wald F tests), and a search for a
plateau (a hinge where the slope changes).

What it cannot show: usage is chosen by students and teachers, not assigned, so the slope is an
association that adjusting for baseline, grade, demographics and school makes more credible but
does not make causal. On its own it is at most ESSA Tier 3 ("promising evidence") material, and
only if the estimate is positive and statistically significant.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from rce.config import Plan
from rce.errors import DataError
from rce.jsonsafe import json_tree, json_value
from rce.privacy import suppress_cells
from rce.stats import _dist
from rce.stats.ols import (
    MissingReport,
    OlsFit,
    _demean,
    design_matrix,
    fit_ols,
    missing_report,
    wild_cluster_bootstrap,
)

#: Outcome column -> (unit, baseline column used as the control).
OUTCOMES: dict[str, tuple[str, str]] = {
    "outcome_percentile": ("percentile points", "baseline_percentile"),
    "outcome_scale_score": ("scale-score points", "baseline_scale_score"),
    "pct_typical_growth": ("percent of typical growth", "baseline_scale_score"),
}

LIMIT_SENTENCE = (
    "Observational design: students and teachers chose how much to use the product, so this slope "
    "is an association, not a measured effect. It is adjusted for baseline score, grade, "
    "demographics and school, but differences nobody measured (motivation, teacher enthusiasm, "
    "attendance) can still explain part or all of it."
)

_BOOTSTRAP_BELOW = 20


def essa_sentence(estimate: float, ci_low: float, p_value: float, alpha: float = 0.05) -> str:
    """The ESSA-relevant reading of a correlational dose-response estimate."""
    if math.isfinite(estimate) and estimate > 0 and math.isfinite(p_value) and p_value < alpha:
        return (
            "ESSA: a positive, statistically significant association from a correlational study "
            "with statistical controls can support at most Tier 3 (\"promising evidence\"); it "
            "cannot support Tier 1 or 2, which need a randomized or matched comparison."
        )
    return (
        "ESSA: this correlational result is not positive and statistically significant, so on its "
        "own it does not meet Tier 3 (\"promising evidence\"); Tiers 1 and 2 would need a "
        "randomized or matched comparison in any case."
    )


@dataclass(frozen=True)
class Estimate:
    """One coefficient with its interval."""

    estimate: float
    se: float
    ci_low: float
    ci_high: float
    p_value: float

    @classmethod
    def from_fit(cls, fit: OlsFit, term: str) -> Estimate:
        return cls(float(fit.coef[term]), float(fit.se[term]), float(fit.ci_low[term]),
                   float(fit.ci_high[term]), float(fit.p_value[term]))

    def to_dict(self) -> dict[str, Any]:
        return {k: json_value(getattr(self, k))
                for k in ("estimate", "se", "ci_low", "ci_high", "p_value")}


@dataclass(frozen=True)
class DoseResponseResult:
    """Adjusted per-month association of an outcome with months of habitual use.

    Attributes
    ----------
    outcome, unit, dose
        Outcome column, its unit, and the dose column.
    n, clusters
        Students used and clusters (schools by default).
    per_month
        The adjusted per-month estimate (outcome units).
    relative_to_mean
        per-month estimate / mean outcome of the analysed students (a proportion).
    per_sd
        per-month estimate / SD of the outcome (a standardized slope).
    mean_outcome, sd_outcome
        Of the analysed students.
    naive
        Slope without covariates or fixed effects (what a vendor slide usually reports).
    covariates, model
        Control variables and a one-line description of the model.
    fit
        The full adjusted :class:`~rce.stats.ols.OlsFit`.
    bins
        Mean outcome by months of use with a 95% t interval (student-level; see notes), small
        bins suppressed.
    linearity
        Wald tests of categorical months and of a cubic polynomial against the line.
    plateau
        Hinge search: knot, slope before, slope after, and whether a plateau is supported.
    wild_bootstrap
        Wild cluster bootstrap p-value for the per-month slope (few clusters), or None.
    missing
        Listwise deletion report.
    limits, essa_note
        The design's limit and its ESSA meaning, in one sentence each.
    label
        Free label (e.g. the habitual-use threshold).
    """

    outcome: str
    unit: str
    dose: str
    n: int
    clusters: int
    cluster_var: str
    per_month: Estimate
    relative_to_mean: float
    per_sd: float
    mean_outcome: float
    sd_outcome: float
    mean_dose: float
    naive: Estimate
    covariates: tuple[str, ...]
    model: str
    fit: OlsFit
    bins: pd.DataFrame
    linearity: Mapping[str, Any]
    plateau: Mapping[str, Any]
    wild_bootstrap: Mapping[str, Any] | None
    missing: MissingReport
    limits: str
    essa_note: str
    label: str = ""
    notes: tuple[str, ...] = field(default_factory=tuple)

    def to_frame(self) -> pd.DataFrame:
        """The adjusted and naive per-month estimates, one row each."""
        rows = []
        for name, est in (("adjusted", self.per_month), ("naive", self.naive)):
            rows.append({"model": name, "outcome": self.outcome, "unit": self.unit, "n": self.n,
                         "clusters": self.clusters, "estimate": est.estimate, "se": est.se,
                         "ci_low": est.ci_low, "ci_high": est.ci_high, "p_value": est.p_value})
        return pd.DataFrame(rows)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict with the design.md ``dose_response[]`` keys and the chart data."""
        bins = []
        for r in self.bins.to_dict(orient="records"):
            bins.append({k: json_value(v) for k, v in r.items()})
        slope = self.per_month.estimate
        return {
            "outcome": self.outcome,
            "unit": self.unit,
            "label": self.label,
            "dose": self.dose,
            "n": self.n,
            "clusters": self.clusters,
            "cluster_var": self.cluster_var,
            "per_month": self.per_month.to_dict(),
            "relative_to_mean": json_value(self.relative_to_mean),
            "per_sd": json_value(self.per_sd),
            "mean_outcome": json_value(self.mean_outcome),
            "covariates": list(self.covariates),
            "model": self.model,
            "naive": self.naive.to_dict(),
            # The fitted line drawn through the mean point with the adjusted slope.
            "fitted": {
                "intercept": json_value(self.mean_outcome - slope * self.mean_dose),
                "slope": json_value(slope),
            },
            "bins": bins,
            "linearity": json_tree(self.linearity),
            "plateau": json_tree(self.plateau),
            "wild_bootstrap": json_tree(self.wild_bootstrap) if self.wild_bootstrap else None,
            "missing": self.missing.to_dict(),
            "limits": self.limits,
            "essa_note": self.essa_note,
            "notes": list(self.notes),
        }

    def summary(self) -> str:
        """Readable text."""
        pm = self.per_month
        pct = round(self.fit.level * 100)
        lines = [
            f"Dose-response: {self.outcome} on {self.dose}" + (f" ({self.label})" if self.label
                                                               else ""),
            f"  n = {self.n:,} students in {self.clusters} {self.cluster_var} clusters",
            f"  per month of habitual use: {pm.estimate:+.3f} {self.unit} "
            f"({pct}% CI {pm.ci_low:+.3f} to {pm.ci_high:+.3f}; p = {pm.p_value:.3g}), "
            f"{self.relative_to_mean:+.2%} of the mean outcome",
            f"  naive (unadjusted) slope: {self.naive.estimate:+.3f} "
            f"({pct}% CI {self.naive.ci_low:+.3f} to {self.naive.ci_high:+.3f})",
        ]
        if self.wild_bootstrap:
            lines.append(f"  wild cluster bootstrap p = {self.wild_bootstrap['p_value']:.3g}")
        if self.plateau.get("detected"):
            lines.append(f"  plateau after about {self.plateau['knot']} months")
        lines.append(f"  model: {self.model}")
        lines.append("  " + self.limits)
        lines.append("  " + self.essa_note)
        lines.extend(f"  Note: {n}" for n in self.notes)
        return "\n".join(lines)


def _require(frame: pd.DataFrame, cols: Sequence[str]) -> None:
    missing = [c for c in cols if c not in frame.columns]
    if missing:
        raise DataError(
            f"the analysis frame has no column {missing[0]!r}",
            where="analysis frame",
            hint="It comes from the roster, the score files or the dosage step; check the column "
            "mapping in rce.toml.",
        )


def _bins(y: np.ndarray, dose: np.ndarray, level: float, min_n: int) -> pd.DataFrame:
    months = np.rint(dose).astype(int)
    rows = []
    for m in np.unique(months):
        v = y[months == m]
        n = len(v)
        mean = float(v.mean())
        if n > 1:
            se = float(v.std(ddof=1) / math.sqrt(n))
            crit = float(_dist.t_ppf(0.5 + level / 2, n - 1))
            lo, hi = mean - crit * se, mean + crit * se
        else:
            se = lo = hi = float("nan")
        rows.append({"months": int(m), "n": n, "mean": mean, "se": se, "ci_low": lo,
                     "ci_high": hi})
    table = pd.DataFrame(rows)
    return suppress_cells(table, n_col="n", partition_cols=[[]],
                          value_cols=["mean", "se", "ci_low", "ci_high"], min_n=min_n)


def fit_dose_response(
    frame: pd.DataFrame,
    *,
    plan: Plan,
    outcome: str = "outcome_percentile",
    dose: str = "habitual_months",
    covariates: Sequence[str] | None = None,
    cluster: str | None = None,
    label: str = "",
    bootstrap: bool = True,
    plateau: bool = True,
) -> DoseResponseResult:
    """Fit the adjusted dose-response model for one outcome.

    Parameters
    ----------
    frame
        The analysis frame (``rce.canonical.ANALYSIS_COLUMNS``), one row per student.
    plan
        Study plan: cluster variable (``plan.analysis.cluster``), confidence level, demographic
        controls (``plan.subgroups.dimensions``), minimum cell size for the binned means.
    outcome
        "outcome_percentile", "outcome_scale_score" or "pct_typical_growth".
    dose
        Months of habitual use (or any dose column).
    covariates
        Categorical demographic controls; default the plan's subgroup dimensions present in the
        frame.
    cluster
        Override of the cluster column ("school", "class", "teacher").
    label
        Label carried into the result (e.g. "3 sessions/month").
    bootstrap
        Report a wild cluster bootstrap p-value when there are fewer than 20 clusters.
    plateau
        Search for a plateau (one refit per candidate knot).

    Returns
    -------
    DoseResponseResult
    """
    if outcome not in OUTCOMES:
        raise DataError(
            f"unknown outcome {outcome!r}",
            where="dose-response",
            hint=f"Use one of: {', '.join(OUTCOMES)}.",
        )
    unit, baseline = OUTCOMES[outcome]
    level = plan.analysis.confidence_level
    min_n = plan.privacy.min_cell_size
    cluster_var = cluster or plan.analysis.cluster
    if covariates is None:
        covariates = tuple(c for c in plan.subgroups.dimensions if c in frame.columns)
    covariates = tuple(covariates)
    needed = [outcome, dose, baseline, "grade", "school", cluster_var, *covariates]
    _require(frame, list(dict.fromkeys(needed)))
    notes: list[str] = []
    data = frame
    if "usage_level" in frame.columns:
        # Non-users have zero habitual months even when the dosage step left the cell empty.
        fill = frame[dose].isna() & (frame["usage_level"] == "none")
        if bool(fill.any()):
            data = frame.assign(**{dose: frame[dose].where(~fill, 0)})
    cols = list(dict.fromkeys(needed))
    miss = missing_report(data, cols)
    if miss.n_dropped:
        notes.append(miss.sentence())
    data = data.loc[data[cols].notna().all(axis=1), cols]
    n_used = len(data)
    if n_used < 20:
        raise DataError(
            f"only {n_used} students have an outcome, a baseline, a dose and every covariate",
            where="dose-response",
            hint="Check that the baseline and outcome windows match the score files.",
        )
    y = data[outcome].to_numpy(dtype=float)
    d = data[dose].to_numpy(dtype=float)
    if np.ptp(d) == 0:
        raise DataError(
            "every student has the same dose, so there is no dose-response to estimate",
            where=f"analysis frame, column {dose}",
            hint="Check the habitual-use threshold and the usage window.",
        )
    X, names = design_matrix(data, numeric=(dose, baseline), categorical=("grade", *covariates))
    # Integer codes once: every auxiliary fit below reuses them instead of re-hashing strings.
    cl = pd.factorize(data[cluster_var])[0]
    school = pd.factorize(data["school"])[0]
    # Sweep the school effects out once: the main fit and every refit below (linearity, plateau)
    # share these rows, so their extra columns are demeaned and appended in a preallocated
    # column-major block instead of re-copying and re-demeaning the whole design each time.
    months = np.rint(d).astype(int)
    levels = np.unique(months)
    n_school = int(school.max()) + 1
    k0 = X.shape[1] - 1  # without the intercept, which the school effects absorb
    q_max = max(len(levels) - 2, 2, 1)
    W = np.empty((n_used, k0 + q_max), order="F")
    W[:, :k0] = X[:, 1:]
    _demean(school, W[:, :k0], n_school)
    yd = y - (np.bincount(school, weights=y, minlength=n_school)
              / np.bincount(school, minlength=n_school))[school]
    base_names = names[1:]

    def refit(extra: Sequence[np.ndarray], extra_names: Sequence[str]) -> OlsFit:
        q = len(extra)
        for j, col in enumerate(extra):
            W[:, k0 + j] = col
        if q:
            _demean(school, W[:, k0:k0 + q], n_school)
        return fit_ols(yd, W[:, :k0 + q], names=[*base_names, *extra_names], cluster=cl,
                       vcov="cluster", level=level, absorb=school, demeaned=True)

    fit = refit([], [])
    if dose not in fit.coef.index:
        raise DataError(
            "months of use cannot be separated from the other variables (collinear)",
            where="dose-response",
            hint="Usage may be identical within every school; a within-school slope needs "
            "variation in use inside schools.",
        )
    per_month = Estimate.from_fit(fit, dose)
    naive_fit = fit_ols(y, np.column_stack([np.ones(n_used), d]), names=["Intercept", dose],
                        cluster=cl, vcov="cluster", level=level)
    naive = Estimate.from_fit(naive_fit, dose)
    mean_y, sd_y = float(y.mean()), float(y.std(ddof=1))
    G = int(fit.n_clusters or 0)
    notes.extend(fit.notes)

    # Linearity: categorical months and a cubic polynomial, each against the line.
    linearity: dict[str, Any] = {}
    if len(levels) >= 3:
        extra = [(months == m).astype(float) for m in levels[2:]]
        extra_names = [f"months=={m}" for m in levels[2:]]
        fc = refit(extra, extra_names)
        linearity["categorical"] = {"test": "categorical months vs linear",
                                    **fc.wald_test([t for t in extra_names if t in fc.coef.index])}
        dc = d - d.mean()
        fp = refit([dc**2, dc**3], ["dose^2", "dose^3"])
        kept = [t for t in ("dose^2", "dose^3") if t in fp.coef.index]
        linearity["polynomial"] = {"test": "cubic polynomial vs linear", **fp.wald_test(kept)}
        primary = "categorical" if linearity["categorical"]["available"] else "polynomial"
        linearity["primary"] = primary
        p_lin = linearity[primary].get("p_value")
        linearity["linear_rejected"] = bool(p_lin is not None and p_lin < 1 - level)
        if primary == "polynomial":
            notes.append(
                f"With {G} clusters the test of categorical months against the line has too "
                "many restrictions for the clustered covariance; the cubic-polynomial test is used."
            )
    else:
        linearity = {"primary": None, "linear_rejected": False,
                     "reason": "fewer than 3 distinct dose values"}

    plateau_info: dict[str, Any] = {"detected": False}
    if plateau and len(levels) >= 4:
        plateau_info = _plateau(refit, d, dose, levels, level, min_n)
        if plateau_info.get("detected"):
            notes.append(
                f"The slope flattens after about {plateau_info['knot']} months; the knot was "
                "chosen from the data, so the test of the change in slope is optimistic."
            )

    wb = None
    if bootstrap and G < _BOOTSTRAP_BELOW:
        wb = wild_cluster_bootstrap(y, X, names=names, term=dose, cluster=cl, absorb=school,
                                    seed=plan.analysis.seed)
        notes.append(
            f"With {G} clusters the wild cluster bootstrap p-value ({wb['p_value']:.3g}, Webb "
            "weights) is the more trustworthy test of the per-month slope."
        )
    notes.append(
        "Bin intervals are per-bin t intervals on students and ignore clustering by school; use "
        "them to see the shape, not to test it."
    )
    covs = (baseline, "grade", *covariates)
    model = (
        f"{outcome} ~ {dose} + {baseline} + C(grade)"
        + "".join(f" + C({c})" for c in covariates)
        + " | school fixed effects; OLS, standard errors clustered by "
        f"{cluster_var} (CR1, t(G-1))"
    )
    return DoseResponseResult(
        outcome=outcome,
        unit=unit,
        dose=dose,
        n=fit.n,
        clusters=G,
        cluster_var=cluster_var,
        per_month=per_month,
        relative_to_mean=per_month.estimate / mean_y if mean_y else float("nan"),
        per_sd=per_month.estimate / sd_y if sd_y else float("nan"),
        mean_outcome=mean_y,
        sd_outcome=sd_y,
        mean_dose=float(d.mean()),
        naive=naive,
        covariates=covs,
        model=model,
        fit=fit,
        bins=_bins(y, d, level, min_n),
        linearity=linearity,
        plateau=plateau_info,
        wild_bootstrap=wb,
        missing=miss,
        limits=LIMIT_SENTENCE,
        essa_note=essa_sentence(per_month.estimate, per_month.ci_low, per_month.p_value,
                                1 - level),
        label=label,
        notes=tuple(dict.fromkeys(notes)),
    )


def _plateau(refit, d, dose, levels, level, min_n) -> dict[str, Any]:
    """Best single hinge (by residual sum of squares) and the slopes on each side."""
    best = None
    for knot in levels[1:-1]:
        above = int((d > knot).sum())
        below = int((d <= knot).sum())
        if above < min_n or below < min_n:
            continue
        f = refit([np.maximum(d - knot, 0.0)], ["hinge"])
        if "hinge" not in f.coef.index:
            continue
        if best is None or f.r2 > best[1].r2:
            best = (int(knot), f)
    if best is None:
        return {"detected": False, "reason": "too few students on one side of every knot"}
    knot, f = best
    b1, b2 = float(f.coef[dose]), float(f.coef["hinge"])
    V = f.vcov_matrix
    se_after = math.sqrt(max(float(V.loc[dose, dose] + V.loc["hinge", "hinge"]
                                   + 2 * V.loc[dose, "hinge"]), 0.0))
    crit = float(_dist.t_ppf(0.5 + level / 2, f.df))
    after = b1 + b2
    after_lo, after_hi = after - crit * se_after, after + crit * se_after
    detected = bool(
        f.ci_low[dose] > 0 and f.p_value["hinge"] < 1 - level and after_lo <= 0 <= after_hi
    )
    return {
        "detected": detected,
        "knot": knot,
        "slope_before": {"estimate": b1, "ci_low": float(f.ci_low[dose]),
                         "ci_high": float(f.ci_high[dose])},
        "slope_after": {"estimate": after, "ci_low": after_lo, "ci_high": after_hi},
        "change_p_value": float(f.p_value["hinge"]),
    }


@dataclass(frozen=True)
class SensitivityResult:
    """The dose-response slope under alternative habitual-use definitions."""

    results: Mapping[str, DoseResponseResult]
    notes: tuple[str, ...] = ()

    def to_frame(self) -> pd.DataFrame:
        rows = []
        for label, r in self.results.items():
            pm = r.per_month
            rows.append({"definition": label, "outcome": r.outcome, "n": r.n,
                         "mean_dose": r.mean_dose, "estimate": pm.estimate, "se": pm.se,
                         "ci_low": pm.ci_low, "ci_high": pm.ci_high, "p_value": pm.p_value,
                         "naive": r.naive.estimate})
        return pd.DataFrame(rows)

    def to_dict(self) -> dict[str, Any]:
        rows = [{k: json_value(v) for k, v in r.items()}
                for r in self.to_frame().to_dict(orient="records")]
        return {"rows": rows, "notes": list(self.notes)}

    def summary(self) -> str:
        lines = ["Sensitivity of the per-month slope to the habitual-use definition:"]
        for row in self.to_frame().itertuples():
            lines.append(f"  {row.definition}: {row.estimate:+.3f} "
                         f"({row.ci_low:+.3f} to {row.ci_high:+.3f}), n = {row.n:,}")
        lines.extend(f"  Note: {n}" for n in self.notes)
        return "\n".join(lines)


def sensitivity(
    frame_by_threshold: Mapping[str, pd.DataFrame],
    *,
    plan: Plan,
    outcome: str = "outcome_percentile",
    dose: str = "habitual_months",
    **kwargs: Any,
) -> SensitivityResult:
    """Re-fit the dose-response model under each habitual-use definition.

    Parameters
    ----------
    frame_by_threshold
        Label -> analysis frame whose ``dose`` column was computed with that definition, e.g.
        ``{"2 sessions/month": f2, "3 sessions/month": f3, "4 sessions/month": f4,
        "vendor fidelity": ffid}`` (the dosage step builds them from
        ``plan.dosage.sensitivity_thresholds`` and the fidelity rule).
    plan, outcome, dose
        As for :func:`fit_dose_response`; further keyword arguments are passed on.

    Returns
    -------
    SensitivityResult
    """
    if not frame_by_threshold:
        raise DataError("no dosage definitions to compare", where="sensitivity",
                        hint="Pass at least one labelled analysis frame.")
    # Only the slope is compared across definitions: skip the bootstrap and the plateau refits.
    kwargs.setdefault("bootstrap", False)
    kwargs.setdefault("plateau", False)
    results = {label: fit_dose_response(f, plan=plan, outcome=outcome, dose=dose, label=label,
                                        **kwargs)
               for label, f in frame_by_threshold.items()}
    notes = ("A slope that changes sign or size a lot between definitions means the finding "
             "depends on how habitual use is defined; the pre-registered definition is the one to "
             "report.",)
    return SensitivityResult(results=results, notes=notes)
