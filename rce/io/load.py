"""Loading rosters and assessment exports into canonical tables; describing usage sources.

``load_roster`` and ``load_assessments`` read whole files (they are small: one row per student or
per test). Usage logs can be large; ``usage_sources`` only sniffs them and returns a
:class:`~rce.canonical.UsageSource` that ``rce.dosage`` reads with DuckDB.

Every repair is counted in the per-file :class:`FileReport` (blank IDs, exact duplicates, rows of
a re-export, rush-flagged tests excluded, date formats seen), so a report can say what was done.
"""

from __future__ import annotations

import glob
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rce.canonical import ASSESSMENT_COLUMNS, UsageSource
from rce.config import Plan
from rce.errors import DataError, InputFileError, LayoutError, PlanError
from rce.io import normalize as nz
from rce.io.presets import Layout, detect_layout, layout_by_name
from rce.io.readers import RawTable, read_table, sniff

#: Plausible range of the i-Ready vertical scale (data-formats.md §1.4).
IREADY_SCALE_RANGE = (100, 800)
PERCENTILE_RANGE = (1, 99)
#: Sentinel some exports write for "no score" (data-formats.md §1.4, math domains).
SCORE_SENTINELS = (999,)
#: Rows listed in a message before "and N more".
MAX_ROWS_SHOWN = 5


@dataclass(frozen=True)
class FileReport:
    """What loading one file found and repaired (counts only, never an ID)."""

    path: str
    layout: str
    kind: str
    rows: int
    students: int
    format: str = "csv"
    encoding: str = ""
    delimiter: str = ""
    duplicates_removed: int = 0
    reexport_rows_removed: int = 0
    rush_flagged: int = 0
    rush_excluded: int = 0
    blank_ids: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    date_formats: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return {
            "path": self.path,
            "layout": self.layout,
            "kind": self.kind,
            "rows": self.rows,
            "students": self.students,
            "format": self.format,
            "encoding": self.encoding,
            "delimiter": self.delimiter,
            "duplicates_removed": self.duplicates_removed,
            "reexport_rows_removed": self.reexport_rows_removed,
            "rush_flagged": self.rush_flagged,
            "rush_excluded": self.rush_excluded,
            "blank_ids": self.blank_ids,
            "counts": dict(self.counts),
            "date_formats": dict(self.date_formats),
        }


