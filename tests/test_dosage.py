"""The dosage definition pinned on tiny hand-made logs (rce.dosage)."""

from __future__ import annotations

import dataclasses
import json
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rce.canonical import UsageSource
from rce.config import DosageConfig, EngineConfig, Plan, StudyConfig
from rce.dosage import (
    PER_STUDENT_COLUMNS,
    attach_dosage,
    compute_dosage,
    distinct_usage_ids,
    habitual_months_at,
    kmeans_1d,
    silhouette_1d,
    usage_by_group,
    usage_clusters,
    utilization,
)
from rce.errors import DataError, InputFileError, LayoutError, PlanError, RceError


def write(tmp: Path, name: str, rows: list[dict] | str) -> str:
    p = tmp / name
    if isinstance(rows, str):
        p.write_text(rows, encoding="utf-8")
    else:
        pd.DataFrame(rows).to_csv(p, index=False)
    return str(p)


def lesson_source(*paths: str, **kw) -> UsageSource:
    cols = {"student_id": "Student ID", "date": "Completion Date", "minutes": "Minutes"}
    cols.update(kw.pop("extra_cols", {}))
    return UsageSource(paths=paths, product="i-Ready", granularity="lesson", columns=cols, **kw)


def utc_event_source(path: str) -> UsageSource:
    """An event log of sid / start (UTC text timestamps) / mins."""
    return UsageSource(
        paths=(path,),
        product="Lexia",
        granularity="event",
        columns={"student_id": "sid", "timestamp": "start", "minutes": "mins"},
        timestamp_tz="UTC",
    )


def plan(**dosage) -> Plan:
    dosage.setdefault("window", "all")
    return Plan(study=StudyConfig(timezone="America/Los_Angeles"), dosage=DosageConfig(**dosage))


def lessons(sid: str, days: list[str], minutes: int = 10) -> list[dict]:
    return [
        {"Student ID": sid, "Completion Date": d, "Minutes": minutes, "Lesson": f"L{i}"}
        for i, d in enumerate(days)
    ]


def row(res, sid: str, product: str | None = None) -> pd.Series:
    p = res.per_student
    sel = p["student_id"] == sid
    if product:
        sel = sel & (p["product"] == product)
    assert sel.sum() == 1
    return p.loc[sel].iloc[0]


# --- habitual months: the boundary of 3 sessions --------------------------------------------------


def test_three_sessions_make_a_habitual_month_two_do_not(tmp_path):
    rows = lessons("1", ["09/03/2024", "09/10/2024", "09/17/2024"])  # 3 days in September
    rows += lessons("2", ["09/03/2024", "09/10/2024"])  # 2 days
    rows += lessons("3", ["10/01/2024", "10/01/2024", "10/01/2024"])  # 3 lessons, 1 day
    res = compute_dosage([lesson_source(write(tmp_path, "u.csv", rows))], plan=plan())
    assert row(res, "1")["habitual_months"] == 1
    assert row(res, "1")["usage_level"] == "habitual"
    assert row(res, "2")["habitual_months"] == 0
    assert row(res, "2")["usage_level"] == "light"
    # a lesson log counts distinct student-days: three lessons on one day are one session
    assert row(res, "3")["sessions"] == 1
    assert row(res, "3")["minutes"] == 30
    assert row(res, "3")["habitual_months"] == 0
    # the threshold comes from the plan
    res2 = compute_dosage(
        [lesson_source(write(tmp_path, "u.csv", rows))], plan=plan(min_sessions_per_month=2)
    )
    assert row(res2, "2")["habitual_months"] == 1
    assert res2.definition["min_sessions_per_month"] == 2


def test_row_unit_counts_every_row(tmp_path):
    rows = lessons("1", ["10/01/2024"] * 3)
    res = compute_dosage([lesson_source(write(tmp_path, "u.csv", rows))], plan=plan(unit="row"))
    assert row(res, "1")["sessions"] == 3
    assert row(res, "1")["habitual_months"] == 1
    assert row(res, "1")["active_days"] == 1


def test_month_edges_split_calendar_months(tmp_path):
    rows = lessons(
        "1", ["01/30/2025", "01/31/2025", "02/01/2025", "02/02/2025", "02/28/2025", "03/01/2025"]
    )
    res = compute_dosage([lesson_source(write(tmp_path, "u.csv", rows))], plan=plan())
    m = res.monthly.set_index(res.monthly["month"].dt.month)["sessions"].to_dict()
    assert m == {1: 2, 2: 3, 3: 1}
    r = row(res, "1")
    assert (r["active_months"], r["habitual_months"], r["active_days"]) == (3, 1, 6)
    assert r["first_use"].date() == date(2025, 1, 30)
    assert r["last_use"].date() == date(2025, 3, 1)


