"""Tests for rce.sustain: products file, cost and utilization figures, decision rules, cliff.

Expected cents are worked by hand in the comments (Decimal arithmetic, half-up at output).
Boundary tests put a figure exactly on each threshold of SustainRules and one step past it.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
from conftest import sustain_frame as frame
from conftest import sustain_usage as usage

from rce.config import Plan
from rce.errors import DataError, InputFileError, LayoutError, PlanError, RceError
from rce.sustain import (
    Evidence,
    Product,
    SustainRules,
    cents,
    compute_sustain,
    esser_round,
    evidence_from_results,
    load_evidence,
    read_products,
)

AS_OF = date(2025, 1, 15)
PLAN = Plan()


def product(name: str = "Tool", **kw) -> Product:
    base = {
        "annual_cost": Decimal("10000"),
        "seats_purchased": 100,
        "subject": "ela",
        "privacy_agreement": "signed",
        "approval_status": "approved",
    }
    base.update(kw)
    return Product(product=name, **base)


def evidence(name: str = "Tool", p_meaningful: float = 0.9, **kw) -> Evidence:
    base = {
        "estimate": 4.0,
        "ci_low": 1.0,
        "ci_high": 7.0,
        "probability_positive": 0.99,
        "probability_meaningful": p_meaningful,
        "hedges_g": 0.2,
        "improvement_index": 8.0,
        "evidence_tier": "2",
        "design": "matched comparison",
        "outcome_window": "spring",
    }
    base.update(kw)
    return Evidence(product=name, **base)


def one(p: Product, rows: pd.DataFrame, ev: Evidence | None = None, **kw):
    rules = kw.pop("rules", SustainRules())
    result = compute_sustain(
        [p], rows, evidence=[ev] if ev else None, plan=PLAN, rules=rules,
        as_of=kw.pop("as_of", AS_OF),
    )
    return result.products[0]


# --- money ------------------------------------------------------------------------------------


def test_cents_rounds_half_up_not_to_even():
    assert cents(Decimal("0.125")) == Decimal("0.13")  # banker's rounding would give 0.12
    assert cents(Decimal("2.675")) == Decimal("2.68")  # float rounding gives 2.67
    assert cents(Decimal("-0.005")) == Decimal("-0.01")


def test_cost_figures_exact_to_the_cent():
    # 10,000 / 300 seats = 33.333.. -> 33.33; / 250 activated = 40.00; / 200 active = 50.00;
    # / 70 habitual = 142.857.. -> 142.86; price index = 300 / 200 active = 1.5.
    p = product(seats_purchased=300)
    a = one(p, frame(usage("Tool", activated=250, active=200, habitual=70)))
    d = a.to_dict()
    assert d["cost_per_seat"] == 33.33
    assert d["cost_per_activated_user"] == 40.00
    assert d["cost_per_active_user"] == 50.00
    assert d["cost_per_habitual_user"] == 142.86
    assert d["price_index"] == pytest.approx(1.5)
    assert d["utilization_activated"] == pytest.approx(250 / 300)
    assert d["utilization_habitual"] == pytest.approx(70 / 300)
    # Unrounded inside the result.
    assert a.cost_per_habitual_user == Decimal(10000) / Decimal(70)


def test_cost_per_user_half_cent_rounds_up():
    # $2.00 over 16 habitual users = 0.125 -> 0.13 at output.
    p = product(annual_cost=Decimal("2.00"), seats_purchased=16)
    a = one(p, frame(usage("Tool", activated=16, active=16, habitual=16)))
    assert a.to_dict()["cost_per_habitual_user"] == 0.13


def test_price_per_seat_times_seats_is_exact():
    # 19.99 x 1,234 = 24,667.66 exactly (a float product gives 24667.659999999996).
    p = Product(product="P", price_per_seat=Decimal("19.99"), seats_purchased=1234,
                annual_cost=Decimal("19.99") * 1234)
    assert p.annual_cost == Decimal("24667.66")


def test_right_size_savings_with_seat_price():
    # 100 habitual + 10% = 110 seats; 1,000 - 110 = 890 seats x $12.50 = $11,125.00.
    p = product(annual_cost=Decimal("12500"), price_per_seat=Decimal("12.50"), seats_purchased=1000)
    a = one(p, frame(usage("Tool", activated=300, active=150, habitual=100)))
    assert a.recommendation == "right-size"
    assert a.right_sized_seats == 110
    assert a.seats_recommended == 110
    assert a.projected_savings == Decimal("11125.00")
    assert a.to_dict()["projected_savings"] == 11125.0


def test_right_size_savings_spread_over_seats_without_seat_price():
    # 10 habitual + 10% = 11 seats; savings = 1,000 x 289 / 300 = 963.333.. -> 963.33.
    p = product(annual_cost=Decimal("1000"), seats_purchased=300)
    a = one(p, frame(usage("Tool", activated=40, active=30, habitual=10)))
    assert a.recommendation == "right-size"
    assert a.to_dict()["projected_savings"] == 963.33
    assert a.to_dict()["seats_recommended"] == 11


def test_sunset_saves_the_whole_cost_and_totals_add_up():
    a = product("A", annual_cost=Decimal("1234.565"), funding_source="ESSER III",
                renewal_date=date(2025, 7, 1))
    b = product("B", annual_cost=Decimal("999.995"), funding_source="General Fund")
    rows = frame(usage("A", activated=5, active=5, habitual=5),
                 usage("B", activated=95, active=95, habitual=95, start=1000))
    r = compute_sustain([a, b], rows, plan=PLAN, as_of=AS_OF)
    assert r.products[0].recommendation == "sunset"
    d = r.to_dict()
    assert d["totals"]["annual_cost"] == 2234.56  # 2234.560 exactly
    assert d["totals"]["one_time_funded_cost"] == 1234.57  # half-up of 1234.565
    assert d["totals"]["projected_savings"] == 1234.57
    assert d["products"][0]["seats_recommended"] == 0


# --- decision rule boundaries -----------------------------------------------------------------


@pytest.mark.parametrize(("activated", "fires"), [(100, False), (99, True)])
def test_adoption_floor_boundary(activated, fires):
    # 100 of 1,000 seats = exactly the 10% floor: does not fire; 9.9% does.
    rows = frame(usage("Tool", activated=activated, active=activated, habitual=activated))
    a = one(product(seats_purchased=1000), rows)
    assert ("adoption_floor" in a.rules_fired) is fires
    assert a.recommendation == ("sunset" if fires else "right-size")
    if fires:
        assert any("99 of 1000 seats (9.9%)" in r for r in a.reasons)


def test_adoption_floor_does_not_override_passing_evidence():
    a = one(product(), frame(usage("Tool", activated=5, active=5, habitual=5)), evidence())
    assert a.recommendation == "right-size"
    assert "adoption_floor" not in a.rules_fired


@pytest.mark.parametrize(
    ("p", "p_positive", "verdict"),
    [
        (0.75, 0.99, "pass"),
        (0.7499, 0.99, "inconclusive"),
        (0.5001, 0.99, "inconclusive"),
        (0.50, 0.7499, "fail"),
        (0.50, 0.75, "small-positive"),  # a clear but probably small effect: not a fail
    ],
)
def test_evidence_verdict_boundaries(p, p_positive, verdict):
    rows = frame(usage("Tool", activated=100, active=95, habitual=90))
    a = one(product(), rows, evidence(p_meaningful=p, probability_positive=p_positive))
    assert a.verdict == verdict
    if verdict == "fail":
        assert a.recommendation == "sunset"
        assert "evidence_fail" in a.rules_fired
        assert any("this is not proof of no effect" in r for r in a.reasons)
    if verdict == "pass":
        assert a.recommendation == "scale"
    if verdict == "small-positive":
        assert a.recommendation == "insufficient-evidence"
        assert any("probably smaller than the meaningful 0.1 SD" in r for r in a.reasons)


def test_small_positive_effect_with_too_many_seats_is_right_sized():
    # The sample district's shape: a real effect (P > 0 = 100%) below 0.1 SD (P = 33%).
    rows = frame(usage("Tool", activated=100, active=75, habitual=57))
    a = one(product(), rows, evidence(p_meaningful=0.33, probability_positive=1.0))
    assert a.verdict == "small-positive" and a.recommendation == "right-size"
    assert any("a positive effect below the meaningful size" in r for r in a.reasons)


@pytest.mark.parametrize(("habitual", "fires"), [(68, True), (69, False)])
def test_right_size_cut_boundary(habitual, fires):
    # ceil(68 x 1.1) = 75 seats: cut 25 of 100 = the 25% threshold -> fires.
    # ceil(69 x 1.1) = 76 seats: cut 24% -> does not.
    rows = frame(usage("Tool", activated=100, active=80, habitual=habitual))
    a = one(product(), rows, evidence())
    assert ("right_size" in a.rules_fired) is fires
    assert a.recommendation == ("right-size" if fires else "sustain")
    assert a.right_sized_seats == (75 if fires else 76)


@pytest.mark.parametrize(("active", "rec"), [(90, "scale"), (89, "sustain")])
def test_scale_boundary(active, rec):
    rows = frame(usage("Tool", activated=100, active=active, habitual=active))
    a = one(product(), rows, evidence())
    assert a.recommendation == rec
    assert any(("Scale:" if rec == "scale" else "Sustain:") in r for r in a.reasons)


@pytest.mark.parametrize(
    ("active", "habitual", "rec"),
    [
        (60, 29, "improve-implementation"),  # 29/60 = 48% < 50% habitual, 60% seats active
        (60, 30, "right-size"),  # exactly 50% habitual: not improve; 33 seats -> cut 67%
        (50, 24, "improve-implementation"),  # 50% of seats active: exactly the minimum
        (49, 24, "right-size"),  # 49% active: the seats, not the implementation, are the issue
    ],
)
def test_improve_implementation_boundaries(active, habitual, rec):
    a = one(product(), frame(usage("Tool", activated=100, active=active, habitual=habitual)))
    assert a.recommendation == rec


def test_insufficient_evidence_when_no_rule_applies():
    a = one(product(), frame(usage("Tool", activated=100, active=90, habitual=80)))
    assert a.recommendation == "insufficient-evidence"
    assert a.to_dict()["effect"] is None
    assert any("nothing here says it works or does not" in r for r in a.reasons)


@pytest.mark.parametrize(("both", "fires"), [(50, True), (49, False)])
def test_redundancy_boundary(both, fires):
    # A: 100 active users, `both` of them also use B (same subject) whose evidence passes.
    a = product("A")
    b = product("B", seats_purchased=200)
    rows_a = usage("A", activated=100, active=100, habitual=100)
    rows_b = [(sid, "B", 12, "habitual") for sid, *_ in rows_a[:both]]
    rows_b += usage("B", activated=100, active=100, habitual=100, start=5000)
    r = compute_sustain([a, b], frame(rows_a, rows_b), evidence=[evidence("B")], plan=PLAN,
                        as_of=AS_OF)
    pa = r.products[0]
    assert ("redundancy" in pa.rules_fired) is fires
    assert pa.recommendation == ("sunset" if fires else "insufficient-evidence")
    overlap = pa.overlaps[0]
    assert overlap["product"] == "B" and overlap["students_both"] == both
    if fires:
        assert any(f"{both} of its 100 active users (50%)" in t for t in pa.reasons)


def test_overlap_small_counts_are_suppressed():
    a, b = product("A"), product("B")
    rows_a = usage("A", activated=100, active=100, habitual=100)
    rows_b = [(sid, "B", 3, "habitual") for sid, *_ in rows_a[:4]]
    r = compute_sustain([a, b], frame(rows_a, rows_b), plan=PLAN, as_of=AS_OF)
    o = r.products[0].overlaps[0]
    assert o["suppressed"] is True and o["students_both"] is None and o["share_of_active"] is None


def test_different_subjects_do_not_overlap():
    a, b = product("A", subject="ela"), product("B", subject="math")
    rows_a = usage("A", activated=50, active=50, habitual=50)
    rows_b = [(sid, "B", 3, "habitual") for sid, *_ in rows_a]
    r = compute_sustain([a, b], frame(rows_a, rows_b), plan=PLAN, as_of=AS_OF)
    assert r.products[0].overlaps == ()


def test_cost_ceiling_rule():
    # Cost per habitual = 10,000 / 89 = 112.36; / (0.2 / 0.1) = 56.18 per 0.1 SD.
    rows = frame(usage("Tool", activated=100, active=89, habitual=89))
    ok = one(product(), rows, evidence(),
             rules=SustainRules(max_cost_per_tenth_sd=Decimal("56.18")))
    assert ok.recommendation == "sustain"
    over = one(product(), rows, evidence(),
               rules=SustainRules(max_cost_per_tenth_sd=Decimal("56.17")))
    assert over.recommendation == "right-size" and "cost_ceiling" in over.rules_fired


def test_cost_per_unit_of_outcome():
    # 10,000 / 80 habitual = 125.00; g = 0.2 -> 62.50 per 0.1 SD; lower CI g = 0.2 x 1/4 = 0.05
    # -> 250.00; improvement index 8 points -> 15.625 -> 15.63 per percentile point.
    a = one(product(), frame(usage("Tool", activated=100, active=85, habitual=80)), evidence())
    d = a.to_dict()
    assert d["cost_per_habitual_user_per_tenth_sd"] == 62.50
    assert d["cost_per_habitual_user_per_tenth_sd_upper"] == 250.00
    assert d["cost_per_habitual_user_per_percentile_point"] == 15.63
    # A CI that includes zero has no finite upper cost.
    b = one(product(), frame(usage("Tool", activated=100, active=85, habitual=80)),
            evidence(ci_low=-1.0))
    assert b.to_dict()["cost_per_habitual_user_per_tenth_sd_upper"] is None
    # No cost per unit for a negative estimate.
    c = one(product(), frame(usage("Tool", activated=100, active=85, habitual=80)),
            evidence(hedges_g=-0.1, estimate=-2.0, ci_low=-5.0, ci_high=1.0, p_meaningful=0.02))
    assert c.to_dict()["cost_per_habitual_user_per_tenth_sd"] is None


def test_price_index_levels_and_use_above_seats():
    rows = frame(usage("Tool", activated=100, active=50, habitual=25))
    assert one(product(), rows).price_index == pytest.approx(2.0)
    assert one(product(), rows, rules=SustainRules(price_index_level="habitual")).price_index == 4.0
    over = one(product(seats_purchased=40), rows)
    assert over.price_index == 1.0
    assert "USE_ABOVE_SEATS" in over.flags


# --- flags: privacy, approval, timing, funds --------------------------------------------------


@pytest.mark.parametrize(
    ("status", "expires", "flag"),
    [
        ("signed", date(2025, 1, 15), None),  # expires on the decision date: still current
        ("signed", date(2025, 1, 14), "PRIVACY_AGREEMENT_EXPIRED"),
        ("expired", None, "PRIVACY_AGREEMENT_EXPIRED"),
        ("none", None, "NO_PRIVACY_AGREEMENT"),
        ("", None, "PRIVACY_AGREEMENT_UNKNOWN"),
    ],
)
def test_privacy_agreement_flag_whatever_the_evidence(status, expires, flag):
    p = product(privacy_agreement=status, privacy_agreement_expires=expires)
    a = one(p, frame(usage("Tool", activated=100, active=89, habitual=89)), evidence())
    assert a.recommendation == "sustain"  # the evidence decision stands ...
    if flag is None:
        assert not [f for f in a.flags if f.startswith(("PRIVACY", "NO_PRIVACY"))]
    else:
        assert flag in a.flags  # ... and the product is flagged anyway
        assert "privacy" in a.rules_fired
        assert a.reasons[0].endswith("whatever the evidence.")


def test_not_approved_flag():
    rows = frame(usage("Tool", activated=9, active=9, habitual=9))
    a = one(product(approval_status="Pending review"), rows)
    assert "NOT_APPROVED" in a.flags


@pytest.mark.parametrize(("days", "soon"), [(90, True), (91, False), (0, True)])
def test_renewal_notice_window(days, soon):
    p = product(renewal_date=AS_OF + timedelta(days=days))
    a = one(p, frame(usage("Tool", activated=100, active=90, habitual=80)))
    assert ("RENEWAL_SOON" in a.flags) is soon
    assert a.days_to_renewal == days


def test_renewal_before_outcomes_names_interim_evidence():
    p = product(renewal_date=date(2025, 4, 1))
    interim = evidence(outcome_window="winter", interim=True,
                       dose_per_month=(1.5, 0.4, 2.6))
    a = one(p, frame(usage("Tool", activated=100, active=89, habitual=89)), interim)
    assert "RENEWAL_BEFORE_OUTCOMES" in a.flags and "INTERIM_EVIDENCE" in a.flags
    text = " ".join(a.reasons)
    assert "expected by 2025-06-15" in text
    assert "the interim evidence is: local winter effect +4.00" in text
    assert "dose-response +1.50 per habitual month (CI +0.40 to +2.60)" in text
    assert a.recommendation == "sustain"  # interim evidence decides by default
    strict = one(p, frame(usage("Tool", activated=100, active=89, habitual=89)), interim,
                 rules=SustainRules(interim_evidence_decides=False))
    assert strict.recommendation == "insufficient-evidence"


def test_renewal_before_outcomes_without_evidence_and_after_outcomes():
    rows = frame(usage("Tool", activated=100, active=90, habitual=80))
    before = one(product(renewal_date=date(2025, 6, 14)), rows)
    assert "RENEWAL_BEFORE_OUTCOMES" in before.flags
    assert any("there is no outcome evidence yet" in r for r in before.reasons)
    after = one(product(renewal_date=date(2025, 6, 15)), rows)
    assert "RENEWAL_BEFORE_OUTCOMES" not in after.flags
    # Final (spring) evidence: no timing flag even for an early renewal.
    final = one(product(renewal_date=date(2025, 3, 1)), rows, evidence())
    assert "RENEWAL_BEFORE_OUTCOMES" not in final.flags


def test_esser_funding_cliff_and_fund_end():
    a = product("A", funding_source="ESSER III", renewal_date=date(2026, 7, 1),
                annual_cost=Decimal("50000"), seats_purchased=1000)
    b = product("B", funding_source="ARP ESSER", renewal_date=date(2025, 3, 1),
                annual_cost=Decimal("20000"))
    c = product("C", funding_source="General Fund", renewal_date=date(2025, 2, 1))
    rows = frame(usage("A", activated=1000, active=950, habitual=900),
                 usage("B", activated=5, active=5, habitual=5, start=5000),
                 usage("C", activated=100, active=90, habitual=80, start=9000))
    r = compute_sustain([a, b, c], rows, evidence=[evidence("A")], plan=PLAN, as_of=AS_OF)
    pa = r.products[0]
    assert "ONE_TIME_FUNDS_ENDED" in pa.flags
    assert "ONE_TIME_FUNDS_ENDED" not in r.products[1].flags  # 2025-03-01 < 2026-03-28
    assert [row.product for row in r.funding_cliff] == ["B", "A"]  # by renewal date
    d = r.to_dict()
    assert d["totals"]["one_time_funded_cost"] == 70000.0
    cliff = d["funding_cliff"]
    assert cliff["rows"][0]["ongoing_cost_if_recommendation_followed"] == 0.0  # B sunset
    assert cliff["rows"][1]["ongoing_cost_if_recommendation_followed"] == 50000.0  # A scale
    assert [m["renewal_month"] for m in cliff["by_month"]] == ["2025-03", "2026-07"]
    assert cliff["by_month"][-1]["cumulative_annual_cost"] == 70000.0
    assert cliff["by_month"][-1]["cumulative_ongoing_cost"] == 50000.0


@pytest.mark.parametrize(
    ("source", "round_", "one_time"),
    [
        ("ESSER III", "ESSER III", True),
        ("esser 2", "ESSER II", True),
        ("CARES / ESSER I", "ESSER I", True),
        ("Title I", None, False),
        ("General Fund", None, False),
        ("GEER grant", None, True),
        ("Title I grant", None, False),
        ("Title IV-A", None, False),
    ],
)
def test_fund_classification(source, round_, one_time):
    assert esser_round(source) == round_
    assert SustainRules().is_one_time(source) is one_time


def test_rules_validation():
    with pytest.raises(PlanError):
        SustainRules(adoption_floor=10)
    with pytest.raises(PlanError):
        SustainRules(price_index_level="used")
    with pytest.raises(PlanError):
        SustainRules(outcome_month=2, outcome_day=30)


# --- the example-district scenario ------------------------------------------------------------


def test_example_district_scenario():
    """Planted effect, no effect, heavy over-buying (the shape of examples/sierra-vista)."""
    a = product("i-Ready Personalized Instruction ELA", seats_purchased=1200,
                annual_cost=Decimal("36000"), funding_source="ESSER III",
                renewal_date=date(2025, 6, 30))
    b = product("Lexia Core5 Reading", seats_purchased=600, annual_cost=Decimal("18000"),
                funding_source="Title I", renewal_date=date(2025, 7, 31))
    c = product("VendorX Literacy", seats_purchased=2000, price_per_seat=Decimal("14.25"),
                annual_cost=Decimal("28500"), funding_source="ESSER III",
                renewal_date=date(2025, 8, 15))
    rows = frame(
        usage(a.product, activated=1150, active=1100, habitual=1000),
        usage(b.product, activated=560, active=520, habitual=420, start=20000),
        usage(c.product, activated=400, active=260, habitual=90, start=40000),
    )
    ev = [
        evidence(a.product, p_meaningful=0.93, hedges_g=0.12),
        evidence(b.product, p_meaningful=0.18, estimate=0.3, ci_low=-2.1, ci_high=2.7,
                 hedges_g=0.01, probability_positive=0.59, evidence_tier=None),
    ]
    r = compute_sustain([a, b, c], rows, evidence=ev, plan=PLAN, as_of=date(2025, 2, 1))
    recs = {x.product.product: x for x in r.products}
    assert recs[a.product].recommendation == "scale"
    assert recs[b.product].recommendation == "sunset"
    assert recs[c.product].recommendation == "right-size"
    # 90 habitual x 1.1 = 99 seats; 1,901 seats x $14.25 = $27,089.25.
    assert recs[c.product].projected_savings == Decimal("27089.25")
    assert any("1901 fewer than the 2000 bought" in t for t in recs[c.product].reasons)
    assert any("P(effect >= 0.1 SD) = 18%" in t for t in recs[b.product].reasons)
    assert recs[b.product].to_dict()["effect"]["probability_positive"] == pytest.approx(0.59)
    text = json.dumps(r.to_dict(), allow_nan=False)
    assert "S0" not in text  # student IDs are counted, never reported


def test_result_surface():
    r = compute_sustain([product()], frame(usage("Tool", activated=100, active=90, habitual=80)),
                        plan=PLAN, as_of=AS_OF)
    d = r.to_dict()
    assert d["schema_version"] == "1"
    keys = {
        "product", "subject", "funding_source", "renewal_date", "annual_cost", "seats_purchased",
        "students_activated", "students_active", "students_habitual", "utilization_activated",
        "utilization_habitual", "cost_per_active_user", "cost_per_habitual_user", "price_index",
        "effect", "recommendation", "reasons", "seats_recommended", "projected_savings",
    }
    assert keys <= set(d["products"][0])
    assert {"annual_cost", "one_time_funded_cost", "projected_savings"} <= set(d["totals"])
    json.dumps(d, allow_nan=False)
    assert "habitual" in d["definitions"] and "3 or more sessions" in d["definitions"]["habitual"]
    df = r.to_frame()
    assert list(df["product"]) == ["Tool"] and df["annual_cost"].iloc[0] == 10000.0
    assert "INSUFFICIENT-EVIDENCE" in r.summary()
    assert "insufficient-evidence 1" in repr(r)


def test_product_without_usage_rows():
    r = compute_sustain([product()], frame([]), plan=PLAN, as_of=AS_OF)
    a = r.products[0]
    assert a.students_activated is None and a.recommendation == "insufficient-evidence"
    assert any("No usage data" in t for t in a.reasons)


def test_bad_per_student_frame():
    with pytest.raises(DataError, match="lacks column"):
        compute_sustain([product()], pd.DataFrame({"student_id": []}), plan=PLAN, as_of=AS_OF)


# --- products file ----------------------------------------------------------------------------

TOML = """
[[product]]
product = "i-Ready ELA"
subject = "ELA"
annual_cost = 36000
seats_purchased = 1200
funding_source = "ESSER III"
renewal_date = 2025-06-30
usage = "usage/iready.csv"
layout = "auto"
recommended_minutes_per_week = 45
privacy_agreement = "signed"
privacy_agreement_expires = 2026-06-30
approval_status = "approved"

