"""ESSA evidence tier and WWC rating emulation for one local study, plus suspect-result warnings.

The output lists each criterion as met / not met with the reason, and names the tier the study
is *consistent with*. It is never a certification: ESSA tiers rest on studies that meet WWC
standards, reviewed by someone other than the analyst (``methods.md`` §3-§4, §6).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from rce.config import Plan
from rce.stats._impact_common import fmt, json_safe, pct
from rce.stats.impact import ImpactResult
from rce.stats.wwc import Criterion, wwc_rating

#: ESSA "large sample": at least 350 students, or 50 groups of 10 (34 CFR 77.1; methods.md §4).
ESSA_LARGE_STUDENTS = 350
#: Two-sided significance level of WWC/ESSA findings.
ALPHA = 0.05
#: WWC "substantively important" effect size (v1-v4 rating schemes).
SUBSTANTIVE_G = 0.25

# Suspect-result thresholds (Civitas Illume Impact for the first three; methods.md §6).
MIN_ANALYSED = 200
MIN_SHARE_MATCHED = 0.70
MIN_OVERLAP = 0.85
#: An effect this large (|g|) on a standardized achievement outcome is implausible for an edtech
#: product (Kraft 2020: median RCT effect ≈ 0.10 SD; 0.20 counts as large).
IMPLAUSIBLE_G = 0.50
MAX_RUSH_SHARE = 0.10
MIN_CLUSTERS = 20

TIER_LABELS = {1: "Tier 1 (Strong)", 2: "Tier 2 (Moderate)", 3: "Tier 3 (Promising)",
               4: "Tier 4 (Demonstrates a rationale)"}


@dataclass(frozen=True)
class EvidenceContext:
    """Facts about the study that the impact estimate does not carry.

    Attributes
    ----------
    n_districts
        LEAs in the study. ESSA's multi-site sample means more than one LEA, locality or state
        (34 CFR 77.1), so schools of one district are one site.
    match_rate
        Share of usage/score rows matched to the roster (from the join step).
    n_tests, n_rush_flagged
        Outcome tests and how many were rush-flagged (excluded or not).
    norm_change
        Baseline and outcome percentiles come from different norms (e.g. i-Ready's 2024 norms).
    vendor_measure
        The outcome is the product vendor's own test.
    logic_model
        A written logic model exists (needed for ESSA Tier 4).
    """

    n_districts: int = 1
    match_rate: float | None = None
    n_tests: int | None = None
    n_rush_flagged: int | None = None
    norm_change: bool = False
    vendor_measure: bool = False
    logic_model: bool = False

    @classmethod
    def from_any(cls, value: EvidenceContext | Mapping[str, Any] | None) -> EvidenceContext:
        """Build from a context, a mapping of its fields (unknown keys ignored), or None."""
        if value is None:
            return cls()
        if isinstance(value, cls):
            return value
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in dict(value).items() if k in names})


@dataclass(frozen=True)
class EvidenceResult:
    """ESSA tier the study is consistent with, the WWC rating emulation and the criteria."""

    essa_tier: int | None
    essa_label: str
    wwc_rating: str
    criteria: tuple[Criterion, ...]
    warnings: tuple[dict[str, str], ...] = ()
    notes: tuple[str, ...] = field(default=())

    def to_frame(self):
        """One row per criterion."""
        import pandas as pd

        return pd.DataFrame([c.to_dict() for c in self.criteria])

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict: essa_tier, essa_label, wwc_rating, criteria[], warnings[], notes."""
        return json_safe(
            {
                "essa_tier": self.essa_tier,
                "essa_label": self.essa_label,
                "wwc_rating": self.wwc_rating,
                "criteria": [c.to_dict() for c in self.criteria],
                "warnings": [dict(w) for w in self.warnings],
                "notes": list(self.notes),
            }
        )

    def summary(self) -> str:
        """Readable text."""
        lines = [f"Evidence: {self.essa_label}. WWC emulation: {self.wwc_rating}."]
        for c in self.criteria:
            mark = "met" if c.met else ("not met" if c.met is False else "unknown")
            lines.append(f"  [{mark}] {c.name}: {c.detail}")
        for w in self.warnings:
            lines.append(f"  warning [{w['code']}]: {w['message']}")
        lines.extend(self.notes)
        return "\n".join(lines)


def _wwc_inputs(impact: ImpactResult) -> tuple[bool | None, bool | None]:
    att_low = None
    if impact.attrition is not None:
        # The protocol picks the boundary; without one the cautious boundary is the safe reading.
        att_low = impact.attrition.level_cautious == "low"
    eq = impact.baseline_equivalence
    eq_ok = None if eq is None or not eq.rows else eq.satisfied
    return att_low, eq_ok


def assess_evidence(
    impact: ImpactResult,
    *,
    plan: Plan,
    context: EvidenceContext | Mapping[str, Any] | None = None,
) -> EvidenceResult:
    """Check one study against the ESSA tiers and emulate the WWC rating.

    Parameters
    ----------
    impact
        The result of :func:`rce.stats.impact.estimate_impact`.
    plan
        Study plan (for the ID match-rate floor used in the warnings).
    context
        :class:`EvidenceContext` (or a dict of its fields): districts, match rate, rush flags,
        norm change, vendor measure, logic model.

    Returns
    -------
    EvidenceResult
    """
    ctx = EvidenceContext.from_any(context)
    crit: list[Criterion] = []
    att_low, eq_ok = _wwc_inputs(impact)
    rating, wwc_crit = wwc_rating(impact.design, attrition_low=att_low,
                                  equivalence_satisfied=eq_ok)
    crit.extend(wwc_crit)
    has_estimate = impact.design != "none" and math.isfinite(impact.p_value)
    sig = has_estimate and impact.p_value < ALPHA
    favourable = sig and impact.estimate > 0
    unfavourable = sig and impact.estimate < 0
    if has_estimate:
        crit.append(Criterion(
            "statistically significant favourable effect", favourable,
            f"Estimate {fmt(impact.estimate, 2)} points (g {fmt(impact.hedges_g)}), p = "
            f"{fmt(impact.p_value, 4)} (two-sided, alpha = {ALPHA:g}, cluster-robust).",
        ))
        crit.append(Criterion(
            "no statistically significant unfavourable effect", not unfavourable,
            "The effect is significantly negative." if unfavourable else
            "No significant negative effect in this study (other studies are not reviewed).",
        ))
    else:
        crit.append(Criterion("statistically significant favourable effect", False,
                              "No impact estimate: " + impact.design_choice.reason))
    n = impact.n_treatment + impact.n_comparison
    large = has_estimate and n >= ESSA_LARGE_STUDENTS
    crit.append(Criterion(
        "large sample (≥ 350 students)", large,
        f"{n} students analysed." + ("" if large else " ESSA Tiers 1-2 need at least 350 "
                                     "students (or 50 groups of 10)."),
    ))
    multi = ctx.n_districts > 1
    crit.append(Criterion(
        "multi-site sample (> 1 LEA, locality or state)", multi,
        f"{ctx.n_districts} district(s); {impact.n_sites} school(s). Schools of one district count "
        "as one site under 34 CFR 77.1." if not multi else
        f"{ctx.n_districts} districts, {impact.n_sites} schools.",
    ))
    rd = impact.design == "regression-discontinuity"
    controls = has_estimate and (impact.baseline_equivalence is not None or rd)
    if rd:
        detail = "Assignment by a known cutoff; local regression on the running variable."
    elif controls:
        detail = ("Regression adjustment for the baseline score"
                  + (" after matching on baseline score, grade and demographics"
                     if impact.design == "matched" else "") + ".")
    else:
        detail = "No impact model."
    crit.append(Criterion("statistical controls for selection bias", controls, detail))
    crit.append(Criterion(
        "logic model", ctx.logic_model,
        "A logic model is on file." if ctx.logic_model else
        "No logic model recorded (needed for Tier 4).",
    ))

    tier: int | None = None
    if favourable and not unfavourable:
        if (impact.design == "randomized" and rating.endswith("without reservations") and large
                and multi):
            tier = 1
        elif rating.startswith("Meets") and large and multi:
            tier = 2
        elif controls:
            tier = 3
    if tier is None and ctx.logic_model:
        tier = 4
    label = (f"consistent with ESSA {TIER_LABELS[tier]}" if tier is not None else
             "not consistent with any ESSA tier")
    notes = [
        "A local study emulates the WWC review and the ESSA criteria; it is not a WWC rating or "
        "an ESSA certification.",
    ]
    if tier == 3 and impact.design in ("matched", "randomized") and rating.startswith("Meets"):
        notes.append("The study would reach Tier 2 (or 1) with a large sample across more than "
                     "one district.")
    if tier == 4:
        notes.append("Tier 4 also needs ongoing efforts to examine effects: this study counts.")
    if has_estimate and not sig and abs(impact.hedges_g) >= SUBSTANTIVE_G:
        notes.append(f"|g| ≥ {SUBSTANTIVE_G}: substantively important by the WWC's older rule, "
                     "although not statistically significant.")
    return EvidenceResult(tier, label, rating, tuple(crit),
                          tuple(suspect_warnings(impact, plan=plan, context=ctx)), tuple(notes))


def suspect_warnings(
    impact: ImpactResult,
    *,
    plan: Plan,
    context: EvidenceContext | Mapping[str, Any] | None = None,
) -> list[dict[str, str]]:
    """Warnings that should make a reader doubt an impact estimate (``methods.md`` §6).

    Returns
    -------
    list of dict
        ``{"code": ..., "message": ...}``, in a fixed order.
    """
    ctx = EvidenceContext.from_any(context)
    out: list[dict[str, str]] = []

    def warn(code: str, message: str) -> None:
        out.append({"code": code, "message": message})

    if ctx.match_rate is not None and ctx.match_rate < plan.join.min_match_rate:
        warn("low_id_match", f"Only {pct(ctx.match_rate, 1)} of records matched the roster "
             f"(plan minimum {pct(plan.join.min_match_rate)}): unmatched students may differ.")
    if impact.design == "none":
        return out
    n = impact.n_treatment + impact.n_comparison
    if n < MIN_ANALYSED:
        warn("small_sample", f"Only {n} students were analysed (fewer than {MIN_ANALYSED}): the "
             "estimate is imprecise and easily moved by a few students.")
    m = impact.match
    if m is not None:
        if impact.n_users_offered and m.n_treated_matched / impact.n_users_offered < \
                MIN_SHARE_MATCHED:
            warn("few_users_matched", f"Only {pct(m.n_treated_matched / impact.n_users_offered)} "
                 f"of users were matched (fewer than {pct(MIN_SHARE_MATCHED)}): the estimate "
                 "describes an unusual subset of users.")
        if math.isfinite(m.overlap.overlap_after) and m.overlap.overlap_after < MIN_OVERLAP:
            warn("poor_overlap", f"Users' and matched non-users' propensity scores overlap only "
                 f"{pct(m.overlap.overlap_after)} (below {pct(MIN_OVERLAP)}): users and "
                 "comparison students remain different.")
    if math.isfinite(impact.hedges_g) and abs(impact.hedges_g) > IMPLAUSIBLE_G:
        warn("implausible_effect", f"An effect of {fmt(impact.hedges_g, 2)} SD is implausibly "
             f"large for an edtech product (> {IMPLAUSIBLE_G} SD): check the data, the outcome "
             "and the comparison group before believing it.")
    if ctx.n_tests and ctx.n_rush_flagged is not None and \
            ctx.n_rush_flagged / ctx.n_tests > MAX_RUSH_SHARE:
        warn("rush_flagged", f"{pct(ctx.n_rush_flagged / ctx.n_tests)} of tests were "
             "rush-flagged (the student answered too fast): those scores understate ability.")
    if ctx.norm_change and "percentile" in impact.outcome:
        warn("norm_change", "Baseline and outcome percentiles come from different norms (e.g. "
             "i-Ready's 2024 norm update): percentile changes mix real growth and the re-norming.")
    if ctx.vendor_measure:
        warn("vendor_measure", "The outcome is the product vendor's own test: effects on "
             "developer-made measures are typically larger than on independent tests.")
    if impact.n_clusters is not None and impact.n_clusters < MIN_CLUSTERS:
        warn("few_clusters", f"Only {impact.n_clusters} clusters for cluster-robust inference "
             f"(fewer than {MIN_CLUSTERS}): intervals are approximate.")
    if impact.rd is not None and impact.rd.density_p < ALPHA:
        warn("rd_manipulation", f"The density of {impact.rd.running} jumps at the cutoff "
             f"(p = {impact.rd.density_p:.3f}): students may have been placed around the cutoff, "
             "which would bias the discontinuity.")
    eq = impact.baseline_equivalence
    if eq is not None and eq.failing_required:
        warn("baseline_not_equivalent", "Baseline differences above 0.25 SD remain ("
             + ", ".join(eq.failing_required) + "): WWC equivalence fails.")
    elif eq is not None and eq.failing:
        warn("demographic_imbalance", "Demographic differences above 0.25 SD remain ("
             + ", ".join(eq.failing) + "); they are adjusted for in the model, but check them.")
    if impact.attrition is not None and impact.attrition.level_cautious == "high":
        warn("high_attrition", impact.attrition.summary())
    return out