def test_utc_timestamps_shift_across_midnight_and_month(tmp_path):
    rows = [
        # 2024-10-01 03:00 UTC is 2024-09-30 20:00 in Los Angeles: a September session
        {"sid": "7", "start": "2024-10-01 03:00:00", "mins": 20},
        {"sid": "7", "start": "2024-10-01T02:30:00Z", "mins": 20},  # same local day, with a Z
        {"sid": "7", "start": "2024-10-01 08:00:00", "mins": 20},  # 01:00 local, October 1
        {"sid": "7", "start": "2024-09-29 12:00:00+00:00", "mins": 20},
    ]
    src = utc_event_source(write(tmp_path, "e.csv", rows))
    res = compute_dosage([src], plan=plan())
    months = dict(zip(res.monthly["month"].dt.month, res.monthly["sessions"], strict=True))
    assert months == {9: 2, 10: 1}  # Sept 29 and Sept 30 (two events) ; Oct 1
    minutes = dict(zip(res.monthly["month"].dt.month, res.monthly["minutes"], strict=True))
    assert minutes == {9: 60, 10: 20}
    assert row(res, "7")["first_use"].date() == date(2024, 9, 29)
    # a naive local log (timestamp_tz "") is taken as already local
    local = UsageSource(**{**src.__dict__, "timestamp_tz": ""})
    res2 = compute_dosage([local], plan=plan())
    # (offsets written in the value still count: the Z event stays on September 30)
    assert dict(zip(res2.monthly["month"].dt.month, res2.monthly["minutes"], strict=True)) == {
        9: 40,
        10: 40,
    }


def test_utc_source_applies_written_offsets_in_every_spelling(tmp_path):
    # A UTC export whose texts sometimes carry their own offset: each must be applied (the fast
    # path reads plain texts with a cast that ignores offsets). Los Angeles is UTC-7 in October.
    cases = {
        "2024-10-01 05:30:00+02:00": date(2024, 9, 30),  # 03:30 UTC -> Sept 30, 20:30 local
        "2024-10-01T05:30:00+0200": date(2024, 9, 30),
        "2024-10-01 05:30:00+02": date(2024, 9, 30),
        "2024-10-01T12:30:00.250+05:30": date(2024, 10, 1),  # 07:00:00.25 UTC -> 00:00 local
        "2024-10-01 01:00:00-05:00": date(2024, 9, 30),  # 06:00 UTC -> 23:00 local
        "2024-09-30 23:00:00-05:00 ": date(2024, 9, 30),  # 04:00 UTC Oct 1; trailing space
        " 2024-10-01T10:00:00Z": date(2024, 10, 1),  # 03:00 local
        "2024-10-02": date(2024, 10, 1),  # a date alone is UTC midnight: 17:00 the day before
        "10/03/2024 16:00": date(2024, 10, 3),  # the export's US format, naive: UTC
    }
    rows = [{"sid": str(i), "start": t, "mins": 5} for i, t in enumerate(cases)]
    src = utc_event_source(write(tmp_path, "e.csv", rows))
    res = compute_dosage([src], plan=plan())
    got = res.per_student.set_index("student_id")["first_use"].dt.date.to_dict()
    assert got == {str(i): d for i, d in enumerate(cases.values())}
    assert res.rows_bad_date == 0


# --- the evaluation window ------------------------------------------------------------------------


def test_window_counts_baseline_and_outcome_days_and_nothing_outside(tmp_path):
    rows = lessons(
        "1", ["09/09/2024", "09/10/2024", "09/11/2024", "05/15/2025", "05/16/2025", "06/01/2025"]
    )
    rows += lessons("2", ["10/01/2024", "10/02/2024"])  # no test dates: study-wide window
    src = lesson_source(write(tmp_path, "u.csv", rows))
    windows = pd.DataFrame(
        {
            "student_id": ["1", "3"],
            "baseline_date": pd.to_datetime(["2024-09-10", "2024-09-01"]),
            "outcome_date": pd.to_datetime(["2025-05-15", "2025-05-20"]),
        }
    )
    res = compute_dosage([src], plan=plan(window="baseline-to-outcome"), windows=windows)
    r = row(res, "1")
    # 09/10 and 09/11 (baseline day counts), 05/15 (outcome day counts); 09/09, 05/16, 06/01 do not
    assert r["sessions"] == 3
    assert r["first_use"].date() == date(2024, 9, 10)
    assert r["last_use"].date() == date(2025, 5, 15)
    assert res.rows_outside_window == 3
    # partial September: only 2 sessions inside the window -> not habitual (no pro-rating)
    assert r["habitual_months"] == 0
    # the window length sets average weekly minutes: 30 minutes over 248 days
    assert r["avg_weekly_minutes"] == pytest.approx(30 / (248 / 7))
    assert row(res, "2")["sessions"] == 2
    assert any("1 students with test dates have no usage" in n for n in res.notes)  # student 3
    assert any("1 students in the usage export have no test dates" in n for n in res.notes)


