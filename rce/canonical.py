"""Canonical column names: the contract between ``rce.io`` and everything after it.

Readers map every vendor layout onto these tables; nothing downstream knows a vendor header.
See ``design.md`` ("Canonical tables").
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: One row per student (roster). Extra roster columns are kept under their own names.
STUDENT_COLUMNS = (
    "student_id",
    "school",
    "grade",
    "race_ethnicity",
    "hispanic",
    "el_status",
    "gender",
    "swd",
    "econ_disadv",
)

#: One row per test taken.
ASSESSMENT_COLUMNS = (
    "student_id",
    "subject",
    "academic_year",
    "test_date",
    "window",
    "scale_score",
    "percentile",
    "placement",
    "relative_placement",
    "typical_growth",
    "stretch_growth",
    "pct_typical_growth",
    "rush_flag",
    "baseline_flag",
    "most_recent_flag",
)

#: One row per usage record; ``granularity`` says what a row is.
USAGE_COLUMNS = (
    "student_id",
    "product",
    "date",
    "minutes",
    "sessions",
    "lessons_completed",
    "lessons_passed",
)

#: Granularities a usage source can have.
GRANULARITIES = ("event", "lesson", "daily", "weekly", "monthly")

#: The analysis frame: one row per student, built by ``rce.prepare`` (scores + roster) and
#: extended by ``rce.dosage`` (usage). Outcome columns are suffixed by window role.
ANALYSIS_COLUMNS = (
    "student_id",
    "school",
    "grade",
    "race_ethnicity",
    "el_status",
    "gender",
    "swd",
    "econ_disadv",
    "baseline_date",
    "outcome_date",
    "baseline_scale_score",
    "outcome_scale_score",
    "baseline_percentile",
    "outcome_percentile",
    "pct_typical_growth",
    # from dosage:
    "sessions",
    "minutes",
    "active_days",
    "active_months",
    "habitual_months",
    "met_fidelity",
    "usage_level",  # "none" | "light" | "habitual"
    "usage_cluster",
)


@dataclass(frozen=True)
class UsageSource:
    """How to read one usage export with canonical meaning, without loading it into pandas.

    ``rce.io`` builds these from a detected layout; ``rce.dosage`` turns them into SQL that the
    engine (DuckDB by default) runs directly on the file(s).

    Attributes
    ----------
    paths
        One or more files or globs (several export windows of the same product are stitched and
        overlapping rows de-duplicated).
    product
        Product name used in every output.
    granularity
        One of :data:`GRANULARITIES`: what one row is.
    columns
        Canonical name -> header in the file, for the canonical names the file has
        (``student_id`` and one of ``date`` / ``timestamp`` / ``month`` are required).
        ``timestamp`` holds date-times (converted from ``timestamp_tz`` to the district time zone
        before the date is taken); ``date`` holds plain dates.
    file_format
        "csv" (any delimiter; sniffed) or "parquet".
    delimiter
        Field separator for CSV files.
    encoding
        Text encoding for CSV files ("utf-8", "utf-8-sig", "cp1252").
    timestamp_tz
        Time zone the timestamps are written in ("UTC", an IANA name, or "" when naive and local).
    date_formats
        strptime formats tried in order for dates in this file (all US month-first).
    monthly_columns
        For monthly wide summaries: header -> (year, month, measure) for each month column.
    dedupe_keys
        Canonical columns that identify a row across overlapping exports (beside exact dups).
    record_columns
        Canonical columns that describe one usage record, for layouts that also carry student
        attributes as of the export (names, class, enrollment): two rows equal in these are one
        record exported twice. Empty: rows are duplicates only when equal in every column.
    """

    paths: tuple[str, ...]
    product: str
    granularity: str
    columns: dict[str, str]
    file_format: str = "csv"
    delimiter: str = ","
    encoding: str = "utf-8"
    timestamp_tz: str = ""
    date_formats: tuple[str, ...] = ("%m/%d/%Y", "%m-%d-%Y", "%Y-%m-%d", "%d-%b-%y")
    monthly_columns: dict[str, tuple[int, int, str]] = field(default_factory=dict)
    dedupe_keys: tuple[str, ...] = ()
    record_columns: tuple[str, ...] = ()
    subject: str = ""
    layout: str = ""
