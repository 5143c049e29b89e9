"""Layout presets: recognise an export by its header and map it to canonical columns.

A user never names a common layout; :func:`detect_layout` looks at the header alone. Matching is
on a normalised key (case-folded, ``_`` and runs of spaces collapsed to one space), so
``STUDENT_ID``, ``Student ID`` and ``student  id`` are the same column, and the UPPER_SNAKE
warehouse variants of the i-Ready exports need no separate preset. Optional columns may be
absent in any combination (i-Ready exports have district-chosen columns,
``data-formats.md`` §1.1); loaders work by header name, never by position.

Layouts for tests and exports rce does not know (NWEA MAP, Renaissance Star, state tests) are
given through the ``[columns]`` table of ``rce.toml`` (canonical name -> header in the file).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from rce.config import Plan
from rce.errors import LayoutError

KINDS = ("roster", "assessment", "usage")


def header_key(name: str) -> str:
    """Normalised header key: case-folded, ``_`` and whitespace runs -> one space, stripped."""
    return re.sub(r"[\s_]+", " ", str(name).replace("\ufeff", "")).strip().casefold()


@dataclass(frozen=True)
class Layout:
    """A detected export layout.

    Attributes
    ----------
    name
        Preset name (e.g. ``"iready_diagnostic_results"``), or ``"custom"`` for a ``[columns]``
        mapping.
    kind
        "roster", "assessment" or "usage".
    columns
        Canonical name -> header in the file, for the canonical names the file has.
    granularity
        For usage: one of :data:`rce.canonical.GRANULARITIES`; "" otherwise.
    subject
        "ela", "math" or "" (unknown / several subjects in a ``subject`` column).
    product
        Product name for usage layouts with a fixed product ("i-Ready", "DreamBox", ...).
    timestamp_tz
        Time zone the timestamps are written in ("UTC"), "" when local or dates only.
    monthly_columns
        For monthly wide layouts: header -> (year, month, measure). ``year`` is 0 when the header
        names only the month (the academic year then decides it: July..December = first year).
    blocks
        For the i-Ready YTD window file: block label -> {canonical: header}.
    dedupe_keys
        Canonical columns that identify a row across overlapping re-exports (``student_id`` and
        one of ``date`` / ``timestamp`` / ``month``: what ``rce.dosage`` can partition on).
    record_columns
        Canonical columns that describe one usage record; a row equal to another in these (and
        different only in student attributes written at export time) is the same record
        exported twice. Empty: duplicates must be equal in every column.
    """

    name: str
    kind: str
    columns: dict[str, str]
    granularity: str = ""
    subject: str = ""
    product: str = ""
    timestamp_tz: str = ""
    monthly_columns: dict[str, tuple[int, int, str]] = field(default_factory=dict)
    blocks: dict[str, dict[str, str]] = field(default_factory=dict)
    dedupe_keys: tuple[str, ...] = ()
    record_columns: tuple[str, ...] = ()
    description: str = ""


# --- alias tables ---------------------------------------------------------------------------------

ID_ALIASES = (
    "student id", "student number", "sis id", "student sis id", "studentid", "student no",
    "local id", "student local id", "local student id", "perm id", "permanent id", "stu id",
    "student identifier", "sisid",
)

DEMOGRAPHIC_ALIASES: dict[str, tuple[str, ...]] = {
    "ssid": ("ssid", "student state id", "state student id", "state id",
             "statewide student identifier"),
    "first_name": ("first name", "fname", "student first name", "firstname"),
    "last_name": ("last name", "lname", "student last name", "lastname"),
    "email": ("email", "student email", "email address", "user name", "username"),
    "gender": ("gender", "sex"),
    "birthdate": ("birthdate", "birth date", "date of birth", "dob"),
    "hispanic": ("hispanic or latino", "hispanic", "hispanic latino", "hispanic/latino",
                 "hispanic or latino ethnicity", "hispanicorlatinoethnicity"),
    "race_1": ("race 1", "race", "race1", "federalracecategory", "federal race category",
               "race/ethnicity", "race ethnicity", "combined race and ethnicity"),
    "race_2": ("race 2", "race2"),
    "race_3": ("race 3", "race3"),
    "race_4": ("race 4", "race4"),
    "race_5": ("race 5", "race5"),
    "el_status": ("elas", "el status", "ell status", "ellstatus", "english learner status",
                  "english language acquisition status", "english language acquisition",
                  "english language learner", "english learner", "ell", "el"),
    "elas_start_date": ("elas start date", "el status start date"),
    "swd": ("student with disabilities", "students with disabilities", "sped", "swd",
            "special education", "specialeducation", "iep", "disability"),
    "econ_disadv": ("sed", "socioeconomically disadvantaged", "economically disadvantaged",
                    "economic disadvantage", "frpm", "lowincome", "low income", "meal status",
                    "econ disadv", "free reduced lunch"),
    "school": ("school name", "school"),
    "school_code": ("school code", "school id", "school number", "clever school id"),
    "grade": ("student grade at time of diagnostic", "grade", "student grade", "grade level",
              "grade label", "gradelevel", "grade_label"),
    "enter_date": ("enter date", "entry date", "enroll date", "enrollment date", "start date"),
    "leave_date": ("leave date", "exit date", "withdraw date", "withdrawal date", "end date"),
}

ASSESSMENT_ALIASES: dict[str, tuple[str, ...]] = {
    "scale_score": ("overall scale score", "overall score", "scale score", "rit score",
                    "test ritscore", "testritscore", "scaled score", "ss"),
    "test_date": ("completion date", "diagnostic completion date", "test date",
                  "teststartdate", "test start date", "date taken", "assessment date"),
    "start_date": ("start date",),
    "academic_year": ("academic year", "school year", "termname", "term name"),
    "window": ("norming window", "window", "test window", "term"),
    "percentile": ("percentile", "percentile rank", "national percentile", "testpercentile",
                   "test percentile", "pr"),
    "placement": ("overall placement", "overall place"),
    "relative_placement": ("overall relative placement", "overall rel place"),
    "typical_growth": ("annual typical growth measure", "ann typical growth measure",
                       "ann typical growth", "typical growth"),
    "stretch_growth": ("annual stretch growth measure", "ann stretch growth measure",
                       "ann stretch growth", "stretch growth"),
    "pct_typical_growth": ("percent progress to annual typical growth (%)",
                           "per prog ann typical growth", "percent progress to typical growth",
                           "pct typical growth"),
    "rush_flag": ("rush flag",),
    "baseline_flag": ("baseline diagnostic (y/n)",
                      "diagnostic used to establish growth measures (y/n)",
                      "baseline assessment (y/n)", "baseline diag", "baseline flag"),
    "most_recent_flag": ("most recent diagnostic ytd (y/n)", "most recent diagnostic (y/n)",
                         "most recent assessment ytd (y/n)", "most recent diag ytd",
                         "most recent flag"),
    "duration": ("duration (min)", "time on task (minutes)", "duration mins"),
    "subject": ("subject", "subject name", "measurementscale", "content area"),
}

ELA_MARKERS = ("lexile", "phonics", "phonological", "vocabulary", "comprehension",
               "high-frequency", "reading")
MATH_MARKERS = ("quantile", "number and operations", "algebra", "geometry",
                "measurement and data")

MONTHS = {
    m: i
    for i, names in enumerate(
        [
            ("january", "jan"), ("february", "feb"), ("march", "mar"), ("april", "apr"),
            ("may",), ("june", "jun"), ("july", "jul"), ("august", "aug"),
            ("september", "sep", "sept"), ("october", "oct"), ("november", "nov"),
            ("december", "dec"),
        ],
        start=1,
    )
    for m in names
}

_MONTH_RE = "|".join(sorted(MONTHS, key=len, reverse=True))


class _Header:
    """Lookup of aliases in one file's header."""

    def __init__(self, columns: Sequence[str]):
        self.columns = [str(c) for c in columns]
        self.by_key: dict[str, str] = {}
        for c in self.columns:
            self.by_key.setdefault(header_key(c), c)

    def find(self, aliases: Iterable[str]) -> str | None:
        for a in aliases:
            hit = self.by_key.get(header_key(a))
            if hit is not None:
                return hit
        return None

    def has(self, *aliases: str) -> bool:
        return self.find(aliases) is not None

    def map(self, table: dict[str, tuple[str, ...]], used: set[str] | None = None
            ) -> dict[str, str]:
        out: dict[str, str] = {}
        used = set() if used is None else used
        for canon, aliases in table.items():
            for a in aliases:
                hit = self.by_key.get(header_key(a))
                if hit is not None and hit not in used:
                    out[canon] = hit
                    used.add(hit)
                    break
        return out

    def any_contains(self, words: Iterable[str]) -> bool:
        keys = list(self.by_key)
        return any(w in k for w in words for k in keys)