def test_fixed_dates_window_and_usage_after_outcome_activated_not_active(tmp_path):
    rows = lessons("1", ["06/10/2025", "06/11/2025"])  # after the window: present, not active
    rows += lessons("2", ["09/16/2024"])
    res = compute_dosage(
        [lesson_source(write(tmp_path, "u.csv", rows))],
        plan=plan(window="dates", window_start=date(2024, 9, 1), window_end=date(2025, 5, 31)),
        seats={"i-Ready": 10},
    )
    r = row(res, "1")
    assert (r["sessions"], r["usage_level"], r["usage_cluster"]) == (0, "none", "none")
    assert r["minutes"] == 0
    u = res.utilization.iloc[0]
    assert (u["seats"], u["activated"], u["active"], u["habitual"]) == (10, 2, 1, 0)
    assert u["active_rate"] == pytest.approx(0.1)


# --- duplicates -----------------------------------------------------------------------------------


def test_overlapping_export_windows_are_stitched_and_deduplicated(tmp_path):
    fall = lessons("1", ["09/03/2024", "09/04/2024", "09/05/2024"], minutes=12)
    spring = fall[1:] + lessons("1", ["01/14/2025"], minutes=12)  # two rows exported twice
    spring[-1]["Lesson"] = "L9"
    a = write(tmp_path, "export_fall.csv", fall)
    b = write(tmp_path, "export_spring.csv", spring)
    res = compute_dosage([lesson_source(str(tmp_path / "export_*.csv"))], plan=plan())
    r = row(res, "1")
    assert (r["sessions"], r["minutes"]) == (4, 48)
    assert res.rows_read == 6
    assert res.rows_deduplicated == 2
    # the same files listed explicitly give the same answer
    res2 = compute_dosage([lesson_source(a, b)], plan=plan())
    assert row(res2, "1")["minutes"] == 48
    # two different lessons with the same minutes on one day are not duplicates
    same_day = lessons("2", ["09/03/2024", "09/03/2024"], minutes=12)
    res3 = compute_dosage([lesson_source(write(tmp_path, "s.csv", same_day))], plan=plan())
    assert row(res3, "2")["minutes"] == 24


def test_duplicates_inside_busy_student_days_are_removed_exactly(tmp_path):
    # one day with three different lessons and one of them exported twice (4 rows, 3 distinct),
    # one day with the same row three times, one day with two different rows
    rows = lessons("1", ["10/01/2024"] * 3, minutes=7)
    rows.append(dict(rows[1]))
    same = lessons("1", ["10/02/2024"], minutes=9) * 3
    pair = lessons("1", ["10/03/2024", "10/03/2024"], minutes=4)
    res = compute_dosage(
        [lesson_source(write(tmp_path, "u.csv", rows + same + pair))], plan=plan(unit="row")
    )
    r = row(res, "1")
    assert (r["sessions"], r["minutes"], r["active_days"]) == (3 + 1 + 2, 21 + 9 + 8, 3)
    assert res.rows_read == 9 and res.rows_deduplicated == 3


def test_dedupe_keys_keep_one_row_per_key_and_day(tmp_path):
    rows = [
        {
            "student_id": "5",
            "start_date": "9/2/2024",
            "end_date": "9/8/2024",
            "mins": 40,
            "lessons_completed": 4,
        },
        {
            "student_id": "5",
            "start_date": "9/2/2024",
            "end_date": "9/8/2024",
            "mins": 55,
            "lessons_completed": 5,
        },
        {
            "student_id": "5",
            "start_date": "9/9/2024",
            "end_date": "9/15/2024",
            "mins": 10,
            "lessons_completed": 1,
        },
    ]
    src = UsageSource(
        paths=(write(tmp_path, "db.csv", rows),),
        product="DreamBox",
        granularity="weekly",
        columns={
            "student_id": "student_id",
            "date": "start_date",
            "end_date": "end_date",
            "minutes": "mins",
            "lessons_completed": "lessons_completed",
        },
        dedupe_keys=("student_id", "end_date"),
    )
    res = compute_dosage([src], plan=plan())
    r = row(res, "5")
    # the re-exported week keeps its fuller row (55 minutes, 5 lessons)
    assert (r["minutes"], r["sessions"]) == (65, 6)
    assert res.rows_deduplicated == 1
    assert pd.isna(r["active_days"])  # weekly rows cannot show days
    assert res.definition["unit_code"]["DreamBox"] == "provided"


# --- IDs ------------------------------------------------------------------------------------------


def test_id_spellings_merge_and_blank_ids_are_counted(tmp_path):
    rows = lessons("004512", ["09/03/2024"]) + lessons("4512.0", ["09/04/2024"])
    rows += lessons("4.512E+03", ["09/05/2024"]) + lessons(" 4512 ", ["09/06/2024"])
    rows += lessons("", ["09/06/2024"])
    src = lesson_source(write(tmp_path, "u.csv", rows))
    res = compute_dosage([src], plan=plan())
    assert res.per_student["student_id"].tolist() == ["4512"]
    assert row(res, "4512")["sessions"] == 4
    assert res.rows_unmatched == {"blank_id": 1}
    assert distinct_usage_ids([src], plan()).tolist() == ["4512"]


