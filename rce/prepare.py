"""From canonical tables to the analysis frame: one row per scored student.

Steps (each counted in the join report):

1. resolve every ID of the score files to a roster student (:func:`rce.io.normalize.resolve_ids`,
   then the optional crosswalk on e-mail or name + birth date);
2. keep the study's subject and academic year;
3. per student pick the baseline test (the vendor's baseline flag within the baseline window,
   else the earliest test in that window, else the flagged or earliest test) and the outcome
   test (the most-recent flag within the outcome window, else the latest test in that window);
   students with a single test are counted;
4. attach demographics and school as of the baseline test (mid-year transfers get the school of
   the enrollment that contains the baseline date; an RFEP status that starts after the baseline
   counts as EL at baseline).

Usage is joined later by ``rce.dosage``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from rce.canonical import ANALYSIS_COLUMNS
from rce.config import Plan
from rce.errors import DataError
from rce.io.load import LoadedTable
from rce.io.normalize import resolve_ids
from rce.jsonsafe import json_tree

#: Columns this module fills (dosage adds the rest of ANALYSIS_COLUMNS).
PREPARE_COLUMNS = ANALYSIS_COLUMNS[: ANALYSIS_COLUMNS.index("pct_typical_growth") + 1]

UNMATCHED_REASONS = ("blank", "not_in_roster", "email_only", "ambiguous")


@dataclass(frozen=True)
class AnalysisFrame:
    """The per-student frame and what it took to build it.

    Attributes
    ----------
    frame
        One row per student with a baseline and an outcome test: the columns of
        :data:`PREPARE_COLUMNS` (plus ``subject``, ``academic_year``, ``baseline_window``,
        ``outcome_window``).
    join
        ``students_scored`` and per score file: rows, students, matched rows, match rate,
        unmatched rows by reason, rows matched through the crosswalk; plus selection counts.
    notes
        Caveats in plain sentences.
    warnings
        (code, message) pairs: ``LOW_MATCH_RATE``, ``NORM_CHANGE``, ``RUSH_EXCLUDED``, ...
    gate_failed
        True when a match rate is below ``join.min_match_rate`` and
        ``join.enforce_min_match_rate`` is set: the CLI then exits 1.
    """

    frame: pd.DataFrame
    join: dict[str, Any]
    notes: tuple[str, ...] = ()
    warnings: tuple[tuple[str, str], ...] = ()
    gate_failed: bool = False

    def to_frame(self) -> pd.DataFrame:
        """The analysis frame (a copy)."""
        return self.frame.copy()

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe summary: the join report, notes and warnings (no per-student rows)."""
        return {
            "join": json_tree(self.join),
            "notes": list(self.notes),
            "warnings": [{"code": c, "message": m} for c, m in self.warnings],
            "gate_failed": self.gate_failed,
        }

    def summary(self) -> str:
        """Readable text."""
        j = self.join
        lines = [f"Students scored (baseline and outcome): {j['students_scored']}"]
        for f in j["files"]:
            rate = f["match_rate"]
            rate_txt = "n/a" if rate is None else f"{rate:.1%}"
            reasons = ", ".join(f"{k} {v}" for k, v in f["unmatched"].items() if v) or "none"
            lines.append(f"  {f['path']}: {f['rows']} rows, match rate {rate_txt} "
                         f"(unmatched: {reasons})")
        lines += [f"  note: {n}" for n in self.notes]
        lines += [f"  warning [{c}]: {m}" for c, m in self.warnings]
        return "\n".join(lines)


# --- ID resolution ----------------------------------------------------------------------------


