"""Usage -> dosage: the treatment definition of every analysis, computed one way, in DuckDB.

Definition (every threshold comes from :class:`rce.config.DosageConfig`, fixed in the plan):

* **Session unit** per product (``plan.dosage.unit``; "auto" picks by granularity):
  ``row`` -- each row of a session log is one session; ``student-day`` -- a distinct
  student x district-local day with at least one row is one session (lesson and event logs:
  i-Ready lessons carry no session ID, an event log counts clicks, not sittings);
  ``provided`` -- the counts a summary export gives (daily / weekly / monthly): its ``sessions``
  column, else one session per active daily row, else lessons completed (weekly / monthly).
* **Dates**: timestamps are converted from the source's time zone to ``plan.study.timezone``
  before the date is taken; text dates are US month-first (each of the source's formats is tried,
  then ISO, then Excel serial numbers).
* **Duplicates**: rows that are identical in every column (within a file or across stitched
  export windows) count once. Layouts that name their ``record_columns`` (i-Ready lessons:
  student, lesson, date, time, score, result) compare those only: their other columns are
  student attributes as of the export, which change between re-exports of the same record.
  With ``dedupe_keys`` only one row per key is kept (the one with the most minutes, then
  sessions, then lessons).
* **Evaluation window**: ``baseline-to-outcome`` -- usage on or after a student's baseline test
  date and on or before their outcome test date counts (students without test dates use the
  study-wide window: earliest baseline to latest outcome); ``dates`` -- between
  ``window_start`` and ``window_end`` inclusive; ``all`` -- every row. A weekly row covers the
  seven days ending on its date and a monthly row its whole month; such a row counts when it
  overlaps the window (it cannot be split).
* **Habitual month**: a calendar month whose sessions *inside the window* reach
  ``min_sessions_per_month`` (default 3). A partial first or last month is not pro-rated: it is
  habitual only if the sessions inside the window reach the threshold.
* **Usage level**: ``habitual`` with at least ``min_habitual_months`` habitual months; ``light``
  with any session in the window; ``none`` for students present in the export with no session in
  the window (activated but not active).
* **Fidelity** (vendor rule): average weekly minutes over the student's window (minutes divided
  by window days / 7) of at least ``fidelity_minutes_per_week`` and, when the export has lesson
  results, a lesson pass rate of at least ``fidelity_pass_rate``.
* **Usage cluster**: k-means (k-means++ start, seeded by ``plan.analysis.seed``) on
  log(1 + minutes) of active students, per product, k in 2..4 chosen by the highest mean
  silhouette; clusters ordered low -> high.

The engine aggregates in levels so that nothing large reaches Python: rows -> distinct rows
(keyed by the raw ID; the big reduction) -> months of each raw ID, window applied (days are bits
of a month mask, so no student-day level is needed) -> ID map -> student-month -> student. The
distinct raw IDs are matched to students once, in pandas: before the reading when the window
differs by student, else from the months of each raw ID, so that text exports are parsed once.
DuckDB reads the files directly, with a memory limit and a private spill directory.
"""

from __future__ import annotations

import contextlib
import fnmatch
import functools
import glob
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from rce import dosage_sql as q
from rce.canonical import ANALYSIS_COLUMNS, GRANULARITIES, UsageSource
from rce.config import Plan
from rce.errors import DataError, InputFileError, LayoutError, PlanError
from rce.io.normalize import in_index, normalize_student_id
from rce.jsonsafe import json_tree, json_value

#: Columns of :attr:`DosageResult.per_student`, in order.
PER_STUDENT_COLUMNS = (
    "student_id",
    "product",
    "sessions",
    "minutes",
    "active_days",
    "active_months",
    "habitual_months",
    "first_use",
    "last_use",
    "avg_weekly_minutes",
    "pass_rate",
    "met_fidelity",
    "usage_level",
    "usage_cluster",
)

#: Columns of :attr:`DosageResult.monthly`.
MONTHLY_COLUMNS = (
    "student_id",
    "product",
    "month",
    "sessions",
    "minutes",
    "active_days",
    "lessons_completed",
    "lessons_passed",
    "habitual",
)

#: Sessions-per-month thresholds at which habitual months are counted for every student (the
#: sensitivity analyses re-derive habitual use at 2, 3 and 4 without the monthly table).
HABITUAL_THRESHOLDS = tuple(range(1, 13))

#: Columns of :attr:`DosageResult.trend`.
TREND_COLUMNS = ("product", "month", "students_active", "students_habitual", "minutes")

#: Dosage columns added to the analysis frame by :func:`attach_dosage` (the canonical
#: analysis-frame columns from ``sessions`` on).
ATTACHED_COLUMNS = ANALYSIS_COLUMNS[ANALYSIS_COLUMNS.index("sessions") :]

CLUSTER_LABELS = {
    2: ("low", "high"),
    3: ("low", "moderate", "high"),
    4: ("low", "moderate", "high", "very high"),
}
CLUSTER_METHOD = (
    "k-means on log(1 + minutes) (log(1 + sessions) when minutes are not exported) of students "
    "with at least one session, per product; k-means++ start seeded by plan.analysis.seed, "
    "best of 4 starts; k in 2..4 chosen by the highest mean silhouette (computed on a seeded "
    "sample of at most 2,000 students); clusters ordered low -> high"
)
#: Fewest active students for which usage clusters are formed.
MIN_CLUSTER_STUDENTS = 10
_SILHOUETTE_SAMPLE = 2000
_DAY_LEVEL = ("event", "lesson", "daily")
_MEASURES = ("minutes", "sessions", "lessons_completed", "lessons_passed")
_MONTHLY_MEASURES = (
    "minutes",
    "sessions",
    "lessons_completed",
    "lessons_passed",
    "avg_weekly_minutes",
)


# --- result ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class DosageResult:
    """Per-student dosage and usage summaries for every product of the usage exports.

    Attributes
    ----------
    per_student
        One row per student x product (:data:`PER_STUDENT_COLUMNS`).
    monthly
        Student x product x calendar month inside the window (:data:`MONTHLY_COLUMNS`); empty
        (with a note) when it has more than ``plan.engine.max_monthly_rows`` rows.
    trend
        Product x month: students active, students habitual, minutes.
    definition
        The dosage definition used (unit per product, thresholds, window, fidelity rule,
        cluster method).
    rows_read, rows_deduplicated, rows_outside_window
        Usage rows in the files; rows dropped as duplicates; rows (kept, matched) outside the
        evaluation window.
    rows_unmatched
        Rows dropped because no student could be assigned, by reason (``blank_id``,
        ``not_in_id_map`` or the reasons given by the ID map).
    rows_bad_date
        Rows whose date could not be read (dropped).
    utilization
        License utilization when seats were given (see :func:`utilization`), else None.
    notes
        Caveats to report with the numbers.
    """

    per_student: pd.DataFrame
    monthly: pd.DataFrame
    trend: pd.DataFrame
    definition: dict[str, Any]
    rows_read: int
    rows_deduplicated: int
    rows_outside_window: int
    rows_unmatched: dict[str, int]
    rows_bad_date: int = 0
    utilization: pd.DataFrame | None = None
    notes: tuple[str, ...] = ()
    #: Habitual months per student x product at each of :data:`HABITUAL_THRESHOLDS` (columns
    #: ``habitual_months_<t>``), aligned with ``per_student``.
    habitual_by_threshold: pd.DataFrame | None = None

    def to_frame(self) -> pd.DataFrame:
        """The per-student table (one row per student x product)."""
        return self.per_student.copy()

    def counts(self) -> dict[str, dict[str, int]]:
        """Students in the export, active and habitual, per product."""
        out: dict[str, dict[str, int]] = {}
        for product, g in self.per_student.groupby("product", sort=True):
            out[str(product)] = {
                "students": len(g),
                "users": int((g["sessions"] > 0).sum()),
                "habitual_users": int((g["usage_level"] == "habitual").sum()),
                "met_fidelity": int(g["met_fidelity"].fillna(False).astype(bool).sum()),
            }
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe summary (no student-level rows; NaN -> None)."""
        counts = self.counts()
        trend = [
            {
                "product": str(r.product),
                "month": pd.Timestamp(r.month).date().isoformat(),
                "students_active": int(r.students_active),
                "students_habitual": int(r.students_habitual),
                "minutes": json_value(r.minutes),
            }
            for r in self.trend.itertuples(index=False)
        ]
        out: dict[str, Any] = {
            "definition": json_tree(self.definition),
            "users": sum(c["users"] for c in counts.values()),
            "habitual_users": sum(c["habitual_users"] for c in counts.values()),
            "products": counts,
            "rows_read": self.rows_read,
            "rows_deduplicated": self.rows_deduplicated,
            "rows_outside_window": self.rows_outside_window,
            "rows_unmatched": dict(self.rows_unmatched),
            "rows_bad_date": self.rows_bad_date,
            "trend": trend,
            "notes": list(self.notes),
        }
        if self.utilization is not None:
            out["utilization"] = [
                {k: json_value(v) if not isinstance(v, str) else v for k, v in row.items()}
                for row in self.utilization.to_dict(orient="records")
            ]
        return out

    def summary(self) -> str:
        """Readable text: the definition, the row accounting and users per product."""
        d = self.definition
        lines = [
            "Dosage",
            f"  habitual month: >= {d['min_sessions_per_month']} sessions in a calendar month "
            f"(inside the window); habitual user: >= {d['min_habitual_months']} habitual month(s)",
            f"  window: {d['window']['rule']}",
        ]
        for product, unit in d["unit"].items():
            lines.append(f"  {product}: session = {unit}")
        lines.append(
            f"  rows read {self.rows_read:,}; duplicates dropped {self.rows_deduplicated:,}; "
            f"unreadable dates {self.rows_bad_date:,}; "
            f"outside window {self.rows_outside_window:,}; "
            f"unmatched {sum(self.rows_unmatched.values()):,}"
        )
        for product, c in self.counts().items():
            lines.append(
                f"  {product}: {c['students']:,} students in export, {c['users']:,} active, "
                f"{c['habitual_users']:,} habitual, {c['met_fidelity']:,} met fidelity"
            )
        lines.extend(f"  note: {n}" for n in self.notes)
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (
            f"DosageResult(students={len(self.per_student)}, rows_read={self.rows_read}, "
            f"products={sorted(self.definition.get('unit', {}))})"
        )


# --- engine ------------------------------------------------------------------------------------


@contextlib.contextmanager
def connect(plan: Plan) -> Iterator[duckdb.DuckDBPyConnection]:
    """An in-process DuckDB connection with the plan's memory limit and a private spill folder."""
    tmp = tempfile.mkdtemp(prefix="rce-duckdb-")
    con = duckdb.connect(":memory:")
    try:
        try:
            con.execute(f"SET memory_limit = {q.lit(plan.engine.memory_limit)}")
        except duckdb.Error:
            raise PlanError(
                f"engine.memory_limit {plan.engine.memory_limit!r} is not a memory size",
                where=str(plan.source) if plan.source else "plan",
                hint='Write it like "1GB" or "512MB".',
            ) from None
        con.execute(f"SET temp_directory = {q.lit(tmp)}")
        con.execute("SET preserve_insertion_order = false")
        # DuckDB tracks progress (for query_progress) but never draws on the user's terminal.
        con.execute("SET enable_progress_bar = true")
        con.execute("SET enable_progress_bar_print = false")
        con.execute("SET progress_bar_time = 0")
        con.execute("SET TimeZone = 'UTC'")
        if plan.engine.threads > 0:
            con.execute(f"SET threads = {int(plan.engine.threads)}")
        con.execute(q.MACROS)
        yield con
    finally:
        con.close()
        shutil.rmtree(tmp, ignore_errors=True)


def expand_usage_paths(src: UsageSource, plan: Plan) -> list[str]:
    """The files of a usage source: plan-relative paths resolved, globs expanded (sorted), each
    file once; a missing file, a folder or a pattern matching nothing is an InputFileError."""
    files: list[str] = []
    for p in src.paths:
        resolved = str(plan.resolve(p))
        if glob.has_magic(resolved):
            matches = sorted(m for m in glob.glob(resolved, recursive=True) if os.path.isfile(m))
            if not matches:
                raise InputFileError(
                    "no usage file matches this pattern",
                    where=resolved,
                    hint="Check the folder and the file-name pattern in the plan's [inputs] usage.",
                )
            files.extend(matches)
        else:
            if not os.path.exists(resolved):
                raise InputFileError(
                    "usage file not found", where=resolved, hint="Check the path in the plan."
                )
            if os.path.isdir(resolved):
                raise InputFileError(
                    "usage path is a folder, not a file",
                    where=resolved,
                    hint="Give the file, or a pattern such as folder/*.csv.",
                )
            files.append(resolved)
    # The same file listed twice (two overlapping globs) is read once.
    return list(dict.fromkeys(files))


#: Years covered by the fast time-zone conversion (:func:`utc_offset_segments`); instants outside
#: them use DuckDB's conversion.
_TZ_FIRST_YEAR, _TZ_END_YEAR = 2000, 2041
_TZ_SEGMENTS: dict[str, q.Segments | None] = {}