def test_id_map_joins_after_student_day_and_counts_reasons(tmp_path):
    rows = lessons("11", ["09/03/2024"]) + lessons("a@x.org", ["09/03/2024", "09/04/2024"])
    rows += lessons("99", ["09/05/2024"])
    src = lesson_source(write(tmp_path, "u.csv", rows))
    id_map = pd.DataFrame(
        {
            "raw_id": ["11", "a@x.org", "99"],
            "student_id": ["S11", "S11", None],
            "reason": [None, None, "not_in_roster"],
        }
    )
    res = compute_dosage([src], plan=plan(), id_map=id_map)
    r = row(res, "S11")
    # two raw IDs of one student meet at the student-day level: 09/03 counts once
    assert (r["sessions"], r["minutes"]) == (2, 30)
    assert res.rows_unmatched == {"not_in_roster": 1}
    assert "S11" in res.per_student["student_id"].tolist()


# --- summaries and provided counts ----------------------------------------------------------------


def test_clever_daily_inactive_rows_are_present_not_active(tmp_path):
    rows = [
        {"date": "2024-09-03", "sis_id": "1", "active": "True", "num_logins": 2},
        {"date": "2024-09-04", "sis_id": "1", "active": "True", "num_logins": 1},
        {"date": "2024-09-05", "sis_id": "1", "active": "False", "num_logins": 0},
        {"date": "2024-09-03", "sis_id": "2", "active": "False", "num_logins": 0},
    ]
    src = UsageSource(
        paths=(write(tmp_path, "clever.csv", rows),),
        product="Clever",
        granularity="daily",
        columns={
            "student_id": "sis_id",
            "date": "date",
            "sessions": "num_logins",
            "active": "active",
        },
    )
    res = compute_dosage([src], plan=plan())
    assert (row(res, "1")["sessions"], row(res, "1")["active_days"]) == (3, 2)
    assert row(res, "1")["habitual_months"] == 1
    assert (row(res, "2")["sessions"], row(res, "2")["usage_level"]) == (0, "none")


def test_monthly_wide_summary_uses_lessons_or_sessions(tmp_path):
    rows = [
        {"Student ID": "1", "Sep Lessons": 4, "Oct Lessons": 1, "Sep Avg": 21, "Oct Avg": 7},
        {"Student ID": "2", "Sep Lessons": 0, "Oct Lessons": 0, "Sep Avg": 0, "Oct Avg": 0},
    ]
    src = UsageSource(
        paths=(write(tmp_path, "iu.csv", rows),),
        product="i-Ready",
        granularity="monthly",
        columns={"student_id": "Student ID"},
        monthly_columns={
            "Sep Lessons": (2024, 9, "lessons_completed"),
            "Oct Lessons": (2024, 10, "lessons_completed"),
            "Sep Avg": (2024, 9, "weekly_avg_minutes"),
            "Oct Avg": (2024, 10, "weekly_avg_minutes"),
        },
    )
    res = compute_dosage([src], plan=plan())
    r = row(res, "1")
    assert (r["sessions"], r["habitual_months"], r["active_months"]) == (5, 1, 2)
    assert r["minutes"] == pytest.approx(21 * 30 / 7 + 7 * 31 / 7)
    assert row(res, "2")["usage_level"] == "none"
    # a monthly row overlapping a window counts whole (it cannot be split)
    res2 = compute_dosage(
        [src],
        plan=plan(window="dates", window_start=date(2024, 9, 20), window_end=date(2024, 9, 30)),
    )
    assert row(res2, "1")["sessions"] == 4


def test_fidelity_needs_minutes_per_week_and_pass_rate(tmp_path):
    # 8 weeks window (56 days): student 1 has 300 minutes = 37.5 min/week, passes 3 of 4
    rows = [
        {"Student ID": "1", "Completion Date": f"09/{d:02d}/2024", "Minutes": 75, "Passed": p}
        for d, p in ((2, "Passed"), (9, "Passed"), (16, "Passed"), (23, "Not Passed"))
    ]
    rows += [
        {
            "Student ID": "2",
            "Completion Date": f"09/{d:02d}/2024",
            "Minutes": 75,
            "Passed": "Not Passed",
        }
        for d in (2, 9, 16, 23)
    ]
    src = lesson_source(write(tmp_path, "u.csv", rows), extra_cols={"passed": "Passed"})
    res = compute_dosage(
        [src],
        plan=plan(window="dates", window_start=date(2024, 9, 1), window_end=date(2024, 10, 26)),
    )
    r1, r2 = row(res, "1"), row(res, "2")
    assert r1["avg_weekly_minutes"] == pytest.approx(37.5)
    assert (r1["pass_rate"], bool(r1["met_fidelity"])) == (0.75, True)
    assert (r2["pass_rate"], bool(r2["met_fidelity"])) == (0.0, False)


