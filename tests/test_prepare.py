"""Assessment selection and the join into the analysis frame."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from rce.canonical import ANALYSIS_COLUMNS
from rce.config import plan_from_dict
from rce.errors import DataError
from rce.io import load_assessments, load_roster
from rce.prepare import PREPARE_COLUMNS, build_analysis_frame

FIX = Path(__file__).parent / "fixtures" / "io"


def plan(**sections):
    sections.setdefault("study", {"subject": "ela"})
    return plan_from_dict(sections, base_dir=FIX)


def build(roster="roster.csv", scores=("diagnostic_results_ela.csv",), **sections):
    p = plan(**sections)
    return build_analysis_frame(load_roster([roster], p), load_assessments(list(scores), p), p)


def test_frame_columns_and_rows():
    af = build()
    f = af.frame
    assert list(f.columns[: len(PREPARE_COLUMNS)]) == list(PREPARE_COLUMNS)
    assert PREPARE_COLUMNS == ANALYSIS_COLUMNS[:15]
    assert f["student_id"].is_unique
    # 10 score IDs: 99999 not in roster, 4519 has one test, 4520's spring test is rush-flagged.
    assert af.join["students_scored"] == len(f) == 7
    assert af.join["students_one_test"] == 2
    assert af.join["students_no_outcome_in_window"] == 2


def test_baseline_and_outcome_selection():
    f = build().frame.set_index("student_id")
    assert f.loc["4512", "baseline_date"] == pd.Timestamp("2024-09-03")
    assert f.loc["4512", "outcome_date"] == pd.Timestamp("2025-05-12")
    assert (f.loc["4512", "baseline_scale_score"], f.loc["4512", "outcome_scale_score"]) == (
        480, 512)
    assert f.loc["4512", "baseline_percentile"] == 30
    # (512 - 480) / typical growth 30 * 100
    assert f.loc["4512", "pct_typical_growth"] == pytest.approx(106.6667, abs=1e-3)


def test_winter_outcome_for_interim_evidence():
    f = build(outcomes={"outcome_window": "winter"}).frame.set_index("student_id")
    assert f.loc["4512", "outcome_scale_score"] == 495
    # 4515's winter test is rush-flagged and excluded: no winter outcome.
    assert "4515" not in f.index


def test_demographics_as_of_baseline():
    f = build().frame.set_index("student_id")
    # Mid-year transfer: Elm until January, Oak after; baseline in September -> Elm.
    assert f.loc["4518", "school"] == "Elm Elementary"
    # RFEP from 10 Feb 2025: an English learner at the September baseline.
    assert f.loc["4514", "el_status"] == "EL"
    assert f.loc["4516", "grade"] == 0 and f.loc["4516", "gender"] == "Nonbinary"
    assert f.loc["4514", "race_ethnicity"] == "Filipino"
    assert bool(f.loc["4514", "swd"]) is True


def test_join_report_and_unmatched_reasons():
    af = build()
    files = af.join["files"]
    assert files[0]["rows"] == 20 and files[0]["matched"] == 18
    assert files[0]["match_rate"] == pytest.approx(0.9)
    assert files[0]["unmatched"] == {"blank": 0, "not_in_roster": 2, "email_only": 0,
                                     "ambiguous": 0}
    d = af.to_dict()
    assert d["join"]["files"][0]["match_rate"] == pytest.approx(0.9)
    assert "RUSH_EXCLUDED" in [w["code"] for w in d["warnings"]]
    assert "99999" not in af.summary()


def test_excel_roster_joins_at_same_rate():
    a = build(roster="roster.csv").join["files"][0]["match_rate"]
    b = build(roster="roster_excel.csv").join["files"][0]["match_rate"]
    assert a == b == pytest.approx(0.9)
    pd.testing.assert_frame_equal(build(roster="roster.csv").frame,
                                  build(roster="roster_excel.csv").frame)


def test_low_match_rate_warns_or_fails():
    af = build(join={"min_match_rate": 0.95})
    assert "LOW_MATCH_RATE" in [c for c, _ in af.warnings] and not af.gate_failed
    af = build(join={"min_match_rate": 0.95, "enforce_min_match_rate": True})
    assert af.gate_failed
    assert not build().gate_failed  # 0.90 meets the default minimum of 0.90


def test_norm_change_warning():
    af = build(scores=("diagnostic_results_ela.csv", "diagnostic_results_ela_2023-24.csv"))
    assert "NORM_CHANGE" in [c for c, _ in af.warnings]
    assert af.join["academic_year"] == "2024-2025"
    assert "NORM_CHANGE" not in [c for c, _ in build().warnings]


def test_crosswalk_matches_by_email(tmp_path):
    text = (FIX / "diagnostic_results_ela.csv").read_text(encoding="utf-8")
    lines = text.splitlines()
    header = lines[0].split(",")
    sid, user = header.index("Student ID"), header.index("User Name")
    out = [lines[0]]
    for line in lines[1:]:
        cells = line.split(",")
        if cells[sid] == "4513":
            cells[sid] = "X-0001"  # a vendor ID the roster does not know
            cells[user] = "Ben.Lee@svusd.example"
        out.append(",".join(cells))
    (tmp_path / "diag.csv").write_text("\n".join(out) + "\n", encoding="utf-8")
    (tmp_path / "roster.csv").write_bytes((FIX / "roster.csv").read_bytes())
    base = {"study": {"subject": "ela"}}
    for crosswalk, expected in ((False, 0), (True, 3)):
        p = plan_from_dict({**base, "inputs": {"crosswalk": crosswalk}}, base_dir=tmp_path)
        af = build_analysis_frame(load_roster(["roster.csv"], p),
                                  load_assessments(["diag.csv"], p), p)
        assert af.join["crosswalk_matched"] == expected
        assert ("4513" in set(af.frame["student_id"])) is crosswalk


def test_wrong_subject_is_a_data_error():
    with pytest.raises(DataError):
        build(study={"subject": "math"})


def test_no_outcome_window_is_a_data_error():
    p = plan(outcomes={"baseline_window": "spring", "outcome_window": "fall"})
    with pytest.raises(DataError):
        build_analysis_frame(load_roster(["roster.csv"], p),
                             load_assessments(["diagnostic_results_ela.csv"], p), p)