def _subject_from_header(h: _Header, hint: str = "") -> str:
    hint = hint.lower()
    if h.any_contains(MATH_MARKERS) or re.search(r"(^|[^a-z])math", hint):
        return "math"
    if h.any_contains(ELA_MARKERS) or re.search(r"(^|[^a-z])(ela|reading)", hint):
        return "ela"
    return ""


# --- preset detectors -----------------------------------------------------------------------------
# Each detector returns a Layout or None; they are tried from most to least specific.


def _demographics(h: _Header, used: set[str]) -> dict[str, str]:
    return h.map(DEMOGRAPHIC_ALIASES, used)


def _iready_diagnostic(h: _Header, hint: str) -> Layout | None:
    sid = h.find(("student id",))
    score = h.find(("overall scale score",))
    date = h.find(("completion date",))
    if not (sid and score and date):
        return None
    used = {sid}
    cols = {"student_id": sid}
    cols.update(h.map(ASSESSMENT_ALIASES, used))
    cols.update(_demographics(h, used))
    cols.pop("enter_date", None)
    cols.pop("leave_date", None)
    return Layout(
        "iready_diagnostic_results",
        "assessment",
        cols,
        subject=_subject_from_header(h, hint),
        product="i-Ready",
        description="i-Ready Diagnostic Results (one row per completed diagnostic)",
    )