# --- errors ---------------------------------------------------------------------------------------


def test_errors_name_the_file_and_column_and_never_an_id(tmp_path):
    with pytest.raises(InputFileError) as e:
        compute_dosage([lesson_source(str(tmp_path / "missing.csv"))], plan=plan())
    assert "missing.csv" in e.value.where
    with pytest.raises(InputFileError):
        compute_dosage([lesson_source(str(tmp_path / "nothing_*.csv"))], plan=plan())
    p = write(tmp_path, "u.csv", [{"Student ID": "0098765", "Date": "09/03/2024"}])
    with pytest.raises(LayoutError) as e:
        compute_dosage([lesson_source(p)], plan=plan())
    assert "Completion Date" in e.value.message and "0098765" not in str(e.value.to_dict())
    bad = write(
        tmp_path, "bad.csv", 'Student ID,Completion Date,Minutes\n"0098765,09/03/2024,5\n1,2\n'
    )
    with pytest.raises(RceError) as e:
        compute_dosage([lesson_source(bad)], plan=plan())
    assert "0098765" not in str(e.value.to_dict())
    with pytest.raises(PlanError):
        compute_dosage([lesson_source(p)], plan=Plan(engine=EngineConfig(memory_limit="lots")))


def test_unreadable_dates_are_dropped_and_counted(tmp_path):
    rows = lessons("1", ["09/03/2024", "someday", "45538"])  # Excel serial 45538 = 2024-09-03
    res = compute_dosage([lesson_source(write(tmp_path, "u.csv", rows))], plan=plan())
    assert res.rows_bad_date == 1
    assert row(res, "1")["sessions"] == 1
    assert any("could not be read" in n for n in res.notes)


# --- result object and derived tables -------------------------------------------------------------


@pytest.fixture
def small(tmp_path):
    rows = []
    for k in range(30):
        n_days = 1 + (k % 6) * 3
        days = [f"{9 + (d // 20)}/{1 + d % 20:02d}/2024" for d in range(n_days)]
        rows += lessons(str(100 + k), days, minutes=5 + 3 * k)
    return compute_dosage(
        [lesson_source(write(tmp_path, "u.csv", rows))], plan=plan(), seats={"i-Ready": 40}
    )


def test_result_shape_dict_and_summary(small):
    assert tuple(small.per_student.columns) == PER_STUDENT_COLUMNS
    d = small.to_dict()
    json.dumps(d, allow_nan=False)
    assert d["definition"]["min_sessions_per_month"] == 3
    assert d["users"] == 30
    assert d["utilization"][0]["seats"] == 40
    assert "habitual month" in small.summary()
    assert not any(str(100 + k) in small.summary() for k in range(30))
    assert small.to_frame().shape[0] == 30
    assert set(small.trend.columns) == {
        "product",
        "month",
        "students_active",
        "students_habitual",
        "minutes",
    }


def test_habitual_months_at_thresholds_matches_recomputation(small, tmp_path):
    for t in (2, 3, 4):
        hm = habitual_months_at(small, t)
        exp = (
            small.monthly.assign(h=small.monthly["sessions"] >= t).groupby("student_id")["h"].sum()
        )
        assert (
            hm.to_numpy().tolist()
            == exp.reindex(small.per_student["student_id"]).fillna(0).astype(int).tolist()
        )
    assert (habitual_months_at(small, 3) == small.per_student["habitual_months"]).all()


def test_attach_dosage_gives_non_users_zeros_and_counts(small):
    frame = pd.DataFrame({"student_id": ["100", "101", "999", "998"], "x": [1, 2, 3, 4]})
    out = attach_dosage(frame, small, "i-Ready")
    assert len(out) == 4 and out["x"].tolist() == [1, 2, 3, 4]
    non = out.loc[out["student_id"] == "999"].iloc[0]
    assert (non["sessions"], non["minutes"], non["habitual_months"], non["usage_level"]) == (
        0,
        0.0,
        0,
        "none",
    )
    assert out["sessions"].dtype == "int64"
    assert "2 scored students are non-users" in out.attrs["dosage_notes"][0]
    assert "28 students in the usage export have no scores" in out.attrs["dosage_notes"][1]
    strict = attach_dosage(frame, small, "i-Ready", min_sessions_per_month=10)
    assert strict.loc[strict["student_id"] == "101", "habitual_months"].iloc[0] == 0
    with pytest.raises(RceError):
        attach_dosage(frame, small, "Nope")


