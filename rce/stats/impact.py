"""Impact of product use: pick the design, run it end to end, and state what it can show.

Designs (``methods.md`` §1.2, issue brief):

- an assignment column named by the plan -> **randomized pilot** (estimand: intent-to-treat effect
  of being assigned the product), with WWC overall/differential attrition;
- users and comparable non-users -> **matched comparison** (estimand: ATT, the effect of use on
  the matched users; never switched to the effect on non-users);
- (almost) everyone uses, or almost no one -> **no comparison possible**; the report says why and
  points to the dose-response analysis.

Regression discontinuity (assignment by a cutoff on a baseline score) needs plan keys for the
running variable and cutoff that the plan does not have yet; ``choose_design`` never selects it.

Every impact carries n, the cluster-robust CI (Stata small-sample factor, t(G-1)), the model,
WWC Hedges' g (ω; adjusted difference over the unadjusted pooled SD), the improvement index,
baseline equivalence on the analytic sample, the MDES for the sample, and the Bayesian
probabilities with the plan's decision rule.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from rce.config import Plan
from rce.errors import DataError, PlanError
from rce.stats import _dist
from rce.stats import effect_sizes as es
from rce.stats._impact_common import fmt, json_safe, merge_rare_levels, pct
from rce.stats.bayes import BayesResult, effect_probabilities
from rce.stats.matching import MatchResult, match
from rce.stats.ols import design_matrix, fit_ols
from rce.stats.power import PowerResult, mdes
from rce.stats.wwc import (
    DEFAULT_ICC,
    AttritionResult,
    BaselineEquivalence,
    ClusterCorrection,
    EquivalenceRow,
    attrition,
    baseline_equivalence,
    cluster_correction,
    equivalence_verdict,
)

#: Demographic columns of the analysis frame used as matching covariates and equivalence checks.
DEMOGRAPHICS = ("race_ethnicity", "el_status", "gender", "swd", "econ_disadv")
#: Below this share of non-users (or users) among eligible students a comparison is not possible.
MIN_GROUP_SHARE = 0.05
#: Columns that may be the unit of a cluster-randomized assignment, finest first.
_ASSIGNMENT_UNITS = ("class", "section", "teacher", "school")

TREATMENTS = {
    "habitual": "habitual users (at least the plan's habitual months) vs non-users; light users "
    "excluded from both groups",
    "any-use": "any use vs non-users",
    "fidelity": "students who met the vendor's fidelity rule vs non-users; users below fidelity "
    "excluded",
}


@dataclass(frozen=True)
class DesignChoice:
    """Which design the data and plan support, and why."""

    design: str  # "randomized" | "matched" | "none"
    estimand: str  # "ITT" | "ATT" | ""
    reason: str
    treatment_definition: str
    n_treatment: int
    n_comparison: int
    n_excluded: int
    fallback: str | None = None
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict."""
        return json_safe(self.__dict__.copy())

    def summary(self) -> str:
        """Readable text."""
        est = f" Estimand: {self.estimand}." if self.estimand else ""
        fb = f" Falls back to {self.fallback}." if self.fallback else ""
        return f"Design: {self.design}. {self.reason}{est}{fb}"


def _treatment_groups(frame: pd.DataFrame, plan: Plan) -> pd.Series:
    """'treatment' / 'comparison' / NA per row from usage_level and met_fidelity (pandas-3 safe:
    a missing usage level never becomes a non-user)."""
    kind = plan.analysis.treatment
    if kind not in TREATMENTS:
        raise PlanError(
            f"unknown treatment definition {kind!r}",
            where="analysis.treatment",
            hint="Use 'habitual', 'any-use' or 'fidelity'.",
        )
    if "usage_level" not in frame.columns:
        raise DataError(
            "the analysis frame has no usage_level column",
            where="analysis frame",
            hint="Impact needs the dosage step (usage joined to students).",
        )
    level = frame["usage_level"].astype("string").str.strip().str.lower()
    known = level.notna()
    nonuser = (level == "none").fillna(False) & known
    if kind == "habitual":
        treated = (level == "habitual").fillna(False) & known
    elif kind == "any-use":
        treated = level.isin(["light", "habitual"]).fillna(False) & known
    else:
        if "met_fidelity" not in frame.columns:
            raise DataError(
                "the analysis frame has no met_fidelity column",
                where="analysis frame",
                hint="Use analysis.treatment = 'habitual' or provide fidelity data.",
            )
        treated = _flag(frame["met_fidelity"]).fillna(False).astype(bool) & ~nonuser
    out = pd.Series(pd.NA, index=frame.index, dtype="string")
    out = out.mask(treated, "treatment").mask(nonuser, "comparison")
    return out


def _flag(s: pd.Series) -> pd.Series:
    """A yes/no column as nullable booleans (bool, 0/1 numbers or true/false/yes/no text)."""
    if pd.api.types.is_bool_dtype(s.dtype):
        return s.astype("boolean")
    if pd.api.types.is_numeric_dtype(s.dtype):
        return (s == 1).astype("boolean").where(s.notna())
    words = {"true": True, "yes": True, "y": True, "1": True, "false": False, "no": False,
             "n": False, "0": False}
    return s.astype("string").str.strip().str.lower().map(words).astype("boolean")