@dataclass(frozen=True)
class LoadedTable:
    """A canonical table built from one or more files, with what was done to each."""

    frame: pd.DataFrame
    files: tuple[FileReport, ...]
    kind: str
    notes: tuple[str, ...] = ()
    warnings: tuple[tuple[str, str], ...] = ()

    def to_frame(self) -> pd.DataFrame:
        """Per-file report as a table."""
        return pd.DataFrame([f.to_dict() for f in self.files])

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe summary (no rows of data)."""
        return {
            "kind": self.kind,
            "rows": len(self.frame),
            "files": [f.to_dict() for f in self.files],
            "notes": list(self.notes),
            "warnings": [{"code": c, "message": m} for c, m in self.warnings],
        }

    def summary(self) -> str:
        """Readable text."""
        lines = [f"{self.kind}: {len(self.frame)} rows from {len(self.files)} file(s)"]
        for f in self.files:
            lines.append(
                f"  {Path(f.path).name}: {f.layout}, {f.rows} rows, {f.students} students, "
                f"{f.duplicates_removed} duplicates removed, {f.rush_excluded} rush-flagged "
                "excluded"
            )
        lines += [f"  note: {n}" for n in self.notes]
        lines += [f"  warning [{c}]: {m}" for c, m in self.warnings]
        return "\n".join(lines)


# --- helpers -------------------------------------------------------------------------------------


def rows_text(rows: pd.Index | np.ndarray | list[int]) -> str:
    """"rows 5, 9, 12 and 40 more" from frame row positions (converted to spreadsheet rows)."""
    rows = [int(r) + 2 for r in list(rows)]
    shown = ", ".join(str(r) for r in rows[:MAX_ROWS_SHOWN])
    more = len(rows) - MAX_ROWS_SHOWN
    word = "row" if len(rows) == 1 else "rows"
    return f"{word} {shown}" + (f" and {more} more" if more > 0 else "")


def expand_paths(paths: str | Path | list[str | Path] | tuple[str | Path, ...],
                 plan: Plan | None = None) -> list[Path]:
    """Expand globs and resolve relative paths against the plan folder; keep order."""
    if isinstance(paths, str | Path):
        paths = [paths]
    out: list[Path] = []
    for p in paths:
        full = plan.resolve(str(p)) if plan is not None else Path(p)
        if any(ch in str(full) for ch in "*?["):
            hits = sorted(glob.glob(str(full)))
            if not hits:
                raise InputFileError(
                    "no file matches this pattern",
                    where=str(full),
                    hint="Check the folder and the pattern in rce.toml.",
                )
            out.extend(Path(h) for h in hits)
        else:
            out.append(full)
    return out


def to_number(text: pd.Series, delimiter: str = ",") -> pd.Series:
    """Numbers from text: "1,234" is a thousands separator, except in semicolon-delimited files
    where the comma is the decimal mark ("18,5"); a trailing "%" is dropped."""
    clean = text.str.strip().str.replace("%", "", regex=False)
    if delimiter == ";":
        clean = clean.str.replace(r"^(-?\d+),(\d+)$", r"\1.\2", regex=True)
    else:
        clean = clean.str.replace(",", "", regex=False)
    return pd.to_numeric(clean, errors="coerce").astype("float64")


def _numeric(table: RawTable, col: str, meaning: str) -> pd.Series:
    """Numbers from a text column; a non-numeric value is a :class:`DataError` naming rows."""
    text = table.frame[col]
    num = to_number(text, table.delimiter)
    bad = text.notna() & num.isna()
    if bad.any():
        raise DataError(
            f"{meaning} is not a number in {int(bad.sum())} row(s)",
            where=f"{table.path}, {rows_text(bad[bad].index)}, column {col!r}",
            hint="Remove text such as '--' or 'N/A' from the column (leave the cell blank), or "
            "run `rce validate` to list every problem.",
        )
    return num.astype("float64")


def _range_check(table: RawTable, values: pd.Series, col: str, meaning: str,
                 lo: float, hi: float) -> None:
    bad = values.notna() & ~values.between(lo, hi)
    if bad.any():
        raise DataError(
            f"{meaning} outside {lo:g}-{hi:g} in {int(bad.sum())} row(s)",
            where=f"{table.path}, {rows_text(bad[bad].index)}, column {col!r}",
            hint="Check that the column holds this measure (not another one shifted into it); "
            "blank out impossible values. `rce validate` lists every row.",
        )


def _dates(table: RawTable, col: str, meaning: str, *, required: bool = False) -> pd.Series:
    parsed = nz.parse_dates(table.frame[col])
    bad = table.frame[col].notna() & parsed.isna()
    if bad.any():
        raise DataError(
            f"{meaning} cannot be read as a date in {int(bad.sum())} row(s)",
            where=f"{table.path}, {rows_text(bad[bad].index)}, column {col!r}",
            hint="Dates must be month-first (MM/DD/YYYY, M/D/YYYY, MM-DD-YYYY), ISO "
            "(YYYY-MM-DD), DD-Mon-YY or Excel serial numbers.",
        )
    return parsed


def _require_rows(table: RawTable) -> None:
    if len(table.frame) == 0:
        raise InputFileError(
            "the file has a header but no data rows",
            where=f"{table.path}, row 2",
            hint="Export the report again with the right date range and filters.",
        )


def _read_and_detect(path: Path, plan: Plan, expect: str) -> tuple[RawTable, Layout]:
    table = read_table(path)
    layout = detect_layout(table.columns, plan=plan, hint=path.name, where=str(path))
    if layout.kind != expect:
        raise LayoutError(
            f"expected a {expect} file but this looks like a {layout.kind} export "
            f"({layout.description or layout.name})",
            where=str(path),
            hint=f"Give this file as --{'scores' if layout.kind == 'assessment' else layout.kind}"
            " (or under the matching key in rce.toml).",
        )
    _require_rows(table)
    return table, layout


def _id_counts(raw: pd.Series, norm: pd.Series) -> dict[str, int]:
    r = raw.dropna().str.strip()
    return {
        "ids_leading_zeros": int(r.str.fullmatch(r"0\d+").fillna(False).sum()),
        "ids_scientific_notation": int(r.str.fullmatch(r"[\d.]+[eE]\+?\d+").fillna(False).sum()),
        "ids_float_suffix": int(r.str.fullmatch(r"\d+\.0+").fillna(False).sum()),
        "ids_email": int(nz.is_email(r).sum()),
    }


# --- roster -------------------------------------------------------------------------------------

ROSTER_TEXT = ("ssid", "first_name", "last_name", "email", "school_code")


def _roster_frame(table: RawTable, layout: Layout) -> tuple[pd.DataFrame, FileReport]:
    f = table.frame
    c = layout.columns
    raw_id = f[c["student_id"]]
    sid = nz.normalize_student_id(raw_id)
    out = pd.DataFrame({"student_id": sid}, index=f.index)
    for k in ROSTER_TEXT:
        if k in c:
            out[k] = f[c[k]].str.strip()
    if "ssid" in out:
        out["ssid"] = nz.normalize_student_id(out["ssid"])
    if "email" in out:
        out["email"] = out["email"].str.lower()
    school = f[c["school"]] if "school" in c else (f[c["school_code"]] if "school_code" in c
                                                   else pd.Series(pd.NA, index=f.index,
                                                                  dtype="str"))
    out["school"] = school.astype("str")
    out["grade"] = nz.normalize_grade(f[c["grade"]]) if "grade" in c else pd.Series(
        pd.NA, index=f.index, dtype="Int64")
    out["gender"] = nz.normalize_gender(f[c["gender"]]) if "gender" in c else pd.Series(
        pd.NA, index=f.index, dtype="str")
    race_cols = [c[k] for k in ("race_1", "race_2", "race_3", "race_4", "race_5") if k in c]
    hisp = f[c["hispanic"]] if "hispanic" in c else None
    if race_cols or hisp is not None:
        race = f[race_cols] if race_cols else pd.DataFrame(index=f.index)
        out["race_ethnicity"] = nz.normalize_race_ethnicity(race, hisp)
    else:
        out["race_ethnicity"] = pd.Series(pd.NA, index=f.index, dtype="str")
    out["hispanic"] = nz.normalize_flag(hisp) if hisp is not None else (
        out["race_ethnicity"].eq("Hispanic").where(out["race_ethnicity"].notna()).astype(
            "boolean"))
    out["el_status"] = nz.normalize_el_status(f[c["el_status"]]) if "el_status" in c else \
        pd.Series(pd.NA, index=f.index, dtype="str")
    out["swd"] = nz.normalize_swd(f[c["swd"]]) if "swd" in c else pd.Series(
        pd.NA, index=f.index, dtype="boolean")
    out["econ_disadv"] = nz.normalize_econ_disadv(f[c["econ_disadv"]]) if "econ_disadv" in c \
        else pd.Series(pd.NA, index=f.index, dtype="boolean")
    for k in ("birthdate", "elas_start_date", "enter_date", "leave_date"):
        if k in c:
            out[k] = _dates(table, c[k], k.replace("_", " "))
    mapped = set(c.values())
    for col in f.columns:
        if col not in mapped and col not in out.columns:
            out[col] = f[col]
    out["source_file"] = str(table.path)
    out["source_row"] = f.index.to_numpy() + 2
    blank = sid.isna()
    counts = _id_counts(raw_id, sid)
    if "ssid" in out:
        counts["ssid_blank"] = int(out["ssid"].isna().sum())
    counts["grade_unrecognised"] = int((out["grade"].isna() & f[c["grade"]].notna()).sum()) \
        if "grade" in c else 0
    counts["gender_unrecognised"] = int((out["gender"].isna() & f[c["gender"]].notna()).sum()) \
        if "gender" in c else 0
    out = out.loc[~blank]
    before = len(out)
    canon_cols = [k for k in out.columns if k not in ("source_row",)]
    out = out.drop_duplicates(subset=canon_cols)
    report = FileReport(
        path=str(table.path), layout=layout.name, kind="roster", rows=len(f),
        students=int(out["student_id"].nunique()), format=table.format, encoding=table.encoding,
        delimiter=table.delimiter, duplicates_removed=before - len(out),
        blank_ids=int(blank.sum()), counts=counts,
        date_formats=nz.date_formats_seen(f[c["enter_date"]]) if "enter_date" in c else {},
    )
    return out.reset_index(drop=True), report


def load_roster(paths: str | Path | list[str | Path] | tuple[str | Path, ...],
                plan: Plan | None = None) -> LoadedTable:
    """Read one or more roster files into the canonical students table.

    The frame has :data:`rce.canonical.STUDENT_COLUMNS` plus ``ssid``, ``email``, names,
    ``birthdate``, ``elas_start_date``, ``enter_date`` / ``leave_date`` when present, and any other
    roster column under its own name. A student with several enrollments (mid-year transfer)
    keeps one row per enrollment; ``rce.prepare`` picks the one in force at the baseline test.
    The same roster given twice (e.g. the original and an Excel re-save) collapses to one copy.

    Raises
    ------
    RceError
        Unreadable file, unrecognised layout, a non-roster file, or unparseable dates.
    """
    plan = plan or Plan()
    frames, reports = [], []
    for p in expand_paths(paths, plan):
        table, layout = _read_and_detect(p, plan, "roster")
        frame, report = _roster_frame(table, layout)
        frames.append(frame)
        reports.append(report)
    if not frames:
        raise PlanError("no roster file given", where="inputs.roster",
                        hint="Add roster = \"sis/students.csv\" under [inputs] or use --roster.")
    frame = pd.concat(frames, ignore_index=True)
    notes = []
    if len(frames) > 1:
        key = [k for k in frame.columns if k not in ("source_file", "source_row")]
        before = len(frame)
        frame = frame.drop_duplicates(subset=key).reset_index(drop=True)
        if before - len(frame):
            notes.append(f"{before - len(frame)} roster rows repeated across files were merged.")
    moves = frame.groupby("student_id")["school"].nunique()
    if (moves > 1).any():
        notes.append(f"{int((moves > 1).sum())} students are enrolled at more than one school "
                     "(mid-year transfers); each is assigned the school at the baseline test.")
    blank = sum(r.blank_ids for r in reports)
    if blank:
        notes.append(f"{blank} roster rows without a student ID were dropped.")
    return LoadedTable(frame, tuple(reports), "roster", tuple(notes))


# --- assessments ------------------------------------------------------------------------------


def academic_year_of(dates: pd.Series) -> pd.Series:
    """"2024-2025" for dates from July 2024 to June 2025."""
    y = dates.dt.year
    start = y.where(dates.dt.month >= 7, y - 1)
    txt = start.astype("Int64").astype("str") + "-" + (start + 1).astype("Int64").astype("str")
    return txt.where(dates.notna())


def normalize_academic_year(series: pd.Series) -> pd.Series:
    """"2024-2025" from "2024-2025", "2024-25", "Academic Year 2024-2025", "2025" (spring year)."""
    s = series.astype("str")
    if len(s) > 64:
        # An export repeats a handful of year labels on every row: the regular expressions
        # run once per distinct label (0.2 s -> 5 ms on 56,000 rows).
        codes, labels = pd.factorize(s, use_na_sentinel=False)
        by_label = _normalize_academic_year(pd.Series(labels, dtype=s.dtype))
        return pd.Series(by_label.array.take(codes), index=series.index, dtype=by_label.dtype,
                         name=by_label.name)
    return _normalize_academic_year(s)


def _normalize_academic_year(series: pd.Series) -> pd.Series:
    s = series.str.strip()
    full = s.str.extract(r"(\d{4})\s*[-/–]\s*(\d{2,4})")
    start = pd.to_numeric(full[0], errors="coerce")
    single = pd.to_numeric(s.str.fullmatch(r"\d{4}").fillna(False).astype(bool).map(
        {True: 1, False: np.nan}) * pd.to_numeric(s, errors="coerce"), errors="coerce") - 1
    start = start.fillna(single)
    out = start.astype("Int64").astype("str") + "-" + (start + 1).astype("Int64").astype("str")
    return out.where(start.notna())


def window_of(dates: pd.Series, norming: pd.Series | None = None) -> pd.Series:
    """Testing window: from a norming-window label when given, else from the date.

    Dates: start of year to Nov 15 = fall; Nov 16 to the end of February = winter; March to
    June = spring (i-Ready's fall norming window ends Nov 15, data-formats.md §1.6; the winter and
    spring boundaries are approximate and only used when no label is given).
    """
    m, d = dates.dt.month, dates.dt.day
    fall = ((m >= 7) & (m <= 10)) | ((m == 11) & (d <= 15))
    winter = ((m == 11) & (d > 15)) | (m == 12) | (m <= 2)
    out = pd.Series(np.where(fall, "fall", np.where(winter, "winter", "spring")),
                    index=dates.index, dtype="str")
    out = out.where(dates.notna())
    if norming is not None:
        label = norming.astype("str").str.strip().str.lower().str.extract(
            r"^(fall|winter|spring|boy|moy|eoy|beginning|middle|end)", expand=False)
        label = label.replace({"boy": "fall", "beginning": "fall", "moy": "winter",
                               "middle": "winter", "eoy": "spring", "end": "spring"})
        out = label.fillna(out)
    return out


def _subject_values(series: pd.Series) -> pd.Series:
    s = series.astype("str").str.strip().str.lower()
    return s.replace({"reading": "ela", "english language arts": "ela", "ela/reading": "ela",
                      "language arts": "ela", "mathematics": "math"})


def _assessment_rows(table: RawTable, layout: Layout, cols: dict[str, str], plan: Plan,
                     subject: str) -> pd.DataFrame:
    """Canonical assessment rows from one block of columns (whole file or one YTD block)."""
    f = table.frame
    out = pd.DataFrame(index=f.index)
    out["raw_id"] = f[layout.columns["student_id"]]
    out["student_id"] = nz.normalize_student_id(out["raw_id"])
    if "subject" in layout.columns:
        out["subject"] = _subject_values(f[layout.columns["subject"]]).fillna(subject or pd.NA)
    else:
        out["subject"] = subject or plan.study.subject
    out["test_date"] = _dates(table, cols["test_date"], "the completion date")
    score = _numeric(table, cols["scale_score"], "the scale score")
    sentinel = score.isin(SCORE_SENTINELS)
    score = score.mask(sentinel)
    lo, hi = IREADY_SCALE_RANGE if layout.product == "i-Ready" else (-np.inf, np.inf)
    _range_check(table, score, cols["scale_score"], "the scale score", lo, hi)
    out["scale_score"] = score
    if "percentile" in cols:
        pct = _numeric(table, cols["percentile"], "the percentile")
        _range_check(table, pct, cols["percentile"], "the percentile", *PERCENTILE_RANGE)
        out["percentile"] = pct
    else:
        out["percentile"] = np.nan
    for k in ("typical_growth", "stretch_growth", "pct_typical_growth"):
        src = cols.get(k) or layout.columns.get(k)
        out[k] = (pd.to_numeric(f[src].str.replace("%", "", regex=False), errors="coerce")
                  if src else np.nan)
    for k in ("placement", "relative_placement"):
        out[k] = f[cols[k]] if k in cols else pd.Series(pd.NA, index=f.index, dtype="str")
    ay = layout.columns.get("academic_year")
    derived = academic_year_of(out["test_date"])
    out["academic_year"] = normalize_academic_year(f[ay]).fillna(derived) if ay else derived
    norming = f[layout.columns["window"]] if "window" in layout.columns else None
    out["window"] = window_of(out["test_date"], norming)
    rush = f[cols["rush_flag"]] if "rush_flag" in cols else None
    if rush is not None:
        rl = rush.str.strip().str.lower()
        out["rush_flag"] = (rl.notna() & ~rl.isin(["n", "no", "none", "false", "0"])).astype(bool)
    else:
        out["rush_flag"] = False
    for k in ("baseline_flag", "most_recent_flag"):
        src = cols.get(k)
        out[k] = nz.normalize_flag(f[src]) if src else pd.Series(pd.NA, index=f.index,
                                                                 dtype="boolean")
    gsrc = layout.columns.get("grade")
    out["grade"] = nz.normalize_grade(f[gsrc]) if gsrc else pd.Series(pd.NA, index=f.index,
                                                                      dtype="Int64")
    out["school"] = f[layout.columns["school"]] if "school" in layout.columns else pd.Series(
        pd.NA, index=f.index, dtype="str")
    for k in ("email", "first_name", "last_name"):
        out[k] = f[layout.columns[k]].str.strip() if k in layout.columns else pd.Series(
            pd.NA, index=f.index, dtype="str")
    out["source_file"] = str(table.path)
    out["source_row"] = f.index.to_numpy() + 2
    return out


def _assessment_file(table: RawTable, layout: Layout, plan: Plan
                     ) -> tuple[pd.DataFrame, FileReport]:
    subject = layout.subject
    f = table.frame
    repeated = f.duplicated()  # all 60-odd text columns: computed once, used twice
    raw_dups = int(repeated.sum())
    if layout.blocks:
        parts = []
        for label, block in layout.blocks.items():
            rows = _assessment_rows(table, layout, block, plan, subject)
            rows = rows.loc[rows["test_date"].notna() | rows["scale_score"].notna()]
            rows["most_recent_flag"] = pd.array([label == "Most Recent"] * len(rows),
                                                dtype="boolean")
            rows["block"] = label
            parts.append(rows)
        long = pd.concat(parts, ignore_index=True)
        # (Most Recent) repeats one of the numbered blocks; keep one row per test, flagged.
        key = ["raw_id", "test_date", "scale_score"]
        recent = long.loc[long["block"] == "Most Recent", key].assign(_recent=True)
        long = long.loc[long["block"] != "Most Recent"].merge(recent, on=key, how="left")
        long["most_recent_flag"] = long["_recent"].fillna(False).astype("boolean")
        long = long.drop(columns=["_recent", "block"])
        first = long.groupby("raw_id")["test_date"].transform("min")
        long["baseline_flag"] = (long["test_date"] == first).astype("boolean")
        out = long
        date_fmt = nz.date_formats_seen(f[layout.blocks["Most Recent"]["test_date"]])
    else:
        cols = {k: v for k, v in layout.columns.items()}
        out = _assessment_rows(table, layout, cols, plan, subject)
        date_fmt = nz.date_formats_seen(f[cols["test_date"]])
        out = out.loc[~repeated]
    blank = out["student_id"].isna()
    no_date = out["test_date"].isna() & ~blank
    counts = _id_counts(f[layout.columns["student_id"]], out["student_id"])
    counts["missing_test_date"] = int(no_date.sum())
    counts["score_sentinel_999"] = int(
        (f[layout.columns.get("scale_score", "")] == "999").sum()
        if "scale_score" in layout.columns else 0)
    out = out.loc[~blank & ~no_date]
    grades = out.dropna(subset=["grade"]).groupby(["student_id", "subject"])["grade"].nunique()
    counts["students_grade_changed"] = int((grades > 1).sum())
    if out["subject"].isna().any() or (out["subject"] == "").any():
        out["subject"] = out["subject"].replace("", pd.NA).fillna(plan.study.subject)
    rush_n = int(out["rush_flag"].sum())
    report = FileReport(
        path=str(table.path), layout=layout.name, kind="assessment", rows=len(f),
        students=int(out["student_id"].nunique()), format=table.format,
        encoding=table.encoding, delimiter=table.delimiter,
        duplicates_removed=raw_dups if not layout.blocks else 0,
        rush_flagged=rush_n, blank_ids=int(blank.sum()), counts=counts, date_formats=date_fmt,
    )
    return out, report


def load_assessments(paths: str | Path | list[str | Path] | tuple[str | Path, ...],
                     plan: Plan | None = None) -> LoadedTable:
    """Read benchmark exports into the canonical assessments table (one row per test).

    Exact duplicate rows are removed, and so are the rows of a re-export that repeat a test
    already read (same student, subject, date and score, whatever the date's format); both are
    counted. Rush-flagged tests are excluded when ``plan.outcomes.exclude_rush_flagged`` (the
    default) and counted per file. Scale scores outside 100-800 (i-Ready), percentiles outside
    1-99, non-numeric scores and unparseable dates raise :class:`~rce.errors.DataError` naming
    the file, rows and column. A score of 999 (a vendor sentinel) is read as missing.

    Returns
    -------
    LoadedTable
        ``frame`` has :data:`rce.canonical.ASSESSMENT_COLUMNS` plus ``raw_id`` (ID as written,
        for the roster resolver), ``grade``, ``school``, ``email``, names (for the optional
        crosswalk), ``source_file`` and ``source_row``.
    """
    plan = plan or Plan()
    frames: list[pd.DataFrame] = []
    reports: list[FileReport] = []
    for p in expand_paths(paths, plan):
        table, layout = _read_and_detect(p, plan, "assessment")
        frame, report = _assessment_file(table, layout, plan)
        frames.append(frame)
        reports.append(report)
    if not frames:
        raise PlanError("no score file given", where="inputs.scores",
                        hint="Add scores = [\"iready/diagnostic_results_ela.csv\"] under [inputs] "
                        "or use --scores.")
    frame = pd.concat(frames, ignore_index=True)
    key = ["student_id", "subject", "test_date", "scale_score"]
    dup = frame.duplicated(subset=key, keep="first")
    reexport = {}
    for path in frame.loc[dup, "source_file"]:
        reexport[path] = reexport.get(path, 0) + 1
    frame = frame.loc[~dup]
    excluded: dict[str, int] = {}
    if plan.outcomes.exclude_rush_flagged:
        rush = frame["rush_flag"]
        for path in frame.loc[rush, "source_file"]:
            excluded[path] = excluded.get(path, 0) + 1
        frame = frame.loc[~rush]
    reports = [
        FileReport(**{**r.__dict__, "reexport_rows_removed": reexport.get(r.path, 0),
                      "rush_excluded": excluded.get(r.path, 0)})
        for r in reports
    ]
    notes: list[str] = []
    warnings: list[tuple[str, str]] = []
    dups = sum(r.duplicates_removed for r in reports)
    rex = sum(reexport.values())
    if dups:
        notes.append(f"{dups} exact duplicate test rows were removed.")
    if rex:
        notes.append(f"{rex} test rows repeated in a re-export (same student, date and score) "
                     "were removed.")
    n_rush = sum(excluded.values())
    if n_rush:
        warnings.append(("RUSH_EXCLUDED", f"{n_rush} rush-flagged tests were excluded "
                         "(outcomes.exclude_rush_flagged = true)."))
    years = sorted(frame["academic_year"].dropna().unique())
    if any(y < "2024-2025" for y in years) and any(y >= "2024-2025" for y in years):
        warnings.append((
            "NORM_CHANGE",
            "Scores from before and after 2024-25 were loaded: i-Ready percentiles use new "
            "norms from 2024-25, so percentiles are not comparable across that boundary; "
            "compare scale scores instead.",
        ))
    cols = [c for c in ASSESSMENT_COLUMNS if c in frame.columns]
    rest = [c for c in frame.columns if c not in cols]
    frame = frame[cols + rest].reset_index(drop=True)
    return LoadedTable(frame, tuple(reports), "assessment", tuple(notes), tuple(warnings))


# --- usage ---------------------------------------------------------------------------------------

_STRPTIME = {
    "%Y-%m-%d": "%Y-%m-%d", "%m/%d/%Y": "%m/%d/%Y", "%m-%d-%Y": "%m-%d-%Y",
    "%m/%d/%y": "%m/%d/%y", "%d-%b-%y": "%d-%b-%y", "%d-%b-%Y": "%d-%b-%Y",
    "%Y/%m/%d": "%Y/%m/%d",
}


def _usage_files(entry_path: str, plan: Plan) -> list[Path]:
    return expand_paths([entry_path], plan)


def _academic_start_year(plan: Plan, sample: pd.DataFrame, layout: Layout) -> int:
    ay = layout.columns.get("academic_year")
    if ay and ay in sample.columns:
        vals = normalize_academic_year(sample[ay]).dropna()
        if len(vals):
            return int(vals.iloc[0][:4])
    if plan.study.academic_year:
        norm = normalize_academic_year(pd.Series([plan.study.academic_year])).iloc[0]
        if isinstance(norm, str):
            return int(norm[:4])
    raise PlanError(
        "the usage file gives months without years and the academic year is unknown",
        where="study.academic_year",
        hint='Set academic_year = "2024-2025" under [study] in rce.toml.',
    )


def usage_source_for(paths: list[Path], plan: Plan, *, product: str = "", layout_name: str = "auto",
                     subject: str = "") -> UsageSource:
    """Sniff usage export(s) and describe how to read them (see :func:`usage_sources`)."""
    # (DuckDB checks the encoding of the whole file as it reads it: see rce.dosage)
    first = sniff(paths[0], whole_file_encoding=False)
    hint = paths[0].name
    if layout_name and layout_name != "auto":
        layout = layout_by_name(layout_name, first.header, hint=hint, where=str(paths[0]))
    else:
        layout = detect_layout(first.header, plan=plan, hint=hint, where=str(paths[0]))
    if layout.kind != "usage":
        raise LayoutError(
            f"expected a usage export but this looks like a {layout.kind} file "
            f"({layout.description or layout.name})",
            where=str(paths[0]),
            hint="List it under the matching key in rce.toml (roster / scores).",
        )
    for other in paths[1:]:
        s = sniff(other, whole_file_encoding=False)
        if s.header != first.header:
            raise LayoutError(
                "files given for one usage product have different headers",
                where=f"{other}, row 1",
                hint=f"Compare with {paths[0].name}; give each layout as its own usage entry.",
            )
    sample = first.sample
    formats: list[str] = []
    date_col = layout.columns.get("date")
    if date_col:
        seen = nz.date_formats_seen(sample[date_col])
        for _pattern, fmt in nz.DATE_PATTERNS:
            if fmt in seen:
                formats.append(_STRPTIME[fmt])
    default = UsageSource.__dataclass_fields__["date_formats"].default
    for fmt in default:  # type: ignore[union-attr]
        if fmt not in formats:
            formats.append(fmt)
    tz = layout.timestamp_tz
    ts_col = layout.columns.get("timestamp")
    if ts_col and not tz:
        vals = sample[ts_col].dropna().astype("str")
        if len(vals) and vals.str.contains(r"(?:Z|[+-]00:?00)$", regex=True).all():
            tz = "UTC"
    monthly = dict(layout.monthly_columns)
    if monthly and any(y == 0 for y, _, _ in monthly.values()):
        start = _academic_start_year(plan, sample, layout)
        monthly = {h: (start if m >= 7 else start + 1, m, meas) for h, (y, m, meas) in
                   monthly.items()}
    return UsageSource(
        paths=tuple(str(p) for p in paths),
        product=product or layout.product or paths[0].stem,
        granularity=layout.granularity,
        columns=dict(layout.columns),
        file_format="parquet" if first.format == "parquet" else "csv",
        delimiter=first.delimiter or ",",
        encoding=first.encoding or "utf-8",
        timestamp_tz=tz,
        date_formats=tuple(formats),
        monthly_columns=monthly,
        dedupe_keys=layout.dedupe_keys,
        record_columns=layout.record_columns,
        subject=subject or layout.subject,
        layout=layout.name,
    )


def usage_sources(plan: Plan) -> list[UsageSource]:
    """One :class:`~rce.canonical.UsageSource` per ``[[inputs.usage]]`` entry of the plan.

    Each entry's file(s) are sniffed (header, delimiter, encoding, date formats in the first
    rows), the layout is detected (or taken from ``layout = "..."``), and the result tells
    ``rce.dosage`` which canonical column is which header. ``columns`` may also hold
    ``product`` (a column naming the product per row, Clever resource usage), ``email``,
    ``vendor_id``, ``active`` (Clever: only active days count) and ``end_date`` (weekly rows).
    ``date_formats`` lists the strptime formats seen in the sniffed rows first, then the
    defaults (Excel serial day numbers are not a strptime format; ``rce.dosage`` reads them).

    Raises
    ------
    RceError
        A usage file cannot be read, its layout is unknown, or files of one entry differ.
    """
    out = []
    for entry in plan.inputs.usage:
        paths = _usage_files(entry.path, plan)
        for p in paths:
            if not p.exists() or p.is_dir():
                sniff(p)  # raises the InputFileError with the right message
        out.append(usage_source_for(paths, plan, product=entry.product, layout_name=entry.layout,
                                    subject=entry.subject))
    return out