def test_utilization_funnel(small):
    u = utilization(small.per_student, {"i-Ready": 40, "DreamBox": 5})
    ir = u.set_index("product").loc["i-Ready"]
    assert (ir["activated"], ir["active"]) == (30, 30)
    assert ir["activated_rate"] == pytest.approx(0.75)
    assert u.set_index("product").loc["DreamBox", "activated"] == 0


def test_usage_by_group_suppresses_small_cells_and_one_more(small):
    ids = small.per_student["student_id"].tolist()
    roster = pd.DataFrame(
        {
            "student_id": [*ids, "900", "901"],
            "el_status": ["EL"] * 12 + ["EO"] * 12 + ["RFEP"] * 6 + ["EO", "EL"],
        }
    )
    t = usage_by_group(small.per_student, roster, "el_status", min_cell_size=10)
    t = t.set_index("el_status")
    assert bool(t.loc["RFEP", "suppressed"]) and np.isnan(t.loc["RFEP", "share_active"])
    # only one cell is small, so the next smallest is suppressed too (no recovery by subtraction)
    assert int(t["suppressed"].sum()) == 2
    unsup = t.loc[~t["suppressed"]].iloc[0]
    assert unsup["n"] == 13 and unsup["active"] == 12


def test_usage_clusters_are_ordered_low_to_high_and_seeded():
    rng = np.random.default_rng(1)
    x = pd.Series(np.r_[rng.normal(20, 2, 50), rng.normal(400, 30, 50), [np.nan] * 5])
    a = usage_clusters(x, seed=7)
    assert a.iloc[:50].eq("low").all() and a.iloc[50:100].eq("high").all()
    assert a.iloc[100:].eq("none").all()
    assert a.equals(usage_clusters(x, seed=7))
    tiny = usage_clusters(pd.Series([1.0, 2.0, np.nan]), seed=1)
    assert tiny.isna().sum() == 2 and tiny.iloc[2] == "none"
    c = kmeans_1d(np.array([0.0, 0.1, 5.0, 5.1, 10.0, 10.2]), 3, seed=1)
    assert np.allclose(c, [0.05, 5.05, 10.1])
    assert silhouette_1d(np.array([0.0, 0.1, 5.0, 5.1]), np.array([0, 0, 1, 1])) > 0.9


# --- reference values: the sample district's truth ------------------------------------------------

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "sierra-vista"


@pytest.mark.skipif(not (EXAMPLE / "truth.json").is_file(), reason="sample district not generated")
def test_habitual_months_match_the_sample_generators_truth():
    """truth.json (written by rce.sample): habitual months of the scored students.

    Source: examples/sierra-vista/truth.json, products["i-Ready Personalized Instruction ELA"]
    ["habitual_months_distribution_scored"]; scored = a fall and a spring ELA diagnostic,
    neither rush-flagged (rce.sample._scored); rule ">= 3 distinct lesson-days in a calendar
    month between the fall and spring diagnostics".
    """
    from rce import io as rio
    from rce.config import load_plan
    from rce.io.normalize import resolve_ids

    plan = load_plan(EXAMPLE / "rce.toml")
    truth = json.loads((EXAMPLE / "truth.json").read_text(encoding="utf-8"))
    roster = rio.load_roster(plan.inputs.roster, plan)
    a = rio.load_assessments(plan.inputs.scores, plan).frame
    a = a.loc[~a["rush_flag"].astype(bool)]
    fall = a.loc[a["window"] == "fall"].groupby("student_id")["test_date"].max()
    spring = a.loc[a["window"] == "spring"].groupby("student_id")["test_date"].max()
    w = pd.DataFrame({"baseline_date": fall, "outcome_date": spring}).dropna().reset_index()
    sources = [s for s in rio.usage_sources(plan) if s.product == plan.study.product]
    id_map = resolve_ids(distinct_usage_ids(sources, plan), roster.frame)
    dose = compute_dosage(sources, plan=plan, windows=w, id_map=id_map)
    frame = attach_dosage(w, dose, plan.study.product)
    expected = truth["products"][plan.study.product]["habitual_months_distribution_scored"]
    got = frame["habitual_months"].value_counts().sort_index()
    assert {str(k): int(v) for k, v in got.items()} == expected
    quirks = truth["quirks"]["lessons_ela"]
    assert dose.rows_deduplicated == quirks["exact_duplicate_rows"]  # 24
    assert dose.rows_unmatched == {"not_in_roster": quirks["rows_for_ids_not_in_roster"]}  # 227


def test_progress_is_reported_from_zero_to_one(tmp_path):
    rows = []
    for i in range(200):
        rows += lessons(str(1000 + i), ["09/03/2024", "09/04/2024", "10/01/2024"])
    src = lesson_source(write(tmp_path, "u.csv", rows))
    seen: list[float] = []
    res = compute_dosage([src], plan=plan(), progress=seen.append)
    assert len(res.per_student) == 200
    assert seen and seen[-1] == 1.0
    assert all(0.0 <= f <= 1.0 for f in seen)


