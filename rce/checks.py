"""Data checks behind ``rce validate``: vectorised rules over the tables the readers load.

Each check looks at one file (read by the same readers as ``rce analyze``, so "validate passed"
means "analyze will read it") and returns :class:`Finding` objects: severity, a stable code,
file, spreadsheet row numbers (header = row 1; the first few only, plus a count), column,
message and hint. No finding ever contains a cell value from an ID or name column; vocabulary
findings count unknown values instead of echoing them, because a shifted column can put a name
where a code should be.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from rce.config import Plan
from rce.io import normalize as nz
from rce.io.load import (
    IREADY_SCALE_RANGE,
    PERCENTILE_RANGE,
    SCORE_SENTINELS,
    normalize_academic_year,
    to_number,
)
from rce.io.presets import Layout
from rce.io.readers import RawTable

SEVERITIES = ("error", "warning", "info")
#: Spreadsheet rows listed per finding; the rest are counted.
MAX_ROWS = 5
#: Minutes in one usage row above which the row is implausible (a school day is ~400 minutes).
MAX_PLAUSIBLE_MINUTES = 600
#: Minutes for one lesson / event above which it is an outlier worth a note.
LESSON_OUTLIER_MINUTES = 120


@dataclass(frozen=True)
class Finding:
    """One problem (or fact) found in one file."""

    severity: str
    code: str
    file: str
    message: str
    hint: str = ""
    column: str = ""
    rows: tuple[int, ...] = ()
    count: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return {
            "severity": self.severity,
            "code": self.code,
            "file": self.file,
            "rows": list(self.rows),
            "count": self.count,
            "column": self.column or None,
            "message": self.message,
            "hint": self.hint or None,
        }


@dataclass
class FileContext:
    """What the checks of one file share."""

    table: RawTable
    layout: Layout
    plan: Plan
    findings: list[Finding] = field(default_factory=list)
    checks_run: list[str] = field(default_factory=list)
    _local_dates: dict[str, pd.Series] = field(default_factory=dict)

    def local_dates(self, col: str) -> pd.Series:
        """District-local dates of a date or timestamp column (parsed once per file)."""
        if col not in self._local_dates:
            s = self.frame[col]
            if col == self.layout.columns.get("timestamp"):
                self._local_dates[col] = nz.parse_timestamps_local(
                    s, source_tz=self.layout.timestamp_tz, local_tz=self.plan.study.timezone)
            else:
                self._local_dates[col] = nz.parse_dates(s)
        return self._local_dates[col]

    @property
    def file(self) -> str:
        return str(self.table.path)

    @property
    def frame(self) -> pd.DataFrame:
        return self.table.frame

    def add(self, severity: str, code: str, message: str, *, hint: str = "", column: str = "",
            mask: pd.Series | None = None) -> None:
        rows: tuple[int, ...] = ()
        count = 0
        if mask is not None:
            idx = np.flatnonzero(mask.fillna(False).to_numpy(dtype=bool))
            count = int(idx.size)
            rows = tuple(int(i) + 2 for i in idx[:MAX_ROWS])
        self.findings.append(Finding(severity, code, self.file, message, hint, column, rows,
                                     count))


Check = Callable[[FileContext], None]


def _col(ctx: FileContext, canon: str) -> str | None:
    col = ctx.layout.columns.get(canon)
    return col if col in ctx.frame.columns else None


def _rows_word(n: int) -> str:
    return f"{n} row" + ("" if n == 1 else "s")


# --- checks ---------------------------------------------------------------------------------


def check_rows(ctx: FileContext) -> None:
    """NO_ROWS: a header without data."""
    if len(ctx.frame) == 0:
        ctx.add("error", "NO_ROWS", "the file has a header but no data rows",
                hint="Export the report again with the right date range and filters.")


def check_ids(ctx: FileContext) -> None:
    """ID_BLANK, ID_SCIENTIFIC, ID_LEADING_ZEROS, ID_EMAIL, ID_PATTERN."""
    col = _col(ctx, "student_id")
    if col is None:
        return
    s = ctx.frame[col]
    blank = s.isna()
    if blank.any():
        sev = "error" if ctx.layout.kind == "roster" else "warning"
        ctx.add(sev, "ID_BLANK", f"no student ID in {_rows_word(int(blank.sum()))}",
                hint="These rows cannot be joined to the roster"
                + (" (Clever leaves sis_id blank for deactivated users)."
                   if ctx.layout.name.startswith("clever") else "; fill in the ID."),
                column=col, mask=blank)
    txt = s.dropna()
    sci = s.str.fullmatch(r"[+-]?\d+(\.\d+)?[eE]\+?\d+")
    if sci.fillna(False).any():
        ctx.add("warning", "ID_SCIENTIFIC",
                f"IDs in scientific notation (e.g. 4.5E+05) in {_rows_word(int(sci.sum()))}",
                hint="Excel turned long numbers into scientific notation and may have lost digits;"
                " format the column as Text and export again.", column=col, mask=sci)
    zeros = s.str.fullmatch(r"0\d+")
    if zeros.fillna(False).any():
        ctx.add("info", "ID_LEADING_ZEROS",
                f"IDs with leading zeros in {_rows_word(int(zeros.sum()))}",
                hint="rce drops leading zeros before joining (Excel removes them in other files),"
                " so 004512 and 4512 are the same student.", column=col, mask=zeros)
    email = nz.is_email(s.fillna(""))
    if email.any():
        ctx.add("info" if email.all() or ctx.layout.kind == "usage" else "warning", "ID_EMAIL",
                f"an e-mail address as the student ID in {_rows_word(int(email.sum()))}",
                hint="E-mail IDs join only through a roster that has an Email column.",
                column=col, mask=email)
    if len(txt) >= 5:
        digits = txt.str.fullmatch(r"\d+(\.0+)?")
        share = float(digits.mean())
        if 0.8 <= share < 1:
            odd = s.notna() & ~s.str.fullmatch(r"\d+(\.0+)?").fillna(False) & ~email
            odd &= ~sci.fillna(False)
            if odd.any():
                ctx.add("warning", "ID_PATTERN",
                        f"an ID that is not a number in {_rows_word(int(odd.sum()))}, while "
                        f"{share:.0%} of the IDs are numbers",
                        hint="Check for a shifted column (a school or name in the ID column) or "
                        "a prefix such as 'student_'.", column=col, mask=odd)


def check_duplicates(ctx: FileContext) -> None:
    """DUPLICATE_ROWS (exact) and, in rosters, DUPLICATE_STUDENTS."""
    dup = ctx.frame.duplicated()
    if dup.any():
        ctx.add("warning", "DUPLICATE_ROWS",
                f"exact repeats of an earlier row: {_rows_word(int(dup.sum()))}",
                hint="rce removes exact duplicates and counts them; check the export if there "
                "are many.", mask=dup)
    col = _col(ctx, "student_id")
    if ctx.layout.kind == "roster" and col:
        ids = nz.normalize_student_id(ctx.frame[col])
        again = ids.notna() & ids.duplicated(keep="first") & ~dup
        if again.any():
            dated = "enter_date" in ctx.layout.columns
            ctx.add("info" if dated else "warning", "DUPLICATE_STUDENTS",
                    f"a student already listed appears again in {_rows_word(int(again.sum()))}",
                    hint="Several enrollments per student are fine when Enter/Leave dates say "
                    "which applies (mid-year transfers)." if dated else
                    "Give Enter Date / Leave Date columns, or keep one row per student.",
                    column=col, mask=again)
    date_col, score_col = _col(ctx, "test_date"), _col(ctx, "scale_score")
    if ctx.layout.kind == "assessment" and col and date_col and score_col:
        # Two different scores for one student on one test date: the export merged two
        # attempts or two students; which one rce keeps would be arbitrary.
        keys = [c for c in (col, _col(ctx, "subject"), date_col) if c]
        frame = ctx.frame[[*keys, score_col]].assign(
            **{col: nz.normalize_student_id(ctx.frame[col])})
        frame = frame[frame[col].notna() & frame[score_col].notna()]
        n_scores = frame.groupby(keys, dropna=False, sort=False)[score_col].transform("nunique")
        conflict = (n_scores > 1).reindex(ctx.frame.index, fill_value=False)
        if conflict.any():
            ctx.add("warning", "CONFLICTING_SCORES",
                    f"one student has different scores on the same test date in "
                    f"{_rows_word(int(conflict.sum()))}",
                    hint="Keep one attempt per student and test date (the export may merge "
                    "retakes or two students under one ID).", column=score_col, mask=conflict)


def _numeric_check(ctx: FileContext, canon: str, label: str) -> pd.Series | None:
    col = _col(ctx, canon)
    if col is None:
        return None
    s = ctx.frame[col]
    num = to_number(s, ctx.table.delimiter)
    bad = s.notna() & num.isna()
    if bad.any():
        ctx.add("error", "NOT_NUMERIC", f"{label} is not a number in {_rows_word(int(bad.sum()))}",
                hint="Leave the cell blank when there is no value; remove text such as 'N/A'.",
                column=col, mask=bad)
    return num


def check_scores(ctx: FileContext) -> None:
    """NOT_NUMERIC, SCORE_RANGE, SCORE_SENTINEL, PERCENTILE_RANGE (assessment files)."""
    if ctx.layout.kind != "assessment":
        return
    cols: list[tuple[str, str]] = []
    if ctx.layout.blocks:
        for label, block in ctx.layout.blocks.items():
            cols += [(block["scale_score"], f"scale score ({label})")]
            if "percentile" in block:
                cols += [(block["percentile"], f"percentile ({label})")]
    else:
        cols.append((ctx.layout.columns["scale_score"], "the scale score"))
        if "percentile" in ctx.layout.columns:
            cols.append((ctx.layout.columns["percentile"], "the percentile"))
    iready = ctx.layout.product == "i-Ready"
    for col, label in cols:
        s = ctx.frame[col]
        num = to_number(s, ctx.table.delimiter)
        bad = s.notna() & num.isna()
        if bad.any():
            ctx.add("error", "NOT_NUMERIC", f"{label} is not a number in "
                    f"{_rows_word(int(bad.sum()))}",
                    hint="Leave the cell blank when there is no score; remove text such as "
                    "'N/A'.", column=col, mask=bad)
        if "percentile" in label:
            out = num.notna() & ~num.between(*PERCENTILE_RANGE)
            if out.any():
                ctx.add("error", "PERCENTILE_RANGE",
                        f"{label} outside 1-99 in {_rows_word(int(out.sum()))}",
                        hint="Percentile ranks run from 1 to 99; check for a shifted column.",
                        column=col, mask=out)
        else:
            sentinel = num.isin(SCORE_SENTINELS)
            if sentinel.any():
                ctx.add("warning", "SCORE_SENTINEL",
                        f"{label} is 999 (a 'no score' code) in {_rows_word(int(sentinel.sum()))}",
                        hint="rce reads 999 as a missing score.", column=col, mask=sentinel)
            if iready:
                out = num.notna() & ~sentinel & ~num.between(*IREADY_SCALE_RANGE)
                if out.any():
                    ctx.add("error", "SCORE_RANGE",
                            f"{label} outside the i-Ready scale 100-800 in "
                            f"{_rows_word(int(out.sum()))}",
                            hint="Check for a shifted column or a score from another test.",
                            column=col, mask=out)


def check_minutes(ctx: FileContext) -> None:
    """NOT_NUMERIC, MINUTES_NEGATIVE, MINUTES_IMPLAUSIBLE, MINUTES_OUTLIER (usage files)."""
    if ctx.layout.kind != "usage":
        return
    for header, (_, _, measure) in ctx.layout.monthly_columns.items():
        s = ctx.frame[header]
        bad = s.notna() & to_number(s, ctx.table.delimiter).isna()
        if bad.any():
            ctx.add("error", "NOT_NUMERIC",
                    f"the monthly {measure.replace('_', ' ')} is not a number in "
                    f"{_rows_word(int(bad.sum()))}",
                    hint="Leave the cell blank or 0 when there was no use.", column=header,
                    mask=bad)
    num = _numeric_check(ctx, "minutes", "minutes")
    if num is None:
        return
    col = ctx.layout.columns["minutes"]
    neg = num < 0
    if neg.any():
        ctx.add("error", "MINUTES_NEGATIVE", f"minutes are negative in "
                f"{_rows_word(int(neg.sum()))}", hint="Time cannot be negative; check the export.",
                column=col, mask=neg)
    big = num > MAX_PLAUSIBLE_MINUTES
    if big.any():
        ctx.add("warning", "MINUTES_IMPLAUSIBLE",
                f"more than {MAX_PLAUSIBLE_MINUTES} minutes in one row in "
                f"{_rows_word(int(big.sum()))}",
                hint="Probably a session left open; rce keeps the rows but check the export.",
                column=col, mask=big)
    if ctx.layout.granularity in ("lesson", "event"):
        long = (num > LESSON_OUTLIER_MINUTES) & ~big
        if long.any():
            ctx.add("info", "MINUTES_OUTLIER",
                    f"more than {LESSON_OUTLIER_MINUTES} minutes for one "
                    f"{ctx.layout.granularity} in {_rows_word(int(long.sum()))}",
                    hint="Long lessons are usually an idle browser tab.", column=col, mask=long)
    for canon in ("sessions", "lessons_completed", "lessons_passed"):
        _numeric_check(ctx, canon, canon.replace("_", " "))


def _academic_year_bounds(ctx: FileContext, dates: pd.Series) -> tuple[pd.Timestamp, pd.Timestamp
                                                                       ] | None:
    # The file's own Academic Year column wins (a prior-year file checked with this year's plan).
    year = ""
    if "academic_year" in ctx.layout.columns:
        vals = normalize_academic_year(ctx.frame[ctx.layout.columns["academic_year"]]).dropna()
        year = str(vals.mode().iloc[0]) if len(vals) else ""
    year = year or ctx.plan.study.academic_year
    if year:
        norm = normalize_academic_year(pd.Series([year])).iloc[0]
        if isinstance(norm, str):
            start = int(norm[:4])
            return pd.Timestamp(start, 7, 1), pd.Timestamp(start + 1, 6, 30)
    d = dates.dropna()
    if d.empty:
        return None
    # Without a stated year, take the academic year most dates fall in.
    ay = (d.dt.year.where(d.dt.month >= 7, d.dt.year - 1)).mode().iloc[0]
    return pd.Timestamp(int(ay), 7, 1), pd.Timestamp(int(ay) + 1, 6, 30)


def _date_columns(ctx: FileContext) -> list[tuple[str, str]]:
    out = []
    if ctx.layout.blocks:
        for label, block in ctx.layout.blocks.items():
            out.append((block["test_date"], f"completion date ({label})"))
    for canon in ("test_date", "date", "end_date", "timestamp", "first_login", "last_login",
                  "birthdate", "enter_date", "leave_date", "elas_start_date"):
        if canon in ctx.layout.columns:
            out.append((ctx.layout.columns[canon], canon.replace("_", " ")))
    return out


def check_dates(ctx: FileContext) -> None:
    """DATE_UNPARSEABLE, DATE_FORMATS_MIXED, DATE_OUTSIDE_YEAR."""
    for col, label in _date_columns(ctx):
        s = ctx.frame[col]
        parsed = ctx.local_dates(col)
        bad = s.notna() & parsed.isna()
        if bad.any():
            ctx.add("error", "DATE_UNPARSEABLE",
                    f"the {label} cannot be read as a date in {_rows_word(int(bad.sum()))}",
                    hint="Use month-first dates (MM/DD/YYYY), ISO (YYYY-MM-DD), DD-Mon-YY or "
                    "Excel serial numbers.", column=col, mask=bad)
        fmts = {k: v for k, v in nz.date_formats_seen(s).items() if k != "unparseable"}
        if len(fmts) > 1:
            ctx.add("info", "DATE_FORMATS_MIXED",
                    f"the {label} column mixes {len(fmts)} date formats",
                    hint="rce reads all of them month-first; nothing to do.", column=col)
        if label in ("birthdate", "enter date", "leave date", "elas start date"):
            continue
        bounds = _academic_year_bounds(ctx, parsed)
        if bounds is None:
            continue
        lo, hi = bounds
        outside = parsed.notna() & ((parsed < lo) | (parsed > hi))
        if outside.any():
            ctx.add("warning", "DATE_OUTSIDE_YEAR",
                    f"the {label} falls outside the academic year {lo.year}-{hi.year} in "
                    f"{_rows_word(int(outside.sum()))}",
                    hint="Check the export's date range; set study.academic_year in rce.toml "
                    "if the year was guessed wrong.", column=col, mask=outside)


_VOCABS: dict[str, tuple[Callable[[pd.Series], pd.Series], str]] = {
    "grade": (nz.normalize_grade, "TK, K/KN, 1-12 (or 01-12)"),
    "gender": (nz.normalize_gender, "M/F/X or Male/Female/Nonbinary"),
    "el_status": (nz.normalize_el_status, "EO, IFEP, EL, RFEP, TBD or Y/N"),
    "swd": (nz.normalize_swd, "Y/N"),
    "econ_disadv": (nz.normalize_econ_disadv, "Y/N or FRPM F/R/N"),
    "hispanic": (nz.normalize_flag, "Y/N"),
    "baseline_flag": (nz.normalize_flag, "Y/N"),
    "most_recent_flag": (nz.normalize_flag, "Y/N"),
}


def check_vocabularies(ctx: FileContext) -> None:
    """VOCABULARY: values a normaliser does not know (counted, never echoed)."""
    for canon, (fn, expected) in _VOCABS.items():
        col = _col(ctx, canon)
        if col is None:
            continue
        s = ctx.frame[col]
        unknown = s.notna() & fn(s).isna()
        if unknown.any():
            ctx.add("warning", "VOCABULARY",
                    f"a {canon.replace('_', ' ')} value rce does not recognise in "
                    f"{_rows_word(int(unknown.sum()))} (expected {expected})",
                    hint="Unrecognised values are treated as missing; map them in the SIS export "
                    "or fix the cells.", column=col, mask=unknown)
    race_cols = [c for k, c in ctx.layout.columns.items() if k.startswith("race_")]
    for col in race_cols:
        s = ctx.frame[col]
        unknown = s.notna() & nz.normalize_race_ethnicity(s).isna()
        if unknown.any():
            ctx.add("warning", "VOCABULARY",
                    f"a race value rce does not recognise in {_rows_word(int(unknown.sum()))} "
                    "(expected CALPADS codes 100-700 or federal category names)",
                    hint="Unrecognised values are treated as missing.", column=col, mask=unknown)


def check_timezone(ctx: FileContext) -> None:
    """TIMESTAMPS_CONVERTED: timestamps written in UTC are moved to the district time zone.

    The rows listed are those whose local date differs from the date written in the file (for
    example an activity after 5 pm in California is on the next day in UTC).
    """
    if ctx.layout.timestamp_tz and "timestamp" in ctx.layout.columns:
        col = ctx.layout.columns["timestamp"]
        s = ctx.frame[col]
        local = ctx.local_dates(col)
        written = nz.parse_dates(s.str.slice(0, 10))
        shifted = local.notna() & written.notna() & (local != written)
        ctx.add("info", "TIMESTAMPS_CONVERTED",
                f"timestamps are in {ctx.layout.timestamp_tz}; rce converts them to "
                f"{ctx.plan.study.timezone} before taking dates, which moves "
                f"{_rows_word(int(shifted.sum()))} to the previous or next day",
                hint="Set study.timezone in rce.toml if the district is elsewhere.",
                column=col, mask=shifted)


def check_weekends(ctx: FileContext) -> None:
    """USAGE_ON_WEEKENDS: usage dated on Saturdays or Sundays (kept; often homework)."""
    if ctx.layout.kind != "usage" or ctx.layout.granularity in ("weekly", "monthly"):
        return
    col = ctx.layout.columns.get("date") or ctx.layout.columns.get("timestamp")
    if not col:
        return
    d = ctx.local_dates(col)
    weekend = d.notna() & (d.dt.day_of_week >= 5)
    if "active" in ctx.layout.columns:
        # Clever writes a row for every calendar day; only active weekend days are news.
        weekend &= nz.normalize_flag(ctx.frame[ctx.layout.columns["active"]]).fillna(False)
    if weekend.any():
        ctx.add("info", "USAGE_ON_WEEKENDS",
                f"usage dated on a Saturday or Sunday in {_rows_word(int(weekend.sum()))}",
                hint="Weekend use is counted like any other day; check the dates if the product "
                "is only used at school.", column=col, mask=weekend)


#: Checks run on every file, in order; the code is the function's JUnit test-case name.
FILE_CHECKS: tuple[tuple[str, Check], ...] = (
    ("rows", check_rows),
    ("ids", check_ids),
    ("duplicates", check_duplicates),
    ("scores", check_scores),
    ("minutes", check_minutes),
    ("dates", check_dates),
    ("vocabularies", check_vocabularies),
    ("timezone", check_timezone),
    ("weekends", check_weekends),
)


def run_file_checks(table: RawTable, layout: Layout, plan: Plan) -> FileContext:
    """Run every applicable check on one file."""
    ctx = FileContext(table, layout, plan)
    for name, check in FILE_CHECKS:
        if name == "rows" or len(table.frame):
            ctx.checks_run.append(name)
            check(ctx)
    return ctx


#: Below this share of matched rows a file almost certainly comes from another district or uses
#: another ID (state ID vs SIS number): an error whatever the plan's minimum.
MATCH_RATE_ERROR_BELOW = 0.5


def match_rate_finding(file: str, column: str, raw_ids: pd.Series, roster: pd.DataFrame,
                       plan: Plan, strict: bool) -> Finding:
    """ID_MATCH_RATE: share of a file's rows whose ID resolves to the roster."""
    res = nz.resolve_ids(raw_ids, roster).set_index("raw_id")
    raw = raw_ids.astype("str")
    matched = raw.map(res["student_id"]).notna()
    reason = raw.map(res["reason"])
    n = len(raw)
    rate = float(matched.mean()) if n else 1.0
    reasons = {k: int((reason == k).sum()) for k in ("blank", "not_in_roster", "email_only",
                                                      "ambiguous")}
    reasons["blank"] = int(raw.isna().sum())
    msg = (f"{rate:.1%} of {n} rows match the roster; unmatched: "
           + (", ".join(f"{k} {v}" for k, v in reasons.items() if v) or "none"))
    low = rate < plan.join.min_match_rate
    severity = "info"
    if low:
        severity = "error" if (strict or plan.join.enforce_min_match_rate) else "warning"
    if n and rate < MATCH_RATE_ERROR_BELOW:
        severity = "error"
    unmatched = ~matched
    idx = np.flatnonzero(unmatched.to_numpy(dtype=bool))
    return Finding(severity, "ID_MATCH_RATE", file, msg,
                   hint=f"Minimum is {plan.join.min_match_rate:.0%} (join.min_match_rate). Check "
                   "that both files use the same ID (SIS number vs state ID)." if low else "",
                   column=column, rows=tuple(int(i) + 2 for i in idx[:MAX_ROWS]),
                   count=int(idx.size))
