"""A sustain report over 100 products (issue 9): every product gets its own usage export.

rce.dosage takes at most 63 exports per run, so sustain batches them (all exports of one product
in one run); the charts draw at most a stated number of products; every output is written.
"""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path

import openpyxl
import pytest

from rce.config import Plan
from rce.report.sustain import CHART_MAX_PRODUCTS, SHEETS
from rce.sustain import _batches, run_sustain_report

N_PRODUCTS = 100


def n_students(k: int) -> int:
    """Students of product k: 3 to 30, so some products fall under the minimum cell size."""
    return 3 + (k * 5) % 28


def write_district(folder: Path, n_products: int = N_PRODUCTS) -> Path:
    """products.toml + one small session log per product (a few sessions per student)."""
    (folder / "usage").mkdir(parents=True, exist_ok=True)
    entries = []
    for k in range(n_products):
        name = f"Product {k:03d}"
        students = n_students(k)
        lines = ["student_id,date,minutes"]
        for s in range(students):
            sid = 100000 + k * 100 + s
            # Even students: 4 sessions in September (habitual); odd ones: one session.
            days = (3, 10, 17, 24) if s % 2 == 0 else (5,)
            lines += [f"{sid},2024-09-{d:02d},25" for d in days]
        (folder / "usage" / f"p{k:03d}.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
        entries.append(
            f'[[product]]\nproduct = "{name}"\nsubject = "{("ela", "math")[k % 2]}"\n'
            f"annual_cost = {1000 + 37 * k}\nseats_purchased = {20 + k}\n"
            f'funding_source = "{("ESSER III", "General Fund")[k % 2]}"\n'
            f"renewal_date = 2025-{1 + k % 12:02d}-15\n"
            f'usage = "usage/p{k:03d}.csv"\nprivacy_agreement = "signed"\n'
        )
    products = folder / "products.toml"
    products.write_text("\n".join(entries), encoding="utf-8")
    return products


def test_batches_keep_a_products_exports_together():
    from types import SimpleNamespace as S

    sources = [S(product=f"P{k}") for k in range(100)] + [S(product="P7")]
    batches = _batches(sources)
    assert [len(b) for b in batches] == [63, 38]
    assert sum(s.product == "P7" for s in batches[0]) == 2  # both of P7's exports in one run
    assert sorted(s.product for b in batches for s in b) == sorted(s.product for s in sources)


@pytest.fixture(scope="module")
def hundred(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hundred")
    products = write_district(folder)
    out = folder / "out"
    run = run_sustain_report(products, plan=Plan(), out_dir=out, as_of=date(2025, 2, 1))
    return run, out


def test_hundred_products_all_outputs(hundred):
    run, out = hundred
    assert sorted(p.name for p in out.iterdir()) == [
        "sustain.html", "sustain.json", "sustain.md", "sustain.xlsx"]
    data = json.loads((out / "sustain.json").read_text(encoding="utf-8"))
    assert len(data["products"]) == N_PRODUCTS == data["totals"]["products"]
    by = {p["product"]: p for p in data["products"]}
    # Product 000: 3 students (2 habitual): every count hidden.
    assert by["Product 000"]["students_activated"] is None
    # Product 002: 13 students, 7 habitual (hidden), 6 light: active is shown at 13.
    assert by["Product 002"]["students_active"] == 13
    assert by["Product 002"]["students_habitual"] is None
    # Product 005: 28 students, 14 habitual: all shown.
    assert by["Product 005"]["students_habitual"] == 14 and by["Product 005"]["suppressed"] == []
    # Every product's usage was read (none fell out of a batch): true counts, in memory.
    activated = {a.product.product: a.students_activated for a in run.result.products}
    assert activated == {f"Product {k:03d}": n_students(k) for k in range(N_PRODUCTS)}
    assert sum(data["totals"]["by_recommendation"].values()) == N_PRODUCTS


def test_hundred_products_charts_stay_readable(hundred):
    _, out = hundred
    html = (out / "sustain.html").read_text(encoding="utf-8")
    svgs = re.findall(r"<svg.*?</svg>", html, flags=re.S)
    assert len(svgs) == 2  # cost per habitual user and the funnel (no evidence: no scatter)
    cost_svg, funnel_svg = svgs
    limit = CHART_MAX_PRODUCTS["funnel"]
    assert f"The chart shows the {limit} products with the largest annual cost, of 100" in html
    # The funnel draws 4 bars for each of its products: the 10 dearest (Product 090-099).
    named = set(re.findall(r"Product \d{3}", funnel_svg))
    assert named == {f"Product {k:03d}" for k in range(90, 100)}
    height = float(re.search(r'height="([\d.]+)pt"', funnel_svg).group(1))
    assert height < 1100  # about 15 inches at most, however many products there are
    assert len(set(re.findall(r"Product \d{3}", cost_svg))) <= CHART_MAX_PRODUCTS["cost"]
    # Every product is still in the tables.
    assert all(f"Product {k:03d}" in html for k in range(N_PRODUCTS))


def test_hundred_products_workbook_opens(hundred):
    _, out = hundred
    book = openpyxl.load_workbook(out / "sustain.xlsx")
    assert book.sheetnames == list(SHEETS)
    sheet = book["Utilization and cost"]
    assert sheet.max_row == N_PRODUCTS + 1
    seats = [row[4] for row in sheet.iter_rows(min_row=2, values_only=True)]
    assert all(isinstance(v, int) for v in seats)


def test_counts_by_product_match_a_scan_per_product():
    import numpy as np
    import pandas as pd

    from rce.sustain import _counts_by_product

    rng = np.random.default_rng(3)
    n = 5000
    frame = pd.DataFrame({
        "student_id": pd.array([f"{i:05d}" for i in rng.integers(0, 1500, n)], dtype="str"),
        "product": pd.array([f"P{i}" for i in rng.integers(0, 30, n)], dtype="str"),
        "sessions": rng.poisson(2, n),
        "usage_level": pd.array(rng.choice(["habitual", "light", "none", None], n), dtype="str"),
        "met_fidelity": pd.array(rng.choice([True, False, None], n), dtype="boolean"),
    })
    frame.loc[frame["product"] == "P4", "met_fidelity"] = pd.NA  # cannot be measured
    names = [f"P{i}" for i in range(31)]  # P30 has no rows
    got = _counts_by_product(frame, names)
    for name in names:
        rows = frame.loc[frame["product"] == name]
        if rows.empty:
            assert got[name] is None
            continue
        ids = rows["student_id"]
        habitual = rows["usage_level"].eq("habitual").fillna(False).astype(bool)
        met = rows["met_fidelity"].fillna(False).astype(bool)
        expected = (
            ids.nunique(),
            ids[rows["sessions"] > 0].nunique(),
            ids[habitual].nunique(),
            ids[met].nunique() if rows["met_fidelity"].notna().any() else None,
        )
        assert got[name] == expected, name


def test_relative_products_path_with_a_plan_elsewhere(tmp_path: Path, monkeypatch):
    """Usage paths resolve once, against the products file (not again against the plan)."""
    from rce.config import load_plan

    products = write_district(tmp_path / "district", n_products=2)
    (tmp_path / "district" / "rce.toml").write_text("", encoding="utf-8")
    plan = load_plan(tmp_path / "district" / "rce.toml")
    monkeypatch.chdir(tmp_path)
    run = run_sustain_report(Path("district") / products.name, plan=plan, out_dir=None,
                             as_of=date(2025, 2, 1))
    assert [a.students_activated for a in run.result.products] == [3, 8]