def utc_offset_segments(con: duckdb.DuckDBPyConnection, tz: str) -> q.Segments | None:
    """The UTC offsets of ``tz`` from 2000 to 2040 as segments, or None to convert per row.

    The transitions come from Python's time-zone database (found day by day, then to the
    second); they are used only if DuckDB's own time-zone data gives the same offset at noon UTC
    of every day and on both sides of every transition, so the fast conversion is exactly
    DuckDB's (cached per zone for the process).
    """
    if tz in _TZ_SEGMENTS:
        return _TZ_SEGMENTS[tz]
    from datetime import UTC, datetime, timedelta
    from zoneinfo import ZoneInfo

    segments: q.Segments | None = None
    try:
        zone = ZoneInfo(tz)
    except (ValueError, OSError, KeyError):  # an unknown name: DuckDB reports it
        zone = None
    if zone is not None:
        start = datetime(_TZ_FIRST_YEAR, 1, 1, tzinfo=UTC)
        end = datetime(_TZ_END_YEAR, 1, 1, tzinfo=UTC)

        def offset(t: datetime) -> int:
            return int(t.astimezone(zone).utcoffset().total_seconds())  # type: ignore[union-attr]

        starts = [(start, offset(start))]
        # Weekly samples find the transitions (no zone changes its offset twice within a week;
        # DuckDB's check below would catch one that did), each then bisected to the second.
        day = start + timedelta(hours=12)
        prev_t, prev_o = start, starts[0][1]
        while day < end:
            o = offset(day)
            if o != prev_o:  # a transition in (prev_t, day]: bisect to the second
                lo, hi = prev_t, day
                while hi - lo > timedelta(seconds=1):
                    mid = lo + (hi - lo) / 2
                    mid = mid.replace(microsecond=0)
                    if mid <= lo:
                        mid = lo + timedelta(seconds=1)
                    if offset(mid) == prev_o:
                        lo = mid
                    else:
                        hi = mid
                starts.append((hi, o))
            prev_t, prev_o = day, o
            day += timedelta(days=7)
        import bisect

        firsts = [t for t, _ in starts]
        noons = []
        day = start + timedelta(hours=12)
        while day < end:
            noons.append((day, starts[bisect.bisect_right(firsts, day) - 1][1]))
            day += timedelta(days=1)
        checks = noons + [(t, o) for t, o in starts[1:]]
        checks += [(t - timedelta(seconds=1), starts[i][1]) for i, (t, _) in enumerate(starts[1:])]
        check = pd.DataFrame(
            {
                "t": [t.replace(tzinfo=None) for t, _ in checks],
                "o": [o for _, o in checks],
            }
        )
        con.register("rce_tz_check", check)
        bad = _run(
            con,
            f"""SELECT count(*) FROM rce_tz_check WHERE
                epoch(timezone({q.lit(tz)}, timezone('UTC', t))) - epoch(t) <> o""",
        ).fetchall()[0][0]
        con.unregister("rce_tz_check")
        if bad == 0:
            fmt = "%Y-%m-%d %H:%M:%S"
            segments = (
                tuple((t.strftime(fmt), o) for t, o in starts),
                end.strftime(fmt),
            )
    _TZ_SEGMENTS[tz] = segments
    return segments


@contextlib.contextmanager
def _polling(name: str, every: float, tick: Callable[[], bool]) -> Iterator[None]:
    """Call ``tick`` every ``every`` seconds from a thread while the block runs (until it
    returns False)."""
    done = threading.Event()

    def poll() -> None:
        while not done.wait(every):
            if not tick():
                return

    watcher = threading.Thread(target=poll, name=name, daemon=True)
    watcher.start()
    try:
        yield
    finally:
        done.set()
        watcher.join()


@contextlib.contextmanager
def _watch_progress(
    con: duckdb.DuckDBPyConnection, progress: Callable[[float], None] | None
) -> Iterator[None]:
    """Report DuckDB's progress on the statement run inside the block, from a polling thread."""
    if progress is None:
        yield
        return

    def report() -> bool:
        try:
            pct = con.query_progress()
        except duckdb.Error:  # the statement ended between two polls
            return False
        if pct >= 0:
            try:
                progress(min(pct, 100.0) / 100.0)
            except Exception:  # a broken progress display must not end the run
                return False  # or print a traceback from this thread
        return True

    with _polling("rce-dosage-progress", 0.5, report):
        yield
    with contextlib.suppress(Exception):
        progress(1.0)


class _NotUtf8(InputFileError):
    """A usage export read as UTF-8 holds bytes that are not UTF-8 (``path``: the file)."""

    def __init__(self, path: str, where: str) -> None:
        super().__init__(
            "the usage file is not UTF-8 text",
            where=where,
            hint="Save the export as UTF-8 CSV.",
        )
        self.path = path


@contextlib.contextmanager
def _interrupt_when(
    con: duckdb.DuckDBPyConnection, cancel: threading.Event | None
) -> Iterator[None]:
    """Interrupt DuckDB's running statement when ``cancel`` is set from another thread."""
    if cancel is None:
        yield
        return
    if cancel.is_set():
        raise KeyboardInterrupt

    def check() -> bool:
        if cancel.is_set():
            with contextlib.suppress(Exception):
                con.interrupt()
        return True

    with _polling("rce-dosage-cancel", 0.1, check):
        yield


def _engine_error(exc: Exception, files: Sequence[str]) -> InputFileError:
    """A DuckDB error as an InputFileError; DuckDB's own text can quote data, so it is not kept."""
    text = str(exc)
    if "Invalid unicode" in text:
        named = re.search(r"^\s*file = (.+)$", text, flags=re.MULTILINE)
        path = named.group(1).strip() if named else files[0]
        return _NotUtf8(path, where=path)
    line = re.search(r"[Ll]ine:?\s*(\d+)", text)
    where = files[0] if len(files) == 1 else f"{files[0]} (and {len(files) - 1} more)"
    if line:
        where += f", line {line.group(1)}"
    kind = type(exc).__name__.replace("Exception", "").replace("Error", "") or "read"
    return InputFileError(
        f"the usage file could not be read ({kind} error in the engine)",
        where=where,
        hint="Check the delimiter, quoting and encoding (save as UTF-8 CSV) or re-export the file.",
    )


@contextlib.contextmanager
def _engine_errors(files: Sequence[str] = ()) -> Iterator[None]:
    """DuckDB's exceptions as the user sees them: Ctrl-C, out of memory, unreadable files."""
    try:
        yield
    except duckdb.InterruptException:
        # Ctrl-C inside a query: the same as anywhere else (exit 130, nothing written).
        raise KeyboardInterrupt from None
    except RuntimeError as exc:
        # Ctrl-C while DuckDB scans a registered pandas frame surfaces as this RuntimeError.
        if "interrupted" in str(exc).lower():
            raise KeyboardInterrupt from None
        raise
    except duckdb.OutOfMemoryException:
        raise DataError(
            "the dosage step ran out of memory",
            where="engine",
            hint="Raise engine.memory_limit in the plan, or free disk space for spilling.",
        ) from None
    except duckdb.Error as exc:
        # Any engine error on a statement that reads the files is reported against the files
        # (DuckDB's own text can quote data values, so it is not passed on).
        if files:
            raise _engine_error(exc, files) from None
        raise


def _run(con: duckdb.DuckDBPyConnection, sql: str, files: Sequence[str] = ()) -> Any:
    with _engine_errors(files):
        res = con.execute(sql)
        if sql.lstrip().upper().startswith("CREATE"):
            # DuckDB 2 keeps a statement's result open until it is fetched.
            res.fetchall()
        return res


@dataclass(frozen=True)
class _Prepared:
    src: UsageSource
    files: tuple[str, ...]
    types: dict[str, str]  # header -> DuckDB type
    unit: str
    #: canonical name -> header, with aliases resolved ("passed" -> lessons_passed).
    cols: dict[str, str] = field(default_factory=dict)
    #: (year, month) -> measure -> header, for wide monthly files (known measures only).
    monthly: dict[tuple[int, int], dict[str, str]] = field(default_factory=dict)
    ignored_measures: tuple[str, ...] = ()
    formats: tuple[str, ...] = ()

    @property
    def measures(self) -> list[str]:
        """The measures this export has, of minutes, sessions and lessons completed / passed."""
        if self.monthly:
            have = {m for v in self.monthly.values() for m in v}
            have = {"minutes" if m == "avg_weekly_minutes" else m for m in have}
        else:
            have = set(self.cols)
            if self.src.granularity == "lesson":
                have.add("lessons_completed")  # a lesson log row is one completed lesson
        return [m for m in _MEASURES if m in have]


def _describe(con: duckdb.DuckDBPyConnection, src: UsageSource, files: list[str]) -> dict[str, str]:
    reader = q.read_expr(files, src.file_format, src.delimiter, src.encoding)
    rows = _run(con, f"DESCRIBE SELECT * FROM {reader}", files).fetchall()
    return {str(r[0]): str(r[1]) for r in rows}


def resolve_unit(plan_unit: str, granularity: str) -> str:
    """The session unit used for a source: the plan's choice, or the default for its granularity."""
    if plan_unit != "auto":
        return plan_unit
    return "student-day" if granularity in ("event", "lesson") else "provided"


#: Other names rce.io layouts use for canonical usage columns / monthly measures.
_COLUMN_ALIASES = {"passed": "lessons_passed"}
_MEASURE_ALIASES = {"weekly_avg_minutes": "avg_weekly_minutes"}
#: Canonical columns that hold the row's date (a dedupe key naming one means "the day").
_DAY_KEYS = ("date", "timestamp", "month", "end_date")


def _prepare(con: duckdb.DuckDBPyConnection, src: UsageSource, plan: Plan) -> _Prepared:
    where = ", ".join(src.paths) or "usage source"
    if src.granularity not in GRANULARITIES:
        raise LayoutError(
            f"unknown usage granularity {src.granularity!r}",
            where=where,
            hint=f"Use one of {', '.join(GRANULARITIES)}.",
        )
    if src.file_format not in ("csv", "parquet"):
        raise LayoutError(
            f"unsupported usage file format {src.file_format!r}",
            where=where,
            hint="Save the export as CSV or Parquet.",
        )
    if "student_id" not in src.columns:
        raise LayoutError(
            "the usage layout has no student ID column",
            where=where,
            hint="Map student_id to the ID header in the plan's [columns].",
        )
    if not src.monthly_columns and not {"date", "timestamp", "month"} & set(src.columns):
        raise LayoutError(
            "the usage layout has no date, timestamp or month column",
            where=where,
            hint="Map date (or timestamp) to the date header in the plan's [columns].",
        )
    files = expand_usage_paths(src, plan)
    types = _describe(con, src, files)
    wanted = [(canon, header) for canon, header in src.columns.items()]
    wanted += [(m[2], header) for header, m in src.monthly_columns.items()]
    for canon, header in wanted:
        if header not in types:
            raise LayoutError(
                f"column {header!r} (for {canon}) is not in the usage file",
                where=files[0],
                hint=f"Columns found: {', '.join(list(types)[:12])}"
                + (" ..." if len(types) > 12 else "")
                + ". Fix the column mapping in the plan.",
            )
    cols = dict(src.columns)
    for alias, canon in _COLUMN_ALIASES.items():
        if alias in cols and canon not in cols:
            cols[canon] = cols[alias]
    monthly: dict[tuple[int, int], dict[str, str]] = {}
    ignored: list[str] = []
    for header, (year, month, measure) in src.monthly_columns.items():
        measure = _MEASURE_ALIASES.get(measure, measure)
        if measure not in _MONTHLY_MEASURES:
            ignored.append(header)
            continue
        monthly.setdefault((int(year), int(month)), {})[measure] = header
    if src.monthly_columns and not monthly:
        raise LayoutError(
            "none of the monthly columns holds minutes, sessions or lessons",
            where=files[0],
            hint=f"Monthly measures rce counts: {', '.join(_MONTHLY_MEASURES)}.",
        )
    unit = resolve_unit(plan.dosage.unit, src.granularity)
    has = set(cols) | {m for v in monthly.values() for m in v}
    if (
        unit == "provided"
        and src.granularity in ("weekly", "monthly")
        and not {"sessions", "lessons_completed"} & has
    ):
        raise LayoutError(
            "a weekly or monthly summary needs a sessions or lessons-completed column to count use",
            where=files[0],
            hint="Map sessions (or lessons_completed) in the plan's [columns].",
        )
    for key in src.dedupe_keys:
        if key not in cols:
            raise LayoutError(
                f"dedupe key {key!r} is not a mapped column",
                where=files[0],
                hint="Use canonical names that the column mapping provides.",
            )
    formats = tuple(f for f in src.date_formats if "%" in f)  # "excel-serial" is always tried
    return _Prepared(
        src=src,
        files=tuple(files),
        types=types,
        unit=unit,
        cols=cols,
        monthly=monthly,
        ignored_measures=tuple(ignored),
        formats=formats,
    )


