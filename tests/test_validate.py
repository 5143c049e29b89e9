"""`rce validate`: findings, exit codes, and the text / JSON / JUnit renderings."""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from rce.config import plan_from_dict
from rce.errors import InputFileError
from rce.validate import validate_files

FIX = Path(__file__).parent / "fixtures" / "io"
SECRET = "987654"

DIAG = (
    "Student ID,Student Grade,Academic Year,School,Completion Date,Baseline Diagnostic (Y/N),"
    "Rush Flag,Overall Scale Score,Percentile,Lexile Measure\n"
)


def codes(report, file=None):
    return {f.code for f in report.findings if file is None or Path(f.file).name == file}


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_clean_fixture_set_passes():
    paths = [FIX / n for n in ("roster.csv", "diagnostic_results_ela_2023-24.csv",
                               "dreambox_usage_weekly.csv", "session_log.tsv")]
    rep = validate_files(paths)
    assert rep.exit_code == 0
    assert {f.layout for f in rep.files} == {"roster", "iready_diagnostic_results",
                                            "dreambox_weekly", "session_log"}
    assert "ID_MATCH_RATE" in codes(rep)


def test_planted_quirks_reported():
    rep = validate_files([FIX / "roster.csv", FIX / "diagnostic_results_ela.csv",
                          FIX / "clever_daily_participation_students.csv",
                          FIX / "personalized_instruction_by_lesson_ela.csv"])
    assert "DUPLICATE_ROWS" in codes(rep, "diagnostic_results_ela.csv")
    assert "DATE_FORMATS_MIXED" in codes(rep, "diagnostic_results_ela.csv")
    assert "ID_LEADING_ZEROS" in codes(rep, "roster.csv")
    assert "DUPLICATE_STUDENTS" in codes(rep, "roster.csv")  # mid-year transfer
    assert "ID_BLANK" in codes(rep, "clever_daily_participation_students.csv")
    assert "MINUTES_OUTLIER" in codes(rep, "personalized_instruction_by_lesson_ela.csv")
    dup = next(f for f in rep.findings if f.code == "DUPLICATE_ROWS")
    assert dup.rows == (24,) and dup.count == 1
    # Clever's blank sis_id puts the match rate at 50% < 90%: a warning, not an error.
    match = [f for f in rep.findings if f.code == "ID_MATCH_RATE"
             and f.file.endswith("clever_daily_participation_students.csv")][0]
    assert match.severity == "warning" and rep.exit_code == 0


def test_strict_promotes_warnings():
    rep = validate_files([FIX / "diagnostic_results_ela.csv"], strict=True)
    assert rep.exit_code == 1
    assert all(f.severity in ("error", "info") for f in rep.findings)


def test_errors_give_exit_1_with_rows_and_columns(tmp_path):
    rows = "".join(f"{SECRET}{i},3,2024-2025,Oak,9/{i + 1}/2024,Y,,{s},{p},720L\n"
                   for i, (s, p) in enumerate([("480", "30"), ("abc", "30"), ("950", "30"),
                                               ("999", "30"), ("500", "0"), ("500", "100")]))
    rows += f"{SECRET},3,2024-2025,Oak,31/31/2024,Y,,500,30,720L\n"
    rows += f"{SECRET},3,2024-2025,Oak,9/9/2019,Y,,500,30,720L\n"
    p = write(tmp_path, "diag.csv", DIAG + rows)
    rep = validate_files([p])
    assert rep.exit_code == 1
    by = {f.code: f for f in rep.findings}
    assert by["NOT_NUMERIC"].rows == (3,) and by["NOT_NUMERIC"].column == "Overall Scale Score"
    assert by["SCORE_RANGE"].rows == (4,)
    assert by["SCORE_SENTINEL"].rows == (5,) and by["SCORE_SENTINEL"].severity == "warning"
    assert by["PERCENTILE_RANGE"].rows == (6, 7) and by["PERCENTILE_RANGE"].count == 2
    assert by["DATE_UNPARSEABLE"].rows == (8,)
    assert by["DATE_OUTSIDE_YEAR"].rows == (9,)
    for text in (rep.to_text(), rep.to_json(), rep.to_junit()):
        assert SECRET not in text


def test_usage_minutes_checks(tmp_path):
    p = write(tmp_path, "log.csv", "Student ID,Date,Minutes\n1,9/3/2024,20\n2,9/3/2024,-5\n"
              "3,9/4/2024,700\n4,9/4/2024,lots\n5,9/5/2024,150\n")
    rep = validate_files([p])
    c = codes(rep)
    assert {"MINUTES_NEGATIVE", "MINUTES_IMPLAUSIBLE", "NOT_NUMERIC", "MINUTES_OUTLIER"} <= c
    assert rep.exit_code == 1


