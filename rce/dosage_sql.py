"""SQL pieces of the dosage step (DuckDB dialect), kept apart so the definition reads in one place.

:mod:`rce.dosage` calls these to turn each :class:`~rce.canonical.UsageSource` into a query that
DuckDB runs directly on the file(s). Nothing here touches pandas. Every function returns SQL
text; values that come from users (paths, headers, time-zone names) are quoted with
:func:`lit` / :func:`ident`, never pasted raw.
"""

from __future__ import annotations

from collections.abc import Sequence

#: Macros installed on every connection (Excel serial dates and date-times).
MACROS = r"""
CREATE OR REPLACE TEMP MACRO rce_excel_date(t) AS (
  CASE WHEN regexp_full_match(t, '[0-9]{5}(\.[0-9]+)?')
            AND CAST(t AS DOUBLE) BETWEEN 20000 AND 80000
       THEN DATE '1899-12-30' + CAST(floor(CAST(t AS DOUBLE)) AS INTEGER) END);
CREATE OR REPLACE TEMP MACRO rce_excel_ts(t) AS (
  CASE WHEN regexp_full_match(t, '[0-9]{5}(\.[0-9]+)?')
            AND CAST(t AS DOUBLE) BETWEEN 20000 AND 80000
       THEN TIMESTAMP '1899-12-30 00:00:00'
            + to_microseconds(CAST(round(CAST(t AS DOUBLE) * 86400e6) AS BIGINT)) END);
"""

#: Time-of-day suffixes tried after each date format for timestamp columns.
TIME_SUFFIXES = (" %H:%M:%S", " %H:%M", " %I:%M:%S %p", " %I:%M %p", " %H.%M")


def lit(value: str) -> str:
    """A SQL string literal."""
    return "'" + str(value).replace("'", "''") + "'"


def ident(name: str) -> str:
    """A quoted SQL identifier (file headers can hold spaces, quotes, anything)."""
    return '"' + str(name).replace('"', '""') + '"'


def read_expr(paths: Sequence[str], file_format: str, delimiter: str, encoding: str) -> str:
    """A DuckDB table function reading the files, every CSV column as text.

    CSV columns are read as VARCHAR so that IDs keep their leading zeros and dates in mixed
    formats survive until they are parsed explicitly.
    """
    files = "[" + ", ".join(lit(p) for p in paths) + "]"
    # Stitched exports may order their columns differently; matching them by name costs the
    # CSV reader its column projection, so it is asked for only when there is more than one file.
    by_name = "true" if len(paths) > 1 else "false"
    if file_format == "parquet":
        return f"read_parquet({files}, union_by_name = {by_name})"
    enc = {"utf-8-sig": "utf-8", "utf8": "utf-8", "cp1252": "latin-1", "latin1": "latin-1"}.get(
        encoding.lower(), encoding.lower()
    )
    return (
        f"read_csv({files}, header = true, all_varchar = true, delim = {lit(delimiter)}, "
        f"quote = '\"', escape = '\"', encoding = {lit(enc)}, union_by_name = {by_name}, "
        "null_padding = true)"
    )


def date_text_expr(col: str, formats: Sequence[str]) -> str:
    """Parse a text date column (US month-first formats, ISO, Excel serials), NULL if none fits."""
    x = f"trim({col})"
    parts = [f"CAST(try_strptime({x}, {lit(f)}) AS DATE)" for f in formats]
    parts.append(f"CAST(try_cast({x} AS TIMESTAMP) AS DATE)")
    parts.append(f"rce_excel_date({x})")
    return "coalesce(" + ", ".join(parts) + ")"


def timestamp_text_expr(col: str, formats: Sequence[str]) -> str:
    """Parse a naive text timestamp (ISO, each date format with a time of day, Excel serials)."""
    x = f"trim({col})"
    # the cast reads spaces around most texts itself: trim only what it cannot read
    parts = [f"try_cast({col} AS TIMESTAMP)", f"try_cast({x} AS TIMESTAMP)"]
    for f in formats:
        for suffix in TIME_SUFFIXES:
            parts.append(f"try_strptime({x}, {lit(f + suffix)})")
        parts.append(f"try_strptime({x}, {lit(f)})")
    parts.append(f"rce_excel_ts({x})")
    return "coalesce(" + ", ".join(parts) + ")"


#: Names of Coordinated Universal Time (timestamps that need no offset to be instants).
UTC_NAMES = frozenset({"utc", "etc/utc", "gmt", "etc/gmt", "z", "zulu", "universal", "etc/zulu"})

#: Offset segments of a time zone: ((first UTC instant "YYYY-MM-DD HH:MM:SS", offset seconds),
#: ...) in time order, the first segment open to the past, the last one ending at ``end``.
Segments = tuple[tuple[tuple[str, int], ...], str]


def local_date_of_instant(utc: str, local_tz: str, segments: Segments | None) -> str:
    """District-local date of an instant given as a naive UTC timestamp expression.

    With ``segments`` (the zone's UTC offsets, checked against DuckDB's own time-zone data when
    they were built) the offset is found by a binary search of nested CASEs -- about ten times
    faster than a time-zone conversion per row; instants after the last segment, or no
    segments, use DuckDB's conversion.
    """
    icu = f"CAST(timezone({lit(local_tz)}, timezone('UTC', {utc})) AS DATE)"
    if not segments:
        return icu
    starts, end = segments

    def tree(lo: int, hi: int) -> str:  # segments lo..hi-1
        if hi - lo == 1:
            return str(starts[lo][1])
        mid = (lo + hi) // 2
        return (
            f"CASE WHEN {utc} < TIMESTAMP '{starts[mid][0]}' THEN {tree(lo, mid)} "
            f"ELSE {tree(mid, hi)} END"
        )

    fast = f"CAST({utc} + to_seconds({tree(0, len(starts))}) AS DATE)"
    return f"CASE WHEN {utc} < TIMESTAMP '{end}' THEN {fast} ELSE {icu} END"