_YTD_FIELDS = {
    "start_date": "Start Date",
    "test_date": "Completion Date",
    "duration": "Time on Task (min)",
    "rush_flag": "Rush Flag",
    "scale_score": "Overall Scale Score",
    "placement": "Overall Placement",
    "percentile": "Percentile",
    "relative_placement": "Overall Relative Placement",
}
YTD_BLOCKS = ("Most Recent", "1", "2", "3", "4", "5")


def _iready_ytd(h: _Header, hint: str) -> Layout | None:
    blocks: dict[str, dict[str, str]] = {}
    for label in YTD_BLOCKS:
        block: dict[str, str] = {}
        for canon, stem in _YTD_FIELDS.items():
            hit = h.find((f"Diagnostic: {stem} ({label})",
                          f"DIAGNOSTIC_{stem.upper().replace(' ', '_')}_"
                          f"{label.upper().replace(' ', '_')}"))
            if hit:
                block[canon] = hit
        if "scale_score" in block and "test_date" in block:
            blocks[label] = block
    sid = h.find(("student id",))
    if not sid or "Most Recent" not in blocks:
        return None
    used = {sid} | {c for b in blocks.values() for c in b.values()}
    cols = {"student_id": sid}
    extra = h.map(
        {k: ASSESSMENT_ALIASES[k] for k in ("academic_year", "subject", "typical_growth",
                                            "stretch_growth")},
        used,
    )
    cols.update(extra)
    cols.update(_demographics(h, used))
    return Layout(
        "iready_ytd_window",
        "assessment",
        cols,
        subject=_subject_from_header(h, hint),
        product="i-Ready",
        blocks=blocks,
        description="i-Ready Diagnostic and Instruction YTD Window (one row per student; "
        "(Most Recent), (1)..(5) blocks)",
    )