def test_vocabulary_values_counted_not_echoed(tmp_path):
    p = write(tmp_path, "roster.csv", "Student ID,Grade,Gender,ELAS,School\n"
              "1,3,M,EO,Oak\n2,3,Zanzibar,EL,Oak\n3,14,F,XYZ,Oak\n")
    rep = validate_files([p])
    vocab = [f for f in rep.findings if f.code == "VOCABULARY"]
    assert {f.column for f in vocab} == {"Grade", "Gender", "ELAS"}
    assert "Zanzibar" not in rep.to_json()


def test_roster_id_checks(tmp_path):
    p = write(tmp_path, "roster.csv", "Student ID,Grade,Gender,School\n"
              "1,3,M,Oak\n,3,F,Oak\n4.5E+05,3,F,Oak\n4,3,F,Oak\n5,3,F,Oak\n"
              "Oak Elementary,3,F,Oak\n" + "".join(f"{i},3,F,Oak\n" for i in range(6, 12)))
    rep = validate_files([p])
    by = {f.code: f for f in rep.findings}
    assert by["ID_BLANK"].severity == "error" and by["ID_BLANK"].rows == (3,)
    assert by["ID_SCIENTIFIC"].rows == (4,)
    assert by["ID_PATTERN"].rows == (7,)


def test_unknown_layout_is_an_error_finding():
    rep = validate_files([FIX / "nwea_map.csv"])
    assert rep.exit_code == 1 and codes(rep) == {"LAYOUT_UNKNOWN"}
    plan = plan_from_dict({"columns": {"student_id": "StudentID", "scale_score": "TestRITScore",
                                       "test_date": "TestStartDate"}})
    assert validate_files([FIX / "nwea_map.csv"], plan).exit_code == 0


def test_header_only_is_an_error_finding(tmp_path):
    p = write(tmp_path, "roster.csv", "Student ID,Grade,Gender,School\n")
    rep = validate_files([p])
    assert codes(rep) == {"NO_ROWS"} and rep.exit_code == 1


def test_unreadable_file_raises(tmp_path):
    with pytest.raises(InputFileError):
        validate_files([tmp_path / "missing.csv"])
    with pytest.raises(InputFileError):
        validate_files([tmp_path])


def test_low_match_rate_error_when_enforced(tmp_path):
    shutil.copy(FIX / "roster.csv", tmp_path / "roster.csv")
    p = write(tmp_path, "log.csv", "Student ID,Date,Minutes\n4512,9/3/2024,20\n1,9/3/2024,20\n")
    plan = plan_from_dict({"join": {"enforce_min_match_rate": True}})
    rep = validate_files([tmp_path / "roster.csv", p], plan)
    m = next(f for f in rep.findings if f.code == "ID_MATCH_RATE")
    assert m.severity == "error" and m.rows == (3,) and rep.exit_code == 1


def test_json_shape():
    rep = validate_files([FIX / "roster.csv", FIX / "diagnostic_results_ela.csv"])
    doc = json.loads(rep.to_json())
    assert set(doc) == {"schema_version", "tool", "exit_code", "strict", "summary", "files",
                        "findings"}
    assert doc["schema_version"] == "1" and doc["exit_code"] == rep.exit_code
    assert set(doc["summary"]) == {"files", "errors", "warnings", "info"}
    assert doc["summary"]["files"] == 2
    for f in doc["files"]:
        assert set(f) == {"path", "layout", "kind", "rows", "format", "encoding", "delimiter",
                          "checks"}
    for f in doc["findings"]:
        assert set(f) == {"severity", "code", "file", "rows", "count", "column", "message",
                          "hint"}
        assert f["severity"] in ("error", "warning", "info")
        assert all(isinstance(r, int) and r >= 1 for r in f["rows"]) and len(f["rows"]) <= 5


def test_junit_parses_and_counts(tmp_path):
    p = write(tmp_path, "diag.csv", DIAG + "1,3,2024-2025,Oak,9/3/2024,Y,,abc,30,720L\n")
    rep = validate_files([FIX / "roster.csv", p, FIX / "nwea_map.csv"])
    xml = rep.to_junit()
    root = ET.fromstring(xml.encode("utf-8"))
    assert root.tag == "testsuites"
    suites = root.findall("testsuite")
    assert len(suites) == 3
    total = sum(int(s.get("tests")) for s in suites)
    assert int(root.get("tests")) == total == len(root.findall(".//testcase"))
    diag = next(s for s in suites if s.get("name").endswith("diag.csv"))
    failed = [c.get("name") for c in diag.findall("testcase") if c.find("failure") is not None]
    # The one score row's ID is not in the roster: below 50% matched is always an error.
    assert failed == ["scores", "roster_match"]
    assert int(diag.get("failures")) == 2
    names = [c.get("name") for c in diag.findall("testcase")]
    assert len(names) == len(set(names))  # one test case per check per file
    nwea = next(s for s in suites if s.get("name").endswith("nwea_map.csv"))
    assert [c.get("name") for c in nwea.findall("testcase")] == ["layout"]
    assert int(root.get("failures")) == 3