def _value_exprs(p: _Prepared) -> dict[str, str]:
    """Per-row expressions for the measures of a long (non-wide) source."""
    cols, types = p.cols, p.types
    out = {}
    for canon in ("minutes", "sessions"):
        if canon in cols:
            value = q.number_expr(q.ident(cols[canon]), types[cols[canon]])
            # A negative duration or count is an export error (validate flags it): not use.
            out[canon] = f"CASE WHEN ({value}) < 0 THEN NULL ELSE ({value}) END"
        else:
            out[canon] = "CAST(NULL AS DOUBLE)"
    for canon in ("lessons_completed", "lessons_passed"):
        if canon in cols:
            out[canon] = q.count_expr(q.ident(cols[canon]), types[cols[canon]])
        elif canon == "lessons_completed" and p.src.granularity == "lesson":
            out[canon] = "1.0"  # a lesson log row is one completed lesson
        else:
            out[canon] = "CAST(NULL AS DOUBLE)"
    return out


def _every_row_used(p: _Prepared) -> bool:
    """Whether each row the reader stage gives for this export is one kept row of use."""
    return (
        not p.src.dedupe_keys
        and _active_expr(p) == "TRUE"
        and (p.unit in ("row", "student-day") or "sessions" not in p.measures)
        and p.src.granularity in _DAY_LEVEL
    )


def _active_expr(p: _Prepared) -> str:
    """Whether a row shows use (evaluated on the de-duplicated rows)."""
    if p.src.granularity in ("event", "lesson"):
        return "TRUE"  # log rows are use by construction
    if "active" in p.cols:
        return "coalesce(flag_active, FALSE)"
    # Summary rows (Clever writes explicit zero rows for inactive days) show use only when a
    # measure is positive.
    have = set(p.cols) | {m for v in p.monthly.values() for m in v}
    have = {"minutes" if m == "avg_weekly_minutes" else m for m in have}
    used = sorted(have & {"sessions", "minutes", "lessons_completed"})
    return "(" + " OR ".join(f"coalesce({c}, 0) > 0" for c in used) + ")" if used else "TRUE"


def _source_sql(
    p: _Prepared,
    plan: Plan,
    idx: int,
    salt: int = 0,
    segments: q.Segments | None = None,
    *,
    raw_ids: bool = False,
    text_ids: bool = False,
    dedup_table: str | None = None,
) -> str:
    """SQL for one source: rows -> distinct rows keyed by the raw ID's hash.

    ``raw_ids``: only the de-duplication level, keyed by the raw ID text (to be materialised,
    see :func:`reader_stage`). ``text_ids``: every row keyed by the raw ID text.
    ``dedup_table``: read that materialised level instead of the files.
    """
    src, types, cols = p.src, p.types, p.cols
    reader = q.read_expr(p.files, src.file_format, src.delimiter, src.encoding)
    tz = plan.study.timezone
    # Rows are keyed by a 64-bit hash of the raw ID text: normalising and matching IDs per row
    # costs more than the whole aggregation, so it is done once per distinct ID (the ID map,
    # see _register_ids) and joined to the student-days.
    rid = raw_id_key(q.ident(cols["student_id"]), salt)
    if raw_ids or text_ids:
        rid = f"CAST({q.ident(cols['student_id'])} AS VARCHAR)"
    # Duplicates are rows equal in every column, or in the columns that describe the usage
    # record when the layout names them (the rest are student attributes as of the export).
    record = [cols[c] for c in src.record_columns if c in cols] or list(types)
    row_hash = "hash(" + ", ".join(q.ident(h) for h in record) + ")"
    fallback = q.lit(src.product or src.layout or "usage")
    if "product" in cols:  # a column naming the product per row (Clever resource usage)
        prod = (
            f"coalesce(nullif(trim(CAST({q.ident(cols['product'])} AS VARCHAR)), ''), {fallback})"
        )
    else:
        prod = fallback
    if "active" in cols:
        h = q.ident(cols["active"])
        flag = (
            f"CASE WHEN lower(trim(CAST({h} AS VARCHAR))) IN ('true', 't', 'yes', 'y', '1', "
            f"'active', '1.0') THEN TRUE ELSE FALSE END"
        )
    else:
        flag = "TRUE"
    extra_keys = [k for k in src.dedupe_keys if k != "student_id" and k not in _DAY_KEYS]
    if p.monthly:
        extra_keys = []  # a wide monthly row is keyed by student and month
    key_cols = "".join(
        f", CAST({q.ident(cols[k])} AS VARCHAR) AS key_{i}" for i, k in enumerate(extra_keys)
    )
    day_expr = "dk"
    if p.monthly:
        rows_sql = _wide_rows_sql(p, rid, row_hash, reader, prod, flag)
    else:
        if "timestamp" in cols:
            h = cols["timestamp"]
            t = types[h]
            if t.upper() == "VARCHAR":
                if src.timestamp_tz.lower() in q.UTC_NAMES:
                    ts = q.utc_text_ts_column(q.ident(h), p.formats)
                    reader = f"(SELECT *, {ts} FROM {reader})"
                    dk = q.local_date_of_instant("__rce_ts", tz, segments)
                else:
                    off, ts = q.text_ts_columns(q.ident(h), p.formats)
                    reader = f"(SELECT *, {ts} FROM (SELECT *, {off} FROM {reader}))"
                    dk = q.local_date_from_text_ts(src.timestamp_tz, tz, segments)
            else:
                dk = q.local_date_from_typed(q.ident(h), t, src.timestamp_tz, tz, segments)
                if not dk:
                    raise LayoutError(
                        f"timestamp column {h!r} holds {t}, not date-times",
                        where=p.files[0],
                        hint="Map timestamp to a date-time column.",
                    )
        elif "date" in cols or "month" in cols:
            # A weekly row is dated by the last day of its week when the export gives it.
            canon = (
                "end_date"
                if "end_date" in cols and src.granularity == "weekly"
                else ("date" if "date" in cols else "month")
            )
            h = cols[canon]
            if types[h].upper() == "VARCHAR":
                dk = q.date_text_expr(q.ident(h), p.formats)
                if canon == "month":
                    month_formats = ("%Y-%m", "%m/%Y", "%m-%Y", "%B %Y", "%b %Y", "%b-%y", "%B-%y")
                    parts = [
                        f"CAST(try_strptime(trim({q.ident(h)}), {q.lit(f)}) AS DATE)"
                        for f in month_formats
                    ]
                    dk = "coalesce(" + ", ".join(parts) + f", {dk})"
            else:
                dk = f"try_cast({q.ident(h)} AS DATE)"
        v = _value_exprs(p)
        rows_sql = (
            f"SELECT {rid} AS rid, {prod} AS product, {dk} AS dk, {row_hash} AS h, "
            f"{flag} AS flag_active, "
            + ", ".join(f"{expr} AS {name}" for name, expr in v.items())
            + f"{key_cols} FROM {reader}"
        )
    if src.granularity == "monthly" or "month" in cols:
        day_expr = f"CAST(date_trunc('month', {day_expr}) AS DATE)"
    # Duplicates: identical in every (record) column. Rows are grouped within (raw ID, raw date)
    # by a 64-bit hash of those columns, so a false match needs a hash collision between two
    # rows of the same student and day (probability ~ k^2 / 2^64 for k rows that day).
    # Identical rows have identical derived values too, so the carried values are part of the
    # group key rather than any_value() states: a smaller hash table, and rows whose hashes
    # collide but whose values differ are never merged (measured: a (raw ID, hash) key with
    # any_value() states costs 2.7 s more at 30M rows).
    # Only measures the export has are carried through the big aggregations.
    present = p.measures
    row_product = "product" in cols
    carried = present + (["flag_active"] if "active" in cols else [])
    carried += [f"key_{i}" for i in range(len(extra_keys))]
    grp = "rid, product, dk" if row_product else "rid, dk"
    dedup = f"SELECT {grp}, h, " + "".join(f"{c}, " for c in carried) + (
        f"count(*) AS n FROM r GROUP BY {grp}, h" + "".join(f", {c}" for c in carried)
    )
    if raw_ids:
        return f"WITH r AS ({rows_sql}) {dedup}"
    with_rows = f"r AS ({rows_sql}),"
    if dedup_table:
        dedup = f"SELECT * REPLACE ({raw_id_key('rid', salt)} AS rid) FROM {dedup_table}"
        with_rows = ""
    if src.dedupe_keys:
        # One row per key and day: the day is always part of the key, so a key that names a
        # kind of activity (not one row) cannot merge use on different days.
        keys = (["product"] if row_product else []) + [day_expr]
        if "student_id" in src.dedupe_keys:
            # the student, not the spelling of the ID ("0042" and "42" are one key)
            keys += ["m.sk", "CASE WHEN m.sk IS NULL THEN d.rid END"]
        keys += [f"key_{i}" for i in range(len(extra_keys))]
        order = ", ".join(
            f"{m} DESC NULLS LAST"
            for m in ("minutes", "sessions", "lessons_completed")
            if m in present
        )
        keep = (
            "row_number() OVER (PARTITION BY "
            + ", ".join(keys)
            + " ORDER BY "
            + (order + ", " if order else "")
            + "h) = 1"
        )
    else:
        keep = "TRUE"
    key_join = (
        f" LEFT JOIN {ID_MAP} m ON d.rid = m.hid" if "student_id" in src.dedupe_keys else ""
    )
    active = _active_expr(p)
    # One output row per distinct export row: the student-day and month levels are one
    # aggregation in aggregation_sql (days are bits of a month mask), so no level is repeated
    # per export. Values of rows that are not kept, or show no use, do not count.
    use = "kept AND active"
    if keep == "TRUE":
        use = active
    if active == "TRUE":
        use = keep

    def counted(value: str) -> str:
        return value if use == "TRUE" else f"CASE WHEN {use} THEN {value} END"

    if p.unit in ("row", "student-day") or (
        "sessions" not in present and src.granularity in _DAY_LEVEL
    ):
        sess = "1" if use == "TRUE" else f"CASE WHEN {use} THEN 1 ELSE 0 END"
    else:
        count = "sessions" if "sessions" in present else "lessons_completed"
        sess = f"coalesce({counted(count)}, 0)"
    values = "".join(
        f", {counted(m)} AS {m}" if m in present else f", CAST(NULL AS DOUBLE) AS {m}"
        for m in ("minutes", "lessons_completed", "lessons_passed")
    )
    n_kept = "1" if keep == "TRUE" else "CASE WHEN kept THEN 1 ELSE 0 END"
    product = "product" if row_product else prod
    return f"""
        WITH {with_rows}
        d AS ({dedup}),
        k AS (SELECT d.*, {keep} AS kept, {active} AS active FROM d{key_join})
        SELECT {idx} AS src, {product} AS product, {q.lit(src.granularity)} AS gran,
               {q.lit(p.unit)} AS unit, rid, CAST({day_expr} AS DATE) AS day, n AS n_read,
               {n_kept} AS n_kept, {sess} AS sess{values}
        FROM k
    """


