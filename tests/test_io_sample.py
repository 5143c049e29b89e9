"""A freshly generated `rce sample` district loads; every planted quirk is repaired and counted
or reported as a finding (quirk counts from the generator's truth.json, data-formats.md §5.3)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from rce.config import load_plan
from rce.io import load_assessments, load_roster, usage_sources
from rce.prepare import build_analysis_frame
from rce.validate import validate_files

sample = pytest.importorskip("rce.sample")


@pytest.fixture(scope="module")
def district(tmp_path_factory):
    out = tmp_path_factory.mktemp("district") / "svusd"
    sample.generate_sample(out, students=250, seed=11)
    plan = load_plan(out / "rce.toml")
    truth = json.loads((out / "truth.json").read_text(encoding="utf-8"))
    return out, plan, truth["quirks"]


@pytest.fixture(scope="module")
def loaded(district):
    out, plan, q = district
    roster = load_roster(list(plan.inputs.roster), plan)
    ela = load_assessments(["iready/diagnostic_results_ela.csv"], plan)
    return roster, ela


def test_roster_quirks(district, loaded):
    _, _, q = district
    roster, _ = loaded
    rep = roster.files[0]
    assert rep.rows == q["roster_rows"]
    assert rep.counts["ssid_blank"] == q["roster_missing_ssid"]
    moved = roster.frame.groupby("student_id")["school"].nunique()
    assert int((moved > 1).sum()) == q["roster_mid_year_transfers"]
    # trailing spaces in names stripped; mixed-case e-mails lowered
    assert not roster.frame["last_name"].str.endswith(" ").any()
    assert (roster.frame["email"] == roster.frame["email"].str.lower()).all()


def test_excel_copy_identical_after_normalisation(district, loaded):
    out, plan, _ = district
    roster, ela = loaded
    excel = load_roster(["sis/students_2024-25_excel.csv"], plan)
    assert excel.files[0].encoding == "utf-8-sig"
    cols = ["student_id", "school", "grade", "gender", "race_ethnicity", "el_status", "swd",
            "econ_disadv", "birthdate", "enter_date", "leave_date"]
    pd.testing.assert_frame_equal(excel.frame[cols], roster.frame[cols])
    a = build_analysis_frame(roster, ela, plan)
    b = build_analysis_frame(excel, ela, plan)
    assert a.join["files"][0]["match_rate"] == b.join["files"][0]["match_rate"]
    pd.testing.assert_frame_equal(a.frame, b.frame)


def test_diagnostic_quirks_counted(district, loaded):
    _, _, q = district
    _, ela = loaded
    rep = ela.files[0]
    assert rep.duplicates_removed == q["diagnostic_results_ela"]["exact_duplicate_rows"]
    assert rep.reexport_rows_removed == q["diagnostic_results_ela"]["reexport_rows_mm_dd_yyyy"]
    assert rep.rush_excluded == sum(q["ela_rush_flag_rows"].values())
    assert set(rep.date_formats) == {"%m/%d/%Y", "%m-%d-%Y"}
    assert rep.counts["students_grade_changed"] == q["grade_changed_students"]
    assert (ela.frame["grade"].dropna() >= 0).all()  # TK students absent from i-Ready


def test_analysis_frame(district, loaded):
    _, plan, q = district
    roster, ela = loaded
    af = build_analysis_frame(roster, ela, plan)
    assert af.join["files"][0]["match_rate"] == 1.0  # IDs without leading zeros still join
    assert af.join["students_scored"] > 0.8 * roster.frame["student_id"].nunique() - \
        q["tk_students_absent_from_iready"] - 30
    f = af.frame
    assert f["baseline_date"].lt(f["outcome_date"]).all()
    assert set(f["outcome_window"]) == {"spring"}
    # Students who missed the fall test keep the vendor's (later) baseline, and are counted.
    outside = int((f["baseline_window"] != "fall").sum())
    assert af.join["students_baseline_outside_window"] == outside < 0.2 * len(f)
    assert f["school"].notna().all() and f["grade"].notna().all()


def test_norm_change_with_prior_year(district, loaded):
    _, plan, _ = district
    roster, _ = loaded
    both = load_assessments(["iready/diagnostic_results_ela.csv",
                             "iready/diagnostic_results_ela_2023-24.csv"], plan)
    assert "NORM_CHANGE" in [c for c, _ in build_analysis_frame(roster, both, plan).warnings]


def test_usage_sources_of_sample(district):
    _, plan, _ = district
    srcs = {s.layout: s for s in usage_sources(plan)}
    assert set(srcs) == {"iready_lesson", "lexia_activity", "monthly_summary"}
    assert srcs["lexia_activity"].timestamp_tz == "UTC"
    assert srcs["monthly_summary"].monthly_columns["June 2025 Activities"] == (2025, 6, "sessions")


def test_validate_reports_usage_quirks(district):
    out, plan, q = district
    files = sorted(str(p) for p in out.rglob("*.csv"))
    rep = validate_files(files, plan)
    assert rep.exit_code == 0

    def one(code, name):
        hits = [f for f in rep.findings if f.code == code and f.file.endswith(name)]
        assert len(hits) == 1, (code, name)
        return hits[0]

    assert one("DUPLICATE_ROWS", "lesson_ela.csv").count == q["lessons_ela"][
        "exact_duplicate_rows"]
    assert one("MINUTES_OUTLIER", "lesson_ela.csv").count == q["lessons_ela"][
        "time_outliers_over_120_min"]
    lesson_match = one("ID_MATCH_RATE", "lesson_ela.csv")
    # truth counts unmatched rows before the exact duplicates were planted; a duplicate may fall
    # on an unmatched row
    lo = q["lessons_ela"]["rows_for_ids_not_in_roster"]
    assert lo <= lesson_match.count <= lo + q["lessons_ela"]["exact_duplicate_rows"]
    assert one("ID_BLANK", "lexia_core5_activity.csv").count == q["lexia"]["rows_blank_student_id"]
    lexia_match = one("ID_MATCH_RATE", "lexia_core5_activity.csv")
    assert lexia_match.count == q["lexia"]["rows_blank_student_id"] + q["lexia"][
        "rows_for_ids_not_in_roster"]
    assert one("TIMESTAMPS_CONVERTED", "lexia_core5_activity.csv").count == q["lexia"][
        "rows_crossing_midnight_utc"]
    assert one("USAGE_ON_WEEKENDS", "lesson_ela.csv").count >= 1
    assert one("DATE_FORMATS_MIXED", "vendorx_usage_export.csv").column == "Last Login"
    assert one("ID_MATCH_RATE", "vendorx_usage_export.csv").count == q["vendorx"][
        "rows_for_ids_not_in_roster"]
    assert one("DUPLICATE_STUDENTS", "students_2024-25.csv").count == q[
        "roster_mid_year_transfers"]
    # the prior-year file is checked against its own academic year
    assert not [f for f in rep.findings if f.code == "DATE_OUTSIDE_YEAR"]
    assert Path(files[0]).exists()


EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "sierra-vista"


@pytest.mark.skipif(not (EXAMPLE / "rce.toml").is_file(), reason="example district not present")
def test_example_district_loads_and_validates():
    plan = load_plan(EXAMPLE / "rce.toml")
    roster = load_roster(list(plan.inputs.roster), plan)
    ela = load_assessments(list(plan.inputs.scores), plan)
    af = build_analysis_frame(roster, ela, plan)
    assert af.join["files"][0]["match_rate"] == 1.0 and af.join["students_scored"] > 1000
    assert len(usage_sources(plan)) == len(plan.inputs.usage)
    rep = validate_files(sorted(EXAMPLE.rglob("*.csv")), plan)
    assert rep.exit_code == 0 and not rep.errors
