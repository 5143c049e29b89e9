"""Small counts in the sustain report (issue 8): suppressed everywhere, rules on true counts.

The rule (rce.sustain.funnel_suppression, design.md "Privacy defaults"): a count of 1 to
min_cell_size - 1 students is hidden with every figure computed from it; 0 is shown; a shown count
that would give a hidden one by subtraction is hidden too (complementary). Each test plants one
product whose hidden figures have distinctive values and scans every output for them.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import date
from decimal import Decimal
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
from conftest import sustain_frame as frame
from conftest import sustain_usage as usage
from hypothesis import given, settings
from hypothesis import strategies as st

from rce.config import Plan
from rce.report.sustain import (
    render_sustain_html,
    render_sustain_markdown,
    sustain_to_json,
    write_sustain_report,
)
from rce.sustain import (
    SUPPRESSION_KEYS,
    Evidence,
    Product,
    SustainRules,
    compute_sustain,
    funnel_suppression,
)

AS_OF = date(2025, 2, 1)
PLAN = Plan()


def product(name: str = "Tool", **kw) -> Product:
    base = {"annual_cost": Decimal("25000"), "price_per_seat": Decimal("25"),
            "seats_purchased": 1000, "subject": "ela", "privacy_agreement": "signed",
            "approval_status": "approved", "funding_source": "General Fund"}
    base.update(kw)
    return Product(product=name, **base)


def evidence(name: str = "Tool", **kw) -> Evidence:
    base = {"estimate": 4.0, "ci_low": 1.0, "ci_high": 7.0, "probability_positive": 0.99,
            "probability_meaningful": 0.9, "hedges_g": 0.2, "improvement_index": 8.0,
            "evidence_tier": "2", "design": "matched comparison", "outcome_window": "spring",
            "n_treatment": 150}
    base.update(kw)
    return Evidence(product=name, **base)


def _texts(value) -> list[str]:
    if isinstance(value, dict):
        return [t for v in value.values() for t in _texts(v)]
    if isinstance(value, list):
        return [t for v in value for t in _texts(v)]
    return [value] if isinstance(value, str) else []


def _numbers(value) -> list[float]:
    if isinstance(value, dict):
        return [n for v in value.values() for n in _numbers(v)]
    if isinstance(value, list):
        return [n for v in value for n in _numbers(v)]
    if isinstance(value, bool) or not isinstance(value, int | float):
        return []
    return [float(value)]


#: A standalone number 3: not part of a word, a longer number, a date or a money amount.
THREE = re.compile(r"(?<![\w.,$#/-])3(?![\w.,/:])")


def _html_text(html: str) -> str:
    """Visible text of the page (SVG text included), without CSS and markup."""
    html = re.sub(r"<style>.*?</style>", " ", html, flags=re.S)
    return re.sub(r"<[^>]+>", " ", html)


# --- three habitual users: nothing reveals the 3 -----------------------------------------------

# 1,000 seats at $25, 200 activated, 150 active, 3 habitual. The figures the 3 would give:
# cost per habitual $8,333.33; per 0.1 SD (g = 0.2) $4,166.67; per percentile point (8)
# $1,041.67; right-sized ceil(3.3) = 4 seats, savings 996 x $25 = $24,900.
LEAKS_MONEY = ("8,333.33", "8333.33", "4,166.67", "4166.67", "1,041.67", "1041.67", "24,900",
               "24900")
LEAK_NUMBERS = (3.0, 0.003, 8333.33, 4166.67, 1041.67, 24900.0, 996.0)


@pytest.fixture(scope="module")
def three(tmp_path_factory):
    rows = frame(usage("Tool", activated=200, active=150, habitual=3))
    # The default habitual definition says "3 or more sessions": a 3 that reveals nothing, so
    # this plan says 5 and any standalone 3 left in the outputs is a leak.
    plan = replace(PLAN, dosage=replace(PLAN.dosage, min_sessions_per_month=5))
    result = compute_sustain([product()], rows, evidence=[evidence()], plan=plan, as_of=AS_OF)
    out = tmp_path_factory.mktemp("three")
    files = write_sustain_report(result, out)
    return result, out, files


def test_three_habitual_users_recommendation_follows_the_true_count(three):
    result, _, _ = three
    a = result.products[0]
    # True counts drive the rules: passing evidence, 3 habitual + 10% = 4 seats of 1,000.
    assert a.students_habitual == 3 and a.right_sized_seats == 4
    assert a.recommendation == "right-size" and "right_size" in a.rules_fired
    # Published: seats kept counted as if 10 were habitual (11), so savings don't reveal 3.
    assert a.seats_recommended == 11
    assert a.projected_savings == Decimal(25) * 989
    text = " ".join(a.reasons)
    assert "fewer than 10 students used it habitually" in text
    assert not THREE.search(text), text


def test_three_habitual_users_json(three):
    _, out, _ = three
    data = json.loads((out / "sustain.json").read_text(encoding="utf-8"))
    p = data["products"][0]
    for key in SUPPRESSION_KEYS["habitual"]:
        assert p[key] is None and key in p["suppressed"]
    assert p["cost_per_habitual_user"] is None
    assert p["students_activated"] == 200 and p["students_active"] == 150  # not small: shown
    assert p["seats_recommended"] == 11 and p["projected_savings"] == 24725.0
    assert data["privacy"] == {"min_cell_size": 10}
    assert "suppressed" in data["definitions"]
    for number in _numbers(data):
        assert all(number != pytest.approx(leak) for leak in LEAK_NUMBERS), number
    for text in _texts(data):
        assert not THREE.search(text), text
        assert not any(m in text for m in LEAKS_MONEY), text


@pytest.mark.parametrize("name", ["sustain.html", "sustain.md"])
def test_three_habitual_users_html_and_markdown(three, name):
    _, out, _ = three
    text = (out / name).read_text(encoding="utf-8")
    visible = _html_text(text) if name.endswith("html") else text
    assert not THREE.search(visible), THREE.search(visible).group(0)
    assert not any(m in text for m in LEAKS_MONEY)
    assert "suppressed" in visible
    assert "0.3%" not in visible  # 3 of 1,000 seats


def test_three_habitual_users_xlsx(three):
    _, out, _ = three
    book = openpyxl.load_workbook(out / "sustain.xlsx")
    saw_mark = False
    for sheet in book.worksheets:
        for row in sheet.iter_rows(values_only=True):
            for cell in row:
                if isinstance(cell, bool) or cell is None:
                    continue
                if isinstance(cell, int | float):
                    assert all(cell != pytest.approx(leak) for leak in LEAK_NUMBERS), (
                        sheet.title, cell)
                else:
                    text = str(cell)
                    saw_mark |= text == "suppressed"
                    assert not THREE.search(text), (sheet.title, text)
                    assert not any(m in text for m in LEAKS_MONEY), (sheet.title, text)
    assert saw_mark
    util = book["Utilization and cost"]
    header = [c.value for c in util[1]]
    values = dict(zip(header, [c.value for c in util[2]], strict=True))
    assert values["Habitual"] == "suppressed" and values["Per habitual"] == "suppressed"
    assert values["Active"] == 150  # numbers stay numbers


def test_three_habitual_users_summary(three):
    result, _, _ = three
    text = result.summary()
    assert "suppressed habitual" in text and "suppressed per habitual user" in text
    assert not THREE.search(text), text
    row = result.to_frame().iloc[0]
    assert pd.isna(row["students_habitual"]) and pd.isna(row["cost_per_habitual_user"])
    assert "students_habitual" in row["suppressed"]


# --- boundaries ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("habitual", "hidden"), [(10, False), (9, True), (0, False)])
def test_boundary_at_the_minimum_cell_size(habitual, hidden):
    rows = frame(usage("Tool", activated=200, active=150, habitual=habitual))
    a = compute_sustain([product()], rows, plan=PLAN, as_of=AS_OF).products[0]
    d = a.to_dict()
    assert ("students_habitual" in d["suppressed"]) is hidden
    assert d["students_habitual"] == (None if hidden else habitual)
    html = _html_text(render_sustain_html({**_data(a), "products": [d]}))
    if not hidden:
        # Exactly the minimum is shown, and so is zero (a fact budget teams need).
        assert re.search(rf"(?<![\w.,$]){habitual}(?![\w.,])", html)
        assert d["utilization_habitual"] == habitual / 1000


def _data(a):
    """A minimal sustain dict around one product (renderers take what sustain.json holds)."""
    r = compute_sustain([a.product], frame([]), plan=PLAN, as_of=AS_OF)
    return r.to_dict()


def test_minimum_cell_size_comes_from_the_plan():
    plan = replace(PLAN, privacy=replace(PLAN.privacy, min_cell_size=5))
    rows = frame(usage("A", activated=200, active=150, habitual=5),
                 usage("B", activated=200, active=150, habitual=4, start=1000))
    r = compute_sustain([product("A"), product("B")], rows, plan=plan, as_of=AS_OF)
    a, b = (p.to_dict() for p in r.products)
    assert a["students_habitual"] == 5 and b["students_habitual"] is None
    assert "fewer than 5 students" in " ".join(b["reasons"])


def test_zero_is_shown_not_suppressed():
    rows = frame(usage("Tool", activated=200, active=0, habitual=0))
    d = compute_sustain([product()], rows, plan=PLAN, as_of=AS_OF).products[0].to_dict()
    assert d["students_active"] == 0 and d["students_habitual"] == 0
    assert d["suppressed"] == []
    md = render_sustain_markdown(compute_sustain([product()], rows, plan=PLAN, as_of=AS_OF))
    assert "| 200 | 0 | 0 |" in md


# --- complementary suppression ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("counts", "expected"),
    [
        ((100, 97, 60, None), {"activated": "complementary"}),  # 3 never used it
        ((100, 90, 60, None), {}),  # 10 never used it: a cell that may be shown
        ((100, 50, 45, None), {"active": "complementary"}),  # 5 light users
        ((100, 50, 3, None), {"habitual": "primary"}),
        ((12, 3, 0, None), {"active": "primary"}),  # 12 - 3 = 9 but active is already hidden
        ((100, 50, 20, 46), {"fidelity": "complementary"}),  # 4 active below fidelity
        ((100, 50, 20, 7), {"fidelity": "primary"}),
        ((5, 5, 5, 5), dict.fromkeys(("activated", "active", "habitual", "fidelity"), "primary")),
        # Session logs: activated = active. Hiding active for its 6 light users would leave it
        # readable off the activated count, so that is hidden too.
        ((231, 231, 225, None), {"active": "complementary", "activated": "complementary"}),
        ((100, 5, 5, 5), {"active": "primary", "habitual": "primary", "fidelity": "primary"}),
    ],
)
def test_funnel_suppression_cases(counts, expected):
    assert funnel_suppression(*counts, min_cell=10) == expected


@settings(max_examples=300, deadline=None)
@given(
    activated=st.integers(0, 60),
    active_share=st.floats(0, 1),
    habitual_share=st.floats(0, 1),
    fidelity_share=st.one_of(st.none(), st.floats(0, 1)),
    min_cell=st.integers(5, 30),
)
def test_no_hidden_count_is_recoverable(activated, active_share, habitual_share,
                                        fidelity_share, min_cell):
    active = int(activated * active_share)
    habitual = int(active * habitual_share)
    fidelity = None if fidelity_share is None else int(active * fidelity_share)
    values = {"activated": activated, "active": active, "habitual": habitual,
              "fidelity": fidelity}
    hidden = funnel_suppression(activated, active, habitual, fidelity, min_cell=min_cell)
    shown = {k: v for k, v in values.items() if v is not None and k not in hidden}
    for v in shown.values():
        assert not 0 < v < min_cell
    # Every difference of two nested shown counts is 0 or a publishable cell, and no hidden
    # count equals a shown neighbour (a difference of 0 would give it away).
    for broad, narrow in (("activated", "active"), ("active", "habitual"),
                          ("active", "fidelity"), ("activated", "fidelity")):
        if broad in shown and narrow in shown:
            assert not 0 < shown[broad] - shown[narrow] < min_cell
        b, n = values[broad], values[narrow]
        if n is not None and (broad in shown) != (narrow in shown):
            assert b != n


def test_complementary_hides_every_figure_of_the_hidden_count():
    # 150 activated, 145 active: the 5 who never used it would follow from the two counts.
    rows = frame(usage("Tool", activated=150, active=145, habitual=100))
    a = compute_sustain([product()], rows, plan=PLAN, as_of=AS_OF).products[0]
    d = a.to_dict()
    assert d["students_activated"] is None and d["utilization_activated"] is None
    assert d["cost_per_activated_user"] is None
    assert d["students_active"] == 145 and d["students_habitual"] == 100
    text = " ".join(d["reasons"])
    assert "150" not in text and "a suppressed number of activated" in text


def test_price_index_hidden_with_its_level():
    rows = frame(usage("Tool", activated=200, active=7, habitual=0))
    d = compute_sustain([product()], rows, plan=PLAN, as_of=AS_OF).products[0].to_dict()
    assert d["price_index"] is None and "price_index" in d["suppressed"]
    rules = SustainRules(price_index_level="activated")
    d = compute_sustain([product()], rows, plan=PLAN, rules=rules,
                        as_of=AS_OF).products[0].to_dict()
    assert d["price_index"] == pytest.approx(1000 / 200)


def test_overlap_hidden_when_one_side_only_is_small():
    # A: 100 active; B: 15 active, 12 of them also in A -> 3 use only B (recoverable).
    rows_a = usage("A", activated=100, active=100, habitual=100)
    rows_b = [(sid, "B", 12, "habitual") for sid, *_ in rows_a[:12]]
    rows_b += usage("B", activated=3, active=3, habitual=3, start=5000)
    r = compute_sustain([product("A"), product("B")], frame(rows_a, rows_b), plan=PLAN,
                        as_of=AS_OF)
    for p in r.products:
        (o,) = p.to_dict()["overlaps"]
        assert o["suppressed"] is True and o["students_both"] is None
    md = render_sustain_markdown(r)
    assert "| 12 |" not in md


def test_hidden_redundancy_overlap_still_decides_without_numbers():
    # A: 12 active, 11 of them also use B (passing evidence): redundancy fires on the true
    # share (92%), but 12 - 11 = 1 uses only A, so the reason gives no count and no share.
    rows_a = usage("A", activated=12, active=12, habitual=12)
    rows_b = [(sid, "B", 12, "habitual") for sid, *_ in rows_a[:11]]
    rows_b += usage("B", activated=100, active=100, habitual=100, start=5000)
    a_product = product("A", seats_purchased=20, annual_cost=Decimal(500))
    r = compute_sustain([a_product, product("B")], frame(rows_a, rows_b),
                        evidence=[evidence("B")], plan=PLAN, as_of=AS_OF)
    a = r.products[0]
    assert a.recommendation == "sunset" and "redundancy" in a.rules_fired
    reason = next(t for t in a.reasons if t.startswith("Sunset"))
    assert "at least 50% of its active users" in reason
    assert "92%" not in reason and "11" not in reason


# --- other rules with hidden counts ----------------------------------------------------------


def test_adoption_floor_with_a_hidden_count():
    rows = frame(usage("Tool", activated=7, active=7, habitual=7))
    a = compute_sustain([product(seats_purchased=100, annual_cost=Decimal(2500))], rows,
                        plan=PLAN, as_of=AS_OF).products[0]
    assert a.recommendation == "sunset" and "adoption_floor" in a.rules_fired
    text = " ".join(a.reasons)
    assert "fewer than 10 students, of 100 seats, were ever activated" in text
    assert not re.search(r"(?<![\w.,$-])7(?![\w.,])", text) and "7.0%" not in text


def test_improve_implementation_with_hidden_habitual_count():
    rows = frame(usage("Tool", activated=100, active=60, habitual=8))
    a = compute_sustain([product(seats_purchased=100, annual_cost=Decimal(2500))], rows,
                        plan=PLAN, as_of=AS_OF).products[0]
    assert a.recommendation == "improve-implementation"
    reason = next(t for t in a.reasons if t.startswith("Improve"))
    assert "fewer than 10 of its 60 active users" in reason and "13%" not in reason


def test_tiny_product_keeps_all_seats_in_published_figures():
    # 11 seats, 6 habitual: the rule right-sizes to ceil(6.6) = 7 seats, but any published seat
    # count below 11 would reveal the 6; the savings figure keeps all 11 seats.
    rows = frame(usage("Tool", activated=11, active=10, habitual=6))
    a = compute_sustain([product(seats_purchased=11, annual_cost=Decimal(275))], rows,
                        plan=PLAN, as_of=AS_OF).products[0]
    assert a.recommendation == "right-size"
    assert a.seats_recommended == 11 and a.projected_savings == 0
    assert any("keep all 11 seats" in t for t in a.reasons)


def test_small_number_of_treated_students_is_hidden():
    rows = frame(usage("Tool", activated=200, active=150, habitual=100))
    a = compute_sustain([product()], rows, evidence=[evidence(n_treatment=7)], plan=PLAN,
                        as_of=AS_OF).products[0]
    d = a.to_dict()
    assert d["effect"]["n_treatment"] is None and "n_treatment" in d["suppressed"]
    assert "fewer than 10 students treated" in " ".join(d["reasons"])
    assert "7 students" not in sustain_to_json(
        compute_sustain([product()], rows, evidence=[evidence(n_treatment=7)], plan=PLAN,
                        as_of=AS_OF))


def test_cli_summary_does_not_print_hidden_counts(tmp_path: Path, runner):
    from rce.cli import app

    usage_file = tmp_path / "tool.csv"
    lines = ["student_id,date,minutes"]
    # 3 students with 12 sessions in each of 3 months (habitual), 40 with one session.
    for s in range(3):
        for month in (9, 10, 11):
            lines += [f"{900001 + s},2024-{month:02d}-{day:02d},20" for day in range(1, 13)]
    lines += [f"{910000 + s},2024-09-02,20" for s in range(40)]
    usage_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    (tmp_path / "products.toml").write_text(
        '[[product]]\nproduct = "Tool"\nsubject = "math"\nannual_cost = 25000\n'
        'seats_purchased = 1000\nusage = "tool.csv"\nprivacy_agreement = "signed"\n',
        encoding="utf-8",
    )
    result = runner.invoke(app, ["sustain-report", "--products", str(tmp_path / "products.toml"),
                                 "--out", str(tmp_path / "out"), "--as-of", "2025-02-01"])
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "out" / "sustain.json").read_text(encoding="utf-8"))
    p = data["products"][0]
    assert p["students_active"] == 43 and p["students_habitual"] is None
    assert "suppressed habitual" in result.stdout
    assert not THREE.search(result.stdout), result.stdout
