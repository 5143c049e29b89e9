"""Input-derived text is neutralised in every output format, through real runs.

The example district is copied with one school renamed to a script/formula/Markdown payload and
one product renamed to another; ``rce analyze`` and ``rce sustain-report`` then run on it and
each output is checked for the raw payload and for the escaped form (so the test cannot pass by
the names simply being absent).
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest
from conftest import EXAMPLE_DIR
from corpus_support import HOSTILE_PRODUCT, HOSTILE_SCHOOL, make_hostile_study

from rce.cli import app

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> Path:
    return make_hostile_study(EXAMPLE_DIR, tmp_path_factory.mktemp("hostile") / "district")


@pytest.fixture(scope="module")
def report(study, tmp_path_factory) -> Path:
    from typer.testing import CliRunner

    out = tmp_path_factory.mktemp("report")
    result = CliRunner().invoke(app, ["analyze", str(study), "--out", str(out), "--quiet",
                                      "--no-timestamp"])
    assert result.exit_code in (0, 1), result.stdout + result.stderr
    assert "<script>" not in result.stdout + result.stderr
    return out


def test_html_escapes_school_and_product(report):
    html = (report / "report.html").read_text(encoding="utf-8")
    assert "<script>alert" not in html
    assert "<img src=x" not in html
    assert "javascript:y" not in html or "href=\"javascript" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html, "product name never rendered"


def _md_tables(md: str) -> list[list[str]]:
    tables, cur = [], []
    for line in md.splitlines():
        if line.startswith("|"):
            cur.append(line)
        elif cur:
            tables.append(cur)
            cur = []
    if cur:
        tables.append(cur)
    return tables


def test_markdown_escapes_html_and_table_pipes(report):
    md = (report / "report.md").read_text(encoding="utf-8")
    assert "<script>" not in md and "<img" not in md
    assert "&lt;img src=x onerror=alert(1)&gt;" in md, "product name never rendered"
    for table in _md_tables(md):
        widths = {len(re.findall(r"(?<!\\)\|", row)) for row in table}
        assert len(widths) == 1, table[:3]


def test_csv_tables_neutralise_formulas(report):
    seen = 0
    for path in sorted((report / "tables").glob("*.csv")):
        with path.open(encoding="utf-8-sig", newline="") as fh:
            for row in csv.reader(fh):
                for cell in row:
                    if "HYPERLINK" in cell or "cmd|" in cell or "<script>" in cell:
                        seen += 1
                        assert not cell.startswith(FORMULA_START), (path.name, cell)
    assert seen > 0, "the hostile names reached no CSV table"


def test_results_json_keeps_the_text_verbatim(report):
    """JSON is data, not markup: the names are kept exactly (json.loads round-trips them)."""
    import json

    text = (report / "results.json").read_text(encoding="utf-8")
    assert HOSTILE_PRODUCT in json.dumps(json.loads(text), ensure_ascii=False)


@pytest.fixture(scope="module")
def sustain(study, report, tmp_path_factory) -> Path:
    from typer.testing import CliRunner

    out = tmp_path_factory.mktemp("sustain")
    result = CliRunner().invoke(app, [
        "sustain-report", "--config", str(study / "rce.toml"), "--out", str(out),
        "--as-of", "2025-06-01", "--evidence", str(report / "results.json"), "--quiet",
    ])
    assert result.exit_code in (0, 1), result.stdout + result.stderr
    return out


def test_sustain_outputs_neutralise_names(sustain):
    from openpyxl import load_workbook

    wb = load_workbook(sustain / "sustain.xlsx")
    hostile_cells = 0
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            for cell in row:
                assert cell.data_type != "f", (ws.title, cell.coordinate, cell.value)
                if isinstance(cell.value, str) and "HYPERLINK" in cell.value:
                    hostile_cells += 1
                    assert not cell.value.startswith(FORMULA_START), cell.value
    assert hostile_cells > 0, "the hostile product reached no worksheet"
    html = (sustain / "sustain.html").read_text(encoding="utf-8")
    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    md = (sustain / "sustain.md").read_text(encoding="utf-8")
    assert "<img" not in md
    for table in _md_tables(md):
        widths = {len(re.findall(r"(?<!\\)\|", row)) for row in table}
        assert len(widths) == 1, table[:3]


def test_payloads_are_what_we_think():
    assert HOSTILE_SCHOOL.startswith("<script>") and HOSTILE_PRODUCT.startswith("=")
