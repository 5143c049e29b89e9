"""Canonical loaders: roster and assessment tables, per-file reports, usage sources."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from rce.canonical import ASSESSMENT_COLUMNS, STUDENT_COLUMNS
from rce.config import plan_from_dict
from rce.errors import LayoutError, PlanError
from rce.io import load_assessments, load_roster, usage_sources
from rce.io.load import academic_year_of, normalize_academic_year, to_number, window_of

FIX = Path(__file__).parent / "fixtures" / "io"


def plan(**sections):
    return plan_from_dict(sections, base_dir=FIX)


# --- roster ----------------------------------------------------------------------------------


def test_roster_canonical_columns_and_values():
    r = load_roster(["roster.csv"], plan())
    f = r.frame
    for col in STUDENT_COLUMNS:
        assert col in f.columns
    assert f["student_id"].iloc[0] == "4512"  # zero padding removed
    by = f.drop_duplicates("student_id").set_index("student_id")
    assert by.loc["4517", "grade"] == -1 and by.loc["4516", "grade"] == 0  # TK, KN
    assert by.loc["4516", "gender"] == "Nonbinary"
    assert by.loc["4514", "race_ethnicity"] == "Filipino"
    assert by.loc["4515", "race_ethnicity"] == "Two or More Races"
    assert by.loc["4512", "race_ethnicity"] == "Hispanic"
    assert bool(by.loc["4517", "econ_disadv"]) is True
    assert by.loc["4512", "email"] == "ana.munoz@svusd.example"  # mixed case lowered
    assert "Primary Language" in f.columns  # extra columns kept under their own names
    assert r.files[0].students == 10 and r.files[0].rows == 11
    assert r.files[0].counts["ids_leading_zeros"] == 11
    assert any("transfers" in n for n in r.notes)


def test_excel_resaved_roster_equals_original():
    a = load_roster(["roster.csv"], plan()).frame
    b = load_roster(["roster_excel.csv"], plan()).frame
    cols = ["student_id", "ssid", "school", "grade", "gender", "race_ethnicity", "el_status",
            "swd", "econ_disadv", "birthdate", "enter_date", "leave_date", "elas_start_date"]
    pd.testing.assert_frame_equal(a[cols], b[cols])


def test_same_roster_twice_collapses():
    r = load_roster(["roster.csv", "roster_excel.csv"], plan())
    assert len(r.frame) == 11
    assert any("merged" in n for n in r.notes)


def test_text_vocabulary_roster():
    f = load_roster(["roster_text_cp1252.csv"], plan()).frame.set_index("student_id")
    assert f.loc["4512", "race_ethnicity"] == "Hispanic"  # Hispanic flag first
    assert f.loc["4513", "race_ethnicity"] == "Asian"
    assert f.loc["4512", "el_status"] == "EL" and pd.isna(f.loc["4513", "el_status"])
    assert bool(f.loc["4513", "swd"]) is True and bool(f.loc["4512", "swd"]) is False
    assert f.loc["4513", "grade"] == 0


def test_no_roster_given():
    with pytest.raises(PlanError):
        load_roster([], plan())


# --- assessments ----------------------------------------------------------------------------------


def test_assessments_quirks_repaired_and_counted():
    a = load_assessments(["diagnostic_results_ela.csv"], plan())
    rep = a.files[0]
    assert rep.rows == 24
    assert rep.duplicates_removed == 1  # one exact duplicate row
    assert rep.reexport_rows_removed == 1  # MM-DD-YYYY re-export of a test already read
    assert rep.rush_flagged == 2 and rep.rush_excluded == 2
    # distinct date values per format
    assert rep.date_formats == {"%m/%d/%Y": 16, "%m-%d-%Y": 1}
    assert len(a.frame) == 24 - 1 - 1 - 2
    assert list(a.frame.columns[: len(ASSESSMENT_COLUMNS)]) == list(ASSESSMENT_COLUMNS)
    assert set(a.frame["window"]) == {"fall", "winter", "spring"}
    assert set(a.frame["subject"]) == {"ela"}
    assert set(a.frame["academic_year"]) == {"2024-2025"}
    assert ("RUSH_EXCLUDED", "2 rush-flagged tests were excluded "
            "(outcomes.exclude_rush_flagged = true).") in a.warnings


def test_rush_kept_when_plan_says_so():
    a = load_assessments(["diagnostic_results_ela.csv"],
                         plan(outcomes={"exclude_rush_flagged": False}))
    assert a.files[0].rush_excluded == 0 and a.frame["rush_flag"].sum() == 2


def test_norm_change_warning_across_2024_25():
    a = load_assessments(["diagnostic_results_ela.csv", "diagnostic_results_ela_2023-24.csv"],
                         plan())
    assert "NORM_CHANGE" in [c for c, _ in a.warnings]
    old = a.frame.loc[a.frame["academic_year"] == "2023-2024"]
    assert len(old) == 3
    assert old["test_date"].min() == pd.Timestamp("2023-09-05")
    assert pd.Timestamp("2023-09-30") in set(old["test_date"])  # 30-Sep-23


def test_warehouse_variant_loads():
    a = load_assessments(["diagnostic_results_math_warehouse.csv"], plan())
    f = a.frame
    assert set(f["subject"]) == {"math"}
    assert f["window"].tolist() == ["fall", "spring"]  # from NORMING_WINDOW labels
    assert f["baseline_flag"].tolist() == [True, False]
    assert f["pct_typical_growth"].iloc[1] == 72


def test_ytd_window_reshaped_long():
    a = load_assessments(["diagnostic_and_instruction_ela_ytd_window.csv"], plan())
    f = a.frame.sort_values(["student_id", "test_date"])
    s1 = f.loc[f["student_id"] == "4512"]
    assert s1["scale_score"].tolist() == [480, 495, 512]  # (Most Recent) not double-counted
    assert s1["most_recent_flag"].tolist() == [False, False, True]
    assert s1["baseline_flag"].tolist() == [True, False, False]
    s2 = f.loc[f["student_id"] == "4513"]
    assert len(s2) == 1 and bool(s2["most_recent_flag"].iloc[0])


def test_custom_mapping_loads_nwea(tmp_path):
    shutil.copy(FIX / "nwea_map.csv", tmp_path / "map.csv")
    p = plan_from_dict({"study": {"subject": "reading"},
                        "columns": {"student_id": "StudentID", "scale_score": "TestRITScore",
                                    "test_date": "TestStartDate", "percentile": "TestPercentile",
                                    "subject": "Discipline"}}, base_dir=tmp_path)
    a = load_assessments(["map.csv"], p)
    assert a.frame["scale_score"].tolist() == [190, 201]
    assert a.frame["window"].tolist() == ["fall", "spring"]
    assert a.frame["academic_year"].tolist() == ["2024-2025", "2024-2025"]


def test_roster_given_as_scores():
    with pytest.raises(LayoutError):
        load_assessments(["roster.csv"], plan())


def test_helpers():
    d = pd.Series(pd.to_datetime(["2024-08-14", "2024-11-15", "2024-11-16", "2025-02-28",
                                  "2025-03-01", "2025-06-30"]))
    assert window_of(d).tolist() == ["fall", "fall", "winter", "winter", "spring", "spring"]
    assert academic_year_of(d).tolist() == ["2024-2025"] * 6
    assert normalize_academic_year(pd.Series(["2024-2025", "2024-25", "Academic Year 2021-2022",
                                              "2023"])).tolist() == [
        "2024-2025", "2024-2025", "2021-2022", "2022-2023"]
    assert to_number(pd.Series(["1,234", "18%"])).tolist() == [1234, 18]
    assert to_number(pd.Series(["18,5", "7"]), ";").tolist() == [18.5, 7]


# --- usage sources --------------------------------------------------------------------------------


def usage_plan(*names, **extra):
    return plan(study={"academic_year": "2024-2025"},
                inputs={"usage": [{"path": n, **extra} for n in names]})


def test_usage_sources_each_layout():
    names = ["clever_daily_participation_students.csv", "dreambox_usage_weekly.csv",
             "lexia_core5_activity.csv", "instructional_usage_ela.csv",
             "vendorX_usage_export.csv", "session_log.tsv", "session_log_semicolon.csv",
             "personalized_instruction_by_lesson_ela.csv", "google_classroom_events.csv",
             "weekly_summary.csv"]
    srcs = {Path(s.paths[0]).name: s for s in usage_sources(usage_plan(*names))}
    assert srcs["clever_daily_participation_students.csv"].granularity == "daily"
    db = srcs["dreambox_usage_weekly.csv"]
    assert db.product == "DreamBox" and db.dedupe_keys == ("student_id", "date")
    assert db.date_formats[0] == "%m/%d/%Y"
    lx = srcs["lexia_core5_activity.csv"]
    assert lx.timestamp_tz == "UTC" and lx.columns["timestamp"] == "activity_start_time"
    for s in srcs.values():  # rce.dosage partitions only on these
        assert set(s.dedupe_keys) <= {"student_id", "date", "timestamp", "month"}
    iu = srcs["instructional_usage_ela.csv"]
    assert iu.monthly_columns["September Lessons Completed"] == (2024, 9, "lessons_completed")
    vx = srcs["vendorX_usage_export.csv"]
    assert vx.monthly_columns["October 2024 Activities"] == (2024, 10, "sessions")
    assert srcs["session_log.tsv"].delimiter == "\t"
    semi = srcs["session_log_semicolon.csv"]
    assert semi.delimiter == ";" and "%d-%b-%y" in semi.date_formats
    lesson = srcs["personalized_instruction_by_lesson_ela.csv"]
    assert lesson.granularity == "lesson" and lesson.product == "i-Ready"
    assert srcs["google_classroom_events.csv"].columns["student_id"] == "actor_email"


def test_usage_source_product_and_layout_from_plan():
    src = usage_sources(usage_plan("dreambox_usage_weekly.csv", product="DreamBox Math",
                                   layout="dreambox_weekly", subject="math"))[0]
    assert src.product == "DreamBox Math" and src.subject == "math"


def test_usage_glob_stitches_same_layout(tmp_path):
    for i in (1, 2):
        shutil.copy(FIX / "dreambox_usage_weekly.csv", tmp_path / f"db_{i}.csv")
    p = plan_from_dict({"inputs": {"usage": [{"path": "db_*.csv"}]}}, base_dir=tmp_path)
    src = usage_sources(p)[0]
    assert len(src.paths) == 2


def test_usage_glob_with_different_headers(tmp_path):
    shutil.copy(FIX / "dreambox_usage_weekly.csv", tmp_path / "u_1.csv")
    shutil.copy(FIX / "session_log_semicolon.csv", tmp_path / "u_2.csv")
    p = plan_from_dict({"inputs": {"usage": [{"path": "u_*.csv"}]}}, base_dir=tmp_path)
    with pytest.raises(LayoutError):
        usage_sources(p)


def test_usage_roster_given_as_usage():
    with pytest.raises(LayoutError):
        usage_sources(usage_plan("roster.csv"))


def test_monthly_without_year_needs_academic_year(tmp_path):
    shutil.copy(FIX / "instructional_usage_ela.csv", tmp_path / "iu.csv")
    text = (tmp_path / "iu.csv").read_text().replace("2024-2025", "")
    (tmp_path / "iu.csv").write_text(text)
    p = plan_from_dict({"inputs": {"usage": ["iu.csv"]}}, base_dir=tmp_path)
    with pytest.raises(PlanError):
        usage_sources(p)