def _assignment(frame: pd.DataFrame, column: str) -> pd.Series:
    """Assignment column as float 1/0/NaN; accepts 0/1, booleans and treatment/control words."""
    s = frame[column]
    if pd.api.types.is_bool_dtype(s.dtype):
        return s.astype("float64")
    num = pd.to_numeric(s, errors="coerce")
    text = s.astype("string").str.strip().str.lower()
    words = {"treatment": 1.0, "treated": 1.0, "t": 1.0, "product": 1.0, "1": 1.0,
             "control": 0.0, "comparison": 0.0, "c": 0.0, "0": 0.0}
    mapped = text.map(words).astype("float64")
    out = num.where(num.notna(), mapped)
    bad = s.notna() & ~out.isin([0.0, 1.0])
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0]) + 2
        raise DataError(
            "the assignment column must hold 0/1 (or treatment/control)",
            where=f"analysis frame, row {row}, column {column}",
            hint="Use the file written by `rce randomize`.",
        )
    return out.astype(float)


def choose_design(frame: pd.DataFrame, plan: Plan, *, rd: RdSpec | None = None) -> DesignChoice:
    """Pick the impact design the data and plan support.

    Parameters
    ----------
    frame
        The analysis frame (``rce.canonical.ANALYSIS_COLUMNS``), one row per student.
    plan
        The study plan: ``analysis.assignment_column`` selects a randomized pilot;
        ``analysis.treatment`` defines the treatment group of a matched comparison.
    rd
        When the product was assigned by a cutoff on a baseline score, the running variable and
        cutoff: selects a regression discontinuity (a randomized assignment still wins).

    Returns
    -------
    DesignChoice
    """
    col = plan.analysis.assignment_column
    if rd is not None and not col:
        _require(frame, [rd.running])
        x = pd.to_numeric(frame[rd.running], errors="coerce")
        treated = _rd_treated(x, rd)
        n_t, n_c = int((treated == 1).sum()), int((treated == 0).sum())
        return DesignChoice(
            "regression-discontinuity", "effect at the cutoff",
            f"The product was assigned to students {rd.treated_side} {rd.cutoff:g} on "
            f"{rd.running} ({n_t} students on the product's side, {n_c} on the other): the "
            "impact is the jump in outcomes at the cutoff, for students near it.",
            f"{rd.running} {'<' if rd.treated_side == 'below' else '≥'} {rd.cutoff:g} "
            "(eligibility by the cutoff: intent to treat at the cutoff)",
            n_t, n_c, int(x.isna().sum()),
        )
    if col:
        if col not in frame.columns:
            raise PlanError(
                f"the plan names assignment column {col!r} but the data have no such column",
                where="analysis.assignment_column",
                hint="Join the assignment file from `rce randomize`, or clear the key.",
            )
        a = _assignment(frame, col)
        n_t, n_c = int((a == 1).sum()), int((a == 0).sum())
        if n_t == 0 or n_c == 0:
            raise DataError(
                "the assignment column has no students in one of the two groups",
                where=f"analysis frame, column {col}",
                hint="Check the assignment file.",
            )
        return DesignChoice(
            "randomized", "ITT",
            f"The plan names a random assignment ({col}): {n_t} students assigned to the "
            f"product, {n_c} to the comparison condition.",
            "assigned to the product vs not (intent to treat, whatever the actual use)",
            n_t, n_c, int(a.isna().sum()),
        )
    groups = _treatment_groups(frame, plan)
    n_t = int((groups == "treatment").sum())
    n_c = int((groups == "comparison").sum())
    n_x = len(frame) - n_t - n_c
    eligible = n_t + n_c
    minimum = plan.privacy.min_cell_size
    definition = TREATMENTS[plan.analysis.treatment]
    if eligible == 0 or n_c < minimum or n_c < MIN_GROUP_SHARE * eligible:
        return DesignChoice(
            "none", "",
            f"(Almost) every student used the product ({n_c} non-users against {n_t} users): "
            "there is no comparison group, so no impact estimate is possible. The dose-response "
            "analysis (more use vs less use) is reported instead; it is correlational.",
            definition, n_t, n_c, n_x, "dose-response",
        )
    if n_t < minimum or n_t < MIN_GROUP_SHARE * eligible:
        return DesignChoice(
            "none", "",
            f"Too few students used the product as defined ({n_t} users against {n_c} "
            "non-users) for an impact estimate. The dose-response analysis is reported instead.",
            definition, n_t, n_c, n_x, "dose-response",
        )
    return DesignChoice(
        "matched", "ATT",
        f"Some students used the product and others did not ({n_t} users, {n_c} non-users): "
        "users are compared with similar non-users matched on baseline score, grade and "
        "demographics.",
        definition, n_t, n_c, n_x,
        notes=("Regression discontinuity (assignment by a cutoff on a baseline score) is used "
               "only when a running variable and cutoff are given.",),
    )


@dataclass(frozen=True)
class RdSpec:
    """Assignment by a cutoff on a baseline score (regression discontinuity).

    Attributes
    ----------
    running
        Column of the running (assignment) variable, e.g. the baseline scale score.
    cutoff
        Cutoff value.
    treated_side
        ``"below"`` (students under the cutoff get the product, e.g. placed below grade level)
        or ``"above"``. Students exactly at the cutoff count on the "above" side.
    """

    running: str
    cutoff: float
    treated_side: str = "below"


