"""Readers: every supported format, encoding sniffing, and one test per kind of malformed input.

Each malformed input must raise an ``RceError`` subclass (the CLI prints it without a traceback
and exits 2, ``rce.errors.ExitCode.INPUT_ERROR``) whose ``where`` names the file (and row /
column where there is one) and which carries a hint -- and never a student ID.
"""

from __future__ import annotations

import gzip
import shutil
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from rce.config import Plan, plan_from_dict
from rce.errors import DataError, ExitCode, InputFileError, LayoutError, RceError
from rce.io import load_assessments, load_roster, read_table, sniff

FIX = Path(__file__).parent / "fixtures" / "io"

DIAG_HEADER = (
    "Student ID,Student Grade,Academic Year,School,Start Date,Completion Date,"
    "Baseline Diagnostic (Y/N),Most Recent Diagnostic YTD (Y/N),Rush Flag,Overall Scale Score,"
    "Percentile,Lexile Measure\n"
)
SECRET_ID = "987654"


def diag_row(score: str = "480", pct: str = "30", date: str = "9/3/2024",
             sid: str = SECRET_ID) -> str:
    return f"{sid},3,2024-2025,Oak,{date},{date},Y,N,,{score},{pct},720L\n"


def assert_user_error(exc: RceError, path: Path, *, row: int | None = None,
                      column: str | None = None) -> None:
    """The contract for a malformed input: RceError, file (+row/column) in where, a hint."""
    assert isinstance(exc, RceError)
    assert exc.message
    assert exc.where and str(path) in exc.where
    if row is not None:
        assert f"row {row}" in exc.where or f"rows {row}" in exc.where
    if column is not None:
        assert column in exc.where
    assert exc.hint
    for text in (exc.message, exc.where or "", exc.hint or ""):
        assert SECRET_ID not in text
    # The CLI maps every RceError to this code.
    assert ExitCode.INPUT_ERROR == 2


# --- formats --------------------------------------------------------------------------------------


def test_csv_ids_stay_text():
    t = read_table(FIX / "roster.csv")
    assert t.format == "csv" and t.delimiter == "," and t.encoding == "utf-8"
    assert t.frame["Student Number"].iloc[0] == "004512"
    assert all(pd.api.types.is_string_dtype(t.frame[c]) for c in t.frame.columns)
    assert t.spreadsheet_row(0) == 2


def test_tsv_and_semicolon_delimiters():
    assert read_table(FIX / "session_log.tsv").delimiter == "\t"
    t = read_table(FIX / "session_log_semicolon.csv")
    assert t.delimiter == ";"
    assert t.frame["Minutes"].tolist() == ["22", "18,5"]


def test_bom_crlf_excel_resave():
    t = read_table(FIX / "roster_excel.csv")
    assert t.encoding == "utf-8-sig"
    assert t.columns[0] == "Student Number"  # BOM stripped from the first header
    assert not any("\r" in str(v) for v in t.frame["Leave Date"].dropna())
    assert t.frame["Student Number"].iloc[0] == "4512"


def test_cp1252_is_sniffed():
    t = read_table(FIX / "roster_text_cp1252.csv")
    assert t.encoding == "cp1252"
    assert t.frame["Last Name"].iloc[0] == "Muñoz"
    assert t.frame["First Name"].iloc[1] == "José"


def test_latin1_fallback(tmp_path):
    p = tmp_path / "l1.csv"
    # 0x81 is undefined in CP1252, so only Latin-1 decodes it.
    p.write_bytes(b"Student ID,Name\n1,A\x81b\n")
    assert read_table(p).encoding == "latin-1"


def test_quoted_commas_and_newlines():
    t = read_table(FIX / "personalized_instruction_by_lesson_ela.csv")
    assert len(t.frame) == 2
    assert t.frame["Lesson Name"].iloc[0] == "Letter Learning: Mm, Tt"
    assert "\n" in t.frame["Lesson Objective"].iloc[0]


