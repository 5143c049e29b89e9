"""Tests for rce.sample: the synthetic district generator and the committed example.

Spec: data-formats.md §5 ("Proposed sample-data spec") and the foundation issue items 5-6.
Small districts (300 students) keep these fast; one group of tests reads the committed
1,500-student example in examples/sierra-vista/.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import time
import tomllib
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest

from rce.config import check_plan, load_plan
from rce.errors import DataError, InputFileError, RceError
from rce.sample import SAMPLE_FILES, SampleResult, build_sample_files, generate_sample

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "sierra-vista"
N_SMALL = 300


def _read(path: Path, **kw) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False, **kw)


def _digests(folder: Path) -> dict[str, str]:
    return {rel: hashlib.sha256((folder / rel).read_bytes()).hexdigest() for rel in SAMPLE_FILES}


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> SampleResult:
    return generate_sample(tmp_path_factory.mktemp("s") / "district", students=N_SMALL, seed=3)


@pytest.fixture(scope="module")
def tables(small: SampleResult) -> dict[str, pd.DataFrame]:
    out = {}
    for rel in SAMPLE_FILES:
        if rel.endswith(".csv"):
            enc = "utf-8-sig" if rel.endswith("_excel.csv") else "utf-8"
            out[rel] = _read(small.out_dir / rel, encoding=enc)
    return out


# --- determinism -------------------------------------------------------------------------------


def test_same_seed_gives_identical_bytes(small: SampleResult, tmp_path: Path) -> None:
    again = generate_sample(tmp_path / "again", students=N_SMALL, seed=3)
    assert _digests(again.out_dir) == _digests(small.out_dir)
    assert again.sha256 == small.sha256
    assert set(small.files) == set(SAMPLE_FILES)


def test_bytes_do_not_depend_on_the_process(tmp_path: Path) -> None:
    """Two fresh interpreters with different hash seeds write the same bytes."""
    code = ("import sys, hashlib; from rce.sample import build_sample_files as b; "
            "f = b(students=60, seed=9); "
            "print(hashlib.sha256(b''.join(f[k] for k in sorted(f))).hexdigest())")
    digests = set()
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                             text=True, check=True, timeout=120)
        digests.add(run.stdout.strip())
    assert len(digests) == 1


def test_other_seed_gives_other_data(small: SampleResult) -> None:
    other = build_sample_files(students=N_SMALL, seed=4)
    differ = [rel for rel in SAMPLE_FILES
              if hashlib.sha256(other[rel]).hexdigest() != small.sha256[rel]]
    assert "iready/diagnostic_results_ela.csv" in differ
    assert "truth.json" in differ


def test_rerun_over_previous_sample_is_allowed(tmp_path: Path) -> None:
    out = tmp_path / "d"
    generate_sample(out, students=60, seed=1)
    (out / "report").mkdir()
    (out / "report" / "keep.txt").write_text("user output")
    res = generate_sample(out, students=60, seed=2)
    assert res.truth["seed"] == 2
    assert (out / "report" / "keep.txt").read_text() == "user output"


# --- bad arguments -----------------------------------------------------------------------------


@pytest.mark.parametrize("students", [49, 2_000_001, 0, -5])
def test_students_out_of_range(tmp_path: Path, students: int) -> None:
    with pytest.raises(DataError, match="between 50 and 2,000,000"):
        generate_sample(tmp_path / "x", students=students)
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("students", [True, 300.0, "300"])
def test_students_not_a_whole_number(tmp_path: Path, students: object) -> None:
    with pytest.raises(DataError, match="whole number"):
        generate_sample(tmp_path / "x", students=students)  # type: ignore[arg-type]


@pytest.mark.parametrize("seed", [-1, 1.5, None])
def test_bad_seed(tmp_path: Path, seed: object) -> None:
    with pytest.raises(DataError, match="seed"):
        generate_sample(tmp_path / "x", students=60, seed=seed)  # type: ignore[arg-type]


def test_out_dir_is_a_file(tmp_path: Path) -> None:
    f = tmp_path / "file.csv"
    f.write_text("a,b\n")
    with pytest.raises(InputFileError, match="is a file") as exc:
        generate_sample(f, students=60)
    assert exc.value.hint


def test_refuses_to_clobber_foreign_folder(tmp_path: Path) -> None:
    out = tmp_path / "mine"
    (out / "sis").mkdir(parents=True)
    mine = out / "sis" / "students_2024-25.csv"
    mine.write_text("precious district data\n")
    with pytest.raises(RceError, match="not empty"):
        generate_sample(out, students=60)
    assert mine.read_text() == "precious district data\n"
    # A forged truth.json without the generator marker is not a previous sample either.
    (out / "truth.json").write_text('{"generator": "something else"}')
    with pytest.raises(InputFileError):
        generate_sample(out, students=60)


def test_empty_existing_folder_is_fine(tmp_path: Path) -> None:
    out = tmp_path / "empty"
    out.mkdir()
    res = generate_sample(out, students=60, seed=5)
    assert (out / "truth.json").is_file()
    assert res.n_students == 60


# --- headers and loading with pandas ------------------------------------------------------------


def test_diagnostic_headers(tables: dict[str, pd.DataFrame]) -> None:
    ela = tables["iready/diagnostic_results_ela.csv"]
    math = tables["iready/diagnostic_results_math.csv"]
    old = tables["iready/diagnostic_results_ela_2023-24.csv"]
    # data-formats.md §1.2: 63 ELA and 54 math columns in 2024-25; §5.3: 59 for the older set.
    assert ela.shape[1] == 63
    assert math.shape[1] == 54
    assert old.shape[1] == 59
    for col in ("Student ID", "Sex", "Baseline Diagnostic (Y/N)",
                "Most Recent Diagnostic YTD (Y/N)", "Read Aloud", "Overall Scale Score",
                "Percentile", "Comprehension: Overall Scale Score", "Lexile Range",
                "Percent Progress to Annual Typical Growth (%)",
                "Reading Difficulty Indicator (Y/N)"):
        assert col in ela.columns
    assert list(ela.columns[:4]) == ["Last Name", "First Name", "Student ID", "Student Grade"]
    assert "Quantile Measure" in math.columns and "Diagnostic Language" in math.columns
    assert "Reading Difficulty Indicator (Y/N)" not in math.columns
    assert math.columns.get_loc("Diagnostic Language") == math.columns.get_loc(
        "Diagnostic Gain") - 1
    for col in ("Gender", "Diagnostic used to establish Growth Measures (Y/N)",
                "Most Recent Diagnostic (Y/N)", "Reading Comprehension: Literature Scale Score"):
        assert col in old.columns
    assert "Read Aloud" not in old.columns and "Sex" not in old.columns
    assert not any(c.startswith("Comprehension: Overall") for c in old.columns)
    assert set(ela["Academic Year"]) == {"2024-2025"}
    assert set(old["Academic Year"]) == {"2023-2024"}
    scores = ela["Overall Scale Score"].astype(int)
    assert scores.between(100, 800).all()
    assert ela["Percentile"].astype(int).between(1, 99).all()


def test_placement_vocabularies(tables: dict[str, pd.DataFrame]) -> None:
    ela = tables["iready/diagnostic_results_ela.csv"]
    old = tables["iready/diagnostic_results_ela_2023-24.csv"]
    rel = set(ela["Overall Relative Placement"])
    assert rel <= {"Mid or Above Grade Level", "Early On Grade Level", "1 Grade Level Below",
                   "2 Grade Levels Below", "3 or More Grade Levels Below"}
    pat = re.compile(r"^(Emerging K|Grade (K|\d{1,2})|(Early|Mid|Late) (K|\d))$")
    assert ela["Overall Placement"].map(lambda s: bool(pat.match(s))).all()
    assert ela["Overall Placement"].str.startswith("Grade ").any()
    assert not ela["Overall Placement"].str.startswith("Level ").any()
    assert old["Overall Placement"].str.startswith("Level ").any()
    assert (ela["Phonological Awareness Placement"] == "Surpassed Level").any()
    assert (old["Phonological Awareness Placement"] == "Tested Out").any()
    assert not (ela == "Tested Out").any().any()
    assert set(ela["Read Aloud"]) == {"Off"}


def test_roster_and_excel_copy(small: SampleResult, tables: dict[str, pd.DataFrame]) -> None:
    roster = tables["sis/students_2024-25.csv"]
    excel = tables["sis/students_2024-25_excel.csv"]
    assert roster.shape[1] == 30 and list(roster.columns) == list(excel.columns)
    assert roster["Student Number"].str.fullmatch(r"\d{6}").all()
    assert roster["Student Number"].str.startswith("0").any()
    assert not excel["Student Number"].str.startswith("0").any()
    assert (roster["Student Number"].astype(int) == excel["Student Number"].astype(int)).all()
    assert set(roster["Grade"]) <= {"TK", "KN", "01", "02", "03", "04", "05", "06", "07", "08"}
    assert "TK" in set(roster["Grade"])
    assert set(roster["Gender"]) <= {"M", "F", "X"}
    assert roster["Birthdate"].str.fullmatch(r"\d{2}/\d{2}/\d{4}").all()
    assert excel["Birthdate"].str.fullmatch(r"\d{1,2}/\d{1,2}/\d{4}").all()
    assert (~excel["Birthdate"].str.fullmatch(r"\d{2}/\d{2}/\d{4}")).any()
    raw = (small.out_dir / "sis/students_2024-25_excel.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    assert raw.count(b"\r\n") == raw.count(b"\n")
    plain = (small.out_dir / "sis/students_2024-25.csv").read_bytes()
    assert not plain.startswith(b"\xef\xbb\xbf") and b"\r\n" not in plain
    codes = set(roster[["Race 1", "Race 2"]].to_numpy().ravel()) - {""}
    assert codes <= {"100", "201", "202", "203", "204", "205", "206", "207", "208", "299",
                     "301", "302", "303", "304", "399", "400", "600", "700"}
    assert set(roster["ELAS"]) <= {"EO", "IFEP", "EL", "RFEP", "TBD"}
    assert set(roster["FRPM"]) <= {"F", "R", "N"}


def test_usage_file_layouts(small: SampleResult, tables: dict[str, pd.DataFrame]) -> None:
    lessons = tables["iready/personalized_instruction_by_lesson_ela.csv"]
    assert lessons.shape[1] == 31
    assert {"Lesson ID", "Completion Date", "Total Time on Lesson (min)", "Passed or Not Passed",
            "Teacher-Assigned Lesson", "Enrolled", "User Name"} <= set(lessons.columns)
    assert lessons["Completion Date"].str.fullmatch(r"\d{2}/\d{2}/\d{4}").all()
    assert lessons["Lesson ID"].str.fullmatch(r"DI\.ELA\.[A-Z]+\.(K|[1-8])\.\d{4}").all()
    passed = lessons["Score"].astype(int) >= 70
    assert ((lessons["Passed or Not Passed"] == "Passed") == passed).all()
    assert lessons["Lesson Name"].str.contains(",").any()
    lexia = tables["usage/lexia_core5_activity.csv"]
    assert list(lexia.columns[:3]) == ["Lexia_ID", "username", "fname"]
    ts = r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}"
    assert lexia["activity_start_time"].str.fullmatch(ts).all()
    assert lexia["username"].str.contains("@").all()
    vx = tables["usage/vendorx_usage_export.csv"]
    assert vx.columns[-1] == "June 2025 Activities"
    assert "September 2024 Activities" in vx.columns
    assert vx["Program Time"].str.fullmatch(r'="( \d+m|\d+h \d+m)"').all()
    assert vx["Grade"].str.fullmatch(r"0[3-8]").all()
    assert vx["Student Name"].str.contains(", ").all()
    raw = (small.out_dir / "usage/vendorx_usage_export.csv").read_text()
    assert '"=""' in raw  # the Excel-protected time string, CSV-quoted


# --- planted quirks ----------------------------------------------------------------------------


def test_diagnostic_quirks(small: SampleResult, tables: dict[str, pd.DataFrame]) -> None:
    q = small.truth["quirks"]
    for subject in ("ela", "math"):
        df = tables[f"iready/diagnostic_results_{subject}.csv"]
        assert int(df.duplicated().sum()) == q[f"diagnostic_results_{subject}"][
            "exact_duplicate_rows"] == 3
        dashed = df["Completion Date"].str.fullmatch(r"\d{2}-\d{2}-\d{4}")
        slashed = df["Completion Date"].str.fullmatch(r"\d{1,2}/\d{1,2}/\d{4}")
        assert int(dashed.sum()) == q[f"diagnostic_results_{subject}"][
            "reexport_rows_mm_dd_yyyy"] > 0
        assert (dashed | slashed).all()
        # The re-exported rows come last.
        assert dashed.iloc[-int(dashed.sum()):].all()
        flags = df.loc[~dashed, "Rush Flag"].value_counts()
        assert set(flags.index) <= {"", "Yellow Rush Flag", "Red Rush Flag"}
        expected = q[f"{subject}_rush_flag_rows"]
        dup = df.loc[~dashed][df.loc[~dashed].duplicated()]
        for flag in ("Yellow Rush Flag", "Red Rush Flag"):
            got = int(flags.get(flag, 0)) - int((dup["Rush Flag"] == flag).sum())
            assert got == expected[flag]
        share = (df["Rush Flag"] != "").mean()
        assert 0.02 < share < 0.12
        assert not df["Student ID"].str.startswith("0").any()
        assert "K" in set(df["Student Grade"]) and "TK" not in set(df["Student Grade"])
        assert set(df["Student Grade"]) <= {"K", "1", "2", "3", "4", "5", "6", "7", "8"}
    ela = tables["iready/diagnostic_results_ela.csv"]
    blank = (ela["Race"] == "") & (ela["Hispanic or Latino"] == "")
    assert 0.2 < blank.mean() < 0.4
    assert {"Male", "female"} & set(ela["Sex"])
    grades = ela.groupby("Student ID")["Student Grade"].nunique()
    assert int((grades > 1).sum()) == q["grade_changed_students"] == 1


def test_roster_quirks(small: SampleResult, tables: dict[str, pd.DataFrame]) -> None:
    q = small.truth["quirks"]
    roster = tables["sis/students_2024-25.csv"]
    assert len(roster) == q["roster_rows"] == N_SMALL + q["roster_mid_year_transfers"]
    twice = roster[roster.duplicated("Student Number", keep=False)]
    assert twice["Student Number"].nunique() == q["roster_mid_year_transfers"] >= 1
    for _, grp in twice.groupby("Student Number"):
        assert grp["School Code"].nunique() == 2
        assert (grp["Leave Date"] != "").sum() == 1
    assert int((roster["SSID"] == "").sum()) == q["roster_missing_ssid"]
    assert int(roster["Last Name"].str.endswith(" ").sum()) >= q[
        "roster_trailing_space_names"] > 0
    assert (roster["Email"] != roster["Email"].str.lower()).any()
    changed = roster[(roster["ELAS"] == "RFEP") & roster["ELAS Start Date"].str.startswith("02/")
                     & roster["ELAS Start Date"].str.endswith("/2025")]
    assert changed["Student Number"].nunique() == q["elas_changed_el_to_rfep"] == 2


def test_usage_quirks(small: SampleResult, tables: dict[str, pd.DataFrame]) -> None:
    q = small.truth["quirks"]
    roster_ids = set(tables["sis/students_2024-25.csv"]["Student Number"])
    stripped = {str(int(x)) for x in roster_ids}
    lessons = tables["iready/personalized_instruction_by_lesson_ela.csv"]
    assert int(lessons.duplicated().sum()) == q["lessons_ela"]["exact_duplicate_rows"] >= 1
    unknown = ~lessons["Student ID"].isin(stripped)
    assert int(unknown.sum()) == q["lessons_ela"]["rows_for_ids_not_in_roster"] > 0
    assert lessons.loc[unknown, "Student ID"].nunique() == q["lessons_ela"]["ids_not_in_roster"]
    assert 0.002 < unknown.mean() < 0.05
    minutes = lessons["Total Time on Lesson (min)"].astype(int)
    assert int((minutes > 120).sum()) >= q["lessons_ela"]["time_outliers_over_120_min"] > 0
    weekend = pd.to_datetime(lessons["Completion Date"], format="%m/%d/%Y").dt.day_of_week >= 5
    assert 0 < weekend.mean() < 0.05

    lexia = tables["usage/lexia_core5_activity.csv"]
    assert int((lexia["studentrefid"] == "").sum()) == q["lexia"]["rows_blank_student_id"] > 0
    known = lexia["studentrefid"].isin(roster_ids)
    foreign = (~known) & (lexia["studentrefid"] != "")
    assert int(foreign.sum()) == q["lexia"]["rows_for_ids_not_in_roster"] > 0
    utc = pd.to_datetime(lexia["activity_start_time"], format="%Y-%m-%d %H:%M:%S").dt.tz_localize(
        "UTC")
    local = utc.dt.tz_convert("America/Los_Angeles")
    crossing = utc.dt.date != local.dt.date
    assert int(crossing.sum()) == q["lexia"]["rows_crossing_midnight_utc"] > 0

    vx = tables["usage/vendorx_usage_export.csv"]
    serial = vx["Last Login"].str.fullmatch(r"\d{5}")
    assert int(serial.sum()) == q["vendorx"]["last_login_excel_serial_rows"]
    iso = vx["Last Login"].str.fullmatch(r"\d{4}-\d{2}-\d{2}")
    assert (serial | iso | (vx["Last Login"] == "")).all()
    assert int((~vx["Student ID"].isin(roster_ids)).sum()) == q["vendorx"][
        "rows_for_ids_not_in_roster"] >= 1


def test_excel_serial_dates_are_real_dates(tables: dict[str, pd.DataFrame]) -> None:
    vx = tables["usage/vendorx_usage_export.csv"]
    serial = vx.loc[vx["Last Login"].str.fullmatch(r"\d{5}"), "Last Login"].astype(int)
    days = pd.to_datetime("1899-12-30") + pd.to_timedelta(serial, unit="D")
    assert days.between("2024-08-01", "2025-06-30").all()


# --- truth.json --------------------------------------------------------------------------------


def test_truth_is_complete(small: SampleResult) -> None:
    t = json.loads((small.out_dir / "truth.json").read_text(encoding="utf-8"))
    assert t == small.truth
    assert t["generator"] == "rce sample" and t["seed"] == 3 and t["n_students"] == N_SMALL
    a = t["products"]["i-Ready Personalized Instruction ELA"]
    assert a["beta_per_habitual_month"] == 2.0 and a["plateau_months"] == 6
    assert a["effect_on"]["math_scale_score"] == 0.0
    for p in ("Lexia Core5 Reading", "VendorX Literacy"):
        assert t["products"][p]["beta_per_habitual_month"] == 0.0
        assert t["products"][p]["effect_on"] == {"ela_scale_score": 0.0, "math_scale_score": 0.0}
    c = t["products"]["VendorX Literacy"]
    assert c["seats_purchased"] >= 5 * max(1, c["students_using"])
    assert set(t["rollout_stages"].values()) == {"pilot", "expansion"}
    assert list(t["rollout_stages"].values()).count("pilot") == 1
    assert len(t["schools"]) == 5
    assert t["outcome_model"]["ela"]["subgroup_growth_offsets"]
    assert t["outcome_model"]["ela"]["school_effects"]
    assert t["norms"]["ela"]["fall_mean"] and t["confounding"]["description"]
    naive = t["naive_comparisons"]["i-Ready Personalized Instruction ELA"]
    for key in ("gain_any_use_vs_none", "gain_habitual_vs_none",
                "spring_percentile_any_use_vs_none"):
        assert naive[key]["direction"] in ("upward", "downward")
        assert naive[key]["bias"] == pytest.approx(
            naive[key]["difference"] - naive[key]["true_effect_on_users"], abs=1e-3)
    for key in ("roster_mid_year_transfers", "grade_changed_students", "lessons_ela", "lexia",
                "vendorx", "diagnostic_results_ela", "ela_rush_flag_rows",
                "tk_students_absent_from_iready", "roster_missing_ssid"):
        assert key in t["quirks"]


def test_truth_and_summary_hold_no_student_data(small: SampleResult,
                                                tables: dict[str, pd.DataFrame]) -> None:
    roster = tables["sis/students_2024-25.csv"]
    text = (small.out_dir / "truth.json").read_text(encoding="utf-8") + small.summary()
    text += json.dumps(small.to_dict())
    for value in list(roster["Student Number"]) + list(roster["Email"]) + [
            s for s in roster["SSID"] if s]:
        assert value not in text
    assert "Sierra Vista Unified" in small.summary()


def test_result_helpers(small: SampleResult) -> None:
    d = small.to_dict()
    json.dumps(d)
    assert d["files"] == list(SAMPLE_FILES)
    frame = small.to_frame()
    assert list(frame["path"]) == list(SAMPLE_FILES)
    assert (frame["bytes"] > 0).all()
    assert small.notes and all(isinstance(n, str) for n in small.notes)


def test_plan_and_products_files(small: SampleResult) -> None:
    plan = load_plan(small.out_dir / "rce.toml")
    check_plan(plan)
    assert plan.study.product == "i-Ready Personalized Instruction ELA"
    assert plan.study.academic_year == "2024-2025"
    assert [u.product for u in plan.inputs.usage] == [
        "i-Ready Personalized Instruction ELA", "Lexia Core5 Reading", "VendorX Literacy"]
    for rel in [*plan.inputs.roster, *plan.inputs.scores, plan.inputs.products,
                *(u.path for u in plan.inputs.usage)]:
        assert plan.resolve(rel).is_file()
    products = tomllib.loads((small.out_dir / "products.toml").read_text(encoding="utf-8"))
    rows = products["product"]
    assert [r["product"] for r in rows] == [u.product for u in plan.inputs.usage]
    for r in rows:
        assert "annual_cost" in r or ("price_per_seat" in r and "seats_purchased" in r)
        assert r["privacy_agreement"] in ("signed", "expired", "none")
        assert isinstance(r["renewal_date"], date)
        assert (small.out_dir / r["usage"]).is_file()
        assert {"funding_source", "recommended_minutes_per_week", "approval_status",
                "privacy_agreement_expires", "layout", "subject"} <= set(r)


def test_non_users_share_allows_matching(small: SampleResult) -> None:
    share = small.truth["products"]["i-Ready Personalized Instruction ELA"][
        "share_scored_non_users"]
    assert 0.10 <= share <= 0.35


# --- the committed example -------------------------------------------------------------------


@pytest.fixture(scope="module")
def example_bytes() -> dict[str, bytes]:
    return build_sample_files(students=1500, seed=7)


def test_committed_example_is_current(example_bytes: dict[str, bytes]) -> None:
    assert EXAMPLE.is_dir(), "examples/sierra-vista is missing: run generate_sample()"
    stale = [rel for rel in SAMPLE_FILES
             if not (EXAMPLE / rel).is_file() or (EXAMPLE / rel).read_bytes() != example_bytes[rel]]
    assert not stale, f"regenerate examples/sierra-vista (stale: {stale})"
    total = sum((EXAMPLE / rel).stat().st_size for rel in SAMPLE_FILES)
    assert total < 17_000_000


def test_example_design_targets() -> None:
    t = json.loads((EXAMPLE / "truth.json").read_text(encoding="utf-8"))
    pop = t["population"]
    assert pop["n_students"] == 1500
    # Small cells planted below the default minimum n of 10 (data-formats.md §5.1, §5.4 item 3).
    assert pop["race_ethnicity"]["American Indian or Alaska Native"] < 10
    assert pop["race_ethnicity"]["Native Hawaiian or Other Pacific Islander"] < 10
    assert 0 < pop["gender"]["X"] < 10
    a = t["products"]["i-Ready Personalized Instruction ELA"]
    assert 0.15 <= a["share_scored_non_users"] <= 0.30
    naive = t["naive_comparisons"]["i-Ready Personalized Instruction ELA"]
    assert naive["gain_any_use_vs_none"]["direction"] == "upward"
    assert naive["spring_percentile_any_use_vs_none"]["direction"] == "upward"
    dist = {int(k): v for k, v in a["habitual_months_distribution_scored"].items()}
    assert sum(v for k, v in dist.items() if k > 6) > 20  # the plateau is exercised


def _habitual_months(lessons: pd.DataFrame, fall: pd.Series, spring: pd.Series) -> pd.Series:
    days = lessons[["Student ID", "Completion Date"]].drop_duplicates()
    days = days.assign(day=pd.to_datetime(days["Completion Date"], format="%m/%d/%Y"))
    days = days.join(fall.rename("fall"), on="Student ID").join(spring.rename("spring"),
                                                                on="Student ID")
    inside = days[(days["day"] > days["fall"]) & (days["day"] < days["spring"])]
    per_month = inside.groupby(["Student ID", inside["day"].dt.to_period("M")]).size()
    return (per_month >= 3).groupby(level=0).sum()


def test_planted_effect_is_recoverable_from_the_files() -> None:
    """OLS on the example's own files recovers beta_A = 2.0 per capped habitual month.

    Model (truth.json outcome_model.ela): spring = fall + growth(grade, placement) + 2.0 *
    min(hm, 6) + offsets + school effect + noise; regressing spring on min(hm, 6), fall score,
    grade and school dummies must give a 95% CI containing 2.0 (data-formats.md §5.4 item 2).
    """
    ela = _read(EXAMPLE / "iready/diagnostic_results_ela.csv")
    ela = ela[ela["Completion Date"].str.contains("/") & (ela["Rush Flag"] == "")]
    ela = ela.drop_duplicates()
    ela = ela.assign(day=pd.to_datetime(ela["Completion Date"], format="%m/%d/%Y"),
                     start=pd.to_datetime(ela["Start Date"], format="%m/%d/%Y"),
                     score=ela["Overall Scale Score"].astype(int))
    fall = ela[ela["day"] < "2024-11-16"].groupby("Student ID").first()
    spring = ela[ela["day"] > "2025-04-01"].groupby("Student ID").last()
    both = fall.index.intersection(spring.index)
    fall, spring = fall.loc[both], spring.loc[both]
    lessons = _read(EXAMPLE / "iready/personalized_instruction_by_lesson_ela.csv")
    hm = _habitual_months(lessons, fall["day"], spring["start"]).reindex(both, fill_value=0)
    dose = np.minimum(hm.to_numpy(), 6).astype(float)
    grade = pd.get_dummies(fall["Student Grade"], drop_first=True, dtype=float)
    school = pd.get_dummies(fall["School"], drop_first=True, dtype=float)
    x = np.column_stack([np.ones(len(both)), dose, fall["score"].to_numpy(float),
                         grade.to_numpy(), school.to_numpy()])
    y = spring["score"].to_numpy(float)
    coef, *_ = np.linalg.lstsq(x, y, rcond=None)
    resid = y - x @ coef
    sigma2 = resid @ resid / (len(y) - x.shape[1])
    se = np.sqrt(sigma2 * np.linalg.inv(x.T @ x)[1, 1])
    assert coef[1] - 1.96 * se < 2.0 < coef[1] + 1.96 * se
    assert se < 0.5


def test_example_timestamps_shift_local_dates() -> None:
    lexia = _read(EXAMPLE / "usage/lexia_core5_activity.csv")
    tz = ZoneInfo("America/Los_Angeles")
    utc = ZoneInfo("UTC")
    first = lexia.iloc[0]["activity_start_time"]
    parsed = datetime.strptime(first, "%Y-%m-%d %H:%M:%S").replace(tzinfo=utc)
    assert parsed.astimezone(tz).year == 2024
    t = json.loads((EXAMPLE / "truth.json").read_text(encoding="utf-8"))
    assert t["quirks"]["lexia"]["rows_crossing_midnight_utc"] > 100


@pytest.mark.slow
def test_benchmark_size_district_is_fast_enough() -> None:
    """20,000 students (the benchmark size) must generate in under 2 minutes (h1 brief).

    CPU time of this process, so that other jobs on a shared machine do not make it flaky.
    """
    start = time.process_time()
    files = build_sample_files(students=20_000, seed=1)
    elapsed = time.process_time() - start
    assert elapsed < 120, f"{elapsed:.0f} CPU s"
    truth = json.loads(files["truth.json"])
    assert truth["n_students"] == 20_000
    assert truth["quirks"]["lessons_ela"]["rows"] > 100_000
