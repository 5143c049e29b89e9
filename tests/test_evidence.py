"""ESSA tier / WWC rating emulation and suspect-result warnings (rce.evidence).

Rules from methods.md §3.4 (rating logic), §4 (ESSA tiers: significance, 350 students, more than
one LEA/locality/state, WWC rating), §6 (Civitas thresholds: 200 analysed, 70% matched, 85%
overlap). Impact results come from the simulated districts of tests/test_impact.py.
"""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from impact_fixtures import district, pilot

from rce.config import AnalysisConfig, Plan
from rce.evidence import EvidenceContext, assess_evidence, suspect_warnings
from rce.stats.impact import estimate_impact


@pytest.fixture(scope="module")
def matched_positive():
    return estimate_impact(district(10.0), plan=Plan())


@pytest.fixture(scope="module")
def rct_positive():
    plan = replace(Plan(), analysis=AnalysisConfig(assignment_column="assigned"))
    return estimate_impact(pilot(10.0, n=1000, drop_t=0.05, drop_c=0.05), plan=plan)


def test_single_district_matched_is_tier3(matched_positive):
    e = assess_evidence(matched_positive, plan=Plan())
    assert e.essa_tier == 3
    assert e.wwc_rating == "Meets WWC standards with reservations"
    crit = {c.name: c for c in e.criteria}
    assert crit["multi-site sample (> 1 LEA, locality or state)"].met is False
    assert crit["large sample (≥ 350 students)"].met is True
    d = e.to_dict()
    json.dumps(d)
    assert {"essa_tier", "wwc_rating", "criteria"} <= set(d)
    assert {"name", "met", "detail"} <= set(d["criteria"][0])


def test_multi_district_matched_is_tier2(matched_positive):
    e = assess_evidence(matched_positive, plan=Plan(), context={"n_districts": 3})
    assert e.essa_tier == 2


def test_low_attrition_rct_multi_district_is_tier1(rct_positive):
    assert rct_positive.attrition.level_cautious == "low"
    e = assess_evidence(rct_positive, plan=Plan(), context=EvidenceContext(n_districts=2))
    assert e.wwc_rating == "Meets WWC standards without reservations"
    assert e.essa_tier == 1


def test_no_effect_no_tier_unless_logic_model():
    r = estimate_impact(district(0.0, seed=1), plan=Plan())
    assert assess_evidence(r, plan=Plan()).essa_tier is None
    e = assess_evidence(r, plan=Plan(), context={"logic_model": True})
    assert e.essa_tier == 4
    assert "not consistent" not in e.essa_label


def test_no_design_not_eligible():
    r = estimate_impact(district(0.0, nonuser_share=0.01, seed=3), plan=Plan())
    e = assess_evidence(r, plan=Plan())
    assert e.wwc_rating == "Not eligible for review" and e.essa_tier is None


def test_suspect_warnings(matched_positive):
    codes = {w["code"] for w in suspect_warnings(
        matched_positive, plan=Plan(),
        context={"match_rate": 0.8, "n_tests": 100, "n_rush_flagged": 20, "norm_change": True,
                 "vendor_measure": True})}
    assert {"low_id_match", "rush_flagged", "vendor_measure", "few_clusters"} <= codes
    # the outcome is a scale score, so a percentile norm change does not apply
    assert "norm_change" not in codes
    small = estimate_impact(district(10.0, n=300, seed=2), plan=Plan())
    codes = {w["code"] for w in suspect_warnings(small, plan=Plan())}
    assert "small_sample" in codes


def test_implausible_effect_and_few_matched():
    big = estimate_impact(district(40.0, seed=6), plan=Plan())
    codes = {w["code"] for w in suspect_warnings(big, plan=Plan())}
    assert "implausible_effect" in codes
    # Exact matching on school with a tight caliper leaves many users unmatched.
    plan = replace(Plan(), analysis=AnalysisConfig(match_on_school=True, caliper=0.001))
    r = estimate_impact(district(0.0, seed=8), plan=plan)
    codes = {w["code"] for w in suspect_warnings(r, plan=plan)}
    assert "few_users_matched" in codes


def test_rd_not_rated_and_manipulation_warning():
    pytest.importorskip("rdrobust")
    import numpy as np
    import pandas as pd

    from rce.stats.impact import RdSpec

    rng = np.random.default_rng(4)
    x = np.concatenate([rng.uniform(400, 600, 3000), rng.uniform(490, 500, 600)])  # bunching
    y = 100 + 0.85 * x + 10 * (x < 500) + rng.normal(0, 20, len(x))
    f = pd.DataFrame({"baseline_scale_score": x, "outcome_scale_score": y})
    r = estimate_impact(f, plan=Plan(), rd=RdSpec("baseline_scale_score", 500, "below"))
    e = assess_evidence(r, plan=Plan())
    assert e.wwc_rating.startswith("Not rated")
    assert "rd_manipulation" in {w["code"] for w in e.warnings}
    assert e.essa_tier in (3, None)