def test_gzip(tmp_path):
    p = tmp_path / "roster.csv.gz"
    p.write_bytes(gzip.compress((FIX / "roster.csv").read_bytes()))
    t = read_table(p)
    assert t.format == "csv.gz"
    assert t.frame.equals(read_table(FIX / "roster.csv").frame)


def test_parquet_all_text(tmp_path):
    p = tmp_path / "usage.parquet"
    pd.DataFrame({"Student ID": ["004512", "4513"], "Minutes": [22.0, 18.5],
                  "Date": pd.to_datetime(["2024-09-03", "2024-09-04"])}).to_parquet(p)
    t = read_table(p)
    assert t.format == "parquet"
    assert t.frame["Student ID"].tolist() == ["004512", "4513"]
    assert t.frame["Minutes"].tolist() == ["22", "18.5"]
    assert t.frame["Date"].tolist() == ["2024-09-03", "2024-09-04"]


def test_xlsx_first_sheet(tmp_path):
    p = tmp_path / "roster.xlsx"
    frame = read_table(FIX / "roster.csv").frame.head(3)
    frame.to_excel(p, index=False, engine="openpyxl")
    t = read_table(p)
    assert t.format == "xlsx"
    assert t.frame["Student Number"].tolist() == ["004512", "004513", "004514"]
    assert t.frame.shape == frame.shape


def test_xlsx_numeric_ids_and_dates(tmp_path):
    p = tmp_path / "scores.xlsx"
    pd.DataFrame({"Student ID": [4512, 4513],
                  "Completion Date": pd.to_datetime(["2024-09-03", "2025-05-12"])}).to_excel(
        p, index=False)
    t = read_table(p)
    assert t.frame["Student ID"].tolist() == ["4512", "4513"]
    assert t.frame["Completion Date"].tolist() == ["2024-09-03", "2025-05-12"]


