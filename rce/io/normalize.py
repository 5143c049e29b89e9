"""Normalisers: one canonical form for IDs, dates, grades and demographic vocabularies.

All functions are vectorised over a :class:`pandas.Series` and idempotent (normalising a
normalised value gives it back unchanged; property-tested). Values that cannot be mapped become
missing rather than a guess; ``rce validate`` reports them.

Vocabularies (``data-formats.md`` §3):

* grade: TK/PK -> -1, K/KN/KG -> 0, ``01``..``12`` -> 1..12 (nullable integer);
* gender: "Male", "Female", "Nonbinary";
* race/ethnicity: the California reporting roll-up of §3.2 -- Hispanic first, then
  "American Indian or Alaska Native", "Asian", "Filipino" (separate from Asian),
  "Pacific Islander", "Black", "White", or "Two or More Races";
* EL status: "EO", "IFEP", "EL", "RFEP", "TBD", or "EL" / "Not EL" when the source only has Y/N;
* disability and economic disadvantage: nullable booleans.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

import numpy as np
import pandas as pd

# --- student IDs --------------------------------------------------------------------------------

#: Scientific notation of an integer as Excel writes long IDs (4.512E+05). Exponents above 99
#: are not IDs (and expanding 1E999999999 would build a billion-digit string).
_SCI = re.compile(r"^[0-9]+(\.[0-9]+)?[eE][+]?[0-9]{1,2}$")


def _expand_sci(value: str) -> str:
    try:
        d = Decimal(value)
    except InvalidOperation:
        return value
    if d != d.to_integral_value() or d < 0:
        return value
    return str(int(d))


def normalize_student_id(series: pd.Series) -> pd.Series:
    """Canonical text form of student IDs.

    Strips whitespace, drops a trailing ``.0`` (a number that went through a float), expands
    scientific notation of integers (``4.512E+05`` -> ``451200``), strips leading zeros of
    all-digit IDs (Excel drops them, so the canonical form has none; ``000`` -> ``0``), keeps
    anything else as is, and turns blanks into missing.

    Parameters
    ----------
    series
        Raw IDs (any dtype).

    Returns
    -------
    pandas.Series
        ``str`` dtype, same index.
    """
    s = series.astype("str") if not pd.api.types.is_string_dtype(series) else series
    s = s.str.strip()
    s = s.where(s != "")
    s = s.str.replace(r"^([0-9]+)\.0+$", r"\1", regex=True)
    sci = s.str.match(_SCI.pattern).fillna(False).astype(bool)
    if sci.any():
        s = s.where(~sci, s[sci].map(_expand_sci))
    digits = s.str.fullmatch(r"[0-9]+").fillna(False).astype(bool)
    if digits.any():
        stripped = s.str.lstrip("0")
        stripped = stripped.where(stripped != "", "0")
        s = s.where(~digits, stripped)
    return s.astype("str")


_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def is_email(series: pd.Series) -> pd.Series:
    """True where the value looks like an e-mail address."""
    s = series.astype("str")
    has_at = s.str.contains("@", regex=False).fillna(False).astype(bool)
    out = pd.Series(False, index=series.index)
    if has_at.any():
        out = out.mask(has_at, s[has_at].str.match(_EMAIL.pattern).fillna(False).astype(bool))
    return out.astype(bool)


def in_index(values: pd.Series, index: pd.Index) -> pd.Series:
    """``values.isin(index)`` for a unique ``index``, by one hash lookup.

    pandas 3's ``isin`` on Arrow-backed text turns every value of ``index`` into a pyarrow
    scalar first (0.2 s for 20,000 roster IDs); ``get_indexer`` gives the same answer in a few
    milliseconds. A missing value is never found (the index holds no missing value).
    """
    return pd.Series(index.get_indexer(values) >= 0, index=values.index)


def resolve_ids(
    raw_ids: pd.Series,
    roster: pd.DataFrame,
) -> pd.DataFrame:
    """Map raw IDs found in an export to roster student IDs.

    Works on the distinct values only, so it can be given the distinct IDs of a large usage log
    (aggregated elsewhere) and the result joined back.

    Matching, in order: the normalised ID equals a roster ``student_id`` ("exact"); it equals a
    roster state ID (``ssid`` column, "state_id"); it is an e-mail equal (case-insensitively) to a
    roster ``email`` ("email"); a non-numeric prefix such as ``student_`` or ``kbza.`` stripped
    leaves a roster ID ("prefix"). A value matching more than one student is "ambiguous".

    Parameters
    ----------
    raw_ids
        IDs as found in the export (any dtype; repeated values are fine).
    roster
        Canonical students table: ``student_id`` and optionally ``ssid`` and ``email``.

    Returns
    -------
    pandas.DataFrame
        One row per distinct raw value (blank included): ``raw_id`` (as given), ``student_id``
        (missing when unmatched), ``match`` ("exact", "state_id", "email", "prefix" or missing)
        and ``reason`` for unmatched rows ("blank", "not_in_roster", "email_only", "ambiguous").
    """
    raw = pd.Series(pd.unique(raw_ids.astype("str")), dtype="str")
    norm = normalize_student_id(raw)
    out = pd.DataFrame(
        {
            "raw_id": raw,
            "student_id": pd.Series(pd.NA, index=raw.index, dtype="str"),
            "match": pd.Series(pd.NA, index=raw.index, dtype="str"),
            "reason": pd.Series(pd.NA, index=raw.index, dtype="str"),
        }
    )
    roster_ids = normalize_student_id(roster["student_id"]).dropna()
    roster_set = pd.Index(roster_ids.unique())

    def _lookup_unique(keys: pd.Series, index_keys: pd.Series, values: pd.Series) -> pd.DataFrame:
        m = pd.DataFrame({"k": index_keys, "v": values}).dropna().drop_duplicates()
        counts = m.groupby("k")["v"].nunique()
        first = m.drop_duplicates("k").set_index("k")["v"]
        return pd.DataFrame(
            {"v": keys.map(first), "n": keys.map(counts).fillna(0).astype(int)}, index=keys.index
        )

    blank = norm.isna()
    out.loc[blank, "reason"] = "blank"
    todo = ~blank

    exact = todo & in_index(norm, roster_set)
    out.loc[exact, "student_id"] = norm[exact]
    out.loc[exact, "match"] = "exact"
    todo &= ~exact

    if todo.any() and "ssid" in roster.columns:
        ss = _lookup_unique(norm[todo], normalize_student_id(roster["ssid"]), roster_ids.reindex(
            roster.index))
        one = ss["n"] == 1
        idx = ss.index[one]
        out.loc[idx, "student_id"] = ss.loc[one, "v"]
        out.loc[idx, "match"] = "state_id"
        amb = ss.index[ss["n"] > 1]
        out.loc[amb, "reason"] = "ambiguous"
        todo &= out["match"].isna() & out["reason"].isna()

    email = todo & is_email(norm)
    if email.any():
        if "email" in roster.columns:
            em = _lookup_unique(
                norm[email].str.lower(),
                roster["email"].astype("str").str.strip().str.lower(),
                roster_ids.reindex(roster.index),
            )
            one = em["n"] == 1
            out.loc[em.index[one], "student_id"] = em.loc[one, "v"]
            out.loc[em.index[one], "match"] = "email"
            out.loc[em.index[em["n"] > 1], "reason"] = "ambiguous"
            out.loc[em.index[em["n"] == 0], "reason"] = "email_only"
        else:
            out.loc[email, "reason"] = "email_only"
        todo &= ~email

    if todo.any():
        tail = norm[todo].str.extract(r"^[A-Za-z][A-Za-z_.\-]*?[_.\-]?(\d+)$", expand=False)
        tail = normalize_student_id(tail.astype("str"))
        hit = tail.notna() & in_index(tail, roster_set)
        out.loc[hit[hit].index, "student_id"] = tail[hit]
        out.loc[hit[hit].index, "match"] = "prefix"
        todo &= out["match"].isna() & out["reason"].isna()

    out.loc[todo, "reason"] = "not_in_roster"
    return out


# --- dates ----------------------------------------------------------------------------------------

#: (regex, strptime format) pairs tried in order; US month-first throughout, never day-first.
DATE_PATTERNS: tuple[tuple[str, str], ...] = (
    (r"^\d{4}-\d{1,2}-\d{1,2}$", "%Y-%m-%d"),
    (r"^\d{1,2}/\d{1,2}/\d{4}$", "%m/%d/%Y"),
    (r"^\d{1,2}-\d{1,2}-\d{4}$", "%m-%d-%Y"),
    (r"^\d{1,2}/\d{1,2}/\d{2}$", "%m/%d/%y"),
    (r"^\d{1,2}-[A-Za-z]{3}-\d{2}$", "%d-%b-%y"),
    (r"^\d{1,2}-[A-Za-z]{3}-\d{4}$", "%d-%b-%Y"),
    (r"^\d{4}/\d{1,2}/\d{1,2}$", "%Y/%m/%d"),
)

_DATETIME_PREFIX = re.compile(
    r"^(\d{4}-\d{1,2}-\d{1,2}|\d{1,2}[/-]\d{1,2}[/-]\d{4})[ T]\d{1,2}[:.]\d{2}([:.]\d{2}(\.\d+)?)?"
    r"\s*([AaPp][Mm])?(Z|[+-]\d{2}:?\d{2})?$"
)

#: Excel's day zero for serial dates (the 1900 leap-year bug is absorbed by starting a day early).
EXCEL_EPOCH = pd.Timestamp("1899-12-30")
#: Plausible serial-number range for school data: 1954-10 to 2119-01.
EXCEL_SERIAL_RANGE = (20000, 80000)


_SERIAL_PATTERN = r"^\d{5}(\.\d+)?$"


def _formats_of(values: pd.Series) -> pd.Series:
    """Format label of each value (vectorised; "" when none applies)."""
    out = pd.Series("", index=values.index, dtype="str")
    todo = pd.Series(True, index=values.index)
    checks = [*DATE_PATTERNS, (_SERIAL_PATTERN, "excel-serial"),
              (_DATETIME_PREFIX.pattern, "datetime")]
    for pattern, fmt in checks:
        if not todo.any():
            break
        hit = todo & values.str.match(pattern).fillna(False).astype(bool)
        out = out.mask(hit, fmt)
        todo &= ~hit
    return out


def date_formats_seen(series: pd.Series) -> dict[str, int]:
    """Count the date formats present in a column, by distinct value (for reports, sniffing)."""
    vals = pd.Series(series.dropna().astype("str").str.strip().unique(), dtype="str")
    fmts = _formats_of(vals).replace("", "unparseable")
    return {str(k): int(v) for k, v in fmts.value_counts().items()}


def _parse_one_format(vals: pd.Series, fmt: str) -> pd.Series:
    if fmt == "excel-serial":
        num = pd.to_numeric(vals, errors="coerce")
        ok = num.between(*EXCEL_SERIAL_RANGE)
        days = num.where(ok).floordiv(1)
        res = EXCEL_EPOCH + pd.to_timedelta(days, unit="D")
        return res
    if fmt == "datetime":
        dt = pd.to_datetime(vals.str.replace(r"(\d)\.(\d{2})(?=$|[.:\s])", r"\1:\2", regex=True),
                            errors="coerce", format="mixed", utc=False)
        return dt
    return pd.to_datetime(vals, format=fmt, errors="coerce")


def parse_dates(series: pd.Series) -> pd.Series:
    """Parse dates written in any of the US formats seen in district exports, mixed freely.

    Accepts ``M/D/YYYY``, ``MM/DD/YYYY``, ``MM-DD-YYYY``, ``M/D/YY``, ``DD-Mon-YY``, ISO
    ``YYYY-MM-DD``, Excel serial numbers (``45523``), and date-times (the time is dropped; a time
    zone, if written, is ignored -- use :func:`parse_timestamps_local` to convert instants first).
    Numeric dates are always month-first. Parsing works on distinct values, so a column of
    millions of rows with a few hundred dates is fast.

    Returns
    -------
    pandas.Series
        ``datetime64`` at midnight (missing where blank or unparseable), same index.
    """
    if pd.api.types.is_datetime64_any_dtype(series):
        s = series.dt.tz_localize(None) if getattr(series.dt, "tz", None) else series
        return s.dt.normalize()
    text = series.astype("str").str.strip()
    codes, uniques = pd.factorize(text)
    uniq = pd.Series(uniques, dtype="str")
    parsed = pd.Series(pd.NaT, index=uniq.index, dtype="datetime64[us]")
    fmts = _formats_of(uniq)
    for fmt in fmts.unique():
        if fmt == "":
            continue
        mask = fmts == fmt
        res = _parse_one_format(uniq[mask], fmt)
        if getattr(res.dt, "tz", None) is not None:
            res = res.dt.tz_localize(None)
        parsed.loc[mask] = res.dt.normalize().astype("datetime64[us]")
    return _take(parsed, codes, series.index)


def _take(values: pd.Series, codes: np.ndarray, index: pd.Index) -> pd.Series:
    """Expand per-distinct-value results back to rows (code -1 = missing)."""
    taken = np.append(values.to_numpy(dtype="datetime64[us]"), np.datetime64("NaT", "us"))
    result = taken[np.where(codes >= 0, codes, len(values))]
    return pd.Series(result, index=index, dtype="datetime64[us]")


def _to_datetime(vals: pd.Series, *, utc: bool = False) -> pd.Series:
    """ISO 8601 first (vectorised, fast); only the rest go through the slow mixed parser."""
    dt = pd.to_datetime(vals, errors="coerce", format="ISO8601", utc=utc)
    rest = dt.isna() & vals.notna()
    if rest.any():
        dt = dt.astype("datetime64[us, UTC]" if utc else "datetime64[us]")
        more = pd.to_datetime(vals[rest], errors="coerce", format="mixed", utc=utc)
        dt.loc[rest] = more.astype(dt.dtype)
    return dt


def parse_timestamps_local(
    series: pd.Series, *, source_tz: str = "", local_tz: str = "America/Los_Angeles"
) -> pd.Series:
    """District-local calendar dates of timestamps.

    A timestamp with ``Z`` or an offset is an instant and is converted to ``local_tz``; a naive
    timestamp is read in ``source_tz`` ("UTC" or an IANA name) and converted, or taken as local
    when ``source_tz`` is empty. Only then is the date taken, so an activity at 02:30 UTC on
    9 October counts on 8 October in California.
    """
    text = series.astype("str").str.strip()
    codes, uniques = pd.factorize(text)
    uniq = pd.Series(uniques, dtype="str")
    aware = uniq.str.contains(r"(?:Z|[+-]\d{2}:?\d{2})$", regex=True).fillna(False).astype(bool)
    out = pd.Series(pd.NaT, index=uniq.index, dtype="datetime64[us]")
    if aware.any():
        dt = _to_datetime(uniq[aware], utc=True)
        out.loc[aware] = (
            dt.dt.tz_convert(local_tz).dt.tz_localize(None).dt.normalize().astype("datetime64[us]")
        )
    naive = ~aware
    if naive.any():
        vals = uniq[naive].str.replace(r"(\d)\.(\d{2})(?=$|[.:\s])", r"\1:\2", regex=True)
        dt = _to_datetime(vals)
        if dt.isna().any():
            # Plain dates and Excel serials go through the date parser.
            fallback = parse_dates(uniq[naive])
            dt = dt.fillna(fallback)
        if source_tz:
            dt = dt.dt.tz_localize(source_tz, ambiguous="NaT", nonexistent="shift_forward")
            dt = dt.dt.tz_convert(local_tz).dt.tz_localize(None)
        out.loc[naive] = dt.dt.normalize().astype("datetime64[us]")
    return _take(out, codes, series.index)


# --- grades and vocabularies ---------------------------------------------------------------------

_GRADE_WORDS = {
    "TK": -1, "PK": -1, "P": -1, "PS": -1, "PRE-K": -1, "PREK": -1, "-1": -1,
    "K": 0, "KN": 0, "KG": 0, "KINDERGARTEN": 0, "0": 0, "00": 0,
}


def _grade_one(value: str) -> float:
    v = value.strip().upper()
    v = re.sub(r"^(GRADE|GR\.?)\s*", "", v)
    if v in _GRADE_WORDS:
        return float(_GRADE_WORDS[v])
    m = re.fullmatch(r"(\d{1,2})(\.0+)?(ST|ND|RD|TH)?", v)
    if m:
        g = int(m.group(1))
        if 0 <= g <= 12:
            return float(g)
    return float("nan")


def normalize_grade(series: pd.Series) -> pd.Series:
    """Grades as integers: TK/PK -> -1, K/KN/KG -> 0, ``01``..``12`` -> 1..12 (``Int64``)."""
    text = series.astype("str")
    codes, uniques = pd.factorize(text)
    mapped = np.array([_grade_one(u) for u in uniques] + [np.nan])
    vals = mapped[np.where(codes >= 0, codes, len(uniques))]
    return pd.Series(vals, index=series.index).astype("Int64")


def _map_vocab(series: pd.Series, table: dict[str, str]) -> pd.Series:
    key = series.astype("str").str.strip().str.upper().str.replace(r"[\s_\-]+", " ", regex=True)
    return key.map(table).astype("str")


_GENDER = {
    "M": "Male", "MALE": "Male", "BOY": "Male",
    "F": "Female", "FEMALE": "Female", "GIRL": "Female",
    "X": "Nonbinary", "NONBINARY": "Nonbinary", "NON BINARY": "Nonbinary",
}


def normalize_gender(series: pd.Series) -> pd.Series:
    """Gender as "Male", "Female" or "Nonbinary" (CALPADS ``M/F/X``, any case; else missing)."""
    return _map_vocab(series, _GENDER)


#: Reporting groups of the California roll-up, in reporting order.
RACE_GROUPS = (
    "Hispanic",
    "American Indian or Alaska Native",
    "Asian",
    "Filipino",
    "Pacific Islander",
    "Black",
    "White",
    "Two or More Races",
)

_RACE_TEXT = {
    "HISPANIC": "Hispanic", "HISPANIC OR LATINO": "Hispanic", "LATINO": "Hispanic",
    "HISPANIC/LATINO": "Hispanic", "H": "Hispanic",
    "AMERICAN INDIAN OR ALASKA NATIVE": "American Indian or Alaska Native",
    "AMERICAN INDIAN/ALASKA NATIVE": "American Indian or Alaska Native",
    "AMERICANINDIANORALASKANATIVE": "American Indian or Alaska Native",
    "AI/AN": "American Indian or Alaska Native", "I": "American Indian or Alaska Native",
    "ASIAN": "Asian", "A": "Asian",
    "FILIPINO": "Filipino",
    "NATIVE HAWAIIAN OR OTHER PACIFIC ISLANDER": "Pacific Islander",
    "NATIVE HAWAIIAN OR PACIFIC ISLANDER": "Pacific Islander",
    "NATIVE HAWAIIAN/OTHER PACIFIC ISLANDER": "Pacific Islander",
    "PACIFIC ISLANDER": "Pacific Islander", "NHPI": "Pacific Islander", "P": "Pacific Islander",
    "BLACK": "Black", "BLACK OR AFRICAN AMERICAN": "Black", "AFRICAN AMERICAN": "Black",
    "B": "Black",
    "WHITE": "White", "W": "White",
    "TWO OR MORE RACES": "Two or More Races", "TWO OR MORE": "Two or More Races",
    "MULTIRACIAL": "Two or More Races", "MULTIPLE": "Two or More Races", "M": "Two or More Races",
}


def _race_code_group(value: str) -> str | None:
    v = value.strip().upper()
    v = re.sub(r"^URI://ED-FI.ORG/RACEDESCRIPTOR#", "", v)
    if re.fullmatch(r"\d{3}", v):
        c = int(v)
        if c == 100:
            return "American Indian or Alaska Native"
        if 200 <= c <= 299:
            return "Asian"
        if 300 <= c <= 399:
            return "Pacific Islander"
        if c == 400:
            return "Filipino"
        if c == 600:
            return "Black"
        if c == 700:
            return "White"
        return None
    return _RACE_TEXT.get(re.sub(r"\s+", " ", v))


def _yes(series: pd.Series) -> pd.Series:
    return normalize_flag(series)


def normalize_race_ethnicity(
    race: pd.Series | pd.DataFrame, hispanic: pd.Series | None = None
) -> pd.Series:
    """California reporting group from a Hispanic flag and up to five race codes or labels.

    Hispanic = Y comes first; otherwise each race value (CALPADS codes ``100``..``700`` or federal
    / free-text labels) is rolled up (2xx Asian, 400 Filipino, 3xx Pacific Islander, 600 Black,
    700 White, 100 American Indian or Alaska Native), and more than one distinct group gives
    "Two or More Races" (``data-formats.md`` §3.2). Unknown values are ignored; no known value
    gives missing.

    Parameters
    ----------
    race
        One column, or a frame of several race columns (Race 1 .. Race 5).
    hispanic
        Hispanic/Latino flag (Y/N, TRUE/FALSE, ...), optional.
    """
    frame = race.to_frame() if isinstance(race, pd.Series) else race
    groups = []
    for col in frame.columns:
        s = frame[col].astype("str")
        codes, uniques = pd.factorize(s)
        mapped = np.array([_race_code_group(u) for u in uniques] + [None], dtype=object)
        groups.append(mapped[np.where(codes >= 0, codes, len(uniques))])
    n = len(frame)
    result = np.full(n, None, dtype=object)
    if groups:
        stacked = np.stack(groups, axis=1)
        for i in range(n):
            found = {g for g in stacked[i] if g is not None}
            if "Hispanic" in found:
                result[i] = "Hispanic"
            elif len(found) == 1:
                result[i] = found.pop()
            elif len(found) > 1:
                result[i] = "Two or More Races"
    out = pd.Series(result, index=frame.index, dtype="str")
    if hispanic is not None:
        flag = _yes(hispanic).reindex(frame.index)
        out = out.mask(flag.fillna(False).astype(bool), "Hispanic")
    return out


_EL = {
    "EO": "EO", "ENGLISH ONLY": "EO",
    "IFEP": "IFEP", "INITIALLY FLUENT ENGLISH PROFICIENT": "IFEP",
    "EL": "EL", "ELL": "EL", "LEP": "EL", "ENGLISH LEARNER": "EL", "ADEL": "EL",
    "ENGLISH LANGUAGE LEARNER": "EL",
    "RFEP": "RFEP", "RECLASSIFIED FLUENT ENGLISH PROFICIENT": "RFEP", "RECLASSIFIED": "RFEP",
    "TBD": "TBD", "TO BE DETERMINED": "TBD",
    "Y": "EL", "YES": "EL", "TRUE": "EL", "1": "EL", "T": "EL",
    "N": "Not EL", "NO": "Not EL", "FALSE": "Not EL", "0": "Not EL", "F": "Not EL",
    "NOT EL": "Not EL",
}


def normalize_el_status(series: pd.Series) -> pd.Series:
    """English-learner status: EO/IFEP/EL/RFEP/TBD kept; Y/N-style flags -> "EL" / "Not EL"."""
    return _map_vocab(series, _EL)


_FLAG_TRUE = {"Y", "YES", "TRUE", "T", "1", "1.0"}
_FLAG_FALSE = {"N", "NO", "FALSE", "F", "0", "0.0"}


def normalize_flag(series: pd.Series, *, true: set[str] | None = None,
                   false: set[str] | None = None) -> pd.Series:
    """Yes/no flags (Y/N, Yes/No, TRUE/FALSE, 1/0, any case) as a nullable boolean."""
    key = series.astype("str").str.strip().str.upper()
    t = _FLAG_TRUE | (true or set())
    f = _FLAG_FALSE | (false or set())
    out = pd.Series(pd.NA, index=series.index, dtype="boolean")
    out = out.mask(key.isin(t).fillna(False).astype(bool), True)
    out = out.mask(key.isin(f).fillna(False).astype(bool), False)
    return out


_SWD_TRUE = {"SPED", "IEP", "SWD", "SPECIAL EDUCATION", "RSP", "DIS", "SDC",
             "RESOURCE SPECIALTY PROGRAM", "DESIGNATED INSTRUCTION SERVICE"}
_SWD_FALSE = {"NONE", "NOT SPED", "GENED", "GENERAL EDUCATION"}


def normalize_swd(series: pd.Series) -> pd.Series:
    """Students-with-disabilities flag (Y/N or SPED program names) as a nullable boolean."""
    return normalize_flag(series, true=_SWD_TRUE, false=_SWD_FALSE)


_ECON_TRUE = {"FREE", "REDUCED", "R", "FRPM", "FRL", "ED", "SED", "LOW INCOME"}
_ECON_FALSE = {"PAID", "NOT ELIGIBLE", "FULL PAY"}


def normalize_econ_disadv(series: pd.Series) -> pd.Series:
    """Economic disadvantage (Y/N, FRPM ``F/R/N``, meal status words) as a nullable boolean.

    ``F`` means "free meals" in an FRPM column (true), not "false".
    """
    key = series.astype("str").str.strip().str.upper()
    free = key.isin({"F", "FREE"}).fillna(False).astype(bool)
    out = normalize_flag(series, true=_ECON_TRUE, false=_ECON_FALSE)
    return out.mask(free, True)