def _iready_lesson(h: _Header, hint: str) -> Layout | None:
    sid = h.find(("student id",))
    lesson = h.find(("lesson id",))
    date = h.find(("completion date",))
    if not (sid and lesson and date):
        return None
    cols = {"student_id": sid, "date": date, "lesson_id": lesson}
    for canon, aliases in {
        "minutes": ("total time on lesson (min)", "time on task (minutes)"),
        "passed": ("passed or not passed",),
        "score": ("score",),
        "subject": ("subject",),
        "email": ("user name",),
        "school": ("school",),
        "grade": ("student grade",),
        "teacher_assigned": ("teacher-assigned lesson",),
    }.items():
        hit = h.find(aliases)
        if hit:
            cols[canon] = hit
    return Layout(
        "iready_lesson",
        "usage",
        cols,
        granularity="lesson",
        subject=_subject_from_header(h, hint) if "subject" not in cols else "",
        product="i-Ready",
        # A lesson is the student, the lesson, its date, time, score and result. The other
        # columns are the student's name, grade, class, enrollment and demographics as of the
        # export (they change between re-exports of the same lesson) or describe the lesson ID
        # (name, objective, domain); the "with Standards" export repeats a lesson per standard.
        record_columns=("student_id", "lesson_id", "date", "minutes", "score", "passed",
                        "subject", "teacher_assigned"),
        description="i-Ready Personalized Instruction by Lesson (one row per completed lesson)",
    )


_IU_MEASURES = {
    "weekly average time on task (min)": "weekly_avg_minutes",
    "lessons passed": "lessons_passed",
    "lessons completed": "lessons_completed",
    "% lessons passed": "pct_lessons_passed",
}


def _iready_instructional_usage(h: _Header, hint: str) -> Layout | None:
    sid = h.find(("student id",))
    if not sid:
        return None
    monthly: dict[str, tuple[int, int, str]] = {}
    for key, col in h.by_key.items():
        m = re.fullmatch(rf"({_MONTH_RE}) (.+)", key)
        if m and m.group(2) in _IU_MEASURES:
            monthly[col] = (0, MONTHS[m.group(1)], _IU_MEASURES[m.group(2)])
    if not any(v[2] == "lessons_completed" for v in monthly.values()):
        return None
    cols = {"student_id": sid}
    for canon, aliases in {"academic_year": ("academic year",), "subject": ("subject",),
                           "school": ("school",), "email": ("user name",)}.items():
        hit = h.find(aliases)
        if hit:
            cols[canon] = hit
    return Layout(
        "iready_instructional_usage",
        "usage",
        cols,
        granularity="monthly",
        subject=_subject_from_header(h, hint) if "subject" not in cols else "",
        product="i-Ready",
        monthly_columns=monthly,
        description="i-Ready Instructional Usage (student x subject, one column group per month)",
    )


def _clever_daily(h: _Header, hint: str) -> Layout | None:
    if not all(h.has(c) for c in ("date", "sis_id", "active", "num_logins")):
        return None
    cols = {"student_id": h.find(("sis_id",)), "date": h.find(("date",)),
            "sessions": h.find(("num_logins",)), "active": h.find(("active",))}
    for canon, a in {"vendor_id": "clever_user_id", "school": "school_name",
                     "resources": "num_resources_accessed"}.items():
        if h.has(a):
            cols[canon] = h.find((a,))  # type: ignore[assignment]
    return Layout("clever_daily_participation", "usage", cols,  # type: ignore[arg-type]
                  granularity="daily", product="Clever",
                  dedupe_keys=("student_id", "date"),
                  description="Clever Daily Participation (student x day, inactive days included)")