def _crosswalk(unmatched: pd.DataFrame, roster: pd.DataFrame) -> pd.Series:
    """Roster IDs for unmatched score rows through e-mail or name + birth date (unique only)."""
    out = pd.Series(pd.NA, index=unmatched.index, dtype="str")
    r = roster.drop_duplicates("student_id")
    if "email" in unmatched and "email" in r:
        em = r.dropna(subset=["email"]).assign(email=lambda d: d["email"].str.lower())
        em = em.loc[~em["email"].duplicated(keep=False)].set_index("email")["student_id"]
        out = out.fillna(unmatched["email"].str.lower().map(em))
    name_cols = ["last_name", "first_name", "birthdate"]
    if all(c in unmatched for c in name_cols) and all(c in r for c in name_cols):
        key_r = (r["last_name"].str.strip().str.lower() + "|" +
                 r["first_name"].str.strip().str.lower() + "|" + r["birthdate"].astype("str"))
        m = pd.Series(r["student_id"].to_numpy(), index=key_r.to_numpy())
        m = m[~m.index.duplicated(keep=False)]
        key_u = (unmatched["last_name"].str.strip().str.lower() + "|" +
                 unmatched["first_name"].str.strip().str.lower() + "|" +
                 unmatched["birthdate"].astype("str"))
        out = out.fillna(key_u.map(m))
    return out


def resolve_table(rows: pd.DataFrame, roster: pd.DataFrame, *, crosswalk: bool = False
                  ) -> pd.DataFrame:
    """Add ``roster_id``, ``match`` and ``reason`` to score rows (works on distinct raw IDs)."""
    ids = resolve_ids(rows["raw_id"], roster).set_index("raw_id")
    raw = rows["raw_id"].astype("str")
    out = rows.assign(
        roster_id=raw.map(ids["student_id"]).astype("str"),
        match=raw.map(ids["match"]).astype("str"),
        reason=raw.map(ids["reason"]).astype("str"),
    )
    # A raw value of NA maps through the NA row of the resolver.
    blank = raw.isna()
    out.loc[blank, "reason"] = "blank"
    if crosswalk:
        todo = out["roster_id"].isna() & out["reason"].ne("blank").fillna(True)
        if todo.any():
            found = _crosswalk(out.loc[todo], roster)
            hit = found.notna()
            idx = found.index[hit]
            out.loc[idx, "roster_id"] = found[hit]
            out.loc[idx, "match"] = "crosswalk"
            out.loc[idx, "reason"] = pd.NA
    return out


# --- selection ----------------------------------------------------------------------------------


def _pick(tests: pd.DataFrame, plan: Plan) -> tuple[pd.DataFrame, dict[str, int]]:
    """Baseline and outcome test per student (one row each)."""
    t = tests.sort_values(["roster_id", "test_date", "source_row"], kind="stable")
    bw, ow = plan.outcomes.baseline_window, plan.outcomes.outcome_window
    base_flag = t["baseline_flag"].fillna(False).astype(bool)
    in_bw = t["window"].eq(bw).fillna(False).astype(bool)
    # Priority: the vendor's baseline inside the baseline window, then the earliest test in the
    # window, then the vendor's baseline elsewhere, then the earliest test.
    t = t.assign(_bprio=np.where(in_bw, np.where(base_flag, 0, 1), np.where(base_flag, 2, 3)))
    base = (t.sort_values(["roster_id", "_bprio", "test_date"], kind="stable")
            .drop_duplicates("roster_id"))
    in_ow = t["window"].eq(ow).fillna(False).astype(bool)
    recent = t["most_recent_flag"].fillna(False).astype(bool)
    cand = t.loc[in_ow].assign(_oprio=np.where(recent[in_ow], 0, 1))
    outc = (cand.sort_values(["roster_id", "_oprio", "test_date"], ascending=[True, True, False],
                             kind="stable").drop_duplicates("roster_id"))
    n_tests = t.groupby("roster_id").size()
    merged = base.set_index("roster_id").join(outc.set_index("roster_id"), how="inner",
                                              suffixes=("_b", "_o"))
    same = merged["test_date_b"] >= merged["test_date_o"]
    counts = {
        "students_with_tests": int(n_tests.size),
        "students_one_test": int((n_tests == 1).sum()),
        "students_no_outcome_in_window": int(n_tests.size - outc["roster_id"].nunique()),
        "students_baseline_not_before_outcome": int(same.sum()),
    }
    merged = merged.loc[~same]
    counts["students_baseline_outside_window"] = int((merged["window_b"] != bw).sum())
    return merged, counts


