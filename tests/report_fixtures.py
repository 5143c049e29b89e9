"""Results dicts for the report tests: a complete example and its variants.

The numbers are invented but internally consistent (a district of 1,840 scored students in five
schools); they are inputs to the renderers, not reference values. Variants: no impact estimate
possible, every cell suppressed, and hostile text in every input-derived field.
"""

from __future__ import annotations

import copy
from typing import Any

HOSTILE_SCHOOL = "<script>alert('x')</script> | pipes | =HYPERLINK(\"http://evil\")"
HOSTILE_PRODUCT = "Math*Path* [click](http://evil) <img src=x onerror=alert(1)> $5"


def _bins() -> list[dict[str, Any]]:
    rows = []
    for months, n, mean in [(0, 410, 41.2), (1, 180, 43.0), (2, 210, 44.9), (3, 260, 46.1),
                            (4, 240, 48.3), (5, 190, 49.0), (6, 120, 51.2), (7, 8, None)]:
        if mean is None:
            rows.append({"months": months, "n": None, "mean": None, "ci_low": None,
                         "ci_high": None, "suppressed": True})
        else:
            half = 1.96 * 28.0 / n**0.5
            rows.append({"months": months, "n": n, "mean": mean, "ci_low": mean - half,
                         "ci_high": mean + half, "suppressed": False})
    return rows


def _gaps() -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    groups = {
        "race_ethnicity": ("White", [("White", 520, 52.0), ("Hispanic or Latino", 690, 44.5),
                                     ("Black or African American", 160, 41.0), ("Asian", 120, 58.3),
                                     ("American Indian or Alaska Native", None, None)]),
        "el_status": ("Not EL", [("Not EL", 1310, 50.1), ("EL", 280, 38.2)]),
        "school": (HOSTILE_SCHOOL, [(HOSTILE_SCHOOL, 400, 49.0), ("Desert View Elementary", 380,
                                                                   46.5)]),
    }
    for window in ("fall", "spring"):
        for population in ("users", "non_users"):
            for dim, (ref, cells) in groups.items():
                ref_mean = next(m for g, _n, m in cells if g == ref)
                for group, n, mean in cells:
                    shift = (1.5 if window == "spring" else 0.0) - (
                        2.0 if population == "non_users" else 0.0)
                    if n is None:
                        rows.append({"dimension": dim, "group": group, "reference": ref,
                                     "users_only": population == "users", "n": None, "mean": None,
                                     "gap": None, "ci_low": None, "ci_high": None,
                                     "p_adjusted": None, "suppressed": True, "window": window,
                                     "population": population, "hedges_g": None,
                                     "pooled_estimate": None})
                        continue
                    gap = None if group == ref else mean - ref_mean + shift * 0.5
                    rows.append({
                        "dimension": dim, "group": group, "reference": ref,
                        "users_only": population == "users",
                        "n": n // (2 if population == "users" else 3),
                        "mean": mean + shift, "gap": gap,
                        "ci_low": None if gap is None else gap - 3.1,
                        "ci_high": None if gap is None else gap + 3.1,
                        "p_adjusted": None if gap is None else 0.012,
                        "suppressed": False, "window": window, "population": population,
                        "hedges_g": None if gap is None else gap / 28.0,
                        "pooled_estimate": None if gap is None else gap * 0.9,
                    })
    # Complementary suppression: the other small race cell is hidden too.
    for r in rows:
        if r["dimension"] == "race_ethnicity" and r["group"] == "Asian" and r["window"] == "fall":
            r.update({"n": None, "mean": None, "gap": None, "ci_low": None, "ci_high": None,
                      "p_adjusted": None, "hedges_g": None, "pooled_estimate": None,
                      "suppressed": True})
    return rows