@dataclass(frozen=True)
class RdDiagnostics:
    """Bandwidths, effective samples and the manipulation (density) test of an RD estimate."""

    running: str
    cutoff: float
    treated_side: str
    bandwidth: float
    bias_bandwidth: float
    n_below: int
    n_above: int
    n_effective_below: int
    n_effective_above: int
    estimate_conventional: float
    se_conventional: float
    estimate_bias_corrected: float
    density_t: float
    density_p: float
    clustered: bool

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict."""
        return json_safe(self.__dict__.copy())


# --- result -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImpactResult:
    """One impact estimate with everything needed to judge it."""

    design: str
    estimand: str
    outcome: str
    design_choice: DesignChoice
    n_treatment: int
    n_comparison: int
    n_clusters: int | None
    estimate: float
    se: float
    ci_low: float
    ci_high: float
    p_value: float
    df: float
    level: float
    mean_treatment: float
    mean_comparison: float
    pooled_sd: float
    hedges_g: float
    g_se: float
    g_ci_low: float
    g_ci_high: float
    improvement_index: float
    model: str
    covariates: tuple[str, ...]
    baseline_equivalence: BaselineEquivalence | None
    bayes: BayesResult | None
    match: MatchResult | None
    attrition: AttritionResult | None
    cluster_correction: ClusterCorrection | None
    mdes: PowerResult | None
    r2: float
    n_users_offered: int = 0
    n_sites: int = 0
    rd: RdDiagnostics | None = None
    notes: tuple[str, ...] = field(default=())

    @property
    def probability_positive(self) -> float:
        """P(effect > 0) under the main (weakly-informative) prior."""
        return self.bayes.main.prob_positive if self.bayes else math.nan

    @property
    def probability_meaningful(self) -> float:
        """P(effect > the plan's meaningful effect) under the main prior."""
        return self.bayes.main.prob_better if self.bayes else math.nan

    @property
    def decision(self) -> str:
        """'pass' / 'fail' / 'inconclusive', or 'not assessed' without an estimate."""
        return self.bayes.decision.verdict if self.bayes else "not assessed"

    def _decision_dict(self) -> dict[str, Any] | None:
        if not self.bayes:
            return None
        d = self.bayes.decision.to_dict()
        d["meaningful_effect"] = d.pop("meaningful")
        return d

    def to_frame(self) -> pd.DataFrame:
        """One row: the headline numbers."""
        keys = ["design", "estimand", "outcome", "n_treatment", "n_comparison", "n_clusters",
                "estimate", "se", "ci_low", "ci_high", "p_value", "hedges_g", "g_ci_low",
                "g_ci_high", "improvement_index"]
        row = {k: getattr(self, k) for k in keys}
        row.update(probability_positive=self.probability_positive,
                   probability_meaningful=self.probability_meaningful, decision=self.decision)
        return pd.DataFrame([row])

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict with the design.md ``impact`` keys plus balance, regions and decision."""
        eq = self.baseline_equivalence
        d: dict[str, Any] = {
            "design": self.design,
            "estimand": self.estimand,
            "outcome": self.outcome,
            "treatment_definition": self.design_choice.treatment_definition,
            "n_treatment": self.n_treatment,
            "n_comparison": self.n_comparison,
            "n_clusters": self.n_clusters,
            "estimate": self.estimate,
            "se": self.se,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "level": self.level,
            "p_value": self.p_value,
            "df": self.df,
            "mean_treatment": self.mean_treatment,
            "mean_comparison": self.mean_comparison,
            "pooled_sd": self.pooled_sd,
            "hedges_g": self.hedges_g,
            "g_ci_low": self.g_ci_low,
            "g_ci_high": self.g_ci_high,
            "improvement_index": self.improvement_index,
            "probability_positive": self.probability_positive,
            "probability_meaningful": self.probability_meaningful,
            "decision": self._decision_dict(),
            "regions": ({"worse": self.bayes.main.prob_worse,
                         "no_change": self.bayes.main.prob_no_change,
                         "better": self.bayes.main.prob_better} if self.bayes else None),
            "three_region": self.bayes.to_dict()["three_region"] if self.bayes else None,
            "prior": self.bayes.main.prior.description if self.bayes else None,
            "bayes": self.bayes.to_dict() if self.bayes else None,
            "baseline_equivalence": (
                [{"variable": r.variable, "g": r.g, "verdict": r.verdict, "kind": r.kind}
                 for r in eq.rows] if eq else []
            ),
            "baseline_equivalence_satisfied": eq.satisfied if eq else None,
            "balance": self.match.to_frame() if self.match else [],
            "balance_before": self.match.balance_before if self.match else None,
            "balance_after": self.match.balance_after if self.match else None,
            "matching": self.match.to_dict() if self.match else None,
            "attrition": self.attrition.to_dict() if self.attrition else None,
            "wwc_cluster_correction": (self.cluster_correction.to_dict()
                                       if self.cluster_correction else None),
            "mdes": self.mdes.mdes if self.mdes else None,
            "mdes_detail": self.mdes.to_dict() if self.mdes else None,
            "regression_discontinuity": self.rd.to_dict() if self.rd else None,
            "clusters": self.n_clusters,
            "reason": self.design_choice.reason,
            "unit": ("percentile points" if "percentile" in self.outcome else
                     "scale-score points" if "scale_score" in self.outcome else "outcome units"),
            "model": self.model,
            "covariates": list(self.covariates),
            "r2": self.r2,
            "notes": list(self.notes),
        }
        return json_safe(d)

    def summary(self) -> str:
        """Readable text."""
        if self.design == "none":
            return self.design_choice.summary()
        lvl = round(self.level * 100)
        lines = [
            f"Impact on {self.outcome} ({self.design} design, estimand {self.estimand}): "
            f"{fmt(self.estimate, 2)} points, {lvl}% CI [{fmt(self.ci_low, 2)}, "
            f"{fmt(self.ci_high, 2)}], p = {fmt(self.p_value, 4)}; n = {self.n_treatment} vs "
            f"{self.n_comparison}"
            + (f" in {self.n_clusters} clusters" if self.n_clusters else "") + ".",
            f"Hedges' g {fmt(self.hedges_g)} [{fmt(self.g_ci_low)}, {fmt(self.g_ci_high)}]; "
            f"improvement index {fmt(self.improvement_index, 1)} percentile points.",
            f"P(effect > 0) = {pct(self.probability_positive, 1)}; P(effect > meaningful) = "
            f"{pct(self.probability_meaningful, 1)}; decision: {self.decision}.",
            f"Model: {self.model}.",
        ]
        if self.mdes is not None:
            lines.append(f"Minimum detectable effect for this sample: {fmt(self.mdes.mdes)} SD.")
        lines.extend(self.notes)
        return "\n".join(lines)


# --- helpers ----------------------------------------------------------------------------------


def _require(frame: pd.DataFrame, cols: list[str]) -> None:
    for c in cols:
        if c not in frame.columns:
            raise DataError(f"the analysis frame has no column {c!r}", where="analysis frame",
                            hint="Check the outcome/baseline names and the preparation step.")


def _demographic_categories(frame: pd.DataFrame, minimum: int) -> tuple[pd.DataFrame, list[str]]:
    """Demographics as text categories; missing -> 'Unknown'; levels smaller than ``minimum``
    merged into 'Other' (tiny levels make the propensity logit unstable and the cells
    identifiable)."""
    cols: dict[str, pd.Series] = {}
    names: list[str] = []
    for c in DEMOGRAPHICS:
        if c not in frame.columns:
            continue
        s = frame[c]
        if pd.api.types.is_bool_dtype(s.dtype):
            s = s.astype("boolean").map({True: "yes", False: "no"})
        s = merge_rare_levels(s, minimum)
        if s.nunique() < 2:
            continue
        cols[c] = s.astype(str)
        names.append(c)
    return pd.DataFrame(cols, index=frame.index), names


def _school_terms(frame: pd.DataFrame, already: list[str]) -> list[str]:
    """School indicators for the outcome model: implementation and growth differ by school, and
    use often does too, so the regression adjusts for school whenever there are several (the
    fixed effects are nested in the school clusters and cost no cluster degrees of freedom)."""
    if "school" in already or "school" not in frame.columns:
        return []
    if frame["school"].nunique(dropna=True) < 2:
        return []
    return ["school"]


def _cluster_column(frame: pd.DataFrame, plan: Plan) -> str | None:
    c = plan.analysis.cluster
    if c in frame.columns and frame[c].notna().any():
        return c
    return None


def _fit_adjusted(
    data: pd.DataFrame,
    outcome: str,
    treat: str,
    numeric: list[str],
    categorical: list[str],
    *,
    cluster: str | None,
    weights: pd.Series | None,
    level: float,
) -> tuple[Any, list[str]]:
    X, names = design_matrix(data, numeric=[treat, *numeric], categorical=categorical)
    y = data[outcome].to_numpy(dtype=float)
    if weights is not None:
        # WLS as OLS on sqrt(w)-scaled rows: same coefficients, and the sandwich on the scaled
        # residuals is the weighted (robust / clustered) sandwich.
        sw = np.sqrt(weights.reindex(data.index).to_numpy(dtype=float))
        X = X * sw[:, None]
        y = y * sw
    cl = data[cluster].to_numpy() if cluster else None
    n_groups = int(pd.Series(cl).nunique()) if cl is not None else 0
    vcov = "cluster" if cluster and n_groups >= 2 else "HC1"
    fit = fit_ols(y, X, names=names, cluster=cl if vcov == "cluster" else None, vcov=vcov,
                  level=level)
    return fit, names


def _r2_covariates(data: pd.DataFrame, outcome: str, numeric: list[str],
                   categorical: list[str]) -> float:
    X, names = design_matrix(data, numeric=numeric, categorical=categorical)
    try:
        return float(fit_ols(data[outcome].to_numpy(dtype=float), X, names=names,
                             vcov="classical").r2)
    except DataError:
        return math.nan


def _g_from_fit(data: pd.DataFrame, outcome: str, treat: str, b: float, se: float, lo: float,
                hi: float, weights: pd.Series | None) -> tuple[float, float, float, float, float,
                                                            float, float]:
    t = data[treat] == 1
    y = data[outcome].astype(float)
    w = (weights.reindex(data.index).astype(float) if weights is not None
         else pd.Series(1.0, index=data.index))
    def wstats(mask):
        yy, ww = y[mask].to_numpy(), w[mask].to_numpy()
        m = float(np.sum(ww * yy) / np.sum(ww))
        sw = ww.sum()
        v = float(np.sum(ww * (yy - m) ** 2) / (sw - np.sum(ww**2) / sw))
        return m, math.sqrt(v), int(mask.sum())
    mt, sdt, nt = wstats(t)
    mc, sdc, nc = wstats(~t)
    h = es.hedges_g_from_summary(mt, mc, sdt, sdc, nt, nc, adjusted_difference=b)
    scale = h.omega / h.pooled_sd if h.pooled_sd and math.isfinite(h.pooled_sd) else math.nan
    return mt, mc, h.pooled_sd, h.g, se * scale, lo * scale, hi * scale


def _equivalence_from_balance(balance: pd.DataFrame, n_t: int, n_c: int,
                              required: tuple[str, ...]) -> BaselineEquivalence:
    rows = []
    for _, r in balance.iterrows():
        if r["variable"] == "distance":
            continue
        g = float(r["smd_wwc"])
        rows.append(EquivalenceRow(str(r["variable"]), "binary" if r["binary"] else "continuous",
                                   float(r["mean_treatment"]), float(r["mean_comparison"]), g,
                                   equivalence_verdict(g)))
    return BaselineEquivalence(
        tuple(rows), n_t, n_c,
        ("Computed on the matched analytic sample (with matching weights): Hedges' g with the "
         "pooled within-group SD and ω; Cox index for 0/1 variables (WWC).",
         _REQUIRED_NOTE),
        required=required,
    )


_REQUIRED_NOTE = ("Equivalence is required on the baseline score (the pretest in the outcome's "
                  "domain, as WWC protocols name it); demographic differences are reported and, "
                  "above 0.05, adjusted for in the impact model.")


def _adjust_terms(eq: BaselineEquivalence, demo: list[str], baseline: str) -> list[str]:
    """Demographic categories whose level is in the 0.05-0.25 (or > 0.25) band: the whole
    categorical goes into the model (WWC: adjusted characteristics)."""
    out = []
    for v in (*eq.must_adjust, *eq.failing):
        if v == baseline:
            continue
        base = v.split("[", 1)[0]
        if base in demo and base not in out:
            out.append(base)
    return out


def _bayes(g: float, g_se: float, plan: Plan, df: float = math.inf) -> BayesResult | None:
    if not (math.isfinite(g) and math.isfinite(g_se) and g_se > 0):
        return None
    d = plan.decision
    if math.isfinite(df) and df > 0:
        # The likelihood is normal, but with few clusters inference is t(G - 1): widen the
        # standard error so the normal 95% interval equals the t interval (never narrower).
        g_se = g_se * float(_dist.t_ppf(0.975, df) / _dist.norm_ppf(0.975))
    return effect_probabilities(g, g_se, meaningful=d.meaningful_effect,
                                pass_probability=d.pass_probability,
                                fail_probability=d.fail_probability,
                                credible_level=plan.analysis.confidence_level)


def _none_result(choice: DesignChoice, outcome: str, level: float) -> ImpactResult:
    nan = math.nan
    return ImpactResult(
        design="none", estimand="", outcome=outcome, design_choice=choice,
        n_treatment=choice.n_treatment, n_comparison=choice.n_comparison, n_clusters=None,
        estimate=nan, se=nan, ci_low=nan, ci_high=nan, p_value=nan, df=nan, level=level,
        mean_treatment=nan, mean_comparison=nan, pooled_sd=nan, hedges_g=nan, g_se=nan,
        g_ci_low=nan, g_ci_high=nan, improvement_index=nan, model="none",
        covariates=(), baseline_equivalence=None, bayes=None, match=None, attrition=None,
        cluster_correction=None, mdes=None, r2=nan, notes=(choice.reason,),
    )


# --- the two designs --------------------------------------------------------------------------


def estimate_impact(
    frame: pd.DataFrame,
    *,
    plan: Plan,
    outcome: str = "outcome_scale_score",
    baseline: str = "baseline_scale_score",
    design: DesignChoice | None = None,
    rd: RdSpec | None = None,
) -> ImpactResult:
    """Run the design the data support, end to end.

    Parameters
    ----------
    frame
        The analysis frame (``rce.canonical.ANALYSIS_COLUMNS``; plus the assignment column when
        the plan names one).
    plan
        Study plan: treatment definition, caliper, ratio, replacement, exact matching on school,
        cluster variable, confidence level and the decision rule.
    outcome, baseline
        Outcome and baseline score columns.
    design
        A :class:`DesignChoice` from :func:`choose_design` (computed when None).
    rd
        Running variable and cutoff when assignment was by a cutoff (see :class:`RdSpec`).

    Returns
    -------
    ImpactResult
        With design ``"none"`` (and the reason) when no comparison is possible.
    """
    _require(frame, [outcome, baseline])
    choice = design or choose_design(frame, plan, rd=rd)
    level = plan.analysis.confidence_level
    if choice.design == "none":
        return _none_result(choice, outcome, level)
    if choice.design == "regression-discontinuity":
        if rd is None:
            raise DataError("a regression-discontinuity design needs its running variable and "
                            "cutoff", where="impact", hint="Pass rd=RdSpec(...).")
        return _regression_discontinuity(frame, plan, choice, outcome, rd)
    if choice.design == "randomized":
        return _randomized(frame, plan, choice, outcome, baseline)
    return _matched(frame, plan, choice, outcome, baseline)


def _matched(frame: pd.DataFrame, plan: Plan, choice: DesignChoice, outcome: str,
             baseline: str) -> ImpactResult:
    level = plan.analysis.confidence_level
    groups = _treatment_groups(frame, plan)
    eligible = frame.loc[groups.notna()].copy()
    eligible["_treat"] = (groups[groups.notna()] == "treatment").astype(float)
    n_users_offered = int(eligible["_treat"].sum())
    notes: list[str] = [f"Treatment: {choice.treatment_definition}."]
    has_y = eligible[outcome].notna() & eligible[baseline].notna()
    if (~has_y).any():
        notes.append(f"{int((~has_y).sum())} eligible students without both a baseline and an "
                     "outcome score are not in the analysis.")
    data = eligible.loc[has_y].copy()
    data[outcome] = pd.to_numeric(data[outcome], errors="coerce").astype(float)
    data[baseline] = pd.to_numeric(data[baseline], errors="coerce").astype(float)
    demo_frame, demo = _demographic_categories(data, plan.privacy.min_cell_size)
    for c in demo:
        data[c] = demo_frame[c]
    exact = ["grade"] if "grade" in data.columns else []
    if plan.analysis.match_on_school and "school" in data.columns:
        exact.append("school")
    for c in exact:
        data[c] = data[c].astype("string").fillna("unknown").astype(str)
    if data["_treat"].sum() < 2 or (data["_treat"] == 0).sum() < 2:
        return _none_result(
            DesignChoice("none", "", "Too few users or non-users have both a baseline and an "
                         "outcome score for a matched comparison.", choice.treatment_definition,
                         int(data["_treat"].sum()), int((data["_treat"] == 0).sum()),
                         choice.n_excluded, "dose-response"),
            outcome, level)
    m = match(data, "_treat", [baseline], categorical=demo, exact=exact,
              caliper=plan.analysis.caliper, distance="logit", ratio=plan.analysis.match_ratio,
              replace=plan.analysis.match_with_replacement)
    notes.extend(m.notes)
    sample = m.matched
    weights = sample["weight"] if (sample["weight"] != 1).any() else None
    n_t = int((sample["_treat"] == 1).sum())
    n_c = int((sample["_treat"] == 0).sum())
    eq = _equivalence_from_balance(m.balance_after, n_t, n_c, (baseline,))
    adjust = _adjust_terms(eq, demo, baseline)
    categorical = [*exact, *_school_terms(sample, exact), *adjust]
    cluster = _cluster_column(sample, plan)
    if n_t < 2 or n_c < 2:
        raise DataError("matching left fewer than 2 students in a group", where="matching",
                        hint="Widen the caliper (analysis.caliper) or drop exact matching on "
                        "school.")
    fit, _ = _fit_adjusted(sample, outcome, "_treat", [baseline], categorical, cluster=cluster,
                           weights=weights, level=level)
    notes.extend(fit.notes)
    return _finish(sample, plan, choice, outcome, baseline, fit, weights, eq, m, None, None,
                   categorical, cluster, n_users_offered, notes)


def _detect_cluster_assignment(frame: pd.DataFrame, a: pd.Series) -> str | None:
    for c in _ASSIGNMENT_UNITS:
        if c not in frame.columns:
            continue
        g = frame.loc[a.notna(), c]
        if g.isna().any():
            continue
        per = a[a.notna()].groupby(g.astype(str)).nunique()
        if len(per) >= 2 and (per == 1).all() and len(per) < a.notna().sum():
            return c
    return None


def _randomized(frame: pd.DataFrame, plan: Plan, choice: DesignChoice, outcome: str,
                baseline: str) -> ImpactResult:
    level = plan.analysis.confidence_level
    col = plan.analysis.assignment_column
    a = _assignment(frame, col)
    rand = frame.loc[a.notna()].copy()
    rand["_treat"] = a[a.notna()]
    unit = _detect_cluster_assignment(frame, a)
    has_y = rand[outcome].notna() & rand[baseline].notna()
    data = rand.loc[has_y].copy()
    data[outcome] = pd.to_numeric(data[outcome], errors="coerce").astype(float)
    data[baseline] = pd.to_numeric(data[baseline], errors="coerce").astype(float)
    att = attrition(int((rand["_treat"] == 1).sum()), int((rand["_treat"] == 0).sum()),
                    int((data["_treat"] == 1).sum()), int((data["_treat"] == 0).sum()))
    notes = [
        "Treatment: assigned to the product by the randomization (intent to treat): students "
        "assigned but not using it stay in the treatment group.",
        att.summary(),
    ]
    demo_frame, demo = _demographic_categories(data, plan.privacy.min_cell_size)
    eq_frame = pd.DataFrame({"_treat": data["_treat"], baseline: data[baseline]},
                            index=data.index)
    eq_vars = [baseline]
    for c in demo:
        X, names = design_matrix(demo_frame, categorical=[c], drop_first=False, intercept=False)
        for j, nm in enumerate(names):
            eq_frame[nm] = X[:, j]
            eq_vars.append(nm)
    eq = baseline_equivalence(eq_frame, "_treat", eq_vars, required=(baseline,))
    for c in demo:
        data[c] = demo_frame[c]
    adjust = _adjust_terms(eq, demo, baseline)
    block = ["grade"] if "grade" in data.columns else []
    for c in block:
        data[c] = data[c].astype("string").fillna("unknown").astype(str)
    cluster = unit if unit is not None else _cluster_column(data, plan)
    if unit is not None:
        notes.append(f"Assignment was by {unit}: standard errors are clustered by {unit}.")
    block = [*block, *_school_terms(data, block)]
    fit, _ = _fit_adjusted(data, outcome, "_treat", [baseline], block + adjust, cluster=cluster,
                           weights=None, level=level)
    notes.extend(fit.notes)
    cc = None
    if unit is not None:
        g_tmp = _g_from_fit(data, outcome, "_treat", float(fit.coef["_treat"]), 0, 0, 0, None)[3]
        n_t = int((data["_treat"] == 1).sum())
        n_c = int((data["_treat"] == 0).sum())
        if math.isfinite(g_tmp):
            t_stat = g_tmp / es.se_hedges_g(g_tmp, n_t, n_c)
            mean_size = len(data) / data[unit].nunique()
            cc = cluster_correction(t_stat, len(data), mean_size, DEFAULT_ICC["achievement"])
            notes.append(
                "WWC clustering correction (ICC 0.20 for achievement) of the student-level "
                f"t: p = {cc.p_value:.4f}; the reported p-value is cluster-robust."
            )
    return _finish(data, plan, choice, outcome, baseline, fit, None, eq, None, att, cc,
                   block + adjust, cluster, int((rand["_treat"] == 1).sum()), notes)


def _finish(sample, plan, choice, outcome, baseline, fit, weights, eq, m, att, cc, categorical,
            cluster, n_users_offered, notes) -> ImpactResult:
    level = plan.analysis.confidence_level
    if "_treat" not in fit.coef.index:
        raise DataError("the treatment effect could not be estimated (collinear with the "
                        "covariates)", where="impact model", hint=None)
    b, se = float(fit.coef["_treat"]), float(fit.se["_treat"])
    lo, hi, p = float(fit.ci_low["_treat"]), float(fit.ci_high["_treat"]), float(
        fit.p_value["_treat"])
    mt, mc, sd, g, g_se, g_lo, g_hi = _g_from_fit(sample, outcome, "_treat", b, se, lo, hi,
                                                  weights)
    n_t = int((sample["_treat"] == 1).sum())
    n_c = int((sample["_treat"] == 0).sum())
    r2 = _r2_covariates(sample, outcome, [baseline], categorical)
    design = choice.design
    power = None
    if n_t + n_c > 2:
        power = mdes("matched" if design == "matched" else "randomized",
                     n_students=n_t + n_c, r2_outcome=min(max(r2, 0.0), 0.99)
                     if math.isfinite(r2) else 0.0, p_treated=n_t / (n_t + n_c),
                     sd_outcome=sd if math.isfinite(sd) else None)
    bayes = _bayes(g, g_se, plan, fit.df)
    if bayes is not None and math.isfinite(fit.df) and fit.df < 100:
        notes.append(f"The posterior uses the standard error widened to match t({fit.df:g}) "
                     "inference, so the probabilities do not overstate certainty with few "
                     "clusters.")
    covs = (baseline, *categorical)
    se_kind = (f"clustered by {cluster} ({fit.n_clusters} clusters; Stata small-sample factor, "
               f"t({fit.df:g}))" if fit.vcov == "cluster" else "heteroskedasticity-robust (HC1)")
    model = (f"OLS of {outcome} on the treatment indicator, {baseline}"
             + (f" and indicators for {', '.join(categorical)}" if categorical else "")
             + (", weighted by the matching weights" if weights is not None else "")
             + f"; {se_kind} standard errors")
    notes.append(
        "Hedges' g = ω x adjusted difference / unadjusted pooled SD of the outcome (WWC); its "
        "interval is the model's interval on the same scale."
    )
    if design == "matched":
        notes.append("What this cannot show: matching balances measured characteristics only; "
                     "students who chose to use the product may differ in motivation or support "
                     "in ways no covariate captures.")
    else:
        notes.append("What this cannot show: the effect of actually using the product (this is "
                     "the effect of being assigned it).")
    n_sites = int(sample["school"].nunique()) if "school" in sample.columns else 0
    return ImpactResult(
        design=design, estimand=choice.estimand, outcome=outcome, design_choice=choice,
        n_treatment=n_t, n_comparison=n_c, n_clusters=fit.n_clusters,
        estimate=b, se=se, ci_low=lo, ci_high=hi, p_value=p, df=fit.df, level=level,
        mean_treatment=mt, mean_comparison=mc, pooled_sd=sd, hedges_g=g, g_se=g_se,
        g_ci_low=g_lo, g_ci_high=g_hi, improvement_index=es.improvement_index(g),
        model=model, covariates=covs, baseline_equivalence=eq, bayes=bayes, match=m,
        attrition=att, cluster_correction=cc, mdes=power, r2=r2,
        n_users_offered=n_users_offered, n_sites=n_sites, notes=tuple(notes),
    )


def _rd_treated(x: pd.Series, rd: RdSpec) -> pd.Series:
    if rd.treated_side not in ("below", "above"):
        raise DataError(f"unknown treated side {rd.treated_side!r}", where="regression "
                        "discontinuity", hint="Use 'below' or 'above'.")
    t = (x < rd.cutoff) if rd.treated_side == "below" else (x >= rd.cutoff)
    return t.astype(float).where(x.notna())


def _regression_discontinuity(frame: pd.DataFrame, plan: Plan, choice: DesignChoice,
                              outcome: str, rd: RdSpec) -> ImpactResult:
    """Local linear RD (rdrobust: triangular kernel, MSE-optimal bandwidth, robust
    bias-corrected inference) with the Cattaneo-Jansson-Ma density test (rddensity)."""
    try:
        from rddensity import rddensity
        from rdrobust import rdrobust
    except ImportError:
        from rce.errors import NotAvailableError

        raise NotAvailableError(
            "regression discontinuity needs the optional packages rdrobust and rddensity",
            where="impact",
            hint="pip install rdrobust rddensity",
        ) from None
    level = plan.analysis.confidence_level
    x = pd.to_numeric(frame[rd.running], errors="coerce").astype(float)
    y = pd.to_numeric(frame[outcome], errors="coerce").astype(float)
    ok = x.notna() & y.notna()
    data = frame.loc[ok].copy()
    data["_x"], data["_y"] = x[ok], y[ok]
    data["_treat"] = _rd_treated(data["_x"], rd)
    n_below = int((data["_x"] < rd.cutoff).sum())
    n_above = int((data["_x"] >= rd.cutoff).sum())
    minimum = plan.privacy.min_cell_size
    if min(n_below, n_above) < max(minimum, 20):
        raise DataError(
            f"too few students on one side of the cutoff ({n_below} below, {n_above} above)",
            where=f"analysis frame, column {rd.running}",
            hint="A regression discontinuity needs many students near the cutoff.",
        )
    cluster = _cluster_column(data, plan)
    notes = [f"Treatment: {choice.treatment_definition}."]
    cl = None
    if cluster is not None:
        g = int(data[cluster].nunique())
        if g >= 20:
            cl = data[cluster].astype(str).to_numpy()
        else:
            notes.append(f"Only {g} {cluster}s: the RD standard errors are not clustered (too "
                         "few clusters for a cluster-robust variance); they may be too small.")
    with warnings_as_notes(notes):
        fit = rdrobust(data["_y"].to_numpy(), data["_x"].to_numpy(), c=rd.cutoff,
                       level=round(level * 100), cluster=cl)
        # Sorting around the cutoff concerns everyone with a running value, outcome or not.
        dens = rddensity(X=x[x.notna()].to_numpy(), c=rd.cutoff)
    # rdrobust estimates the jump from below to above; flip it when the product is below.
    sign = -1.0 if rd.treated_side == "below" else 1.0
    conv, bc = float(fit.coef.iloc[0, 0]), float(fit.coef.iloc[1, 0])
    se_conv, se_rob = float(fit.se.iloc[0, 0]), float(fit.se.iloc[2, 0])
    lo, hi = (sign * float(fit.ci.iloc[2, 0]), sign * float(fit.ci.iloc[2, 1]))
    lo, hi = min(lo, hi), max(lo, hi)
    p = float(fit.pv.iloc[2, 0])
    h = float(fit.bws.iloc[0, 0])
    b = float(fit.bws.iloc[1, 0])
    # Standardize by the outcome's pooled SD over the whole analytic sample: the SD within the
    # bandwidth is shrunk by the restricted range of the running variable and would inflate g.
    mt, mc, sd, g_, g_se, g_lo, g_hi = _g_from_fit(data.rename(columns={"_y": "__y"}), "__y",
                                                   "_treat", sign * conv, se_rob, lo, hi, None)
    diag = RdDiagnostics(
        running=rd.running, cutoff=float(rd.cutoff), treated_side=rd.treated_side,
        bandwidth=h, bias_bandwidth=b, n_below=n_below, n_above=n_above,
        n_effective_below=int(fit.N_h[0]), n_effective_above=int(fit.N_h[1]),
        estimate_conventional=sign * conv, se_conventional=se_conv,
        estimate_bias_corrected=sign * bc,
        density_t=float(dens.test["t_jk"]), density_p=float(dens.test["p_jk"]),
        clustered=cl is not None,
    )
    notes.append(
        f"Density (manipulation) test at the cutoff: T = {diag.density_t:.3f}, p = "
        f"{diag.density_p:.3f}" + (" -- students may have been sorted around the cutoff."
                                   if diag.density_p < 0.05 else ".")
    )
    notes.append("Local linear regression on each side (triangular kernel, MSE-optimal "
                 f"bandwidth {h:.3g} points); the interval and p-value are robust "
                 "bias-corrected (Calonico, Cattaneo & Titiunik 2014).")
    notes.append("Hedges' g divides the RD estimate by the pooled outcome SD of all students "
                 "on both sides; the group means are over all students, not only those near the "
                 "cutoff.")
    notes.append("What this cannot show: the effect for students far from the cutoff.")
    n_t_eff = diag.n_effective_below if rd.treated_side == "below" else diag.n_effective_above
    n_c_eff = diag.n_effective_above if rd.treated_side == "below" else diag.n_effective_below
    return ImpactResult(
        design="regression-discontinuity", estimand=choice.estimand, outcome=outcome,
        design_choice=choice, n_treatment=n_t_eff, n_comparison=n_c_eff, n_clusters=None,
        estimate=sign * conv, se=se_rob, ci_low=lo, ci_high=hi, p_value=p, df=math.inf,
        level=level, mean_treatment=mt, mean_comparison=mc, pooled_sd=sd, hedges_g=g_,
        g_se=g_se, g_ci_low=g_lo, g_ci_high=g_hi, improvement_index=es.improvement_index(g_),
        model=f"rdrobust local linear RD of {outcome} on {rd.running} at {rd.cutoff:g}",
        covariates=(), baseline_equivalence=None, bayes=_bayes(g_, g_se, plan), match=None,
        attrition=None, cluster_correction=None, mdes=None, r2=math.nan,
        n_users_offered=n_t_eff,
        n_sites=int(data["school"].nunique()) if "school" in data.columns else 0,
        rd=diag, notes=tuple(notes),
    )


class warnings_as_notes:
    """Collect warnings raised by third-party estimators as report notes (tests run with
    warnings as errors; a user should see them as caveats, not crashes)."""

    def __init__(self, notes: list[str]):
        self.notes = notes

    def __enter__(self):
        import warnings

        self._cm = warnings.catch_warnings(record=True)
        self._caught = self._cm.__enter__()
        warnings.simplefilter("always")
        return self

    def __exit__(self, *exc):
        self._cm.__exit__(*exc)
        for w in self._caught:
            self.notes.append(f"Estimator warning: {w.message}")
        return False


# --- a plain regression-adjusted difference (reference checks, custom frames) -----------------


def adjusted_difference(
    frame: pd.DataFrame,
    outcome: str,
    treatment: str,
    covariates: tuple[str, ...] | list[str] = (),
    *,
    cluster: str | None = None,
    weights: str | None = None,
    level: float = 0.95,
) -> dict[str, float]:
    """Regression-adjusted treatment-comparison difference with robust or clustered SEs.

    HC1 (Stata ``, robust``) without ``cluster``; Stata ``vce(cluster)`` with it.

    Returns
    -------
    dict
        ``estimate, se, ci_low, ci_high, p_value, n, df``.
    """
    _require(frame, [outcome, treatment, *covariates])
    w = frame[weights] if weights else None
    fit, _ = _fit_adjusted(frame, outcome, treatment, list(covariates), [], cluster=cluster,
                           weights=w, level=level)
    return {
        "estimate": float(fit.coef[treatment]),
        "se": float(fit.se[treatment]),
        "ci_low": float(fit.ci_low[treatment]),
        "ci_high": float(fit.ci_high[treatment]),
        "p_value": float(fit.p_value[treatment]),
        "n": fit.n,
        "df": fit.df,
    }