def text_ts_columns(col: str, formats: Sequence[str]) -> tuple[str, str]:
    """Two projections that parse a text timestamp column once per row.

    Returns SELECT-list items for two nested levels over the reader: the first adds
    ``__rce_off`` (the text carries an offset such as ``Z`` or ``+02:00``), the second
    ``__rce_ts`` (with an offset: the UTC instant; without: the naive time as written).
    :func:`local_date_from_text_ts` then reads only these columns, so the parse is not repeated
    in every branch of the time-zone search.
    """
    x = f"trim({col})"
    has_offset = f"(suffix({x}, 'Z') OR regexp_matches({x}, '[0-9][+-][0-9][0-9]:?[0-9][0-9]$'))"
    # With the session time zone at UTC, a TIMESTAMPTZ cast to TIMESTAMP is the UTC instant.
    ts = (
        f"CASE WHEN __rce_off THEN CAST(try_cast({x} AS TIMESTAMPTZ) AS TIMESTAMP) "
        f"ELSE {timestamp_text_expr(col, formats)} END"
    )
    return f"{has_offset} AS __rce_off", f"{ts} AS __rce_ts"


def utc_text_ts_column(col: str, formats: Sequence[str]) -> str:
    """A SELECT-list item ``__rce_ts``: the UTC instant of a text timestamp written in UTC.

    For sources whose naive times are UTC an offset only needs applying when there is one. The
    plain TIMESTAMP cast (which reads ``Z`` and ignores offsets) is used unless the text holds
    a ``+``, or a ``-`` after a ``:`` (an offset follows the time of day); only those texts take
    the slower time-zone-aware cast. Texts the plain cast cannot read go through the export's
    date formats (:func:`timestamp_text_expr`).
    """
    x = f"trim({col})"
    offset = f"contains({col}, '+') OR {col} LIKE '%:%-%'"
    naive = timestamp_text_expr(col, formats)
    return (
        f"CASE WHEN {offset} "
        f"THEN coalesce(CAST(try_cast({col} AS TIMESTAMPTZ) AS TIMESTAMP), "
        f"CAST(try_cast({x} AS TIMESTAMPTZ) AS TIMESTAMP), {naive}) "
        f"ELSE coalesce(try_cast({col} AS TIMESTAMP), "
        f"CASE WHEN {col} IS NOT NULL THEN {naive} END) END AS __rce_ts"
    )


def local_date_from_text_ts(
    source_tz: str, local_tz: str, segments: Segments | None = None
) -> str:
    """District-local date of a text timestamp parsed by :func:`text_ts_columns`.

    A timestamp written with an explicit offset is converted from that offset; a naive one is
    read in ``source_tz`` ("" = already local) and converted to ``local_tz``.
    """
    instant = local_date_of_instant("__rce_ts", local_tz, segments)
    if source_tz.lower() in UTC_NAMES:
        return instant
    if source_tz:
        naive = f"CAST(timezone({lit(local_tz)}, timezone({lit(source_tz)}, __rce_ts)) AS DATE)"
    else:
        naive = "CAST(__rce_ts AS DATE)"
    return f"CASE WHEN __rce_off THEN {instant} ELSE {naive} END"


def local_date_from_typed(
    col: str, duck_type: str, source_tz: str, local_tz: str, segments: Segments | None = None
) -> str:
    """District-local date of a typed (Parquet) DATE / TIMESTAMP / TIMESTAMPTZ column."""
    t = duck_type.upper()
    if t == "DATE":
        return f"CAST({col} AS DATE)"
    if "WITH TIME ZONE" in t:
        return local_date_of_instant(f"CAST({col} AS TIMESTAMP)", local_tz, segments)
    if t.startswith("TIMESTAMP"):
        if source_tz.lower() in UTC_NAMES:
            return local_date_of_instant(f"CAST({col} AS TIMESTAMP)", local_tz, segments)
        if source_tz:
            return f"CAST(timezone({lit(local_tz)}, timezone({lit(source_tz)}, {col})) AS DATE)"
        return f"CAST({col} AS DATE)"
    return ""


def number_expr(col: str, duck_type: str) -> str:
    """A numeric column as DOUBLE (text: thousands separators removed; bad values -> NULL)."""
    if duck_type.upper() in ("VARCHAR", "TEXT", "STRING"):
        # most texts are plain numbers: the separators are removed only from the others
        return (
            f"coalesce(try_cast({col} AS DOUBLE), CASE WHEN {col} IS NOT NULL "
            f"THEN try_cast(replace(trim({col}), ',', '') AS DOUBLE) END)"
        )
    return f"try_cast({col} AS DOUBLE)"


def count_expr(col: str, duck_type: str) -> str:
    """A lesson count or a pass flag: numbers, or Passed / Not Passed / Y / N words as 1 / 0."""
    if duck_type.upper() not in ("VARCHAR", "TEXT", "STRING"):
        return f"try_cast({col} AS DOUBLE)"
    x = f"lower(trim({col}))"
    return (
        f"CASE WHEN {x} IN ('passed', 'pass', 'y', 'yes', 'true', 't') THEN 1.0 "
        f"WHEN {x} IN ('not passed', 'not pass', 'failed', 'fail', 'n', 'no', 'false', 'f') "
        f"THEN 0.0 ELSE {number_expr(col, duck_type)} END"
    )