def test_monthly_table_can_be_left_out_and_thresholds_still_work(tmp_path):
    from rce.dosage import habitual_months_at

    rows = []
    for i, n in enumerate([1, 2, 3, 4, 5]):
        rows += lessons(str(100 + i), [f"09/{d:02d}/2024" for d in range(1, n + 1)])
        rows += lessons(str(100 + i), [f"10/{d:02d}/2024" for d in range(1, 3)])
    src = lesson_source(write(tmp_path, "u.csv", rows))
    full = compute_dosage([src], plan=plan())
    lean = compute_dosage(
        [src], plan=dataclasses.replace(plan(), engine=EngineConfig(max_monthly_rows=0))
    )
    assert len(full.monthly) == 10 and len(lean.monthly) == 0
    assert any("student x month table (10 rows) was not kept" in n for n in lean.notes)
    pd.testing.assert_frame_equal(full.per_student, lean.per_student)
    for t in (1, 2, 3, 4, 12):
        assert habitual_months_at(lean, t).tolist() == habitual_months_at(full, t).tolist()
    assert habitual_months_at(full, 2).tolist() == [1, 2, 2, 2, 2]
    assert habitual_months_at(full, 13).tolist() == [0, 0, 0, 0, 0]
    with pytest.raises(DataError, match="not kept at this scale"):
        habitual_months_at(lean, 13)


@pytest.mark.parametrize(
    "tz", ["America/Los_Angeles", "Australia/Lord_Howe", "Asia/Kolkata", "America/Sao_Paulo",
           "Africa/Casablanca", "UTC"]
)
def test_fast_utc_offsets_give_duckdbs_local_dates(tz):
    """The binary search over UTC offsets equals DuckDB's own conversion, at and around every
    transition and every 5 hours over two years."""
    import duckdb

    from rce import dosage_sql as q
    from rce.dosage import utc_offset_segments

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    segments = utc_offset_segments(con, tz)
    instants = list(pd.date_range("2018-01-01", "2019-12-31", freq="5h"))
    instants += list(pd.date_range("2040-12-31 20:00", "2041-01-01 04:00", freq="1h"))
    for start, _ in (segments[0] if segments else ()):
        t = pd.Timestamp(start)
        instants += [t - pd.Timedelta(seconds=1), t, t + pd.Timedelta(seconds=1)]
    con.register("t_in", pd.DataFrame({"u": instants}))
    fast = q.local_date_of_instant("u", tz, segments)
    icu = q.local_date_of_instant("u", tz, None)
    bad = con.execute(f"SELECT count(*) FROM t_in WHERE ({fast}) <> ({icu})").fetchall()[0][0]
    assert bad == 0
    if tz != "Africa/Casablanca":  # (zoneinfo and ICU may disagree there: then per-row ICU)
        assert segments is not None


def test_a_failing_progress_display_does_not_stop_the_run(tmp_path):
    rows = []
    for i in range(50):
        rows += lessons(str(1000 + i), ["09/03/2024", "10/01/2024"])
    src = lesson_source(write(tmp_path, "u.csv", rows))

    def broken(_done: float) -> None:
        raise OSError("terminal went away")

    res = compute_dosage([src], plan=plan(), progress=broken)
    assert len(res.per_student) == 50


# --- duplicates by record columns (layouts that carry student attributes as of the export) ------

IREADY_LESSON_HEADER = (
    "Last Name,First Name,Student ID,Student Grade,Academic Year,School,Subject,Enrolled,"
    "Class(es),Domain,Lesson ID,Lesson Name,Completion Date,Total Time on Lesson (min),Score,"
    "Passed or Not Passed,Teacher-Assigned Lesson"
)


def _iready_row(cls: str, lesson: str, day: str, minutes: int, score: int) -> str:
    passed = "Passed" if score >= 70 else "Not Passed"
    return (
        f'Doe,Ann,123,3,2024-2025,Oak Elementary,Reading,Enrolled,"{cls}",Phonics,{lesson},'
        f'"Short Vowels: a, i",{day},{minutes},{score},{passed},N'
    )