def _as_of(roster: pd.DataFrame, when: pd.Series) -> pd.DataFrame:
    """Roster row in force on each student's baseline date (index: student_id)."""
    r = roster.assign(_date=roster["student_id"].map(when))
    inside = pd.Series(True, index=r.index)
    if "enter_date" in r:
        inside &= r["enter_date"].isna() | (r["enter_date"] <= r["_date"]).fillna(True)
    if "leave_date" in r:
        inside &= r["leave_date"].isna() | (r["leave_date"] >= r["_date"]).fillna(True)
    # Prefer the enrollment that contains the date; else the latest one that began before it.
    order = pd.Series(np.where(inside, 0, 1), index=r.index)
    enter = r["enter_date"] if "enter_date" in r else pd.Series(pd.NaT, index=r.index)
    r = r.assign(_o=order, _e=enter)
    r = r.sort_values(["student_id", "_o", "_e"], ascending=[True, True, False],
                      kind="stable", na_position="last")
    picked = r.drop_duplicates("student_id").set_index("student_id")
    if "elas_start_date" in picked:
        later = (picked["el_status"].eq("RFEP").fillna(False)
                 & (picked["elas_start_date"] > picked["_date"]).fillna(False))
        picked.loc[later, "el_status"] = "EL"
    return picked