def _clever_resource(h: _Header, hint: str) -> Layout | None:
    if not all(h.has(c) for c in ("date", "sis_id", "resource_name", "num_access")):
        return None
    cols = {"student_id": h.find(("sis_id",)), "date": h.find(("date",)),
            "sessions": h.find(("num_access",)), "product": h.find(("resource_name",))}
    for canon, a in {"vendor_id": "clever_user_id", "school": "school_name",
                     "resource_type": "resource_type"}.items():
        if h.has(a):
            cols[canon] = h.find((a,))  # type: ignore[assignment]
    return Layout("clever_resource_usage", "usage", cols,  # type: ignore[arg-type]
                  granularity="daily", product="",
                  description="Clever Resource Usage (student x resource x active day; the "
                  "product is in the `product` column)")


def _dreambox_weekly(h: _Header, hint: str) -> Layout | None:
    if not all(h.has(c) for c in ("start_date", "end_date", "student_id", "mins")):
        return None
    cols = {"student_id": h.find(("student_id",)), "date": h.find(("start_date",)),
            "end_date": h.find(("end_date",)), "minutes": h.find(("mins",))}
    for canon, a in {"lessons_completed": "lessons_completed",
                     "lessons_passed": "lessons_passed", "vendor_id": "user_id",
                     "extra_minutes": "ext_mins", "school": "school_name",
                     "grade": "grade"}.items():
        if h.has(a):
            cols[canon] = h.find((a,))  # type: ignore[assignment]
    return Layout("dreambox_weekly", "usage", cols,  # type: ignore[arg-type]
                  granularity="weekly", product="DreamBox",
                  # Overlapping re-exports repeat a week: same student, same week start.
                  dedupe_keys=("student_id", "date"),
                  description="DreamBox usage (student x week)")


def _lexia_activity(h: _Header, hint: str) -> Layout | None:
    start = h.find(("activity_start_time",))
    if not start or not (h.has("lexia_id") or h.has("username")):
        return None
    sid = h.find(("studentrefid", "student id", "sis id", "lexia_id", "username"))
    cols = {"student_id": sid, "timestamp": start}
    for canon, a in {"minutes": "activity_time", "email": "username", "vendor_id": "lexia_id",
                     "school": "school_name", "grade": "grade_label",
                     "activity_id": "activity_id"}.items():
        if h.has(a) and h.find((a,)) != sid:
            cols[canon] = h.find((a,))  # type: ignore[assignment]
    return Layout("lexia_activity", "usage", cols,  # type: ignore[arg-type]
                  granularity="event", product="Lexia Core5", timestamp_tz="UTC",
                  description="Lexia Core5 / PowerUp activity log (UTC timestamps)")


def _google_classroom(h: _Header, hint: str) -> Layout | None:
    if not all(h.has(c) for c in ("time", "actor_email", "event_name")):
        return None
    cols = {"student_id": h.find(("actor_email",)), "timestamp": h.find(("time",)),
            "event": h.find(("event_name",))}
    return Layout("google_classroom_events", "usage", cols,  # type: ignore[arg-type]
                  granularity="event", product="Google Classroom", timestamp_tz="UTC",
                  description="Google Classroom audit events (e-mail as ID, UTC times)")


def _month_year(key: str) -> tuple[int, int, str] | None:
    m = re.fullmatch(rf"({_MONTH_RE})[ \-]*(\d{{4}}|\d{{2}})(?: (.+))?", key)
    if m:
        year = int(m.group(2))
        year = year + 2000 if year < 100 else year
        return (year, MONTHS[m.group(1)], (m.group(3) or "sessions").strip())
    m = re.fullmatch(r"(\d{4})-(\d{2})(?: (.+))?", key)
    if m and 1 <= int(m.group(2)) <= 12:
        return (int(m.group(1)), int(m.group(2)), (m.group(3) or "sessions").strip())
    return None


_MEASURE_WORDS = {
    "minutes": ("minutes", "mins", "time", "min"),
    "sessions": ("sessions", "logins", "activities", "uses", "days"),
    "lessons_completed": ("lessons completed", "lessons"),
}