def test_text_rendering():
    rep = validate_files([FIX / "diagnostic_results_ela.csv"])
    text = rep.to_text()
    assert "diagnostic_results_ela.csv: iready_diagnostic_results (assessment), 24 rows" in text
    assert "WARNING DUPLICATE_ROWS" in text and "rows 24" in text
    assert text.rstrip().endswith("note(s)")
    assert len(rep.to_frame()) == len(rep.findings)


# --- through the command line (exit codes 0 / 1 / 2, no traceback) -------------------------------


def run_cli(*args):
    from typer.testing import CliRunner

    from rce.cli import app

    return CliRunner().invoke(app, ["validate", *map(str, args)])


def test_cli_exit_codes(tmp_path):
    ok = run_cli(FIX / "roster.csv", FIX / "dreambox_usage_weekly.csv")
    assert ok.exit_code == 0, ok.output
    bad = write(tmp_path, "diag.csv", DIAG + f"{SECRET},3,2024-2025,Oak,9/3/2024,Y,,abc,30,720L\n")
    res = run_cli(bad, "--format", "json")
    assert res.exit_code == 1
    assert json.loads(res.stdout)["summary"]["errors"] == 1
    junit = run_cli(bad, "--format", "junit")
    assert junit.exit_code == 1
    ET.fromstring(junit.stdout.encode("utf-8"))


@pytest.mark.parametrize("content", [
    b"", b"\x00\x01binary\x00" * 10, "Student ID,Grade,grade\n1,3,3\n".encode(),
    b"Student ID,Minutes\n1,2\n3,4,5\n", "a,b\n1,2\n".encode("utf-16"), b"%PDF-1.4",
])
def test_cli_unreadable_file_exits_2_without_traceback(tmp_path, content):
    p = tmp_path / "bad.csv"
    p.write_bytes(content)
    res = run_cli(p)
    assert res.exit_code == 2
    assert "Traceback" not in res.output
    assert "bad.csv" in res.output


def test_monthly_columns_must_be_numbers(tmp_path):
    p = write(tmp_path, "vx.csv", "Student ID,School,September 2024 Activities,"
              "October 2024 Activities\n1,Oak,3,4\n2,Oak,three,1\n")
    rep = validate_files([p])
    f = next(x for x in rep.findings if x.code == "NOT_NUMERIC")
    assert f.column == "September 2024 Activities" and f.rows == (3,)
    root = ET.fromstring(rep.to_junit().encode("utf-8"))
    failed = [c.get("name") for c in root.iter("testcase") if c.find("failure") is not None]
    assert failed == ["minutes"]


def test_xlsx_and_parquet_files(tmp_path):
    import pandas as pd

    from rce.io import read_table

    roster = read_table(FIX / "roster.csv").frame
    roster.to_excel(tmp_path / "roster.xlsx", index=False)
    pd.DataFrame({"Student ID": ["4512", "4513", "77"], "Date": ["2024-09-03"] * 3,
                  "Minutes": [20.0, 25.0, 30.0]}).to_parquet(tmp_path / "log.parquet")
    rep = validate_files([tmp_path / "roster.xlsx", tmp_path / "log.parquet"])
    assert [(f.layout, f.format) for f in rep.files] == [("roster", "xlsx"),
                                                         ("session_log", "parquet")]
    m = next(f for f in rep.findings if f.code == "ID_MATCH_RATE")
    assert m.count == 1 and m.rows == (4,)


def test_near_zero_match_rate_is_an_error_even_without_strict(tmp_path):
    import pandas as pd

    from rce.checks import match_rate_finding
    from rce.config import Plan

    roster = pd.DataFrame({"student_id": [str(i) for i in range(100, 200)]})
    other_district = pd.Series([str(i) for i in range(5000, 5100)])
    finding = match_rate_finding("usage.csv", "sis_id", other_district, roster, Plan(), False)
    assert finding.severity == "error"
    assert "0.0% of 100 rows" in finding.message
    half = pd.Series([str(i) for i in range(150, 250)])
    assert match_rate_finding("u.csv", "sis_id", half, roster, Plan(), False).severity == "warning"