[[product]]
product = "VendorX"
subject = "ela"
price_per_seat = 14.25
seats_purchased = 2000
funding_source = "ESSER III"
renewal_date = "8/15/2025"
usage = ["usage/x1.csv", "usage/x2.csv"]
privacy_agreement = "none"
"""

CSV = (
    "product,subject,annual_cost,seats_purchased,funding_source,renewal_date,usage,"
    "privacy_agreement,privacy_agreement_expires\n"
    'i-Ready ELA,ela,"$36,000.00",1200,ESSER III,6/30/2025,usage/iready.csv,signed,2026-06-30\n'
    "VendorX,ela,,2000,ESSER III,2025-08-15,usage/x1.csv;usage/x2.csv,none,\n"
)


def test_read_products_toml(tmp_path: Path):
    path = tmp_path / "products.toml"
    path.write_text(TOML, encoding="utf-8")
    a, b = read_products(path)
    assert a.annual_cost == Decimal(36000) and a.seats_purchased == 1200
    assert a.subject == "ela" and a.renewal_date == date(2025, 6, 30)
    assert a.recommended_minutes_per_week == 45.0
    assert a.privacy_agreement_expires == date(2026, 6, 30)
    assert b.annual_cost == Decimal("28500.00") and b.price_per_seat == Decimal("14.25")
    assert b.usage == ("usage/x1.csv", "usage/x2.csv")
    assert b.renewal_date == date(2025, 8, 15)


def test_read_products_csv(tmp_path: Path):
    path = tmp_path / "products.csv"
    path.write_text(CSV.replace("VendorX,ela,,2000", "VendorX,ela,28500,2000"), encoding="utf-8")
    a, b = read_products(path)
    assert a.annual_cost == Decimal("36000.00") and a.renewal_date == date(2025, 6, 30)
    assert b.usage == ("usage/x1.csv", "usage/x2.csv") and b.privacy_agreement == "none"


@pytest.mark.parametrize(
    ("csv_text", "error", "where", "words"),
    [
        (CSV, DataError, "products.csv, row 3, column annual_cost", "no cost"),
        (CSV.replace("$36,000.00", "lots"), DataError, "products.csv, row 2, column annual_cost",
         "not an amount"),
        (CSV.replace(",1200,", ",12.5,"), DataError, "row 2, column seats_purchased",
         "not a whole number"),
        (CSV.replace("6/30/2025", "June 30"), DataError, "row 2, column renewal_date",
         "not a date"),
        (CSV.replace(",signed,", ",maybe,"), DataError, "row 2, column privacy_agreement",
         "signed, expired or none"),
        (CSV.replace("subject", "colour"), LayoutError, "products.csv, row 1", "unknown column"),
        (CSV.replace("$36,000.00", "-5"), DataError, "row 2, column annual_cost", "negative"),
    ],
)
def test_products_errors_name_file_row_column(tmp_path: Path, csv_text, error, where, words):
    path = tmp_path / "products.csv"
    path.write_text(csv_text, encoding="utf-8")
    with pytest.raises(error) as info:
        read_products(path)
    assert where in (info.value.where or "")
    assert words in info.value.message
    assert info.value.hint


def test_products_toml_errors(tmp_path: Path):
    path = tmp_path / "products.toml"
    path.write_text(TOML + '\n[[product]]\nproduct = "i-ready ela"\nannual_cost = 5\n')
    with pytest.raises(DataError, match="listed twice"):
        read_products(path)
    path.write_text('[[product]]\nproduct = "X"\nprice_per_seat = 3\n')
    with pytest.raises(DataError) as info:
        read_products(path)
    assert info.value.where == "products.toml, [[product]] #1, column seats_purchased"
    path.write_text('[[product]]\nproduct = "X"\nannual_cost = 3\nseats = 4\n')
    with pytest.raises(LayoutError, match="unknown key"):
        read_products(path)
    path.write_text("[[product]\n")
    with pytest.raises(InputFileError, match="not valid TOML"):
        read_products(path)
    path.write_text('title = "x"\n')
    with pytest.raises(LayoutError):
        read_products(path)
    with pytest.raises(InputFileError, match="not found"):
        read_products(tmp_path / "missing.toml")
    other = tmp_path / "products.json"
    other.write_text("{}")
    with pytest.raises(InputFileError, match=".toml or .csv"):
        read_products(other)


def test_every_products_error_is_an_rce_error(tmp_path: Path):
    path = tmp_path / "products.toml"
    for body in ['[[product]]\nproduct = ["X"]\nannual_cost = 1\n',
                 '[[product]]\nproduct = "X"\nannual_cost = true\n',
                 '[[product]]\nproduct = "X"\nannual_cost = 1\nseats_purchased = -3\n',
                 '[[product]]\nproduct = "X"\nannual_cost = 1\nseats_purchased = 0\n',
                 '[[product]]\nproduct = "X"\nannual_cost = 1\nusage = 3\n',
                 '[[product]]\nproduct = "X"\nannual_cost = nan\n',
                 'product = 3\n']:
        path.write_text(body)
        with pytest.raises(RceError):
            read_products(path)


# --- evidence ---------------------------------------------------------------------------------


def results_dict(**impact) -> dict:
    base = {
        "design": "matched", "estimate": 3.2, "ci_low": 0.8, "ci_high": 5.6, "se": 1.2,
        "probability_positive": 0.99, "probability_meaningful": 0.81, "hedges_g": 0.11,
        "improvement_index": 4.4, "n_treatment": 600,
    }
    base.update(impact)
    return {
        "schema_version": "1",
        "study": {"product": "i-Ready ELA", "outcome_window": "spring", "interim": False},
        "impact": base,
        "evidence": {"essa_tier": 2, "wwc_rating": "meets with reservations"},
        "dose_response": [{"per_month": {"estimate": 1.9, "ci_low": 1.1, "ci_high": 2.7}}],
    }


def test_evidence_from_results_and_file(tmp_path: Path):
    ev = evidence_from_results(results_dict())
    assert ev.product == "i-Ready ELA" and ev.evidence_tier == "2" and not ev.interim
    assert ev.has_effect and ev.n_treatment == 600 and ev.dose_per_month == (1.9, 1.1, 2.7)
    winter = results_dict()
    winter["study"]["outcome_window"] = "winter"
    assert evidence_from_results(winter).interim
    no_impact = results_dict()
    no_impact["impact"] = None
    assert not evidence_from_results(no_impact).has_effect
    (tmp_path / "results.json").write_text(json.dumps(results_dict()))
    assert load_evidence(tmp_path).probability_meaningful == 0.81
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(InputFileError):
        load_evidence(tmp_path / "bad.json")
    with pytest.raises(InputFileError):
        load_evidence(tmp_path / "none.json")


def test_rules_from_mapping():
    from rce.sustain import rules_from_mapping

    r = rules_from_mapping({"adoption_floor": 0.2, "renewal_notice_days": 60,
                            "max_cost_per_tenth_sd": 150.5, "interim_evidence_decides": False,
                            "one_time_fund_words": ["ESSER"]})
    assert r.adoption_floor == 0.2 and r.renewal_notice_days == 60
    assert r.max_cost_per_tenth_sd == Decimal("150.5")
    assert r.one_time_fund_words == ("esser",) and r.interim_evidence_decides is False
    assert rules_from_mapping({}) == SustainRules()
    for bad in ({"adoption_floorr": 0.1}, {"renewal_notice_days": "60"},
                {"interim_evidence_decides": 1}, {"adoption_floor": 2.0},
                {"max_cost_per_tenth_sd": "lots"}, {"one_time_fund_words": "esser"}):
        with pytest.raises(PlanError):
            rules_from_mapping(bad)


# --- invariants -------------------------------------------------------------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=60, deadline=None)
@given(
    seats=st.integers(1, 400),
    activated=st.integers(0, 300),
    active_share=st.floats(0, 1),
    habitual_share=st.floats(0, 1),
    cost_cents=st.integers(0, 10_000_000),
    p_meaningful=st.one_of(st.none(), st.floats(0, 1)),
)
def test_invariants(seats, activated, active_share, habitual_share, cost_cents, p_meaningful):
    from rce.sustain import RECOMMENDATIONS

    active = int(activated * active_share)
    habitual = int(active * habitual_share)
    cost = Decimal(cost_cents) / 100
    p = product(annual_cost=cost, seats_purchased=seats)
    ev = None if p_meaningful is None else evidence(p_meaningful=p_meaningful)
    a = one(p, frame(usage("Tool", activated=activated, active=active, habitual=habitual)), ev)
    assert a.recommendation in RECOMMENDATIONS
    assert Decimal(0) <= a.projected_savings <= cost
    assert a.seats_recommended is not None and 0 <= a.seats_recommended <= seats
    if a.recommendation not in ("sunset", "right-size"):
        assert a.projected_savings == 0 and a.seats_recommended == seats
    for n, per in ((habitual, a.cost_per_habitual_user), (active, a.cost_per_active_user)):
        if n:
            assert abs(per * n - cost) < Decimal("1e-20")
        else:
            assert per is None
    if a.price_index is not None:
        assert a.price_index >= 1.0
    json.dumps(a.to_dict(), allow_nan=False)


def test_no_habitual_users_and_too_many_seats_is_sunset():
    # 20 of 100 seats active (below the 50% needed for improve-implementation), none habitual:
    # right-sizing would leave 0 seats, so the recommendation is sunset, saving the whole cost.
    a = one(product(annual_cost=Decimal("1.94")), frame(usage("Tool", activated=30, active=20,
                                                              habitual=0)))
    assert a.recommendation == "sunset" and "no_habitual_users" in a.rules_fired
    assert a.projected_savings == Decimal("1.94")


def test_evidence_regions_fallback_and_tier_text():
    res = results_dict(probability_meaningful=None, regions={"worse": 0.05, "no_change": 0.15,
                                                             "better": 0.8})
    res["evidence"]["essa_tier"] = "Tier 3"
    ev = evidence_from_results(res)
    assert ev.probability_meaningful == 0.8 and ev.evidence_tier == "3"


def test_dose_response_only_evidence_is_reported_not_judged():
    res = results_dict()
    res["impact"] = None
    res["impact_reason"] = "almost every scored student used the product"
    ev = evidence_from_results(res)
    assert ev.product == "i-Ready ELA"
    a = one(product("i-Ready ELA"),
            frame(usage("i-Ready ELA", activated=100, active=90, habitual=80)), ev)
    assert a.verdict == "none" and a.to_dict()["effect"] is None
    text = " ".join(a.reasons)
    assert "(almost every scored student used the product); dose-response only: +1.90" in text
    assert a.recommendation == "insufficient-evidence"