def _measure_name(text: str) -> str:
    for canon, words in _MEASURE_WORDS.items():
        if any(w in text for w in words):
            return canon
    return text


def _monthly_wide(h: _Header, hint: str) -> Layout | None:
    sid = h.find(ID_ALIASES)
    if not sid:
        return None
    monthly: dict[str, tuple[int, int, str]] = {}
    for key, col in h.by_key.items():
        my = _month_year(key)
        if my:
            monthly[col] = (my[0], my[1], _measure_name(my[2]))
    if len({(y, m) for y, m, _ in monthly.values()}) < 2:
        return None
    cols = {"student_id": sid}
    used = {sid}
    cols.update({k: v for k, v in _demographics(h, used).items()
                 if k in ("school", "grade", "email")})
    for canon, aliases in {"first_login": ("first login", "first login date"),
                           "last_login": ("last login", "last login date"),
                           "name": ("student name",)}.items():
        hit = h.find(aliases)
        if hit:
            cols[canon] = hit
    return Layout("monthly_summary", "usage", cols, granularity="monthly",
                  monthly_columns=monthly,
                  description="monthly usage summary (one column per month)")


_TIMESTAMP_ALIASES = ("timestamp", "time", "datetime", "date time", "start time", "session start",
                      "session start time", "login time", "event time", "activity start time",
                      "started at", "start datetime", "created at")
_DATE_ALIASES = ("date", "session date", "activity date", "usage date", "login date", "day",
                 "event date")
_MINUTES_ALIASES = ("minutes", "mins", "duration (min)", "duration minutes", "duration",
                    "time spent", "minutes used", "session minutes", "time on task",
                    "time on task (minutes)", "total minutes", "usage minutes")
_WEEK_ALIASES = ("week", "week start", "week of", "week starting", "week start date",
                 "week beginning")


def _generic_weekly(h: _Header, hint: str) -> Layout | None:
    sid = h.find(ID_ALIASES + ("student_id",))
    week = h.find(_WEEK_ALIASES)
    if not (sid and week):
        return None
    cols = {"student_id": sid, "date": week}
    for canon, aliases in {"minutes": _MINUTES_ALIASES,
                           "sessions": ("sessions", "logins", "uses", "days active"),
                           "lessons_completed": ("lessons completed", "lessons")}.items():
        hit = h.find(aliases)
        if hit:
            cols[canon] = hit
    return Layout("weekly_summary", "usage", cols, granularity="weekly",
                  dedupe_keys=("student_id", "date"),
                  description="weekly usage summary (student x week)")


def _generic_daily_or_event(h: _Header, hint: str) -> Layout | None:
    sid = h.find(ID_ALIASES + ("student_id",))
    if not sid:
        return None
    ts = h.find(_TIMESTAMP_ALIASES)
    date = h.find(_DATE_ALIASES)
    if not (ts or date):
        return None
    cols = {"student_id": sid}
    if ts:
        cols["timestamp"] = ts
    else:
        cols["date"] = date  # type: ignore[assignment]
    for canon, aliases in {"minutes": _MINUTES_ALIASES,
                           "sessions": ("sessions", "logins", "num logins", "session count"),
                           "active": ("active",),
                           "lessons_completed": ("lessons completed",)}.items():
        hit = h.find(aliases)
        if hit and hit not in cols.values():
            cols[canon] = hit
    daily = "active" in cols or ("sessions" in cols and "timestamp" not in cols)
    return Layout(
        "daily_participation" if daily else "session_log",
        "usage",
        cols,
        granularity="daily" if daily else "event",
        dedupe_keys=("student_id", "date") if daily else (),
        description="daily participation (student x day)" if daily
        else "session / event log (one row per session or event)",
    )


_ROSTER_DEMOS = ("grade", "gender", "race_1", "hispanic", "el_status", "swd", "econ_disadv",
                 "birthdate", "school", "school_code")


