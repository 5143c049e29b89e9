"""Tests for rce.report.sustain: sustain.html / .md / .json / .xlsx, escaping and inert cells."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest

from rce.config import Plan
from rce.report.sustain import (
    SHEETS,
    render_sustain_html,
    render_sustain_markdown,
    sustain_to_json,
    write_sustain_report,
    write_sustain_workbook,
)
from rce.sustain import Evidence, Product, compute_sustain

from test_sustain import frame, usage

HOSTILE_FORMULA = "=cmd|' /C calc'!A0"
HOSTILE_HTML = "<script>alert(1)</script> | pipes |"


def _product(name: str, **kw) -> Product:
    base = {"subject": "ela", "privacy_agreement": "signed", "approval_status": "approved"}
    base.update(kw)
    return Product(product=name, **base)


@pytest.fixture(scope="module")
def result():
    a = _product(HOSTILE_FORMULA, seats_purchased=1200, annual_cost=Decimal("36000"),
                 funding_source="ESSER III", renewal_date=date(2025, 6, 30))
    b = _product(HOSTILE_HTML, seats_purchased=600, annual_cost=Decimal("18000"),
                 funding_source="+Title I", renewal_date=date(2025, 7, 31),
                 privacy_agreement="none")
    c = _product("VendorX Literacy", seats_purchased=2000, price_per_seat=Decimal("14.25"),
                 annual_cost=Decimal("28500"), funding_source="ESSER III",
                 renewal_date=date(2025, 8, 15))
    rows = frame(
        usage(a.product, activated=1150, active=1100, habitual=1000),
        usage(b.product, activated=560, active=520, habitual=420, start=20000),
        usage(c.product, activated=400, active=260, habitual=90, start=40000),
    )
    ev = [
        Evidence(product=a.product, estimate=4.0, ci_low=1.0, ci_high=7.0,
                 probability_positive=0.99, probability_meaningful=0.93, hedges_g=0.12,
                 evidence_tier="2", design="matched comparison", outcome_window="spring"),
        Evidence(product=b.product, estimate=0.3, ci_low=-2.1, ci_high=2.7,
                 probability_positive=0.59, probability_meaningful=0.18, hedges_g=0.01,
                 outcome_window="spring"),
    ]
    return compute_sustain([a, b, c], rows, evidence=ev, plan=Plan(), as_of=date(2025, 2, 1))


def test_html_is_self_contained_with_three_charts_and_escaped_names(result):
    html = render_sustain_html(result)
    assert html.startswith("<!DOCTYPE html>")
    assert html.count("<svg") == 3
    assert "<script" not in html.replace("&lt;script", "")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "http://" not in html.replace("http://www.w3.org", "")
    for title in ("Annual cost per habitual student", "Effect against cost per habitual student",
                  "Utilization funnel"):
        assert title in html
    assert "Funding cliff" in html and "Definitions, rules and limits" in html
    assert "$27,089.25" in html  # VendorX savings: 1,901 seats x $14.25
    assert "3 or more sessions" in html  # the habitual definition is stated


def test_markdown_escapes_pipes_and_markup(result):
    md = render_sustain_markdown(result)
    assert "\\| pipes \\|" in md
    assert "<script>" not in md
    assert "## Funding cliff" in md and "## Recommendations" in md
    # Every table row has the same number of unescaped cell separators as its header.
    for block in md.split("\n\n"):
        lines = [ln for ln in block.splitlines() if ln.startswith("|")]
        if lines:
            counts = {ln.replace("\\|", "").count("|") for ln in lines}
            assert len(counts) == 1, block


def test_json_round_trips_to_dict(result):
    text = sustain_to_json(result)
    data = json.loads(text)
    assert data["schema_version"] == "1"
    assert data["products"] == json.loads(json.dumps(result.to_dict()["products"]))
    assert data["totals"]["projected_savings"] == 45089.25  # 18,000 + 27,089.25
    assert sustain_to_json(result) == text  # deterministic


def test_xlsx_sheets_numbers_and_inert_text(result, tmp_path: Path):
    path = write_sustain_workbook(result, tmp_path / "sustain.xlsx")
    book = openpyxl.load_workbook(path)
    assert book.sheetnames == list(SHEETS)
    rec = book["Recommendations"]
    header = [c.value for c in rec[1]]
    assert header[:3] == ["Product", "Recommendation", "Annual cost"]
    names = [rec.cell(row=r, column=1) for r in range(2, 5)]
    for cell in names:
        assert cell.data_type == "s"
    assert names[0].value == "'" + HOSTILE_FORMULA  # shown as text, never run
    cost = rec.cell(row=2, column=3)
    assert cost.data_type == "n" and cost.value == 36000
    assert cost.number_format == "$#,##0.00"
    util = book["Utilization and cost"]
    head = [c.value for c in util[1]]
    per_habitual = util.cell(row=4, column=head.index("Per habitual") + 1)
    assert per_habitual.data_type == "n" and per_habitual.value == pytest.approx(316.67)
    share = util.cell(row=2, column=head.index("Habitual/seats") + 1)
    assert share.data_type == "n" and share.number_format == "0.0%"
    assert share.value == pytest.approx(1000 / 1200)
    renewal = util.cell(row=2, column=head.index("Renewal date") + 1)
    assert renewal.is_date and renewal.value.date() == date(2025, 6, 30)
    totals = book["Totals"]
    assert totals.cell(row=5, column=2).value == pytest.approx(45089.25)
    # No cell anywhere holds a formula or starts like one.
    for sheet in book.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                assert cell.data_type != "f"
                if isinstance(cell.value, str):
                    assert not cell.value.startswith(("=", "+", "-", "@")), (sheet.title, cell)


def test_write_sustain_report_writes_four_files(result, tmp_path: Path):
    files = write_sustain_report(result, tmp_path / "out")
    assert [f.name for f in files] == ["sustain.html", "sustain.md", "sustain.json",
                                      "sustain.xlsx"]
    assert all(f.stat().st_size > 0 for f in files)
    again = write_sustain_report(result, tmp_path / "again")
    for a, b in zip(files, again, strict=True):
        assert a.read_bytes() == b.read_bytes(), a.name  # identical inputs, identical bytes


def test_renderers_handle_no_evidence_no_usage(tmp_path: Path):
    p = _product("Solo", annual_cost=Decimal("500"))
    r = compute_sustain([p], frame([]), plan=Plan(), as_of=date(2025, 2, 1))
    html = render_sustain_html(r)
    assert "No product has habitual users" in html
    assert "there is no effect-against-cost chart" in html
    assert html.count("<svg") == 1  # only the funnel (seats); no empty charts
    md = render_sustain_markdown(r)
    assert "Insufficient evidence" in md
    write_sustain_workbook(r, tmp_path / "solo.xlsx")


def _results_json(product: str, p_meaningful: float, window: str = "spring",
                  p_positive: float = 0.99) -> str:
    return json.dumps({
        "schema_version": "1",
        "study": {"product": product, "outcome_window": window, "interim": window != "spring"},
        "impact": {"design": "matched", "estimate": 3.0, "ci_low": 1.0, "ci_high": 5.0,
                   "probability_positive": p_positive, "probability_meaningful": p_meaningful,
                   "hedges_g": 0.15, "improvement_index": 6.0, "n_treatment": 400},
        "evidence": {"essa_tier": 3},
    })


def test_run_sustain_report_without_usage_finds_evidence(tmp_path: Path):
    from rce.sustain import run_sustain_report

    (tmp_path / "products.toml").write_text(
        '[[product]]\nproduct = "Alpha"\nannual_cost = 1000\nseats_purchased = 10\n'
        'privacy_agreement = "signed"\n'
        '[[product]]\nproduct = "Beta"\nannual_cost = "$2,000.50"\n'
        'evidence = "beta/results.json"\nprivacy_agreement = "signed"\n',
        encoding="utf-8",
    )
    (tmp_path / "rce-report").mkdir()
    (tmp_path / "rce-report" / "results.json").write_text(_results_json("Alpha", 0.9))
    (tmp_path / "winter").mkdir()
    (tmp_path / "winter" / "results.json").write_text(_results_json("Alpha", 0.2, "winter"))
    (tmp_path / "beta").mkdir()
    (tmp_path / "beta" / "results.json").write_text(_results_json("Something else", 0.1,
                                                                           p_positive=0.55))
    run = run_sustain_report(tmp_path / "products.toml", plan=Plan(), out_dir=tmp_path / "out",
                             as_of=date(2025, 2, 1))
    alpha, beta = run.result.products
    assert alpha.evidence.probability_meaningful == 0.9  # final beats interim
    assert beta.evidence.probability_meaningful == 0.1  # the product's own evidence key wins
    assert beta.recommendation == "sunset"
    assert [f.name for f in run.files] == ["sustain.html", "sustain.md", "sustain.json",
                                          "sustain.xlsx"]
    data = json.loads(run.json_text)
    assert data["totals"]["annual_cost"] == 3000.5
    assert any("rce-report/results.json" in n for n in data["notes"])
    result, files, text = run  # unpacks as the CLI expects
    assert text == (tmp_path / "out" / "sustain.json").read_text(encoding="utf-8")


def test_run_sustain_report_needs_a_products_file():
    from rce.errors import PlanError
    from rce.sustain import run_sustain_report

    with pytest.raises(PlanError):
        run_sustain_report(None, plan=Plan(), out_dir=None, as_of=date(2025, 2, 1))


def test_sustain_json_alone_does_not_import_matplotlib_or_jinja():
    """sustain.json without the other files (out_dir=None) skips the chart and template stack."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from datetime import date\n"
        "from decimal import Decimal\n"
        "import pandas as pd\n"
        "from rce.config import Plan\n"
        "from rce.sustain import Product, compute_sustain\n"
        "from rce.report.sustain import sustain_to_json\n"
        "frame = pd.DataFrame({'student_id': ['1'], 'product': ['T'], 'sessions': [5],"
        " 'usage_level': ['habitual']})\n"
        "r = compute_sustain([Product(product='T', annual_cost=Decimal(10), seats_purchased=5)],"
        " frame, plan=Plan(), as_of=date(2025, 2, 1))\n"
        "assert sustain_to_json(r)\n"
        "print(sorted(m for m in ('matplotlib', 'jinja2', 'xlsxwriter') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