def complete_results() -> dict[str, Any]:
    """A complete results dict: every section present, some cells suppressed."""
    months = ["2025-09", "2025-10", "2025-11", "2025-12", "2026-01", "2026-02", "2026-03",
              "2026-04"]
    active = [820, 1010, 1060, 880, 1040, 1075, 1030, 640]
    habitual = [410, 640, 700, 510, 690, 720, 660, 300]
    return {
        "schema_version": "1",
        "rce_version": "0.1.0",
        "generated_at": None,
        "study": {"name": "Sierra Vista USD 2025-26 math pilot", "subject": "math",
                  "academic_year": "2025-2026", "product": "MathPath", "outcome_window": "spring",
                  "interim": False},
        "plan": {"sha256": "ab" * 32, "locked": True, "locked_at": "2025-08-20T17:02:11Z",
                 "changed": False, "min_cell_size": 10, "meaningful_effect": 0.10,
                 "pass_probability": 0.75, "fail_probability": 0.50, "confidence_level": 0.95,
                 "seed": 20250601},
        "inputs": [
            {"path": "exports/diagnostic_results_math.csv", "sha256": "1f" * 32, "rows": 3712,
             "preset": "iready-diagnostic-results", "kind": "scores"},
            {"path": "exports/roster.csv", "sha256": "2e" * 32, "rows": 1902,
             "preset": "calpads-roster", "kind": "roster"},
            {"path": "exports/mathpath_sessions.csv", "sha256": "3d" * 32, "rows": 148220,
             "preset": "generic-session-log", "kind": "usage"},
        ],
        "join": {"students_scored": 1840, "students_with_usage": 1430, "usage_rows": 148220,
                 "usage_rows_matched": 145110, "usage_match_rate": 145110 / 148220,
                 "roster_students": 1902, "score_match_rate": 0.987},
        "dosage": {"definition": {"unit": "row", "min_sessions_per_month": 3,
                                  "min_habitual_months": 1, "window": "baseline-to-outcome"},
                   "users": 1430, "habitual_users": 1020, "light_users": 410, "non_users": 410,
                   "students": 1840},
        "usage": {
            "monthly_trend": [
                {"month": m, "students_active": a, "students_habitual": h, "minutes": a * 61.5,
                 "suppressed": False}
                for m, a, h in zip(months, active, habitual, strict=True)
            ],
            "habitual_months_distribution": [
                {"months": 0, "n": 820, "suppressed": False},
                {"months": 1, "n": 180, "suppressed": False},
                {"months": 2, "n": 210, "suppressed": False},
                {"months": 3, "n": 260, "suppressed": False},
                {"months": 4, "n": 240, "suppressed": False},
                {"months": 5, "n": None, "suppressed": True},
                {"months": 6, "n": None, "suppressed": True},
            ],
            "by_group": [
                {"dimension": "school", "group": HOSTILE_SCHOOL, "n": 400, "users": 330,
                 "habitual_users": 250, "share_users": 0.825, "share_habitual": 0.625,
                 "median_minutes": 512.0, "suppressed": False},
                {"dimension": "school", "group": "Desert View Elementary", "n": 380, "users": 290,
                 "habitual_users": 190, "share_users": 290 / 380, "share_habitual": 0.5,
                 "median_minutes": 430.0, "suppressed": False},
                {"dimension": "el_status", "group": "EL", "n": 280, "users": 220,
                 "habitual_users": 150, "share_users": 220 / 280, "share_habitual": 150 / 280,
                 "median_minutes": 401.5, "suppressed": False},
            ],
        },
        "dose_response": [{
            "outcome": "outcome_percentile", "unit": "percentile points", "n": 1610,
            "clusters": 5,
            "per_month": {"estimate": 1.42, "se": 0.41, "ci_low": 0.28, "ci_high": 2.56,
                          "p_value": 0.026},
            "covariates": ["baseline_percentile", "grade", "el_status", "swd", "econ_disadv"],
            "model": "OLS of spring percentile on months of habitual use, school fixed effects, "
                     "cluster-robust SEs by school (CR1, t with G-1 = 4 df)",
            "relative_to_mean": 0.031,
            "bins": _bins(),
            "fitted": {"intercept": 41.5, "slope": 1.42,
                       "points": [{"months": m, "value": 41.5 + 1.42 * m,
                                   "ci_low": 41.5 + 0.28 * m - 1.0,
                                   "ci_high": 41.5 + 2.56 * m + 1.0} for m in range(7)]},
            "naive": {"estimate": 1.61, "se": 0.30, "ci_low": 1.02, "ci_high": 2.20,
                      "p_value": 0.0001},
            "limits": "Students chose how much to use the product, so this is an association; "
                      "motivated students may both use it more and grow more.",
            "essa_note": "A correlational study with statistical controls can support ESSA "
                         "Tier 3 (promising evidence).",
            "notes": ["Only 5 schools: intervals use t with 4 degrees of freedom and are wide."],
        }],
        "gaps": _gaps(),
        "impact": {
            "design": "matched comparison", "estimand": "ATT (habitual users)",
            "n_treatment": 690, "n_comparison": 690, "estimate": 2.9, "se": 1.1,
            "ci_low": 0.74, "ci_high": 5.06, "p_value": 0.009, "hedges_g": 0.104,
            "improvement_index": 4.1, "probability_positive": 0.995,
            "probability_meaningful": 0.52,
            "baseline_equivalence": [
                {"variable": "baseline_percentile", "g": 0.03, "verdict": "satisfied"},
                {"variable": "econ_disadv", "g": 0.08, "verdict": "requires adjustment"},
            ],
            "balance": [
                {"variable": "baseline_percentile", "smd_before": 0.38, "smd_after": 0.03,
                 "var_ratio_before": 1.21, "var_ratio_after": 1.02},
                {"variable": "econ_disadv", "smd_before": -0.22, "smd_after": 0.08,
                 "var_ratio_before": 0.93, "var_ratio_after": 0.99},
                {"variable": "el_status", "smd_before": 0.12, "smd_after": 0.01,
                 "var_ratio_before": 1.1, "var_ratio_after": 1.0},
            ],
            "regions": {"worse": 0.001, "no_change": 0.479, "better": 0.52},
            "decision": {"verdict": "inconclusive",
                         "rule": "pass if P(g > 0.10) >= 75%; fail if <= 50%",
                         "meaningful_effect": 0.10, "pass_probability": 0.75,
                         "fail_probability": 0.50},
            "outcome": "outcome_percentile", "unit": "percentile points", "clusters": 5,
            "model": "regression-adjusted difference on the matched sample, cluster-robust by "
                     "school",
            "prior": "normal(0, 0.2 SD)", "mdes": 0.15, "match_rate": 690 / 1020,
            "notes": ["68% of habitual users found a match within the caliper."],
        },
        "impact_reason": None,
        "evidence": {"essa_tier": "3", "wwc_rating": "Does not meet standards (QED without "
                     "equivalence on every variable)",
                     "criteria": [
                         {"name": "design", "met": True, "detail": "matched comparison"},
                         {"name": "sample of at least 350", "met": True, "detail": "1,380"},
                         {"name": "more than one site", "met": True, "detail": "5 schools"},
                         {"name": "baseline equivalence", "met": False,
                          "detail": "econ_disadv g = 0.08 needs adjustment"},
                     ],
                     "rationale": "Tier 3: a correlational design with statistical controls."},
        "warnings": [
            {"code": "vendor-outcome", "message": "The outcome test is made by a company that "
                                                  "also sells instruction; check alignment."},
            {"code": "low-match", "message": "Only 68% of habitual users were matched."},
        ],
        "definitions": [
            {"term": "habitual month", "definition": "a calendar month with at least 3 sessions"},
        ],
    }