def _roster(h: _Header, hint: str) -> Layout | None:
    sid = h.find(ID_ALIASES + ("student_id",))
    if not sid:
        return None
    if h.find(ASSESSMENT_ALIASES["scale_score"]) or h.find(_MINUTES_ALIASES):
        return None
    used = {sid}
    cols = {"student_id": sid}
    demo = _demographics(h, used)
    if sum(k in demo for k in _ROSTER_DEMOS) < 2:
        return None
    cols.update(demo)
    # In a roster "Start Date"/"End Date" are enrollment dates; an SED column is preferred to FRPM.
    sed = h.find(("sed", "socioeconomically disadvantaged"))
    if sed:
        cols["econ_disadv"] = sed
    return Layout("roster", "roster", cols,
                  description="student roster (one row per student or enrollment)")


DETECTORS = (
    ("iready_ytd_window", _iready_ytd),
    ("iready_diagnostic_results", _iready_diagnostic),
    ("iready_lesson", _iready_lesson),
    ("iready_instructional_usage", _iready_instructional_usage),
    ("clever_daily_participation", _clever_daily),
    ("clever_resource_usage", _clever_resource),
    ("dreambox_weekly", _dreambox_weekly),
    ("lexia_activity", _lexia_activity),
    ("google_classroom_events", _google_classroom),
    ("monthly_summary", _monthly_wide),
    ("weekly_summary", _generic_weekly),
    ("roster", _roster),
    ("session_log", _generic_daily_or_event),
)

#: Signature headers of each preset, used to name the closest presets when detection fails.
SIGNATURES: dict[str, tuple[str, ...]] = {
    "iready_diagnostic_results": ("Student ID", "Completion Date", "Overall Scale Score"),
    "iready_ytd_window": ("Student ID", "Diagnostic: Overall Scale Score (Most Recent)",
                          "Diagnostic: Completion Date (Most Recent)"),
    "iready_lesson": ("Student ID", "Lesson ID", "Completion Date",
                      "Total Time on Lesson (min)"),
    "iready_instructional_usage": ("Student ID", "September Lessons Completed",
                                   "September Weekly Average Time on Task (min)"),
    "clever_daily_participation": ("date", "sis_id", "active", "num_logins"),
    "clever_resource_usage": ("date", "sis_id", "resource_name", "num_access"),
    "dreambox_weekly": ("start_date", "end_date", "student_id", "mins"),
    "lexia_activity": ("Lexia_ID", "username", "activity_start_time"),
    "google_classroom_events": ("time", "actor_email", "event_name"),
    "monthly_summary": ("Student ID", "September 2024", "October 2024"),
    "weekly_summary": ("Student ID", "Week Start", "Minutes"),
    "roster": ("Student ID", "Grade", "Gender", "School"),
    "session_log": ("Student ID", "Timestamp", "Minutes"),
}

#: Canonical columns a ``[columns]`` mapping must give, per kind.
CUSTOM_REQUIRED = {
    "assessment": ("student_id", "scale_score", "test_date"),
    "usage": ("student_id",),
    "roster": ("student_id",),
}


def _custom(h: _Header, plan: Plan, hint: str) -> Layout | None:
    mapping = dict(plan.columns)
    if not mapping:
        return None
    present = {canon: h.find((hdr,)) for canon, hdr in mapping.items()}
    if any(v is None for v in present.values()):
        return None
    cols = {k: v for k, v in present.items() if v is not None}
    if "scale_score" in cols:
        kind = "assessment"
    elif {"date", "timestamp", "minutes", "sessions", "month"} & set(cols):
        kind = "usage"
    else:
        kind = "roster"
    missing = [c for c in CUSTOM_REQUIRED[kind] if c not in cols]
    if kind == "usage" and not ({"date", "timestamp"} & set(cols)):
        missing.append("date")
    if missing:
        raise LayoutError(
            f"the [columns] mapping in the plan lacks {', '.join(missing)} for a {kind} file",
            where=str(plan.source or "plan") + " [columns]",
            hint=f'Add e.g. {missing[0]} = "<header in the file>" to [columns].',
        )
    granularity = "event" if kind == "usage" else ""
    if kind == "usage" and "timestamp" not in cols and "minutes" not in cols:
        granularity = "daily"
    subject = plan.study.subject if kind == "assessment" and "subject" not in cols else ""
    return Layout("custom", kind, cols, granularity=granularity, subject=subject,
                  description="custom layout from the plan's [columns] mapping")


