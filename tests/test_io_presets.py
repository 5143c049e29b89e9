"""Layout detection: every preset on a small fixture; every header alias of data-formats.md
§1.3."""

from __future__ import annotations

from pathlib import Path

import pytest

from rce.config import plan_from_dict
from rce.errors import LayoutError
from rce.io import detect_layout, read_table
from rce.io.presets import closest_presets, header_key, layout_by_name

FIX = Path(__file__).parent / "fixtures" / "io"

EXPECTED = {
    "roster.csv": ("roster", "roster", "", ""),
    "roster_excel.csv": ("roster", "roster", "", ""),
    "roster_text_cp1252.csv": ("roster", "roster", "", ""),
    "diagnostic_results_ela.csv": ("iready_diagnostic_results", "assessment", "", "ela"),
    "diagnostic_results_ela_2023-24.csv": ("iready_diagnostic_results", "assessment", "", "ela"),
    "diagnostic_results_math_warehouse.csv": ("iready_diagnostic_results", "assessment", "",
                                              "math"),
    "diagnostic_and_instruction_ela_ytd_window.csv": ("iready_ytd_window", "assessment", "",
                                                      "ela"),
    "personalized_instruction_by_lesson_ela.csv": ("iready_lesson", "usage", "lesson", ""),
    "instructional_usage_ela.csv": ("iready_instructional_usage", "usage", "monthly", ""),
    "clever_daily_participation_students.csv": ("clever_daily_participation", "usage", "daily",
                                                ""),
    "dreambox_usage_weekly.csv": ("dreambox_weekly", "usage", "weekly", ""),
    "clever_resource_usage_students.csv": ("clever_resource_usage", "usage", "daily", ""),
    "lexia_core5_activity.csv": ("lexia_activity", "usage", "event", ""),
    "google_classroom_events.csv": ("google_classroom_events", "usage", "event", ""),
    "vendorX_usage_export.csv": ("monthly_summary", "usage", "monthly", ""),
    "session_log.tsv": ("session_log", "usage", "event", ""),
    "session_log_semicolon.csv": ("session_log", "usage", "event", ""),
    "weekly_summary.csv": ("weekly_summary", "usage", "weekly", ""),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_layouts(name):
    t = read_table(FIX / name)
    layout = detect_layout(t.columns, hint=name)
    assert (layout.name, layout.kind, layout.granularity, layout.subject) == EXPECTED[name]
    assert layout.columns["student_id"] in t.columns
    for header in layout.columns.values():
        assert header in t.columns


def test_header_key():
    assert header_key("  STUDENT_ID ") == header_key("Student  ID") == "student id"


BASE = ["Student ID", "Completion Date", "Overall Scale Score", "Lexile Measure"]


@pytest.mark.parametrize(("canon", "alias"), [
    ("baseline_flag", "Baseline Diagnostic (Y/N)"),
    ("baseline_flag", "Diagnostic used to establish Growth Measures (Y/N)"),
    ("baseline_flag", "Baseline Assessment (Y/N)"),
    ("baseline_flag", "BASELINE_DIAG"),
    ("most_recent_flag", "Most Recent Diagnostic YTD (Y/N)"),
    ("most_recent_flag", "Most Recent Diagnostic (Y/N)"),
    ("most_recent_flag", "Most Recent Assessment YTD (Y/N)"),
    ("most_recent_flag", "MOST_RECENT_DIAG_YTD"),
    ("duration", "Duration (min)"),
    ("duration", "Time on Task (minutes)"),
    ("duration", "DURATION_MINS"),
    ("gender", "Sex"),
    ("gender", "Gender"),
    ("econ_disadv", "Economically Disadvantaged"),
    ("econ_disadv", "Economic Disadvantage"),
    ("placement", "Overall Placement"),
    ("placement", "OVERALL_PLACE"),
    ("relative_placement", "Overall Relative Placement"),
    ("relative_placement", "OVERALL_REL_PLACE"),
    ("percentile", "Percentile"),
    ("percentile", "PERCENTILE"),
    ("pct_typical_growth", "Percent Progress to Annual Typical Growth (%)"),
    ("pct_typical_growth", "PER_PROG_ANN_TYPICAL_GROWTH"),
    ("window", "Norming Window"),
    ("window", "NORMING_WINDOW"),
    ("ssid", "Student State ID"),
    ("ssid", "STUDENT_STATE_ID"),
    ("swd", "Student with Disabilities"),
    ("swd", "STUDENT_WITH_DISABILITIES"),
    ("grade", "Student Grade"),
    ("academic_year", "Academic Year"),
    ("rush_flag", "Rush Flag"),
])
def test_diagnostic_aliases(canon, alias):
    layout = detect_layout([*BASE, alias])
    assert layout.name == "iready_diagnostic_results"
    assert layout.columns[canon] == alias


def test_grade_at_time_of_diagnostic_preferred():
    layout = detect_layout([*BASE, "Student Grade", "Student Grade at Time of Diagnostic"])
    assert layout.columns["grade"] == "Student Grade at Time of Diagnostic"


def test_warehouse_upper_snake_variant():
    layout = detect_layout(["STUDENT_ID", "COMPLETION_DATE", "OVERALL_SCALE_SCORE",
                            "QUANTILE_MEASURE", "NORMING_WINDOW"])
    assert layout.name == "iready_diagnostic_results" and layout.subject == "math"
    assert layout.columns["student_id"] == "STUDENT_ID"


def test_old_reading_comprehension_names_give_ela():
    layout = detect_layout(["Student ID", "Completion Date", "Overall Scale Score",
                            "Reading Comprehension: Literature Scale Score"])
    assert layout.subject == "ela"


def test_subject_from_file_name_when_header_is_silent():
    layout = detect_layout(["Student ID", "Completion Date", "Overall Scale Score"],
                           hint="diagnostic_results_math.csv")
    assert layout.subject == "math"


def test_ytd_blocks():
    t = read_table(FIX / "diagnostic_and_instruction_ela_ytd_window.csv")
    layout = detect_layout(t.columns)
    assert list(layout.blocks) == ["Most Recent", "1", "2", "3", "4", "5"]
    assert layout.blocks["1"]["scale_score"] == "Diagnostic: Overall Scale Score (1)"
    assert layout.blocks["Most Recent"]["test_date"] == "Diagnostic: Completion Date (Most Recent)"


def test_instructional_usage_months():
    t = read_table(FIX / "instructional_usage_ela.csv")
    layout = detect_layout(t.columns)
    assert layout.monthly_columns["September Lessons Completed"] == (0, 9, "lessons_completed")
    assert layout.monthly_columns["July Weekly Average Time on Task (min)"] == (
        0, 7, "weekly_avg_minutes")


def test_roster_calpads_columns():
    layout = detect_layout(read_table(FIX / "roster.csv").columns)
    c = layout.columns
    assert c["student_id"] == "Student Number" and c["ssid"] == "SSID"
    assert [c[f"race_{i}"] for i in range(1, 6)] == [f"Race {i}" for i in range(1, 6)]
    assert c["el_status"] == "ELAS" and c["econ_disadv"] == "SED" and c["swd"] == "SPED"
    assert c["enter_date"] == "Enter Date" and c["leave_date"] == "Leave Date"


def test_roster_text_vocabulary_columns():
    layout = detect_layout(read_table(FIX / "roster_text_cp1252.csv").columns)
    c = layout.columns
    assert c["student_id"] == "SIS ID" and c["race_1"] == "FederalRaceCategory"
    assert c["el_status"] == "ELLStatus" and c["econ_disadv"] == "LowIncome"


def test_custom_mapping_from_plan_for_nwea():
    plan = plan_from_dict({"columns": {"student_id": "StudentID", "scale_score": "TestRITScore",
                                       "test_date": "TestStartDate",
                                       "percentile": "TestPercentile"}})
    layout = detect_layout(read_table(FIX / "nwea_map.csv").columns, plan=plan)
    assert layout.name == "custom" and layout.kind == "assessment"
    assert layout.columns["scale_score"] == "TestRITScore"


def test_custom_mapping_ignored_when_headers_absent():
    plan = plan_from_dict({"columns": {"student_id": "StudentID", "scale_score": "TestRITScore",
                                       "test_date": "TestStartDate"}})
    layout = detect_layout(read_table(FIX / "roster.csv").columns, plan=plan)
    assert layout.name == "roster"


def test_detection_failure_lists_columns_and_closest():
    with pytest.raises(LayoutError) as e:
        detect_layout(["Student ID", "Completion Date", "Overal Scale Score"], where="x.csv")
    assert "'Overal Scale Score'" in e.value.message
    assert (e.value.hint or "").startswith("Closest presets: iready_diagnostic_results")
    assert e.value.where == "x.csv, row 1"


def test_closest_presets_order():
    near = closest_presets(["date", "sis_id", "active"])
    assert near[0][0] == "clever_daily_participation"
    assert near[0][1] == ["num_logins"]


def test_layout_by_name():
    t = read_table(FIX / "dreambox_usage_weekly.csv")
    assert layout_by_name("dreambox_weekly", t.columns).granularity == "weekly"
    with pytest.raises(LayoutError):
        layout_by_name("clever_daily_participation", t.columns, where="d.csv")
    with pytest.raises(LayoutError):
        layout_by_name("nope", t.columns)


def test_ytd_ga_warehouse_variant():
    # data-formats.md §1.7: UPPER_SNAKE names such as DIAGNOSTIC_OVERALL_SCALE_SCORE_MOST_RECENT.
    cols = ["STUDENT_ID", "ACADEMIC_YEAR", "STATE", "DATE", "INSTANCE_CODE"]
    for label in ("MOST_RECENT", "1", "2"):
        cols += [f"DIAGNOSTIC_COMPLETION_DATE_{label}", f"DIAGNOSTIC_OVERALL_SCALE_SCORE_{label}",
                 f"DIAGNOSTIC_PERCENTILE_{label}"]
    layout = detect_layout(cols)
    assert layout.name == "iready_ytd_window"
    assert list(layout.blocks) == ["Most Recent", "1", "2"]
    assert layout.blocks["2"]["percentile"] == "DIAGNOSTIC_PERCENTILE_2"