def no_impact_results() -> dict[str, Any]:
    """Almost everyone used the product: no comparison group, so no impact estimate."""
    res = complete_results()
    res["impact"] = None
    res["impact_reason"] = ("Only 12 of 1,840 students did not use the product, too few for a "
                            "comparison group; see the dose-response analysis instead.")
    res["evidence"] = None
    return res


def all_suppressed_results() -> dict[str, Any]:
    """A tiny study: every cell below the minimum size is suppressed."""
    res = complete_results()
    res["usage"]["habitual_months_distribution"] = [
        {"months": m, "n": None, "suppressed": True} for m in range(4)]
    res["usage"]["by_group"] = [dict(r, n=None, users=None, habitual_users=None, share_users=None,
                                     share_habitual=None, median_minutes=None, suppressed=True)
                                for r in res["usage"]["by_group"]]
    res["usage"]["monthly_trend"] = [dict(r, students_active=None, students_habitual=None,
                                          minutes=None, suppressed=True)
                                     for r in res["usage"]["monthly_trend"]]
    for dr in res["dose_response"]:
        dr["bins"] = [{"months": b["months"], "n": None, "mean": None, "ci_low": None,
                       "ci_high": None, "suppressed": True} for b in dr["bins"]]
    res["gaps"] = [dict(g, n=None, mean=None, gap=None, ci_low=None, ci_high=None,
                        p_adjusted=None, hedges_g=None, pooled_estimate=None, suppressed=True)
                   for g in res["gaps"]]
    return res


def hostile_results() -> dict[str, Any]:
    """Every input-derived text field holds markup, Markdown syntax or a formula."""
    res = complete_results()
    res["study"]["name"] = "<script>alert('study')</script> | pipes |"
    res["study"]["product"] = HOSTILE_PRODUCT
    res["inputs"][0]["path"] = "exports/<b>bold</b>|x|.csv"
    res["warnings"].append({"code": "hostile", "message": "=cmd|' /C calc'!A0 <iframe>"})
    res["impact"]["balance"][0]["variable"] = "<svg onload=alert(1)>"
    return res


def variants() -> dict[str, dict[str, Any]]:
    """All fixtures by name (deep copies)."""
    return {
        "complete": copy.deepcopy(complete_results()),
        "no_impact": no_impact_results(),
        "all_suppressed": all_suppressed_results(),
        "hostile": hostile_results(),
    }