def detect_layout(columns: Sequence[str], *, plan: Plan | None = None, hint: str = "",
                  where: str = "") -> Layout:
    """Recognise an export from its header.

    Parameters
    ----------
    columns
        Header names in file order.
    plan
        Study plan; its ``[columns]`` mapping (canonical -> header) is used first when every
        mapped header is present in the file.
    hint
        File name, used only to tell ELA from Math when the header does not.
    where
        File name for error messages.

    Returns
    -------
    Layout

    Raises
    ------
    LayoutError
        No preset matches; the message lists the columns found and the closest presets with the
        columns they are missing.
    """
    h = _Header(columns)
    if plan is not None:
        custom = _custom(h, plan, hint)
        if custom is not None:
            return custom
    for _name, detector in DETECTORS:
        layout = detector(h, hint)
        if layout is not None:
            return layout
    raise _no_layout(h, where)


def closest_presets(columns: Sequence[str], n: int = 3) -> list[tuple[str, list[str]]]:
    """The presets whose signature headers best match ``columns``, with the ones missing."""
    keys = {header_key(c) for c in columns}
    scored = []
    for name, sig in SIGNATURES.items():
        have = 0.0
        missing = []
        for s in sig:
            k = header_key(s)
            if k in keys:
                have += 1
            else:
                close = difflib.get_close_matches(k, list(keys), n=1, cutoff=0.8)
                have += 0.5 if close else 0
                missing.append(s)
        scored.append((have / len(sig), name, missing))
    scored.sort(key=lambda t: (-t[0], t[1]))
    return [(name, missing) for _, name, missing in scored[:n]]


def _no_layout(h: _Header, where: str) -> LayoutError:
    cols = h.columns
    shown = ", ".join(repr(c) for c in cols[:15]) + (f" and {len(cols) - 15} more"
                                                     if len(cols) > 15 else "")
    near = closest_presets(cols)
    near_txt = "; ".join(f"{name} (missing {', '.join(repr(m) for m in miss) or 'nothing'})"
                         for name, miss in near)
    hint = f"Closest presets: {near_txt}. Map the columns in rce.toml under [columns], e.g. " \
           'student_id = "<ID column>", scale_score = "<score column>", test_date = "<date ' \
           'column>".'
    if len(cols) == 1 and re.search(r"[,;\t|]", cols[0]) is None and " " in cols[0]:
        hint = "Only one column was found: the file may use a delimiter rce does not split on " \
               "(spaces?). Save it as CSV. " + hint
    elif len(cols) == 1:
        hint = "Only one column was found: check the delimiter. " + hint
    return LayoutError(
        f"the layout of this file was not recognised; columns found: {shown}",
        where=f"{where}, row 1" if where else "row 1",
        hint=hint,
    )


def layout_by_name(name: str, columns: Sequence[str], *, hint: str = "",
                   where: str = "") -> Layout:
    """Apply a named preset (``layout = "..."`` in a plan's usage input) to a header."""
    for preset, detector in DETECTORS:
        if preset == name or (name in ("daily_participation",) and preset == "session_log"):
            layout = detector(_Header(columns), hint)
            if layout is not None:
                return layout
            raise LayoutError(
                f"the file does not have the columns of the {name} layout",
                where=f"{where}, row 1" if where else "row 1",
                hint=f"Expected columns like {', '.join(SIGNATURES.get(preset, ()))}; found "
                f"{', '.join(list(columns)[:15])}.",
            )
    raise LayoutError(
        f"unknown layout name {name!r}",
        where=where or None,
        hint=f"Known layouts: {', '.join(n for n, _ in DETECTORS)}, or \"auto\".",
    )