def test_trailing_delimiter_column_dropped(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("Student ID,Minutes,\n1,5,\n2,6,\n")
    assert read_table(p).columns == ["Student ID", "Minutes"]


def test_sniff_reads_only_the_head():
    s = sniff(FIX / "dreambox_usage_weekly.csv")
    assert s.header[:2] == ("start_date", "end_date")
    assert s.delimiter == "," and s.encoding == "utf-8" and len(s.sample) == 2


def test_sniff_detects_cp1252_late_in_file(tmp_path):
    p = tmp_path / "big.csv"
    body = "".join(f"{i},x\n" for i in range(200_000))
    p.write_bytes(("Student ID,Name\n" + body).encode() + b"9,Mu\xf1oz\n")
    assert sniff(p).encoding == "cp1252"


# --- malformed inputs: one test each --------------------------------------------------------------


def test_bad_empty_file(tmp_path):
    p = tmp_path / "empty.csv"
    p.write_bytes(b"")
    with pytest.raises(InputFileError) as e:
        read_table(p)
    assert_user_error(e.value, p)
    assert "empty" in e.value.message


def test_bad_blank_lines_only(tmp_path):
    p = tmp_path / "blank.csv"
    p.write_text("\n\n  \n")
    with pytest.raises(InputFileError) as e:
        read_table(p)
    assert_user_error(e.value, p)


def test_bad_header_only(tmp_path):
    p = tmp_path / "roster.csv"
    p.write_text("Student Number,Grade,Gender,School Name\n")
    with pytest.raises(InputFileError) as e:
        load_roster([p])
    assert_user_error(e.value, p, row=2)
    assert "no data rows" in e.value.message


def test_bad_wrong_delimiter(tmp_path):
    p = tmp_path / "spaces.csv"
    p.write_text("Student ID   Grade   Gender\n987654   3   F\n")
    with pytest.raises(LayoutError) as e:
        load_roster([p])
    assert_user_error(e.value, p, row=1)
    assert "delimiter" in (e.value.hint or "")


def test_bad_ragged_rows(tmp_path):
    p = tmp_path / "ragged.csv"
    p.write_text(DIAG_HEADER + diag_row() + diag_row().rstrip("\n") + ",extra,fields\n")
    with pytest.raises(InputFileError) as e:
        read_table(p)
    assert_user_error(e.value, p, row=3)
    assert "fields" in e.value.message


def test_bad_duplicate_header_names(tmp_path):
    p = tmp_path / "dup.csv"
    p.write_text("Student ID,Grade,grade\n1,3,3\n")
    with pytest.raises(InputFileError) as e:
        read_table(p)
    assert_user_error(e.value, p, row=1)
    assert "duplicate" in e.value.message


def test_bad_missing_required_column(tmp_path):
    p = tmp_path / "diag.csv"
    p.write_text(DIAG_HEADER.replace("Completion Date,", "") +
                 diag_row().replace("9/3/2024,9/3/2024", "9/3/2024"))
    with pytest.raises(LayoutError) as e:
        load_assessments([p])
    assert_user_error(e.value, p, row=1)
    assert "Completion Date" in (e.value.hint or "")


def test_bad_non_numeric_score(tmp_path):
    p = tmp_path / "diag.csv"
    p.write_text(DIAG_HEADER + diag_row() + diag_row(score="N/A"))
    with pytest.raises(DataError) as e:
        load_assessments([p])
    assert_user_error(e.value, p, row=3, column="Overall Scale Score")


def test_bad_scale_score_out_of_range(tmp_path):
    p = tmp_path / "diag.csv"
    p.write_text(DIAG_HEADER + diag_row() + diag_row(score="1480"))
    with pytest.raises(DataError) as e:
        load_assessments([p])
    assert_user_error(e.value, p, row=3, column="Overall Scale Score")
    assert "100-800" in e.value.message


def test_bad_percentile_out_of_range(tmp_path):
    p = tmp_path / "diag.csv"
    p.write_text(DIAG_HEADER + diag_row(pct="0") + diag_row())
    with pytest.raises(DataError) as e:
        load_assessments([p])
    assert_user_error(e.value, p, row=2, column="Percentile")


def test_bad_unparseable_date(tmp_path):
    p = tmp_path / "diag.csv"
    p.write_text(DIAG_HEADER + diag_row() + diag_row(date="31/31/2024"))
    with pytest.raises(DataError) as e:
        load_assessments([p])
    assert_user_error(e.value, p, row=3, column="Completion Date")


def test_bad_binary_file(tmp_path):
    p = tmp_path / "data.csv"
    p.write_bytes(b"\x00\x01\x02binary\x00" * 50)
    with pytest.raises(InputFileError) as e:
        read_table(p)
    assert_user_error(e.value, p)
    assert "binary" in e.value.message


def test_bad_zip_archive(tmp_path):
    p = tmp_path / "exports.zip"
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("roster.csv", "Student ID\n1\n")
    with pytest.raises(InputFileError) as e:
        read_table(p)
    assert_user_error(e.value, p)
    assert "zip" in e.value.message


def test_bad_directory_given_as_file(tmp_path):
    with pytest.raises(InputFileError) as e:
        read_table(tmp_path)
    assert_user_error(e.value, tmp_path)
    assert "folder" in e.value.message


def test_bad_missing_file(tmp_path):
    p = tmp_path / "nope.csv"
    with pytest.raises(InputFileError) as e:
        read_table(p)
    assert_user_error(e.value, p)


def test_bad_unreadable_file(tmp_path, monkeypatch):
    p = tmp_path / "locked.csv"
    p.write_text("Student ID\n1\n")

    def deny(self, *a, **k):
        raise PermissionError(13, "Permission denied")

    # Tests may run as root, where chmod 000 does not stop reading: simulate the OS refusal.
    monkeypatch.setattr(Path, "open", deny)
    with pytest.raises(InputFileError) as e:
        read_table(p)
    assert_user_error(e.value, p)
    assert "permission" in e.value.message


def test_bad_utf16_file(tmp_path):
    p = tmp_path / "u16.csv"
    p.write_bytes("Student ID,Grade\n1,3\n".encode("utf-16"))
    with pytest.raises(InputFileError) as e:
        read_table(p)
    assert_user_error(e.value, p)
    assert "UTF-16" in e.value.message


def test_bad_damaged_gzip(tmp_path):
    p = tmp_path / "u.csv.gz"
    p.write_bytes(gzip.compress(b"Student ID,Minutes\n" + b"1,2\n" * 1000)[:60])
    with pytest.raises(InputFileError) as e:
        read_table(p)
    assert_user_error(e.value, p)


def test_bad_damaged_parquet(tmp_path):
    p = tmp_path / "u.parquet"
    p.write_bytes(b"PAR1" + b"garbage" * 20)
    with pytest.raises(InputFileError) as e:
        read_table(p)
    assert_user_error(e.value, p)


def test_bad_damaged_xlsx(tmp_path):
    p = tmp_path / "u.xlsx"
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("[Content_Types].xml", "<not a workbook")
    with pytest.raises(InputFileError) as e:
        read_table(p)
    assert_user_error(e.value, p)


def test_bad_pdf_given(tmp_path):
    p = tmp_path / "report.csv"
    p.write_bytes(b"%PDF-1.7\n...")
    with pytest.raises(InputFileError) as e:
        read_table(p)
    assert_user_error(e.value, p)


def test_bad_blank_header_row(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text(",,,\n1,2,3,4\n")
    with pytest.raises(InputFileError) as e:
        read_table(p)
    assert_user_error(e.value, p, row=1)


def test_bad_unnamed_column_in_header(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("Student ID,,Grade\n1,x,3\n")
    with pytest.raises(InputFileError) as e:
        read_table(p)
    assert_user_error(e.value, p, row=1)


def test_bad_unclosed_quote(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text('Student ID,Name\n1,"Ann\n2,Bo\n')
    with pytest.raises(InputFileError) as e:
        read_table(p)
    assert_user_error(e.value, p)


def test_bad_glob_matches_nothing(tmp_path):
    plan = Plan(base_dir=tmp_path)
    with pytest.raises(InputFileError) as e:
        load_roster(["exports/*.csv"], plan)
    assert_user_error(e.value, tmp_path / "exports")


def test_bad_wrong_kind_of_file():
    p = FIX / "dreambox_usage_weekly.csv"
    with pytest.raises(LayoutError) as e:
        load_roster([p])
    assert_user_error(e.value, p)
    assert "usage" in e.value.message


def test_bad_unknown_layout_lists_columns_and_presets():
    p = FIX / "nwea_map.csv"
    with pytest.raises(LayoutError) as e:
        load_assessments([p])
    assert_user_error(e.value, p, row=1)
    assert "TestRITScore" in e.value.message
    assert "iready_diagnostic_results" in (e.value.hint or "")


def test_bad_plan_mapping_incomplete(tmp_path):
    p = tmp_path / "map.csv"
    shutil.copy(FIX / "nwea_map.csv", p)
    plan = plan_from_dict({"columns": {"student_id": "StudentID", "scale_score": "TestRITScore"}})
    with pytest.raises(LayoutError) as e:
        load_assessments([p], plan)
    assert "test_date" in e.value.message and e.value.hint


def test_bad_headerless_file_does_not_echo_the_first_record(tmp_path):
    p = tmp_path / "sds_roster.csv"
    p.write_text(f"{SECRET_ID}1,Ana,Munoz,ana.munoz@x.org,3\n{SECRET_ID}2,Ben,Lee,ben@x.org,4\n")
    with pytest.raises(InputFileError) as e:
        read_table(p)
    assert_user_error(e.value, p, row=1)
    assert "Ana" not in e.value.message and "Munoz" not in str(e.value.to_dict())