def build_analysis_frame(roster: LoadedTable, assessments: LoadedTable, plan: Plan | None = None
                         ) -> AnalysisFrame:
    """Join scores to the roster and pick each student's baseline and outcome test.

    Parameters
    ----------
    roster
        From :func:`rce.io.load_roster`.
    assessments
        From :func:`rce.io.load_assessments`.
    plan
        Study plan: ``study.subject`` / ``study.academic_year`` select the tests (the latest year
        present when blank); ``outcomes.*`` the windows; ``join.*`` the match-rate gate;
        ``inputs.crosswalk`` the fallback matching.

    Returns
    -------
    AnalysisFrame

    Raises
    ------
    DataError
        No test of the study's subject, or no student with both a baseline and an outcome test.
    """
    plan = plan or Plan()
    notes = list(roster.notes) + list(assessments.notes)
    warnings = list(assessments.warnings)
    rframe = roster.frame
    tests = resolve_table(assessments.frame, rframe, crosswalk=plan.inputs.crosswalk)

    files = []
    gate_failed = False
    for rep in assessments.files:
        rows = tests.loc[tests["source_file"] == rep.path]
        matched = int(rows["roster_id"].notna().sum())
        n_rows = len(rows) + rep.blank_ids
        unmatched = {k: int((rows["reason"] == k).sum()) for k in UNMATCHED_REASONS}
        unmatched["blank"] += rep.blank_ids
        rate = matched / n_rows if n_rows else None
        files.append({
            "path": rep.path,
            "rows": n_rows,
            "students": int(rows["raw_id"].nunique()),
            "matched": matched,
            "match_rate": rate,
            "unmatched": unmatched,
            "matched_by": {k: int((rows["match"] == k).sum())
                           for k in ("exact", "state_id", "email", "prefix", "crosswalk")},
        })
        if rate is not None and rate < plan.join.min_match_rate:
            msg = (f"Only {rate:.1%} of the rows of {rep.path} match the roster (minimum "
                   f"{plan.join.min_match_rate:.0%}); unmatched rows by reason: "
                   + ", ".join(f"{k} {v}" for k, v in unmatched.items() if v) + ".")
            warnings.append(("LOW_MATCH_RATE", msg))
            if plan.join.enforce_min_match_rate:
                gate_failed = True
    xw = sum(f["matched_by"]["crosswalk"] for f in files)
    if plan.inputs.crosswalk:
        notes.append(f"The crosswalk (e-mail or name + birth date) matched {xw} score rows.")

    tests = tests.loc[tests["roster_id"].notna()]
    subject = plan.study.subject
    tests = tests.loc[tests["subject"].eq(subject).fillna(False).astype(bool)]
    if tests.empty:
        raise DataError(
            f"no matched test of subject {subject!r} in the score files",
            where="study.subject",
            hint="Set subject under [study] to the subject of the score file (\"ela\" or "
            "\"math\"), or check that the score IDs match the roster.",
        )
    year = plan.study.academic_year
    if year:
        from rce.io.load import normalize_academic_year

        year = str(normalize_academic_year(pd.Series([year])).iloc[0])
    else:
        year = str(max(tests["academic_year"].dropna()))
        notes.append(f"Academic year {year} (the latest in the score files) was analysed.")
    prior = tests.loc[tests["academic_year"] < year]
    tests = tests.loc[tests["academic_year"] == year]
    if (year >= "2024-2025" and not prior.empty and "percentile" in plan.outcomes.measures
            and not any(c == "NORM_CHANGE" for c, _ in warnings)):
        warnings.append(("NORM_CHANGE", "Percentiles before 2024-25 use the old i-Ready norms; "
                         "do not compare them with 2024-25 percentiles."))

    picked, counts = _pick(tests, plan)
    if picked.empty:
        raise DataError(
            "no student has both a baseline and an outcome test",
            where="outcomes.baseline_window / outcome_window",
            hint=f"Baseline window is {plan.outcomes.baseline_window!r} and outcome window "
            f"{plan.outcomes.outcome_window!r}; check the test dates or set the windows in "
            "[outcomes].",
        )
    demo = _as_of(rframe, picked["test_date_b"])
    sid = picked.index.to_series()
    frame = pd.DataFrame({
        "student_id": sid.to_numpy(),
        "school": sid.map(demo["school"]).to_numpy(),
        "grade": sid.map(demo["grade"]).astype("Int64").to_numpy(),
        "race_ethnicity": sid.map(demo["race_ethnicity"]).to_numpy(),
        "el_status": sid.map(demo["el_status"]).to_numpy(),
        "gender": sid.map(demo["gender"]).to_numpy(),
        "swd": sid.map(demo["swd"]).astype("boolean").to_numpy(),
        "econ_disadv": sid.map(demo["econ_disadv"]).astype("boolean").to_numpy(),
        "baseline_date": picked["test_date_b"].to_numpy(),
        "outcome_date": picked["test_date_o"].to_numpy(),
        "baseline_scale_score": picked["scale_score_b"].to_numpy(),
        "outcome_scale_score": picked["scale_score_o"].to_numpy(),
        "baseline_percentile": picked["percentile_b"].to_numpy(),
        "outcome_percentile": picked["percentile_o"].to_numpy(),
    })
    gain = frame["outcome_scale_score"] - frame["baseline_scale_score"]
    typical = picked["typical_growth_b"].to_numpy()
    computed = np.where(typical > 0, 100 * gain.to_numpy() / np.where(typical > 0, typical, 1),
                        np.nan)
    # The vendor's own percent-progress on the outcome test wins over the computed one.
    vendor = picked["pct_typical_growth_o"].to_numpy()
    frame["pct_typical_growth"] = np.where(~np.isnan(vendor), vendor, computed)
    for col in ("school", "race_ethnicity", "el_status", "gender"):
        frame[col] = frame[col].astype("str")
    frame["subject"] = subject
    frame["academic_year"] = year
    frame["baseline_window"] = picked["window_b"].to_numpy()
    frame["outcome_window"] = picked["window_o"].to_numpy()
    frame = frame.sort_values("student_id", kind="stable").reset_index(drop=True)

    if counts["students_one_test"]:
        notes.append(f"{counts['students_one_test']} students took only one test this year and "
                     "have no gain.")
    if counts["students_baseline_outside_window"]:
        notes.append(f"{counts['students_baseline_outside_window']} students have no "
                     f"{plan.outcomes.baseline_window} test; their baseline is the vendor's "
                     "baseline or their earliest test.")
    if counts["students_no_outcome_in_window"]:
        notes.append(f"{counts['students_no_outcome_in_window']} students have no "
                     f"{plan.outcomes.outcome_window} test and are not scored.")
    join = {
        "students_scored": len(frame),
        "subject": subject,
        "academic_year": year,
        "files": files,
        "crosswalk_matched": xw,
        **counts,
    }
    return AnalysisFrame(frame, join, tuple(notes), tuple(warnings), gate_failed)