def test_iready_lesson_reexport_with_changed_class_counts_each_lesson_once(tmp_path):
    from rce import io as rio

    fall = [_iready_row("Grade 3 - Ruiz", "DI.ELA.PH.3.1000", "09/03/2024", 15, 80),
            _iready_row("Grade 3 - Ruiz", "DI.ELA.PH.3.1001", "09/04/2024", 20, 60)]
    # the student moved class before the spring export: the same two lessons come back with
    # another class (and one new lesson); a second, different lesson on 09/04 with the same
    # time and score is a record of its own
    spring = [_iready_row("Grade 3 - Lee", "DI.ELA.PH.3.1000", "09/03/2024", 15, 80),
              _iready_row("Grade 3 - Lee", "DI.ELA.PH.3.1001", "09/04/2024", 20, 60),
              _iready_row("Grade 3 - Lee", "DI.ELA.PH.3.1002", "09/04/2024", 20, 60),
              _iready_row("Grade 3 - Lee", "DI.ELA.PH.3.1003", "01/14/2025", 10, 90)]
    a = write(tmp_path, "lessons_fall.csv", "\n".join([IREADY_LESSON_HEADER, *fall]) + "\n")
    b = write(tmp_path, "lessons_spring.csv", "\n".join([IREADY_LESSON_HEADER, *spring]) + "\n")
    p = plan()
    src = rio.usage_source_for([Path(a), Path(b)], p, product="i-Ready")
    assert src.layout == "iready_lesson"
    assert "lesson_id" in src.record_columns and "school" not in src.record_columns
    res = compute_dosage([src], plan=p)
    r = row(res, "123")
    assert res.rows_read == 6 and res.rows_deduplicated == 2
    assert (r["minutes"], r["sessions"]) == (65, 3)  # 3 student-days
    assert row(compute_dosage([src], plan=plan(unit="row")), "123")["sessions"] == 4  # lessons
    assert "Lesson ID" in res.definition["duplicates"]
    # a layout without record columns compares every column: the changed class keeps the
    # re-exported rows apart
    plain = dataclasses.replace(src, record_columns=())
    res_plain = compute_dosage([plain], plan=plan(unit="row"))
    assert res_plain.rows_deduplicated == 0
    assert (row(res_plain, "123")["sessions"], row(res_plain, "123")["minutes"]) == (6, 100)


def test_iready_lesson_rows_repeated_per_standard_are_one_lesson(tmp_path):
    from rce import io as rio

    header = IREADY_LESSON_HEADER + ",Standard Code"
    rows = [_iready_row("G3", "DI.ELA.PH.3.1000", "09/03/2024", 15, 80) + f",RF.3.{k}"
            for k in (1, 2, 3)]
    path = write(tmp_path, "with_standards.csv", "\n".join([header, *rows]) + "\n")
    p = plan()
    src = rio.usage_source_for([Path(path)], p, product="i-Ready")
    res = compute_dosage([src], plan=plan(unit="row"))
    r = row(res, "123")
    assert (r["sessions"], r["minutes"]) == (1, 15)
    assert res.rows_deduplicated == 2


def test_memory_limit_is_read_for_the_parse_once_budget():
    from rce.dosage import _memory_gb

    assert _memory_gb("1GB") == 1.0
    assert _memory_gb("512MB") == pytest.approx(0.512)
    assert _memory_gb(" 3 GiB ") == 3.0
    assert _memory_gb("2TB") == 2000.0
    assert _memory_gb("a lot") == 1.0  # DuckDB rejects it before this matters


@pytest.mark.parametrize("window", ["all", "baseline-to-outcome"])  # IDs matched after / before
def test_a_non_utf8_byte_past_the_sniffed_head_is_read_as_windows_1252(tmp_path, window):
    from rce import io as rio
    from rce.io.readers import SNIFF_BYTES

    head = "Student ID,Date,Minutes,Note\n"
    rows = [f"{1000 + i % 50},09/{1 + i % 28:02d}/2024,10,plain" for i in range(SNIFF_BYTES)]
    body = (head + "\n".join(rows) + "\n").encode("ascii")
    body += "2000,10/01/2024,15,Jos\u00e9 caf\u00e9\n".encode("cp1252")  # far past the head
    path = tmp_path / "lessons.csv"
    path.write_bytes(body)
    p = plan(window=window)
    src = rio.usage_source_for([path], p, product="Reading")
    assert src.encoding == "utf-8"  # the head is plain ASCII
    res = compute_dosage([src], plan=p)
    assert row(res, "2000")["minutes"] == 15
    assert res.rows_read == len(rows) + 1
    # a file that is not text at all still fails with a clear message (no retry loop)
    bad = tmp_path / "bad.csv"
    bad.write_bytes(head.encode() + b"1,09/01/2024,5,\xff\xfe\x00\x00\n" * 10)
    with pytest.raises(InputFileError):
        compute_dosage([dataclasses.replace(src, paths=(str(bad),), encoding="utf-16")], plan=p)


def test_a_set_cancel_event_interrupts_the_dosage_step(tmp_path):
    import threading

    rows = []
    for i in range(50):
        rows += lessons(str(1000 + i), ["09/03/2024", "09/04/2024"])
    src = lesson_source(write(tmp_path, "u.csv", rows))
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(KeyboardInterrupt):
        compute_dosage([src], plan=plan(), cancel=cancel)
    # the windows can be given as a function, called after the exports are read
    asked: list[str] = []

    def windows():
        asked.append("windows")
        return None

    res = compute_dosage([src], plan=plan(window="baseline-to-outcome"), windows=windows)
    assert asked == ["windows"] and len(res.per_student) == 50
