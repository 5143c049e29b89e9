"""Property-based and fuzz tests: readers, normalisers and the dosage definition either work or
raise :class:`rce.errors.RceError`, never another exception; normalisation is idempotent.

Example counts are bounded so that the whole file runs in well under a minute.
"""

from __future__ import annotations

import csv
import io
import os
import tempfile
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from rce.errors import RceError

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

FAST = settings(max_examples=60, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow])
SLOW = settings(max_examples=8, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow])


def _tmpfile(data: bytes, suffix: str = ".csv") -> Path:
    fd, name = tempfile.mkstemp(suffix=suffix)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    return Path(name)


def _read_or_rce(data: bytes, suffix: str = ".csv"):
    from rce.io.readers import read_table

    p = _tmpfile(data, suffix)
    try:
        return read_table(p)
    except RceError as exc:
        assert exc.message and exc.where and str(p) in exc.where
        return None
    finally:
        p.unlink()


# --- arbitrary bytes ---------------------------------------------------------------------------

_MAGICS = [b"", b"\x1f\x8b", b"PAR1", b"PK\x03\x04", b"\xef\xbb\xbf", b"\xff\xfe", b"%PDF"]


@FAST
@given(prefix=st.sampled_from(_MAGICS), body=st.binary(max_size=400),
       suffix=st.sampled_from([".csv", ".tsv", ".xlsx", ".parquet", ".gz"]))
def test_arbitrary_bytes_load_or_raise_rce_error(prefix, body, suffix):
    _read_or_rce(prefix + body, suffix)


_CELL = st.text(
    alphabet=st.sampled_from(list('ab 0123456789,;\t|"\'\n\r-.:/@=+éß\u00a0\ufeff\x00')),
    max_size=12,
)


@FAST
@given(rows=st.lists(st.lists(_CELL, min_size=1, max_size=5), min_size=1, max_size=8),
       encoding=st.sampled_from(["utf-8", "cp1252", "utf-8-sig"]))
def test_delimited_text_noise_loads_or_raises_rce_error(rows, encoding):
    text = "\n".join(",".join(r) for r in rows)
    try:
        data = text.encode(encoding)
    except UnicodeEncodeError:
        data = text.encode("utf-8")
    _read_or_rce(data)


# --- well-formed but odd tables ----------------------------------------------------------------

_HEADERS = ["Student ID", "Student Number", "SSID", "Session Start", "Minutes", "Date",
            "Last Name", "First Name", "Grade", "School Name", "Gender", "Overall Scale Score",
            "Percentile", "Completion Date", "Start Date", "Total Time on Lesson (min)",
            "Email", "Race 1", "ELAS", "SPED", "SED", "FRPM", "date", "sis_id", "active",
            "num_logins", "Enter Date", "Leave Date", "Birthdate", "Subject", "x"]
_VALUE = st.one_of(
    st.sampled_from(["", " ", "0", "-1", "4512", "004512", "4.512E+03", "1e400", "NaN", "inf",
                     "2024-09-03", "09/03/2024", "2024-02-30", "2024-09-03 08:15:00",
                     "2025-03-09 02:30:00", "9999-12-31", "0001-01-01", "45538", "K", "TK",
                     "12", "Y", "N", "F", "M", "X", "EL", "EO", "a@b.org", "=1+1", "é", "#N/A",
                     "True", "False", "1,5", "  7 ", "٤٥١٢"]),
    st.text(max_size=6),
)


@st.composite
def odd_tables(draw):
    cols = draw(st.lists(st.sampled_from(_HEADERS), min_size=1, max_size=8, unique=True))
    n = draw(st.integers(min_value=0, max_value=12))
    rows = [[draw(_VALUE) for _ in cols] for _ in range(n)]
    delim = draw(st.sampled_from([",", "\t", ";"]))
    buf = io.StringIO()
    csv.writer(buf, delimiter=delim, lineterminator=draw(st.sampled_from(["\n", "\r\n"]))
               ).writerows([cols, *rows])
    return buf.getvalue()


@SLOW
@given(text=odd_tables())
def test_odd_tables_validate_or_raise_rce_error(text):
    """The whole validate path (read, detect layout, every check) on odd tables."""
    from rce.validate import validate_files

    p = _tmpfile(text.encode("utf-8"))
    try:
        report = validate_files([p])
        assert report.exit_code in (0, 1)
        report.to_text()
        report.to_json()
        report.to_junit()
    except RceError:
        pass
    finally:
        p.unlink()


@SLOW
@given(text=odd_tables(), kind=st.sampled_from(["roster", "scores"]))
def test_odd_tables_load_or_raise_rce_error(text, kind):
    from rce.config import Plan
    from rce.io import load_assessments, load_roster

    p = _tmpfile(text.encode("utf-8"))
    try:
        (load_roster if kind == "roster" else load_assessments)([p], Plan())
    except RceError:
        pass
    finally:
        p.unlink()


# --- normalisers -------------------------------------------------------------------------------

_IDS = st.lists(st.one_of(st.none(), st.text(max_size=12),
                          st.from_regex(r"\s*0*\d{1,9}(\.0+)?\s*", fullmatch=True),
                          st.from_regex(r"\d\.\d{1,6}[eE][+]?\d{1,2}", fullmatch=True)),
                max_size=20)


