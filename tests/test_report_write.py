"""write_report: the file set, determinism, tables, workbook, manifest, privacy refusals."""

from __future__ import annotations

import csv
import json

import jsonschema
import openpyxl
import pandas as pd
import pytest
from report_fixtures import complete_results, hostile_results

from rce.errors import DataError
from rce.report import write_report
from rce.report.manifest import build_manifest, manifest_to_json, sha256_file
from rce.report.results import load_schema
from rce.report.tables import tables_from_results, write_tables
from rce.report.xlsx import sheet_name, write_workbook


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("runs")
    outs = []
    for i in range(2):
        out = base / f"run{i}"
        write_report(complete_results(), out, manifest=build_manifest(inputs=[], seed=1))
        outs.append(out)
    return outs


def test_writes_every_file(two_runs):
    out = two_runs[0]
    for name in ("report.html", "report.md", "results.json", "manifest.json"):
        assert (out / name).is_file(), name
    tables = sorted(p.name for p in (out / "tables").glob("*.csv"))
    assert {"gaps.csv", "dose_response.csv", "dose_response_bins.csv", "usage_monthly.csv",
            "habitual_months.csv", "balance.csv", "impact.csv", "warnings.csv"} <= set(tables)
    assert not list(out.parent.glob(".*partial"))


def test_same_inputs_same_bytes_except_manifest_time(two_runs):
    a, b = two_runs
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    for rel in files:
        if rel.name == "manifest.json":
            ma, mb = (json.loads((d / rel).read_text()) for d in (a, b))
            for m in (ma, mb):
                m.pop("started_at")
                m.pop("finished_at")
            assert ma == mb
        else:
            assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel


def test_written_json_validates_against_shipped_schema(two_runs):
    data = json.loads((two_runs[0] / "results.json").read_text())
    jsonschema.validate(data, load_schema(), cls=jsonschema.Draft202012Validator)
    assert data == json.loads(json.dumps(complete_results()))