def _wide_rows_sql(p: _Prepared, rid: str, row_hash: str, reader: str, prod: str, flag: str) -> str:
    """Monthly wide summary -> one row per student x month (UNNEST of aligned lists)."""
    months = sorted(p.monthly)
    days = "[" + ", ".join(f"DATE '{y:04d}-{m:02d}-01'" for y, m in months) + "]"
    lists = {}
    for name in ("minutes", "sessions", "lessons_completed", "lessons_passed"):
        items = []
        for y, m in months:
            hdrs = p.monthly[(y, m)]
            if name in hdrs:
                h = hdrs[name]
                conv = q.count_expr if name.startswith("lessons") else q.number_expr
                items.append(conv(q.ident(h), p.types[h]))
            elif name == "minutes" and "avg_weekly_minutes" in hdrs:
                # Weekly average time x weeks in the month (days / 7): the export gives no total.
                h = hdrs["avg_weekly_minutes"]
                n_days = (date(y + m // 12, m % 12 + 1, 1) - date(y, m, 1)).days
                items.append(f"({q.number_expr(q.ident(h), p.types[h])} * {n_days} / 7.0)")
            else:
                items.append("CAST(NULL AS DOUBLE)")
        lists[name] = "[" + ", ".join(items) + "]"
    return (
        "SELECT rid, product, h, flag_active, unnest(dks) AS dk, unnest(l_min) AS minutes, "
        "unnest(l_ses) AS sessions, unnest(l_lc) AS lessons_completed, "
        "unnest(l_lp) AS lessons_passed FROM ("
        f"SELECT {rid} AS rid, {prod} AS product, {row_hash} AS h, {flag} AS flag_active, "
        f"{days} AS dks, {lists['minutes']} AS l_min, "
        f"{lists['sessions']} AS l_ses, {lists['lessons_completed']} AS l_lc, "
        f"{lists['lessons_passed']} AS l_lp FROM {reader})"
    )


# --- public API ----------------------------------------------------------------------------------


def raw_id_key(column_sql: str, salt: int = 0) -> str:
    """SQL for the 64-bit key of a raw usage ID: a hash of its text (``salt`` > 0 re-seeds it)."""
    extra = f", {int(salt)}" if salt else ""
    return f"hash(CAST({column_sql} AS VARCHAR){extra})"


def _raw_usage_ids(
    con: duckdb.DuckDBPyConnection,
    prepared: Sequence[_Prepared],
    tables: dict[int, str] | None = None,
) -> pd.Series:
    """Distinct raw student IDs of the exports, as the text DuckDB reads (blanks included).

    ``tables``: export number -> its materialised distinct rows (IDs read from there).
    """
    parts = []
    for i, p in enumerate(prepared):
        if tables and i in tables:
            parts.append(f"SELECT DISTINCT rid AS r FROM {tables[i]}")
            continue
        reader = q.read_expr(p.files, p.src.file_format, p.src.delimiter, p.src.encoding)
        parts.append(
            f"SELECT DISTINCT CAST({q.ident(p.cols['student_id'])} AS VARCHAR) AS r FROM {reader}"
        )
    if not parts:
        return pd.Series([], dtype="str", name="raw_id")
    files = [f for p in prepared for f in p.files]
    return _distinct_ids(con, " UNION ALL ".join(parts), files)


def _distinct_ids(
    con: duckdb.DuckDBPyConnection, relation: str, files: Sequence[str] = ()
) -> pd.Series:
    """The distinct non-missing values of column ``r`` of ``relation`` (SQL), as text."""
    sql = f"SELECT DISTINCT r FROM ({relation}) WHERE r IS NOT NULL"
    return _to_pandas(_arrow(con, sql, files))["r"].astype("str")


def distinct_usage_ids(sources: Sequence[UsageSource], plan: Plan) -> pd.Series:
    """Distinct normalised student IDs in the usage exports (input to ``resolve_ids``).

    Parameters
    ----------
    sources
        The usage sources.
    plan
        The study plan (engine settings).

    Returns
    -------
    pandas.Series
        Sorted distinct IDs (``str``, normalised by ``rce.io.normalize.normalize_student_id``),
        blanks excluded, named ``raw_id``.
    """
    with connect(plan) as con:
        raw = _raw_usage_ids(con, [_prepare(con, s, plan) for s in sources])
    norm = normalize_student_id(raw).dropna().unique()
    return pd.Series(sorted(norm), dtype="str", name="raw_id")


#: An ID map, or a function that makes one from the distinct normalised usage IDs (so that the
#: exports are scanned for their IDs once, inside the dosage step).
IdMap = pd.DataFrame | Callable[[pd.Series], pd.DataFrame] | None
#: The test-date windows, or a function that returns them once the exports have been read.
Windows = pd.DataFrame | Callable[[], pd.DataFrame | None] | None


def compute_dosage(
    sources: Sequence[UsageSource],
    *,
    plan: Plan,
    windows: Windows = None,
    id_map: IdMap = None,
    seats: dict[str, int] | None = None,
    progress: Callable[[float], None] | None = None,
    cancel: threading.Event | None = None,
) -> DosageResult:
    """Compute per-student dosage from usage exports, in DuckDB, by the plan's definition.

    Parameters
    ----------
    sources
        Usage exports (:class:`~rce.canonical.UsageSource`), one or more per product.
    plan
        The study plan; ``plan.dosage`` holds the definition, ``plan.study.timezone`` the district
        time zone, ``plan.engine`` the memory limit and threads.
    windows
        One row per student: ``student_id``, ``baseline_date``, ``outcome_date`` (the evaluation
        window when ``plan.dosage.window == "baseline-to-outcome"``). Students in it with no
        usage are the scored non-users (counted in the notes). Or a function that returns
        them, called once the exports have been read (so the caller can load the test scores
        meanwhile).
    id_map
        ``raw_id`` (normalised usage ID, see :func:`distinct_usage_ids`) -> ``student_id``;
        an optional ``reason`` column explains IDs left unmatched (``student_id`` blank).
        Or a function that makes that map from the distinct normalised usage IDs (a
        ``pandas.Series``), called once during the step. Without a map the normalised usage
        ID is the student ID.
    seats
        Licenses purchased per product, for :func:`utilization`.
    progress
        Called about twice a second, from another thread, with the share (0..1) of the usage
        rows DuckDB has read in the main pass (for a progress bar).
    cancel
        When set (from another thread), the running statement is interrupted and
        ``KeyboardInterrupt`` is raised here.

    Returns
    -------
    DosageResult

    Examples
    --------
    >>> from rce.config import Plan
    >>> from rce.canonical import ANALYSIS_COLUMNS, UsageSource
    >>> src = UsageSource(paths=("usage.csv",), product="Lexia", granularity="event",
    ...                   columns={"student_id": "Lexia_ID", "timestamp": "start"},
    ...                   timestamp_tz="UTC")
    >>> result = compute_dosage([src], plan=Plan())  # doctest: +SKIP
    """
    if not sources:
        raise LayoutError("no usage export was given", where="inputs.usage", hint="Add one.")
    sources = list(sources)
    while True:  # each retry reads one more UTF-8 export as Windows-1252, so this ends
        try:
            return _compute_dosage(
                sources,
                plan=plan,
                windows=windows,
                id_map=id_map,
                seats=seats,
                progress=progress,
                cancel=cancel,
            )
        except _NotUtf8 as exc:
            # A byte past the sniffed head is not UTF-8 (the sniffer reads only the head of a
            # usage export; DuckDB checks the rest as it reads): read that export as
            # Windows-1252, the encoding the sniffer picks when the head shows such a byte.
            retry = _as_cp1252(sources, exc.path)
            if retry is None:
                raise
            sources = retry


def _as_cp1252(sources: list[UsageSource], path: str) -> list[UsageSource] | None:
    """The sources with the UTF-8 text export that holds ``path`` read as Windows-1252."""
    def holds(src: UsageSource) -> bool:
        return any(
            fnmatch.fnmatchcase(path, f) or fnmatch.fnmatchcase(os.path.basename(path), f)
            or os.path.basename(f) == os.path.basename(path)
            for f in src.paths
        )

    out = list(sources)
    for i, src in enumerate(sources):
        utf8 = src.encoding.lower() in ("utf-8", "utf8", "utf-8-sig")
        if src.file_format == "csv" and utf8 and holds(src):
            out[i] = replace(src, encoding="cp1252")
            return out
    return None


def _compute_dosage(
    sources: Sequence[UsageSource],
    *,
    plan: Plan,
    windows: Windows,
    id_map: IdMap,
    seats: dict[str, int] | None,
    progress: Callable[[float], None] | None,
    cancel: threading.Event | None,
) -> DosageResult:
    dcfg = plan.dosage
    thr = int(dcfg.min_sessions_per_month)
    notes: list[str] = []
    ids_after = _ids_after(sources, plan)
    with connect(plan) as con, _interrupt_when(con, cancel):
        # Text exports parsed once are most of the reading: the first 70% of the progress.
        read_share = 0.7
        prepared, files = reader_stage(
            con,
            sources,
            plan,
            id_map,
            functools.partial(_scaled_progress, progress, 0.0, read_share) if progress else None,
            ids_after=ids_after,
        )
        if ids_after or not any(_parse_once(p, plan) for p in prepared):
            read_share = 0.0
        if callable(windows):
            windows = windows()
        window_rule = _window_sql(con, plan, windows, notes, keyed=True)
        measures = [m for m in ("minutes", "lessons_completed", "lessons_passed")
                    if any(m in p.measures for p in prepared)]
        aggregation = functools.partial(
            aggregation_sql,
            thr,
            window_rule,
            measures,
            units={p.unit for p in prepared},
            grans={p.src.granularity for p in prepared},
            single_source=len(prepared) == 1,
            every_row_used=all(_every_row_used(p) for p in prepared),
        )
        sql = aggregation(id_key="g1.rid")
        # Student-month level with the window applied; rows outside it, unmatched rows and
        # unreadable dates are carried only as counts. One pass, streaming from the files.
        rest = (
            functools.partial(_scaled_progress, progress, read_share, 1.0 - read_share)
            if progress
            else None
        )
        if _many_rows(con, prepared, plan):
            # Far more rows than the memory limit holds: the distinct rows are written to a
            # temp table first (spilled to disk), so the de-duplication and the student-month
            # hash tables never need memory at the same time.
            half = functools.partial(_scaled_progress, rest, 0.0, 0.6) if rest else None
            with _watch_progress(con, half):
                _run(con, f"CREATE TEMP TABLE rce_all AS SELECT * FROM {ROWS_RELATION}", files)
            _run(con, f"CREATE OR REPLACE TEMP VIEW {ROWS_RELATION} AS SELECT * FROM rce_all")
            rest = functools.partial(_scaled_progress, rest, 0.6, 0.4) if rest else None
        with _watch_progress(con, rest):
            _run(con, f"CREATE TEMP TABLE mo_raw AS {sql['mo_raw']}", files)
        if ids_after:
            salt = _map_ids(con, _distinct_ids(con, "SELECT rid AS r FROM mo_raw"), id_map)
            sql = aggregation(id_key=raw_id_key("g1.rid", salt))
        _run(con, f"CREATE TEMP TABLE mo_all AS {sql['mo_all']}")
        # The tables before the student-month level are done with: their memory goes to the
        # sorts and joins that follow (sorting the monthly table took 1.6 s instead of 0.2 s
        # at 30M rows while they were kept).
        for table in ("mo_raw", "rce_all", *(f"rce_rows_{i}" for i in range(len(prepared)))):
            _run(con, f"DROP TABLE IF EXISTS {table}")
        acct = _run(con, sql["accounting"]).fetchall()[0]
        unmatched_rows = _run(con, sql["unmatched"]).fetchall()
        source_masks = _run(con, sql["product_sources"]).fetchall()
        _run(con, f"CREATE TEMP TABLE mo AS {sql['mo']}")
        per = _arrow(con, sql["per"])
        n_monthly = _run(con, "SELECT count(*) FROM mo").fetchall()[0][0]
        if n_monthly <= plan.engine.max_monthly_rows:
            monthly = _arrow(con, sql["monthly"])
        else:
            monthly = None
            notes.append(
                f"The student x month table ({n_monthly:,} rows) was not kept "
                f"(engine.max_monthly_rows = {plan.engine.max_monthly_rows:,}); per-student "
                "sums and habitual months at 1-12 sessions a month are."
            )
        trend = _arrow(con, sql["trend"])
        students = _arrow(con, f"SELECT student_id FROM {STUDENTS} ORDER BY sk")

    # Results leave DuckDB as Arrow tables and become pandas frames only after the connection
    # (and its buffer pool) is closed, so the two never hold memory at the same time.
    per, trend = _to_pandas(per), _to_pandas(trend)
    monthly = (
        _to_pandas(monthly)
        if monthly is not None
        else pd.DataFrame({c: [] for c in MONTHLY_COLUMNS}).astype(
            {"student_id": "int32", "product": "str", "month": "datetime64[s]"}
        )
    )
    # Student keys become student IDs again only on the result tables (key = position); the
    # IDs stay in Arrow-backed string columns (no Python object per row).
    ids = _to_pandas(students)["student_id"].astype("str").reset_index(drop=True)
    per, monthly = (
        t.assign(student_id=ids.take(t["student_id"].to_numpy()).set_axis(t.index))
        for t in (per, monthly)
    )
    product_sources = {
        str(prod): [i for i in range(len(prepared)) if (int(mask) >> i) & 1]
        for prod, mask in source_masks
    }
    products = _product_facts(prepared, product_sources)
    return finish_dosage(
        per,
        monthly,
        trend,
        acct,
        unmatched_rows,
        products,
        plan=plan,
        windows=windows,
        seats=seats,
        window_rule=window_rule,
        notes=notes,
    )


#: Text exports up to this many bytes per GB of ``engine.memory_limit`` are parsed once (their
#: distinct rows kept in a temp table); larger ones are scanned for their IDs, then read again.
PARSE_ONCE_BYTES_PER_GB = 1_000_000_000


def _memory_gb(limit: str) -> float:
    """``engine.memory_limit`` ("1GB", "512MB", "3 GiB") in GB (1 when it cannot be read)."""
    m = re.fullmatch(r"\s*([0-9.]+)\s*([KMGT]?)I?B?\s*", limit.upper())
    if not m:
        return 1.0
    scale = {"": 1e-9, "K": 1e-6, "M": 1e-3, "G": 1.0, "T": 1e3}[m.group(2)]
    return float(m.group(1)) * scale


def _parse_once(p: _Prepared, plan: Plan) -> bool:
    """Whether a text export is small enough to keep its distinct rows in a temp table."""
    if p.src.file_format != "csv":
        return False
    size = sum(os.path.getsize(f) for f in p.files)
    return size <= PARSE_ONCE_BYTES_PER_GB * _memory_gb(plan.engine.memory_limit)


#: Above this many usage rows per GB of ``engine.memory_limit`` the distinct rows are
#: materialised before the student-month aggregation (see :func:`_many_rows`).
MANY_ROWS_PER_GB = 50_000_000
#: Bytes per row assumed for text exports, whose row count is not known before reading.
_CSV_BYTES_PER_ROW = 40


def _many_rows(con: duckdb.DuckDBPyConnection, prepared: Sequence[_Prepared], plan: Plan) -> bool:
    """Whether the exports hold more rows than one statement should aggregate twice."""
    rows = 0
    for p in prepared:
        if p.src.file_format == "parquet":
            files = "[" + ", ".join(q.lit(f) for f in p.files) + "]"
            rows += int(
                _run(con, f"SELECT sum(num_rows) FROM parquet_file_metadata({files})", p.files)
                .fetchall()[0][0]
                or 0
            )
        else:
            rows += sum(os.path.getsize(f) for f in p.files) // _CSV_BYTES_PER_ROW
    return rows > MANY_ROWS_PER_GB * _memory_gb(plan.engine.memory_limit)


def _scaled_progress(
    progress: Callable[[float], None], start: float, share: float, done: float
) -> None:
    progress(start + share * done)


def reader_stage(
    con: duckdb.DuckDBPyConnection,
    sources: Sequence[UsageSource],
    plan: Plan,
    id_map: IdMap,
    progress: Callable[[float], None] | None = None,
    *,
    ids_after: bool = False,
) -> tuple[list[_Prepared], list[str]]:
    """Create the view :data:`ROWS_RELATION` (distinct rows of every export, IDs mapped).

    ``ids_after``: the rows are keyed by the raw ID text and no ID map is made; the caller
    maps the distinct IDs of its first aggregation (:func:`_map_ids`), so that the exports
    are read once (see :func:`_ids_after`).

    The DuckDB-specific part of the step: each export is parsed by DuckDB's own reader
    (formats, time zones, duplicates) and reduced to its distinct rows keyed by a hash of the
    raw ID; the distinct raw IDs are normalised and matched once (:data:`ID_MAP`), and the rows
    carry the integer student key of :data:`STUDENTS` as ``student_id``.

    Returns
    -------
    (prepared sources, their files)
    """
    prepared = [_prepare(con, s, plan) for s in sources]
    if len(prepared) > 63:
        # each export is one bit of a signed 64-bit mask (the type every engine shares)
        raise LayoutError(
            f"{len(prepared)} usage exports were given; at most 63 fit one dosage run",
            where="inputs.usage",
            hint="Stitch the exports of one product into one file pattern (a glob).",
        )
    files = [f for p in prepared for f in p.files]
    segments = utc_offset_segments(con, plan.study.timezone)
    if ids_after:
        union = " UNION ALL ".join(
            f"({_source_sql(p, plan, i, 0, segments, text_ids=True)})"
            for i, p in enumerate(prepared)
        )
        _run(con, f"CREATE TEMP VIEW {ROWS_RELATION} AS {union}")
        return prepared, files
    # Text exports that fit the memory budget are parsed once: their distinct rows, keyed by
    # the raw ID text, are kept in a temp table that gives both the distinct IDs and the rows.
    # Larger ones (and Parquet, whose ID column reads alone) are scanned for their IDs first.
    tables: dict[int, str] = {}
    once = [i for i, p in enumerate(prepared) if _parse_once(p, plan)]
    for n, i in enumerate(once):
        tables[i] = f"rce_rows_{i}"
        sql = _source_sql(prepared[i], plan, i, segments=segments, raw_ids=True)
        scaled = None
        if progress is not None:
            scaled = functools.partial(_scaled_progress, progress, n / len(once), 1 / len(once))
        with _watch_progress(con, scaled):
            _run(con, f"CREATE TEMP TABLE {tables[i]} AS {sql}", prepared[i].files)
    salt = _map_ids(con, _raw_usage_ids(con, prepared, tables), id_map)
    union = " UNION ALL ".join(
        f"({_source_sql(p, plan, i, salt, segments, dedup_table=tables.get(i))})"
        for i, p in enumerate(prepared)
    )
    _run(con, f"CREATE TEMP VIEW {ROWS_RELATION} AS {union}")
    j = f"""SELECT s.src, s.product, s.gran, s.unit, m.sk AS student_id,
              CASE WHEN m.sk IS NULL THEN coalesce(m.reason, 'not_in_id_map') END AS reason,
              s.day, s.n_read, s.n_kept, s.sess, s.minutes, s.lessons_completed,
              s.lessons_passed
            FROM {ROWS_RELATION} s LEFT JOIN {ID_MAP} m ON s.rid = m.hid"""
    _run(con, f"CREATE TEMP VIEW {MAPPED_ROWS} AS {j}")
    return prepared, files


#: Temp tables of the reader stage: raw-ID hash -> student key (or the reason it has none), and
#: student key -> student ID (keys follow the sorted student IDs, so ordering by key is ordering
#: by ID).
ID_MAP = "rce_idmap"
STUDENTS = "rce_students"


def _map_ids(con: duckdb.DuckDBPyConnection, raw: pd.Series, id_map: IdMap) -> int:
    """Match the distinct raw usage IDs to students (:data:`ID_MAP`); return the hash salt."""
    return _register_ids(con, _id_keys(raw, id_map))


def _ids_after(sources: Sequence[UsageSource], plan: Plan) -> bool:
    """Whether the usage IDs can be matched after the first aggregation, reading exports once.

    Only when nothing before it needs a student: the window is the same for every student
    and no export de-duplicates by student. Text exports only: for them it saves a second
    parse of the file (a Parquet ID column reads alone, and the state-scale path is measured
    on hashed IDs).
    """
    return (
        plan.dosage.window in ("all", "dates")
        and all(s.file_format == "csv" for s in sources)
        and not any("student_id" in s.dedupe_keys for s in sources)
    )


def _id_keys(raw: pd.Series, id_map: IdMap) -> pd.DataFrame:
    """raw_id (text as read) -> student_id and reason, for every distinct raw ID and blank."""
    norm = normalize_student_id(raw)
    if id_map is None:
        student = norm
        reason = pd.Series(pd.NA, index=raw.index, dtype="str")
    else:
        if callable(id_map):
            id_map = id_map(pd.Series(sorted(norm.dropna().unique()), dtype="str", name="raw_id"))
        clean = _clean_id_map(id_map).set_index("raw_id")
        student = norm.map(clean["student_id"])
        if "reason" in clean.columns:
            reason = norm.map(clean["reason"]).where(student.isna())
        else:
            reason = pd.Series(pd.NA, index=raw.index, dtype="str")
        reason = reason.where(reason.notna() | student.notna(), "not_in_id_map")
    reason = reason.where(norm.notna(), "blank_id")
    student = student.where(norm.notna())
    keys = pd.DataFrame(
        {"raw_id": raw.astype("str"), "student_id": student.astype("str"), "reason": reason}
    )
    # a NULL ID (an empty CSV field) is a blank ID too
    blank = pd.DataFrame({"raw_id": [None], "student_id": [None], "reason": ["blank_id"]})
    return pd.concat([keys, blank.astype("str")], ignore_index=True)


def _register_ids(con: duckdb.DuckDBPyConnection, keys: pd.DataFrame) -> int:
    """Create :data:`ID_MAP` and :data:`STUDENTS`; return the hash salt of the raw-ID keys."""
    codes, uniques = pd.factorize(keys["student_id"], sort=True)
    students = pd.DataFrame(
        {
            "student_id": pd.Series(uniques, dtype="str"),
            "sk": np.arange(len(uniques), dtype="int32"),
        }
    )
    sk = pd.Series(codes, dtype="int32").where(codes >= 0).astype("Int32")
    con.register("rce_ids_in", keys.assign(sk=sk))
    con.register("rce_students_in", students)
    _run(con, f"CREATE OR REPLACE TEMP TABLE {STUDENTS} AS SELECT * FROM rce_students_in")
    # Distinct raw IDs must keep distinct hashes; a collision (about n^2 / 2^65 for n IDs)
    # re-seeds the hash.
    for salt in range(8):
        _run(
            con,
            f"""CREATE OR REPLACE TEMP TABLE {ID_MAP} AS
                SELECT {raw_id_key("raw_id", salt)} AS hid, sk, reason FROM rce_ids_in""",
        )
        n, n_hash = _run(con, f"SELECT count(*), count(DISTINCT hid) FROM {ID_MAP}").fetchall()[0]
        if n == n_hash:
            break
    else:  # pragma: no cover - eight 64-bit collisions in a row
        raise DataError("usage IDs could not be keyed without collisions", where="usage")
    con.unregister("rce_ids_in")
    con.unregister("rce_students_in")
    return salt


#: Name of the relation the shared aggregation reads: one row per source row or student-day with
#: columns src, product, gran, unit, student_id, reason, day, n_read, n_kept, sess, minutes,
#: lessons_completed, lessons_passed (see :func:`aggregation_sql`). The DuckDB reader stage's
#: rows carry the raw-ID key ``rid`` instead of student_id and reason (``id_key``).
ROWS_RELATION = "rce_rows"
#: The reader stage's rows matched to students: ``student_id`` (student key) and ``reason``
#: (why a row has no student) instead of ``rid``.
MAPPED_ROWS = "rce_rows_mapped"


def aggregation_sql(
    thr: int,
    window_rule: dict[str, Any],
    measures: Sequence[str] = ("minutes", "lessons_completed", "lessons_passed"),
    *,
    units: Collection[str] | None = None,
    grans: Collection[str] | None = None,
    single_source: bool = False,
    every_row_used: bool = False,
    id_key: str | None = None,
) -> dict[str, str]:
    """The dosage definition after the reader stage, as DuckDB SQL (one text for every engine).

    Each value is a SELECT statement. ``mo_raw`` reads :data:`ROWS_RELATION`, ``mo_all`` the
    materialised ``mo_raw``; ``accounting``,
    ``unmatched`` and ``product_sources`` read the materialised ``mo_all``; ``mo`` reads
    ``mo_all``; ``per`` reads ``mo_all`` and ``mo``; ``monthly`` and ``trend`` read ``mo``.
    DuckDB runs the texts as they are; :mod:`rce.dosage_spark` transpiles the same texts to
    Spark SQL with sqlglot, so the session unit, the window, the habitual month and the
    per-student sums are defined once.

    The rows may be export rows or student-days, from one export or several: the student-day
    level is not a separate aggregation but a bit per day of the month, so a day that several
    rows, exports or usage IDs share counts once (unit ``student-day``, active days), while
    unit ``row`` and ``provided`` sessions add up.

    Parameters
    ----------
    thr
        ``plan.dosage.min_sessions_per_month``.
    window_rule
        From the window stage: ``join`` (a join of alias ``d`` to the windows relation
        ``rce_windows_in``), ``w_lo`` / ``w_hi`` (DATE expressions).
    measures
        The measures some export has (of minutes, lessons_completed, lessons_passed); the
        others are NULL in every row and are not aggregated.
    units, grans
        The session units and granularities the rows can have, when the caller knows them
        (``None``: any). Only simplifies the SQL; the result is the same.
    single_source
        Every row comes from export 0 (its source mask needs no aggregate).
    every_row_used
        Every row is one kept row that shows use (``n_kept`` = 1, ``sess`` = 1: logs without
        ``dedupe_keys``), so counts need no inputs.
    id_key
        The rows are keyed by a raw ID ``rid`` (the DuckDB reader stage), not by
        ``student_id`` and ``reason``: ``mo_all`` matches them to students through
        :data:`ID_MAP` on ``hid = {id_key}`` (an expression of ``g1.rid``), and a window per
        student joins the rows by ``window_rule``'s ``row_join``.
    """
    j = ROWS_RELATION
    by_threshold = "".join(
        f"count(m.month) FILTER (WHERE m.sessions >= {t}) AS habitual_months_{t}, "
        for t in HABITUAL_THRESHOLDS
    )

    def total(m: str, agg: str = "sum") -> str:
        return f"{agg}({m}) AS {m}" if m in measures else f"CAST(NULL AS DOUBLE) AS {m}"

    day_level = set(_DAY_LEVEL)
    daily = grans is not None and set(grans) <= day_level
    # Two aggregations to the student-month: g1 by the rows' own key (the raw-ID key of the
    # DuckDB reader stage, see ROWS_RELATION), g2 by student after the ID map. The join to
    # the ID map then reads the student-months of each raw ID, not every row (30M rows: 16 s
    # -> 12 s). Every g1 value merges exactly in g2: counts and sums add, and a month's days
    # are bits of a mask (bit d: used on day d), so a day that several exports or spellings of
    # one student's ID share counts once.
    if id_key is not None:
        key = "rid"
        matched = (
            f"SELECT m.sk AS student_id, CASE WHEN m.sk IS NULL THEN coalesce(m.reason, "
            f"'not_in_id_map') END AS reason, g1.* FROM mo_raw g1 LEFT JOIN {ID_MAP} m "
            f"ON {id_key} = m.hid"
        )
    else:
        key = "student_id, reason"
        matched = "SELECT * FROM mo_raw"
    if units is not None and set(units) == {"student-day"}:
        sess1, sessions = "", "coalesce(bit_count(bit_or(use_mask)), 0)"
    elif units is not None and set(units) == {"row"} and every_row_used:
        sess1, sessions = "count(*) AS sess, ", "sum(sess)"
    elif units is not None and "student-day" not in units:
        sess1, sessions = "sum(sess) AS sess, ", "coalesce(sum(sess), 0)"
    else:  # a product has one unit (checked on the product facts), so any_value is its unit
        sess1 = "sum(sess) AS sess, any_value(unit) AS unit, "
        sessions = (
            "CASE WHEN any_value(unit) = 'student-day' THEN coalesce(bit_count(bit_or(use_mask)), "
            "0) ELSE coalesce(sum(sess), 0) END"
        )
    if daily:
        day_mask1, active_days = "", "coalesce(bit_count(bit_or(use_mask)), 0)"
    elif grans is not None and not set(grans) & day_level:
        day_mask1, active_days = "", "0"
    else:
        day_mask1 = (
            f"bit_or(day_bit) FILTER (WHERE gran IN ({', '.join(repr(g) for g in _DAY_LEVEL)}))"
            " AS day_mask, "
        )
        active_days = "coalesce(bit_count(bit_or(day_mask)), 0)"
    if daily:
        # Every row is one day: the first and last days (of use, and of any row) are the lowest
        # and highest bits of two month masks, which cost less than four min / max states.
        lo = hi = "d.day"
        any_mask = (
            "bit_or(day_bit)" if every_row_used else "bit_or(CAST(1 AS BIGINT) << dayofmonth(day))"
        )
        days1 = f"{any_mask} AS any_mask"
        days2 = "bit_or(use_mask) AS use_mask, bit_or(any_mask) AS any_mask"

        def bit_day(mask: str, high: bool) -> str:
            pos = (
                f"CAST(floor(log2({mask})) AS INTEGER)"
                if high
                else f"bit_count(({mask} & -{mask}) - 1)"
            )
            return f"CASE WHEN {mask} <> 0 THEN CAST(month + ({pos} - 1) AS DATE) END"

        finish = (
            f"{bit_day('use_mask', False)} AS first_day, {bit_day('use_mask', True)} AS last_day, "
            f"{bit_day('any_mask', False)} AS lo, {bit_day('any_mask', True)} AS hi"
        )
    else:
        lo = (
            "CASE d.gran WHEN 'weekly' THEN CAST(d.day - INTERVAL 6 DAY AS DATE) "
            "WHEN 'monthly' THEN CAST(date_trunc('month', d.day) AS DATE) ELSE d.day END"
        )
        hi = "CASE d.gran WHEN 'monthly' THEN last_day(d.day) ELSE d.day END"
        days1 = (
            "min(CASE WHEN sess > 0 THEN day END) AS first_day, "
            "max(CASE WHEN sess > 0 THEN day END) AS last_day, min(lo) AS lo, max(hi) AS hi"
        )
        days2 = (
            "min(first_day) AS first_day, max(last_day) AS last_day, min(lo) AS lo, "
            "max(hi) AS hi"
        )
        finish = "first_day, last_day, lo, hi"
    if single_source:
        srcs1, srcs = "", "CAST(1 AS BIGINT)"
    else:
        srcs1, srcs = "bit_or(CAST(1 AS BIGINT) << src) AS srcs, ", "bit_or(srcs)"
    if every_row_used:
        n_kept1 = "count(*)"
        day_bit = "CAST(1 AS BIGINT) << dayofmonth(day)"
    else:
        n_kept1 = "sum(n_kept)"
        day_bit = (
            "CASE WHEN sess > 0 THEN CAST(1 AS BIGINT) << dayofmonth(day) "
            "ELSE CAST(0 AS BIGINT) END"
        )
    # (a date minus its day of month is cheaper than date_trunc, which works on timestamps)
    month = (
        "day - CAST(dayofmonth(day) - 1 AS INTEGER)"
        if daily
        else "CAST(date_trunc('month', day) AS DATE)"
    )
    measures1 = "".join(f"sum({m}) AS {m}, " for m in measures)
    use_mask1 = "bit_or(day_bit) AS use_mask, " if daily or "use_mask" in sessions else ""
    mo_raw = f"""WITH dw AS (
          SELECT d.*, {lo} AS lo, {hi} AS hi,
            {window_rule["w_lo"]} AS w_lo, {window_rule["w_hi"]} AS w_hi
          FROM {j} d {window_rule["join" if id_key is None else "row_join"]}),
        f AS (
          SELECT *, day IS NOT NULL AND (w_lo IS NULL OR (hi >= w_lo AND lo <= w_hi)) AS in_win,
                 {day_bit} AS day_bit
          FROM dw)
        SELECT {key}, product, {month} AS month, in_win, {srcs1}
          sum(n_read) AS n_read, {n_kept1} AS n_kept, {sess1}{measures1}{day_mask1}
          {use_mask1}{days1}
        FROM f GROUP BY {key}, product, {month}, in_win"""
    mo_all = f"""WITH j AS ({matched}),
        g2 AS (
          SELECT student_id, product, reason, month, reason IS NULL AND in_win AS in_win,
            {srcs} AS srcs, CAST(sum(n_read) AS BIGINT) AS n_read,
            CAST(sum(n_kept) AS BIGINT) AS n_kept, CAST({sessions} AS BIGINT) AS sessions,
            {total("minutes")}, CAST({active_days} AS BIGINT) AS active_days,
            {total("lessons_completed")}, {total("lessons_passed")}, {days2}
          FROM j GROUP BY student_id, product, reason, month, reason IS NULL AND in_win)
        SELECT student_id, product, reason, month, in_win, srcs, n_read, n_kept, sessions,
          minutes, active_days, lessons_completed, lessons_passed, {finish}
        FROM g2"""
    return {
        "mo_raw": mo_raw,
        "mo_all": mo_all,
        "accounting": """SELECT coalesce(sum(n_read), 0) AS n_read,
             coalesce(sum(n_read - n_kept), 0) AS n_dedup,
             coalesce(sum(n_kept) FILTER (WHERE reason IS NULL AND month IS NULL), 0) AS n_bad,
             coalesce(sum(n_kept) FILTER (WHERE reason IS NULL AND month IS NOT NULL
                                          AND NOT in_win), 0) AS n_out
           FROM mo_all""",
        "unmatched": "SELECT reason, sum(n_kept) AS n FROM mo_all WHERE reason IS NOT NULL "
        "GROUP BY reason ORDER BY reason",
        "product_sources": "SELECT product, bit_or(srcs) AS srcs FROM mo_all "
        "WHERE reason IS NULL GROUP BY product",
        "mo": f"""SELECT student_id, product, month, sessions, minutes, active_days,
          lessons_completed, lessons_passed, sessions >= {int(thr)} AS habitual, first_day,
          last_day
        FROM mo_all WHERE reason IS NULL AND month IS NOT NULL AND in_win""",
        "per": f"""WITH a AS (SELECT * FROM mo_all WHERE reason IS NULL AND month IS NOT NULL),
            k AS (SELECT d.student_id, d.product, {window_rule["w_lo"]} AS w_lo,
                         {window_rule["w_hi"]} AS w_hi
                  FROM (SELECT DISTINCT student_id, product FROM a) d {window_rule["join"]}),
            span AS (SELECT product, min(lo) AS p_lo, max(hi) AS p_hi FROM a GROUP BY product)
        SELECT k.student_id, k.product,
          CAST(coalesce(sum(m.sessions), 0) AS BIGINT) AS sessions, sum(m.minutes) AS minutes,
          CAST(sum(m.active_days) AS BIGINT) AS active_days,
          count(m.month) FILTER (WHERE m.sessions > 0) AS active_months,
          count(m.month) FILTER (WHERE m.sessions >= {int(thr)}) AS habitual_months,
          {by_threshold}
          min(m.first_day) AS first_use, max(m.last_day) AS last_use,
          sum(m.lessons_completed) AS lessons_completed,
          sum(m.lessons_passed) AS lessons_passed,
          any_value(date_diff('day', coalesce(k.w_lo, s.p_lo), coalesce(k.w_hi, s.p_hi)) + 1)
            AS window_days
        FROM k JOIN span s ON k.product = s.product
        LEFT JOIN mo m ON k.student_id = m.student_id AND k.product = m.product
        GROUP BY k.student_id, k.product""",
        # (products are ranked first: a sort with a text key took 1.4 s for 2.2M rows, with
        # an integer rank 0.45 s)
        "monthly": """WITH p AS (
             SELECT product, CAST(row_number() OVER (ORDER BY product) AS INTEGER) AS pk
             FROM (SELECT DISTINCT product FROM mo) d)
           SELECT m.student_id, m.product, m.month, m.sessions, m.minutes, m.active_days,
             m.lessons_completed, m.lessons_passed, m.habitual
           FROM mo m JOIN p ON m.product = p.product ORDER BY p.pk, m.student_id, m.month""",
        "trend": """SELECT product, month, count(*) FILTER (WHERE sessions > 0) AS students_active,
                  count(*) FILTER (WHERE habitual) AS students_habitual,
                  sum(minutes) AS minutes
           FROM mo GROUP BY product, month ORDER BY product, month""",
    }


def finish_dosage(
    per: pd.DataFrame,
    monthly: pd.DataFrame,
    trend: pd.DataFrame,
    acct: Sequence[Any],
    unmatched_rows: Sequence[Sequence[Any]],
    products: dict[str, dict[str, Any]],
    *,
    plan: Plan,
    windows: pd.DataFrame | None,
    seats: dict[str, int] | None,
    window_rule: dict[str, Any],
    notes: list[str],
) -> DosageResult:
    """Build the :class:`DosageResult` from the collected aggregates (shared by every engine).

    ``per``, ``monthly`` and ``trend`` are the results of the ``per``, ``monthly`` and ``trend``
    statements of :func:`aggregation_sql`; ``acct`` the one row of ``accounting``;
    ``unmatched_rows`` the rows of ``unmatched``; ``products`` the facts of
    :func:`_product_facts`.
    """
    # Engines return groups in any order; the clusters' seeded start depends on the order.
    per = per.sort_values(["product", "student_id"], kind="stable").reset_index(drop=True)
    threshold_cols = [f"habitual_months_{t}" for t in HABITUAL_THRESHOLDS]
    by_threshold = (
        per[threshold_cols].astype("int64") if set(threshold_cols) <= set(per.columns) else None
    )
    rows_read, rows_dedup, rows_bad_date, rows_outside = (int(x) for x in acct)
    unmatched = {str(r): int(n) for r, n in unmatched_rows}
    units = {prod: f["unit"] for prod, f in products.items()}
    per_student = finish_per_student(per, products, plan)
    monthly = _finish_monthly(monthly, products)
    trend = trend.assign(
        students_active=trend["students_active"].astype("int64"),
        students_habitual=trend["students_habitual"].astype("int64"),
        minutes=trend["minutes"].astype("float64"),
    )
    definition = _definition(plan, units, products, window_rule["rule"])
    notes = _notes(
        notes, per_student, products, plan, windows, rows_bad_date, unmatched, rows_outside
    )
    util = utilization(per_student, seats) if seats else None
    return DosageResult(
        per_student=per_student,
        monthly=monthly,
        trend=trend,
        definition=definition,
        rows_read=rows_read,
        rows_deduplicated=rows_dedup,
        rows_outside_window=rows_outside,
        rows_unmatched=unmatched,
        rows_bad_date=rows_bad_date,
        utilization=util,
        notes=tuple(notes),
        habitual_by_threshold=by_threshold,
    )


def _arrow(con: duckdb.DuckDBPyConnection, sql: str, files: Sequence[str] = ()) -> Any:
    """A query result as an Arrow table (no extra copy of the rows)."""
    with _engine_errors(files):
        return con.sql(sql).to_arrow_table()


def _to_pandas(table: Any) -> pd.DataFrame:
    """An Arrow table from DuckDB as a pandas frame (text as ``str``, dates as datetime64)."""
    df = table.to_pandas(date_as_object=False)
    del table
    return df


def _clean_id_map(id_map: pd.DataFrame) -> pd.DataFrame:
    missing = {"raw_id", "student_id"} - set(id_map.columns)
    if missing:
        raise DataError(
            f"the ID map lacks column(s) {', '.join(sorted(missing))}",
            where="id_map",
            hint="Build it with rce.io.normalize.resolve_ids on distinct_usage_ids().",
        )
    cols = ["raw_id", "student_id"] + (["reason"] if "reason" in id_map.columns else [])
    m = id_map[cols].astype("str").dropna(subset=["raw_id"]).drop_duplicates()
    if m["raw_id"].duplicated().any():
        n = int(m["raw_id"].duplicated().sum())
        raise DataError(
            f"the ID map gives {n} usage ID(s) more than one student",
            where="id_map",
            hint="Each usage ID must map to one student; resolve the conflicts in the crosswalk.",
        )
    return m


def _window_sql(
    con: duckdb.DuckDBPyConnection,
    plan: Plan,
    windows: pd.DataFrame | None,
    notes: list[str],
    *,
    keyed: bool = False,
) -> dict[str, Any]:
    """How the window joins the student-day rows: a join clause and the w_lo / w_hi expressions.

    ``keyed``: the rows carry the student keys of :data:`STUDENTS`, not student IDs.
    """
    d = plan.dosage
    none = {"join": "", "row_join": "", "w_lo": "CAST(NULL AS DATE)", "w_hi": "CAST(NULL AS DATE)"}
    if d.window == "all":
        return {**none, "rule": {"rule": "all usage rows count"}}
    if d.window == "dates":
        if d.window_start is None or d.window_end is None:
            raise PlanError(
                'dosage.window_start and window_end must be set when window = "dates"',
                where="dosage",
                hint="Add both dates (YYYY-MM-DD).",
            )
        lo, hi = d.window_start.isoformat(), d.window_end.isoformat()
        return {
            "join": "",
            "row_join": "",
            "w_lo": f"DATE '{lo}'",
            "w_hi": f"DATE '{hi}'",
            "rule": {"rule": f"usage from {lo} to {hi} inclusive counts", "start": lo, "end": hi},
        }
    # baseline-to-outcome
    if windows is None:
        notes.append(
            "No test dates were given, so the baseline-to-outcome window could not be applied: "
            "all usage rows count."
        )
        return {
            **none,
            "rule": {"rule": "baseline-to-outcome requested, but no test dates given: all rows"},
        }
    missing = {"student_id", "baseline_date", "outcome_date"} - set(windows.columns)
    if missing:
        raise DataError(
            f"the test-date windows lack column(s) {', '.join(sorted(missing))}",
            where="windows",
            hint="Pass student_id, baseline_date and outcome_date per student.",
        )
    w = pd.DataFrame(
        {
            "student_id": windows["student_id"].astype("str"),
            "b": pd.to_datetime(windows["baseline_date"]),
            "o": pd.to_datetime(windows["outcome_date"]),
        }
    ).dropna()
    if w["student_id"].duplicated().any():
        raise DataError(
            "the test-date windows have more than one row for some students",
            where="windows",
            hint="Give one baseline and one outcome date per student.",
        )
    rule = (
        "usage on or after each student's baseline test date and on or before their outcome "
        "test date counts; students without test dates use the study-wide window (earliest "
        "baseline to latest outcome)"
    )
    if w.empty:
        notes.append("No student has both test dates: all usage rows count.")
        return {**none, "rule": {"rule": rule}}
    con.register("rce_windows_in", w)
    g_lo, g_hi = w["b"].min().date().isoformat(), w["o"].max().date().isoformat()
    student = "student_id"
    source = "rce_windows_in"
    row_join = ""
    if keyed:
        student = "st.sk AS student_id"
        source = f"rce_windows_in w0 JOIN {STUDENTS} st ON w0.student_id = st.student_id"
        # the reader stage's rows carry raw-ID keys: each one's window, through the ID map
        row_join = (
            "LEFT JOIN (SELECT m.hid, CAST(b AS DATE) AS b, CAST(o AS DATE) AS o "
            f"FROM {source} JOIN {ID_MAP} m ON m.sk = st.sk) w ON d.rid = w.hid"
        )
    return {
        "row_join": row_join,
        "join": f"LEFT JOIN (SELECT {student}, CAST(b AS DATE) AS b, CAST(o AS DATE) AS o "
        f"FROM {source}) w ON d.student_id = w.student_id",
        "w_lo": f"coalesce(w.b, DATE '{g_lo}')",
        "w_hi": f"coalesce(w.o, DATE '{g_hi}')",
        "rule": {"rule": rule},
    }


def _product_facts(
    prepared: Sequence[_Prepared], product_sources: dict[str, list[int]]
) -> dict[str, dict[str, Any]]:
    """What each product's exports can show (minutes, pass rates, active days) and its unit."""
    facts: dict[str, dict[str, Any]] = {}
    for product, idxs in sorted(product_sources.items()):
        ps = [prepared[i] for i in idxs]
        units = sorted({p.unit for p in ps})
        if len(units) > 1:
            raise PlanError(
                f"the exports of product {product!r} need different session units "
                f"({' and '.join(units)})",
                where="dosage.unit",
                hint="Set dosage.unit in the plan, or give each export its own product name.",
            )
        has = set()
        for p in ps:
            has |= set(p.cols) | {m for v in p.monthly.values() for m in v}
        facts[product] = {
            "granularity": sorted({p.src.granularity for p in ps}),
            "unit": units[0],
            "minutes": bool({"minutes", "avg_weekly_minutes"} & has),
            "pass": "lessons_passed" in has,
            "lessons": "lessons_completed" in has or any(p.src.granularity == "lesson" for p in ps),
            "day_level": all(p.src.granularity in _DAY_LEVEL for p in ps),
            "ignored_measures": sorted({h for p in ps for h in p.ignored_measures}),
            "record_columns": sorted(
                {p.cols[c] for p in ps for c in p.src.record_columns if c in p.cols}
            ),
        }
    return facts


def finish_per_student(
    per: pd.DataFrame, products: dict[str, dict[str, Any]], plan: Plan
) -> pd.DataFrame:
    """Derived per-student columns from the aggregated sums (shared by every engine).

    Adds average weekly minutes, pass rate, the fidelity flag, the usage level and the usage
    cluster, and puts the columns in :data:`PER_STUDENT_COLUMNS` order.
    """
    d = plan.dosage
    out = []
    for product, g in per.groupby("product", sort=True):
        f = products[str(product)]
        sessions = g["sessions"].astype("int64")
        minutes = (
            g["minutes"].astype("float64").fillna(0.0)
            if f["minutes"]
            else pd.Series(np.nan, index=g.index)
        )
        active_days = (
            g["active_days"].astype("float64").fillna(0).astype("Int64")
            if f["day_level"]
            else pd.Series(pd.NA, index=g.index, dtype="Int64")
        )
        weeks = g["window_days"].astype("float64") / 7.0
        avg_weekly = minutes / weeks.where(weeks > 0)
        if f["pass"]:
            lc = g["lessons_completed"].astype("float64")
            pass_rate = g["lessons_passed"].astype("float64") / lc.where(lc > 0)
        else:
            pass_rate = pd.Series(np.nan, index=g.index)
        if f["minutes"]:
            ok = avg_weekly >= d.fidelity_minutes_per_week
            if f["pass"]:
                ok = ok & (pass_rate >= d.fidelity_pass_rate)
            met = ok.astype("boolean")
        else:
            met = pd.Series(pd.NA, index=g.index, dtype="boolean")
        habitual_months = g["habitual_months"].astype("int64")
        level = np.where(
            habitual_months >= d.min_habitual_months,
            "habitual",
            np.where(sessions > 0, "light", "none"),
        )
        basis = minutes if f["minutes"] else sessions.astype("float64")
        clusters = usage_clusters(basis.where(sessions > 0), seed=plan.analysis.seed)
        out.append(
            pd.DataFrame(
                {
                    "student_id": g["student_id"].astype("str"),
                    "product": g["product"].astype("str"),
                    "sessions": sessions,
                    "minutes": minutes,
                    "active_days": active_days,
                    "active_months": g["active_months"].astype("int64"),
                    "habitual_months": habitual_months,
                    "first_use": pd.to_datetime(g["first_use"]),
                    "last_use": pd.to_datetime(g["last_use"]),
                    "avg_weekly_minutes": avg_weekly,
                    "pass_rate": pass_rate,
                    "met_fidelity": met,
                    "usage_level": pd.Series(level, index=g.index, dtype="str"),
                    "usage_cluster": clusters,
                }
            )
        )
    if not out:
        return pd.DataFrame({c: pd.Series(dtype="float64") for c in PER_STUDENT_COLUMNS})
    res = pd.concat(out, ignore_index=True)
    return res.sort_values(["product", "student_id"], kind="stable").reset_index(drop=True)


def _finish_monthly(monthly: pd.DataFrame, products: dict[str, dict[str, Any]]) -> pd.DataFrame:
    day_level = monthly["product"].isin([k for k, v in products.items() if v["day_level"]])
    return monthly.assign(
        sessions=monthly["sessions"].astype("int64"),
        minutes=monthly["minutes"].astype("float64"),
        active_days=monthly["active_days"].astype("Int64").where(day_level),
        lessons_completed=monthly["lessons_completed"].astype("float64"),
        lessons_passed=monthly["lessons_passed"].astype("float64"),
        habitual=monthly["habitual"].astype(bool),
        month=pd.to_datetime(monthly["month"]),
    ).reset_index(drop=True)


def _definition(
    plan: Plan, units: dict[str, str], products: dict[str, dict[str, Any]], window: dict[str, Any]
) -> dict[str, Any]:
    d = plan.dosage
    unit_words = {
        "row": "one row of the session log",
        "student-day": "a distinct student-day (district-local date) with at least one row",
        "provided": "the counts in the summary export",
    }
    return {
        "unit": {p: unit_words[u] for p, u in sorted(units.items())},
        "unit_code": dict(sorted(units.items())),
        "granularity": {p: f["granularity"] for p, f in sorted(products.items())},
        "min_sessions_per_month": d.min_sessions_per_month,
        "min_habitual_months": d.min_habitual_months,
        "window": {"mode": d.window, **window},
        "partial_months": (
            "not pro-rated: a month is habitual when its sessions inside the window reach the "
            "threshold"
        ),
        "timezone": plan.study.timezone,
        "fidelity": {
            "minutes_per_week": d.fidelity_minutes_per_week,
            "pass_rate": d.fidelity_pass_rate,
            "rule": (
                f"average weekly minutes over the student's window >= "
                f"{d.fidelity_minutes_per_week:g} and lesson pass rate >= "
                f"{d.fidelity_pass_rate:.0%} (pass rate only where the export has lesson results)"
            ),
        },
        "duplicates": "rows identical in every column count once"
        + "".join(
            f"; for {prod}, rows identical in {', '.join(f['record_columns'])} (one usage "
            "record: the other columns are student attributes as of the export or describe "
            "the record)"
            for prod, f in sorted(products.items())
            if f.get("record_columns")
        )
        + "; exports whose layout names key columns (daily and weekly summaries) keep one row "
        "per key and day, the one with the most minutes, then sessions, then lessons",
        "cluster_method": CLUSTER_METHOD,
    }


def _notes(
    notes: list[str],
    per_student: pd.DataFrame,
    products: dict[str, dict[str, Any]],
    plan: Plan,
    windows: pd.DataFrame | None,
    rows_bad_date: int,
    unmatched: dict[str, int],
    rows_outside: int,
) -> list[str]:
    if rows_bad_date:
        notes.append(
            f"{rows_bad_date:,} usage rows had a date that could not be read and were dropped."
        )
    if unmatched:
        detail = ", ".join(f"{k}: {v:,}" for k, v in unmatched.items())
        notes.append(f"{sum(unmatched.values()):,} usage rows matched no student ({detail}).")
    if rows_outside:
        notes.append(
            f"{rows_outside:,} usage rows fell outside the evaluation window and do not count."
        )
    for product, f in products.items():
        if f["ignored_measures"]:
            notes.append(
                f"{product}: monthly columns not used for dosage: "
                + ", ".join(f["ignored_measures"])
                + "."
            )
        if not f["minutes"]:
            notes.append(
                f"{product}: the export has no minutes, so fidelity and minutes are blank."
            )
        elif not f["pass"]:
            notes.append(
                f"{product}: no lesson results in the export; fidelity uses minutes per week only."
            )
        if not f["day_level"]:
            notes.append(
                f"{product}: weekly or monthly summaries cannot show active days (left blank)."
            )
    if windows is not None and "student_id" in windows.columns:
        scored = set(windows["student_id"].dropna().astype("str"))
        for product, g in per_student.groupby("product", sort=True):
            users = set(g.loc[g["sessions"] > 0, "student_id"])
            present = set(g["student_id"])
            notes.append(
                f"{product}: {len(scored - users):,} students with test dates have no usage in "
                f"the window (non-users); {len(present - scored):,} students in the usage export "
                "have no test dates."
            )
    return notes


# --- usage clusters -----------------------------------------------------------------------------


def usage_clusters(values: pd.Series, *, seed: int) -> pd.Series:
    """Label active students low -> high by 1-D k-means on log(1 + value).

    Parameters
    ----------
    values
        Minutes (or sessions) per student; NaN for students with no session (labelled "none").
    seed
        Seed for the k-means++ start and the silhouette sample (``plan.analysis.seed``).

    Returns
    -------
    pandas.Series
        ``str`` labels aligned with ``values``: "none" for non-users, the cluster name for users,
        missing when there are fewer than :data:`MIN_CLUSTER_STUDENTS` users or fewer than two
        distinct values.
    """
    out = pd.Series("none", index=values.index, dtype="str")
    mask = values.notna().to_numpy()
    x = np.log1p(values.to_numpy(dtype="float64")[mask])
    if len(x) < MIN_CLUSTER_STUDENTS or len(np.unique(x)) < 2:
        out[mask] = np.nan
        return out
    rng = np.random.default_rng(seed)
    sample = x if len(x) <= _SILHOUETTE_SAMPLE else rng.choice(x, _SILHOUETTE_SAMPLE, replace=False)
    best: tuple[float, int, np.ndarray] | None = None
    for k in (2, 3, 4):
        if len(np.unique(x)) < k:
            break
        centers = kmeans_1d(x, k, seed=seed)
        if len(np.unique(centers)) < k:
            continue
        s = silhouette_1d(sample, _assign(sample, centers))
        if best is None or s > best[0] + 1e-12:
            best = (s, k, centers)
    if best is None:
        out[mask] = np.nan
        return out
    _, k, centers = best
    labels = np.array(CLUSTER_LABELS[k], dtype=object)[_assign(x, centers)]
    out[mask] = labels
    return out


def _assign(x: np.ndarray, centers: np.ndarray) -> np.ndarray:
    # Centers are sorted; in one dimension the nearest center is found from the midpoints.
    return np.searchsorted((centers[1:] + centers[:-1]) / 2.0, x)


def kmeans_1d(
    x: np.ndarray, k: int, *, seed: int, n_init: int = 4, max_iter: int = 100
) -> np.ndarray:
    """Sorted k-means centers of 1-D data (k-means++ start, Lloyd iterations, best of n_init)."""
    rng = np.random.default_rng(seed)
    # Lloyd's iterations run on the distinct values weighted by their counts (minutes repeat a
    # lot: ~200,000 students have a few thousand distinct totals); the start uses every point.
    values, weights = np.unique(x, return_counts=True)
    weights = weights.astype("float64")
    best_c, best_inertia = None, np.inf
    for _ in range(n_init):
        c = np.array([x[rng.integers(len(x))]])
        for _j in range(1, k):
            d2 = np.min((x[:, None] - c[None, :]) ** 2, axis=1)
            total = d2.sum()
            if total <= 0:
                break
            c = np.append(c, x[rng.choice(len(x), p=d2 / total)])
        c = np.sort(c)
        for _it in range(max_iter):
            lab = _assign(values, c)
            counts = np.bincount(lab, weights=weights, minlength=len(c))
            sums = np.bincount(lab, weights=values * weights, minlength=len(c))
            new = np.where(counts > 0, sums / np.maximum(counts, 1), c)
            new = np.sort(new)
            if np.allclose(new, c, rtol=0, atol=1e-12):
                c = new
                break
            c = new
        inertia = float((weights * (values - c[_assign(values, c)]) ** 2).sum())
        if inertia < best_inertia - 1e-12:
            best_c, best_inertia = c, inertia
    assert best_c is not None
    return best_c


def silhouette_1d(x: np.ndarray, labels: np.ndarray) -> float:
    """Mean silhouette width of a 1-D clustering (0 for points in singleton clusters).

    Exact, without the n x n distance matrix: the summed distance of a point to a cluster's
    points is read off the cluster's sorted values and their prefix sums.
    """
    ks = np.unique(labels)
    if len(ks) < 2:
        return -1.0
    means = np.empty((len(x), len(ks)))
    sizes = np.array([(labels == k).sum() for k in ks])
    for j, k in enumerate(ks):
        ys = np.sort(x[labels == k])
        prefix = np.concatenate(([0.0], np.cumsum(ys)))
        below = np.searchsorted(ys, x, side="right")  # points of the cluster <= x
        means[:, j] = (x * below - prefix[below]) + (prefix[-1] - prefix[below]) - x * (
            len(ys) - below
        )
    own = np.searchsorted(ks, labels)
    n_own = sizes[own]
    a = means[np.arange(len(x)), own] / np.maximum(n_own - 1, 1)
    other = means / sizes[None, :]
    other[np.arange(len(x)), own] = np.inf
    b = other.min(axis=1)
    s = np.where(n_own > 1, (b - a) / np.maximum(np.maximum(a, b), 1e-300), 0.0)
    return float(s.mean())


# --- derived tables ------------------------------------------------------------------------------


def habitual_months_at(dosage: DosageResult, threshold: int) -> pd.Series:
    """Habitual months per student x product at another sessions-per-month threshold.

    Parameters
    ----------
    dosage
        A :class:`DosageResult`.
    threshold
        Sessions in a calendar month (inside the window) that make it habitual.

    Returns
    -------
    pandas.Series
        ``int64``, aligned with ``dosage.per_student`` (same index), named
        ``habitual_months_<threshold>``; zero for students without a month that qualifies.
    """
    if threshold < 1:
        raise PlanError("the sessions-per-month threshold must be at least 1", where="dosage")
    name = f"habitual_months_{threshold}"
    kept = dosage.habitual_by_threshold
    if kept is not None and name in kept.columns:
        return pd.Series(kept[name].to_numpy(), index=dosage.per_student.index, name=name)
    m = dosage.monthly
    if len(m) == 0 and (dosage.per_student["active_months"] > 0).any():
        raise DataError(
            f"habitual months at {threshold} sessions need the student x month table, which was "
            "not kept at this scale",
            where="engine.max_monthly_rows",
            hint="Raise engine.max_monthly_rows in the plan.",
        )
    counts = (
        m.loc[m["sessions"] >= threshold].groupby(["student_id", "product"]).size()
        if len(m)
        else pd.Series(dtype="int64")
    )
    keys = pd.MultiIndex.from_frame(dosage.per_student[["student_id", "product"]])
    values = counts.reindex(keys).fillna(0).astype("int64").to_numpy()
    return pd.Series(values, index=dosage.per_student.index, name=f"habitual_months_{threshold}")


def attach_dosage(
    analysis_frame: pd.DataFrame,
    dosage: DosageResult,
    product: str,
    min_sessions_per_month: int | None = None,
) -> pd.DataFrame:
    """Add one product's dosage columns to the analysis frame (one row per scored student).

    Students without usage of ``product`` are non-users: zero sessions, minutes, days and months,
    ``usage_level`` "none", ``usage_cluster`` "none". The counts of scored non-users and of usage
    students without scores are stored in ``frame.attrs["dosage_notes"]`` (and in the result's
    notes when windows were given).

    Parameters
    ----------
    analysis_frame
        One row per student with ``student_id``.
    dosage
        The :class:`DosageResult`.
    product
        Product whose use is the treatment.
    min_sessions_per_month
        Re-derive habitual months and usage level at this threshold (sensitivity analysis);
        None keeps the plan's.

    Returns
    -------
    pandas.DataFrame
        The analysis frame with :data:`ATTACHED_COLUMNS` (replacing any already there).
    """
    if "student_id" not in analysis_frame.columns:
        raise DataError("the analysis frame has no student_id column", where="analysis frame")
    per = dosage.per_student
    known = sorted(per["product"].unique().tolist()) if len(per) else []
    if product not in known:
        raise DataError(
            f"product {product!r} is not in the usage exports",
            where="study.product",
            hint=f"Products found: {', '.join(known) or 'none'}.",
        )
    sel = per.loc[per["product"] == product]
    cols = sel[["student_id", *ATTACHED_COLUMNS]]
    if min_sessions_per_month is not None:
        hm = habitual_months_at(dosage, min_sessions_per_month).loc[sel.index]
        level = np.where(
            hm >= dosage.definition["min_habitual_months"],
            "habitual",
            np.where(sel["sessions"] > 0, "light", "none"),
        )
        cols = cols.assign(
            habitual_months=hm, usage_level=pd.Series(level, index=sel.index, dtype="str")
        )
    base = analysis_frame.drop(columns=[c for c in ATTACHED_COLUMNS if c in analysis_frame.columns])
    ids = base["student_id"].astype("str")
    merged = base.assign(student_id=ids).merge(cols, on="student_id", how="left", validate="m:1")
    merged.index = base.index
    no_use = merged["sessions"].isna()
    fills: dict[str, Any] = {
        "sessions": 0,
        "active_months": 0,
        "habitual_months": 0,
        "usage_level": "none",
        "usage_cluster": "none",
        "met_fidelity": False,
    }
    if sel["minutes"].notna().any():
        fills["minutes"] = 0.0
    if sel["active_days"].notna().any():
        fills["active_days"] = 0
    merged = merged.fillna(fills)
    merged = merged.assign(
        sessions=merged["sessions"].astype("int64"),
        active_months=merged["active_months"].astype("int64"),
        habitual_months=merged["habitual_months"].astype("int64"),
        active_days=merged["active_days"].astype("Int64"),
        minutes=merged["minutes"].astype("float64"),
        met_fidelity=merged["met_fidelity"].astype("boolean"),
    )
    nonusers = int((no_use | (merged["sessions"] == 0)).sum())
    usage_ids = sel["student_id"].astype("str")
    scored = in_index(usage_ids, pd.Index(ids.dropna().unique()))
    without_scores = int((~scored & usage_ids.notna()).sum())
    merged.attrs["dosage_notes"] = (
        f"{product}: {nonusers:,} scored students are non-users (no session in the window).",
        f"{product}: {without_scores:,} students in the usage export have no scores and are not "
        "in the analysis.",
    )
    return merged


def utilization(per_student: pd.DataFrame, seats: dict[str, int]) -> pd.DataFrame:
    """License utilization: seats purchased -> activated -> active -> habitual, per product.

    ``activated`` = students present in the export; ``active`` = at least one session in the
    window; ``habitual`` = usage level "habitual". Rates are shares of seats (NaN without seats).
    """
    rows = []
    for product in sorted(set(per_student["product"]) | set(seats)):
        g = per_student.loc[per_student["product"] == product]
        n_seats = seats.get(product)
        activated = len(g)
        active = int((g["sessions"] > 0).sum())
        habitual = int((g["usage_level"] == "habitual").sum())
        denom = float(n_seats) if n_seats else np.nan
        rows.append(
            {
                "product": product,
                "seats": n_seats if n_seats is not None else np.nan,
                "activated": activated,
                "active": active,
                "habitual": habitual,
                "activated_rate": activated / denom,
                "active_rate": active / denom,
                "habitual_rate": habitual / denom,
                "unused_seats": (n_seats - activated) if n_seats is not None else np.nan,
            }
        )
    return pd.DataFrame(rows)


def usage_by_group(
    per_student: pd.DataFrame,
    students_frame: pd.DataFrame,
    by: str,
    min_cell_size: int,
) -> pd.DataFrame:
    """Equity of use: share of students active and habitual, and minutes, per group and product.

    Every student in ``students_frame`` counts (students without usage as non-users). Cells with
    fewer than ``min_cell_size`` students are suppressed (statistics blank, ``suppressed`` True);
    when exactly one cell of a product would be suppressed, the next smallest is suppressed too so
    the hidden cell cannot be recovered from the total.

    Returns
    -------
    pandas.DataFrame
        product, group column, n, active, habitual, share_active, share_habitual,
        mean_minutes_active (mean minutes among active students), suppressed.
    """
    if by not in students_frame.columns:
        raise DataError(f"the roster has no {by!r} column", where="roster", hint="Check the name.")
    roster = (
        students_frame[["student_id", by]]
        .assign(student_id=students_frame["student_id"].astype("str"))
        .drop_duplicates("student_id")
    )
    out = []
    for product in sorted(per_student["product"].unique().tolist()):
        g = per_student.loc[
            per_student["product"] == product, ["student_id", "sessions", "usage_level", "minutes"]
        ]
        m = roster.merge(g, on="student_id", how="left")
        active = (m["sessions"] > 0).where(m["sessions"].notna(), False).astype(bool)
        habitual = (
            (m["usage_level"] == "habitual").where(m["usage_level"].notna(), False).astype(bool)
        )
        m = m.assign(active=active, habitual=habitual, minutes_active=m["minutes"].where(active))
        grp = m.groupby(by, dropna=False, sort=True)
        t = pd.DataFrame(
            {
                "n": grp.size(),
                "active": grp["active"].sum().astype("int64"),
                "habitual": grp["habitual"].sum().astype("int64"),
                "mean_minutes_active": grp["minutes_active"].mean(),
            }
        ).reset_index()
        t = t.assign(
            product=product,
            share_active=t["active"] / t["n"],
            share_habitual=t["habitual"] / t["n"],
        )
        small = t["n"] < min_cell_size
        if int(small.sum()) == 1 and len(t) > 2:
            nxt = t.loc[~small, "n"].idxmin()
            small = small | (t.index == nxt)
        stats = ["active", "habitual", "share_active", "share_habitual", "mean_minutes_active"]
        t = t.astype({"active": "float64", "habitual": "float64"})
        t.loc[small, stats] = np.nan
        t = t.assign(suppressed=small.to_numpy())
        out.append(t[["product", by, "n", *stats, "suppressed"]])
    if not out:
        return pd.DataFrame(
            columns=[
                "product",
                by,
                "n",
                "active",
                "habitual",
                "share_active",
                "share_habitual",
                "mean_minutes_active",
                "suppressed",
            ]
        )
    return pd.concat(out, ignore_index=True)