@FAST
@given(values=_IDS)
def test_student_id_normalisation_is_idempotent(values):
    from rce.io.normalize import normalize_student_id

    s = pd.Series(values, dtype="object")
    once = normalize_student_id(s)
    twice = normalize_student_id(once)
    pd.testing.assert_series_equal(once, twice)
    assert len(once) == len(s)


_VOCAB = st.lists(st.one_of(st.none(), st.text(max_size=8), st.sampled_from(
    ["F", "M", "Female", "male", "X", "Nonbinary", "EL", "EO", "RFEP", "IFEP", "LEP", "Y", "N",
     "Yes", "no", "1", "0", "True", "false", "K", "TK", "PK", "03", "12th", "Grade 3"])),
    max_size=15)


@FAST
@given(values=_VOCAB)
def test_vocabulary_normalisers_are_idempotent(values):
    from rce.io import normalize as nz

    s = pd.Series(values, dtype="str")
    for fn in (nz.normalize_gender, nz.normalize_el_status, nz.normalize_swd,
               nz.normalize_econ_disadv):
        once = fn(s)
        assert len(once) == len(s)
        pd.testing.assert_series_equal(fn(once.astype("str")), once, check_dtype=False)
    grades = nz.normalize_grade(s)
    again = nz.normalize_grade(grades.map(lambda g: None if pd.isna(g) else str(int(g))
                                          if float(g).is_integer() else str(g)).astype("str"))
    pd.testing.assert_series_equal(again, grades, check_dtype=False, check_names=False)


@FAST
@given(values=st.lists(st.one_of(st.none(), st.text(max_size=20), st.sampled_from(
    ["2024-09-03", "9/3/2024", "09/03/24", "2024-02-30", "45538", "2024-09-03T08:15:00Z",
     "0001-01-01", "9999-12-31", "3 Sept 2024", "13/13/2013"])), max_size=15))
def test_date_parsing_never_crashes(values):
    from rce.io.normalize import parse_dates

    s = pd.Series(values, dtype="str")
    try:
        out = parse_dates(s)
    except RceError:
        return
    assert len(out) == len(s)
    assert out[s.isna()].isna().all()


# --- the dosage definition ---------------------------------------------------------------------

_LOG = st.lists(
    st.tuples(
        st.sampled_from(["4512", "004512", "4513", "4514", "", "x@y.org", "4.515E+03"]),
        st.one_of(st.datetimes(min_value=pd.Timestamp("2024-08-01").to_pydatetime(),
                               max_value=pd.Timestamp("2025-06-30").to_pydatetime()).map(
                                   lambda d: d.strftime("%Y-%m-%d %H:%M:%S")),
                  st.sampled_from(["", "garbage", "2025-03-09 02:30:00", "1999-01-01"])),
        st.sampled_from(["0", "5", "22", "", "abc", "600", "2.5"]),
    ),
    min_size=1, max_size=40,
)


@SLOW
@given(rows=_LOG, threshold=st.integers(min_value=1, max_value=6))
def test_dosage_on_arbitrary_logs_is_consistent(rows, threshold):
    """Any session log: dosage either raises RceError or gives habitual months within the
    months seen, non-negative minutes, and each student at most once."""
    from dataclasses import replace

    from rce.config import Plan
    from rce.dosage import compute_dosage
    from rce.io import usage_source_for

    assume(any(r[0] for r in rows))
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows([["Student ID", "Session Start", "Minutes"],
                                                    *map(list, rows)])
    p = _tmpfile(buf.getvalue().encode("utf-8"))
    plan = Plan()
    plan = replace(plan, dosage=replace(plan.dosage, min_sessions_per_month=threshold))
    try:
        src = usage_source_for([p], plan, product="Fuzz")
        result = compute_dosage([src], plan=plan)
    except RceError:
        return
    finally:
        p.unlink()
    per = result.per_student
    assert per["student_id"].is_unique
    months = [c for c in per.columns if "habitual" in c and "month" in c]
    for c in months:
        vals = pd.to_numeric(per[c], errors="coerce").dropna()
        assert (vals >= 0).all() and (vals <= 12).all()
    for c in [c for c in per.columns if "minutes" in c]:
        vals = pd.to_numeric(per[c], errors="coerce").dropna()
        assert (vals >= 0).all(), c


def test_bom_then_invalid_utf8_is_an_input_error():
    """Regression (found by the bytes fuzzer): a UTF-8 byte-order mark followed by a byte that
    is not UTF-8 raised UnicodeDecodeError from the CSV parser."""
    from rce.io.readers import read_table

    p = _tmpfile(b"\xef\xbb\xbfStudent ID,Minutes\n4512,\x80\n")
    try:
        with pytest.raises(RceError, match="mixes text encodings") as info:
            read_table(p)
        assert info.value.hint and str(p) in info.value.where
    finally:
        p.unlink()


def test_negative_minutes_never_make_negative_dosage():
    from rce.config import Plan
    from rce.dosage import compute_dosage
    from rce.io import usage_source_for

    p = _tmpfile(b"Student ID,Session Start,Minutes\n4512,2024-09-03 08:00:00,-10\n"
                 b"4512,2024-09-04 08:00:00,5\n")
    try:
        src = usage_source_for([p], Plan(), product="Fuzz")
        per = compute_dosage([src], plan=Plan()).per_student
    finally:
        p.unlink()
    minutes = [c for c in per.columns if "minutes" in c]
    assert minutes
    for c in minutes:
        assert (pd.to_numeric(per[c], errors="coerce").dropna() >= 0).all(), c