def test_csv_cells_are_neutralised(tmp_path):
    write_report(hostile_results(), tmp_path / "out", manifest=build_manifest(inputs=[]))
    with open(tmp_path / "out" / "tables" / "warnings.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert rows[-1]["message"].startswith("'=cmd")
    with open(tmp_path / "out" / "tables" / "usage_by_group.csv", newline="") as fh:
        groups = [r["group"] for r in csv.DictReader(fh)]
    assert any(g.startswith("<script>") for g in groups)  # not a formula: kept as text


def test_caller_tables_are_added_and_checked(tmp_path):
    extra = {"sensitivity": pd.DataFrame({"threshold": [2, 3], "estimate": [1.2, 1.4]})}
    write_report(complete_results(), tmp_path / "a", tables=extra,
                 manifest=build_manifest(inputs=[]))
    assert (tmp_path / "a" / "tables" / "sensitivity.csv").is_file()
    with pytest.raises(DataError, match="identifier") as err:
        write_report(complete_results(), tmp_path / "b",
                     tables={"per_student": pd.DataFrame({"student_id": ["000123"]})},
                     manifest=build_manifest(inputs=[]))
    assert "000123" not in str(err.value) and "000123" not in err.value.where
    with pytest.raises(DataError, match="fewer than 10") as err:
        write_report(complete_results(), tmp_path / "c",
                     tables={"trend": pd.DataFrame({"month": ["2025-09"],
                                                    "students_habitual": [3]})},
                     manifest=build_manifest(inputs=[]))
    assert err.value.where == "tables/trend.csv, row 2, column students_habitual"


def test_per_student_tables_need_the_explicit_option(tmp_path):
    paths = write_tables({"per_student": pd.DataFrame({"student_id": ["000123"], "n": [1]})},
                         tmp_path, min_n=10, allow_student_level=True)
    assert paths[0].read_text().splitlines()[1] == "000123,1"


def test_failed_run_keeps_the_previous_report(tmp_path):
    out = tmp_path / "out"
    write_report(complete_results(), out, manifest=build_manifest(inputs=[]))
    before = (out / "report.html").read_bytes()
    bad = complete_results()
    bad["gaps"][1]["n"] = 4
    with pytest.raises(Exception, match="fewer than 10"):
        write_report(bad, out, manifest=build_manifest(inputs=[]))
    assert (out / "report.html").read_bytes() == before
    with pytest.raises(DataError, match="safe file name"):
        write_report(complete_results(), out, tables={"../evil": pd.DataFrame({"a": [1]})},
                     manifest=build_manifest(inputs=[]))
    assert not (tmp_path / "evil.csv").exists()


def test_tables_match_results():
    res = complete_results()
    tables = tables_from_results(res)
    gaps = tables["gaps"]
    assert len(gaps) == len(res["gaps"])
    assert str(gaps["n"].dtype) == "Int64"  # counts stay whole numbers next to hidden cells
    assert gaps.loc[gaps["suppressed"], "mean"].isna().all()
    assert tables["impact"]["probability_better"].iloc[0] == pytest.approx(0.52)


def test_workbook_numbers_text_and_layout(tmp_path):
    frame = pd.DataFrame({"product": ["=HYPERLINK(\"http://evil\",\"x\")", "Lexia"],
                          "cost": [1234.5, None], "students": [120, 80],
                          "share": [0.5, 0.25]})
    path = write_workbook(tmp_path / "x.xlsx", {"Costs: 2025/26 [draft]": frame},
                          readme=[("Source", "products.toml")],
                          number_formats={"share": "0%"})
    wb = openpyxl.load_workbook(path)
    assert wb.sheetnames[0] == "README"
    ws = wb[wb.sheetnames[1]]
    assert wb.sheetnames[1] == "Costs_ 2025_26 _draft_"
    assert ws.freeze_panes == "A2"
    assert ws.auto_filter.ref == "A1:D3"
    assert ws["A2"].data_type == "s" and ws["A2"].value.startswith("=HYPERLINK")
    assert ws["B2"].value == 1234.5 and ws["B3"].value is None
    assert ws["C2"].value == 120 and isinstance(ws["C2"].value, int | float)
    assert ws["D2"].number_format == "0%"
    assert write_workbook(tmp_path / "y.xlsx", {"Costs": frame}).read_bytes() == write_workbook(
        tmp_path / "z.xlsx", {"Costs": frame}).read_bytes()


def test_sheet_names_are_unique_and_short():
    taken: set[str] = set()
    names = [sheet_name("A" * 40, taken), sheet_name("A" * 40, taken), sheet_name("", taken)]
    assert len(set(names)) == 3 and all(len(n) <= 31 for n in names)


def test_manifest_records_inputs_plan_and_versions(tmp_path):
    from rce.config import Plan

    data = tmp_path / "usage.csv"
    data.write_text("student_id,minutes\n1,3\n")
    manifest = build_manifest(inputs=[data], plan=Plan(), seed=7, rows={str(data): 1})
    assert manifest["inputs"][0]["sha256"] == sha256_file(data)
    assert manifest["inputs"][0]["rows"] == 1
    assert manifest["plan_sha256"] == Plan().sha256()
    assert manifest["packages"]["pandas"] == pd.__version__
    assert manifest["seed"] == 7 and "started_at" in manifest
    assert "started_at" not in build_manifest(inputs=[], timestamp=False)
    json.loads(manifest_to_json(manifest))


def test_workbook_dates_and_nullable_counts(tmp_path):
    frame = pd.DataFrame({
        "renewal": [pd.Timestamp("2026-06-30"), pd.Timestamp("2026-07-01 08:00", tz="UTC")],
        "seats": pd.array([120, None], dtype="Int64"),
    })
    wb = openpyxl.load_workbook(write_workbook(tmp_path / "d.xlsx", {"Dates": frame}))
    ws = wb["Dates"]
    assert ws["A2"].is_date and ws["A3"].value.hour == 8
    assert ws["B2"].value == 120 and ws["B3"].value is None
