"""Normalisers: IDs, the roster resolver, dates, time zones, grades and vocabularies.

Vocabulary and roll-up rules come from data-formats.md §3.2 (CALPADS) and §1.4 / §2.1 (formats).
"""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rce.io import normalize as nz


def S(*values):
    return pd.Series(list(values), dtype="str")


# --- IDs -----------------------------------------------------------------------------------------


def test_student_id_forms():
    out = nz.normalize_student_id(S(" 004512 ", "4512.0", "4.512E+03", "0", "000",
                                    "student_13999", "AUTO_ab12", "", None, "4.5125E+03"))
    assert out.tolist()[:8] == ["4512", "4512", "4512", "0", "0", "student_13999", "AUTO_ab12",
                                None] or out.iloc[7] is pd.NA or pd.isna(out.iloc[7])
    assert out.iloc[:7].tolist() == ["4512", "4512", "4512", "0", "0", "student_13999",
                                     "AUTO_ab12"]
    assert out.iloc[7:9].isna().all()
    # A non-integral value in scientific notation is not an ID we can expand: kept as is.
    assert out.iloc[9] == "4.5125E+03"


def test_student_id_numeric_input():
    out = nz.normalize_student_id(pd.Series([4512.0, None]))
    assert out.iloc[0] == "4512" and pd.isna(out.iloc[1])


ids = st.one_of(
    st.from_regex(r"\A0{0,3}[0-9]{1,8}\Z"),
    st.from_regex(r"\A[a-z]{1,6}[_.][0-9]{1,6}\Z"),
    st.from_regex(r"\A[0-9]{1,6}\.0\Z"),
    st.text(max_size=8),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(ids, min_size=1, max_size=20))
def test_student_id_idempotent(values):
    once = nz.normalize_student_id(pd.Series(values, dtype="str"))
    twice = nz.normalize_student_id(once)
    pd.testing.assert_series_equal(once, twice)


ROSTER = pd.DataFrame({
    "student_id": S("4512", "4513", "4514", "4515"),
    "ssid": S("1000000001", "1000000002", "", "1000000004"),
    "email": S("ana@x.org", "ben@x.org", "dup@x.org", "dup@x.org"),
})


def test_resolve_ids_matches_and_reasons():
    raw = S("004512", "4513", "1000000004", "ANA@x.org", "kbza.4514", "", "9999",
            "zed@x.org", "dup@x.org", "004512")
    res = nz.resolve_ids(raw, ROSTER).set_index("raw_id")
    assert len(res) == 9  # distinct raw values only
    assert res.loc["004512", "student_id"] == "4512" and res.loc["004512", "match"] == "exact"
    assert res.loc["1000000004", "match"] == "state_id"
    assert res.loc["1000000004", "student_id"] == "4515"
    assert res.loc["ANA@x.org", "match"] == "email"
    assert res.loc["kbza.4514", "match"] == "prefix"
    assert res.loc["kbza.4514", "student_id"] == "4514"
    assert res.loc["9999", "reason"] == "not_in_roster"
    assert res.loc["zed@x.org", "reason"] == "email_only"
    assert res.loc["dup@x.org", "reason"] == "ambiguous"
    assert res.loc["", "reason"] == "blank"
    assert res["student_id"].notna().sum() == 5


def test_resolve_ids_email_without_roster_emails():
    res = nz.resolve_ids(S("ana@x.org"), ROSTER[["student_id"]])
    assert res["reason"].tolist() == ["email_only"]


# --- dates ---------------------------------------------------------------------------------------


def test_every_date_variant_is_the_same_day():
    # data-formats.md §2.1 item 2 and §5.4 check 4: every variant of 14 Aug 2024.
    variants = S("08/14/2024", "8/14/2024", "08-14-2024", "8-14-2024", "14-Aug-24",
                 "14-AUG-2024", "2024-08-14", "45518", "2024-08-14 10:23:00", "8/14/24",
                 "08-14-2024 10.23", "2024-08-14T10:23:00")
    out = nz.parse_dates(variants)
    assert out.notna().all()
    assert set(out) == {pd.Timestamp("2024-08-14")}


def test_dates_are_month_first_and_bad_values_missing():
    out = nz.parse_dates(S("03/04/2025", "13/01/2025", "", None, "soon", "30-Sep-19"))
    assert out.iloc[0] == pd.Timestamp("2025-03-04")
    assert out.iloc[1:5].isna().all()
    assert out.iloc[5] == pd.Timestamp("2019-09-30")


def test_excel_serial_outside_range_is_not_a_date():
    out = nz.parse_dates(S("12345", "45523"))
    assert pd.isna(out.iloc[0]) and out.iloc[1] == pd.Timestamp("2024-08-19")


def test_date_formats_seen():
    seen = nz.date_formats_seen(S("8/14/2024", "08-14-2024", "08-14-2024", "x"))
    assert seen == {"%m/%d/%Y": 1, "%m-%d-%Y": 1, "unparseable": 1}


def test_utc_timestamps_shift_to_local_date():
    # 02:30 UTC on 9 Oct is 19:30 on 8 Oct in California (PDT, UTC-7).
    z = nz.parse_timestamps_local(S("2024-10-09T02:30:00Z", "2024-10-09T02:30:00+00:00"),
                                  local_tz="America/Los_Angeles")
    assert set(z) == {pd.Timestamp("2024-10-08")}
    naive = nz.parse_timestamps_local(S("2024-10-09 02:30:00"), source_tz="UTC",
                                      local_tz="America/Los_Angeles")
    assert naive.iloc[0] == pd.Timestamp("2024-10-08")
    local = nz.parse_timestamps_local(S("2024-10-09 02:30:00", "10/09/2024"),
                                      local_tz="America/Los_Angeles")
    assert set(local) == {pd.Timestamp("2024-10-09")}


def test_offset_timestamp_in_winter():
    out = nz.parse_timestamps_local(S("2025-01-15T07:30:00Z"), local_tz="America/Los_Angeles")
    assert out.iloc[0] == pd.Timestamp("2025-01-14")


# --- grades and vocabularies ------------------------------------------------------------------


def test_grades():
    out = nz.normalize_grade(S("TK", "PK", "K", "KN", "KG", "K ", "0", "01", "8", "12", "-1",
                               "Grade 5", "13", "", "9th"))
    assert out.tolist()[:13] == [-1, -1, 0, 0, 0, 0, 0, 1, 8, 12, -1, 5, pd.NA] or True
    assert out.iloc[:12].tolist() == [-1, -1, 0, 0, 0, 0, 0, 1, 8, 12, -1, 5]
    assert out.iloc[12:14].isna().all()
    assert out.iloc[14] == 9
    assert str(out.dtype) == "Int64"


def test_gender():
    out = nz.normalize_gender(S("M", "male", "Female", "f", "X", "Nonbinary", "Non-binary", "",
                                "Other"))
    assert out.iloc[:7].tolist() == ["Male", "Male", "Female", "Female", "Nonbinary",
                                     "Nonbinary", "Nonbinary"]
    assert out.iloc[7:].isna().all()


def test_race_calpads_rollup():
    # data-formats.md §3.2: Hispanic first; 2xx Asian; 400 Filipino; 3xx PI; 600 Black;
    # 700 White; 100 AI/AN; more than one group -> Two or More Races.
    races = pd.DataFrame({
        "Race 1": S("700", "201", "400", "301", "600", "100", "202", "600", "", "700"),
        "Race 2": S("", "", "", "", "700", "", "299", "", "", ""),
    })
    hisp = S("Y", "N", "N", "N", "N", "N", "N", "", "", "N")
    out = nz.normalize_race_ethnicity(races, hisp)
    assert out.iloc[:8].tolist() == ["Hispanic", "Asian", "Filipino", "Pacific Islander",
                                     "Two or More Races", "American Indian or Alaska Native",
                                     "Asian", "Black"]
    assert pd.isna(out.iloc[8])
    assert out.iloc[9] == "White"


def test_race_federal_text_and_descriptors():
    out = nz.normalize_race_ethnicity(S("Black or African American",
                                        "Native Hawaiian or Other Pacific Islander",
                                        "Two or More Races", "uri://ed-fi.org/RaceDescriptor#Asian",
                                        "Hispanic or Latino", "Other"))
    assert out.iloc[:5].tolist() == ["Black", "Pacific Islander", "Two or More Races", "Asian",
                                     "Hispanic"]
    assert pd.isna(out.iloc[5])


def test_el_status():
    out = nz.normalize_el_status(S("EO", "ifep", "EL", "RFEP", "TBD", "Y", "N", "English Learner",
                                   "", "??"))
    assert out.iloc[:8].tolist() == ["EO", "IFEP", "EL", "RFEP", "TBD", "EL", "Not EL", "EL"]
    assert out.iloc[8:].isna().all()


def test_flags_swd_econ():
    assert nz.normalize_flag(S("Y", "n", "TRUE", "0", "", "maybe")).tolist()[:4] == [
        True, False, True, False]
    assert nz.normalize_swd(S("Resource Specialty Program", "None", "Y")).tolist() == [
        True, False, True]
    # FRPM: F = free meals, R = reduced, N = not eligible.
    assert nz.normalize_econ_disadv(S("F", "R", "N", "Y", "1")).tolist() == [
        True, True, False, True, True]


vocab_values = st.sampled_from(
    ["TK", "K", "KN", "01", "8", "12", "M", "f", "X", "Female", "EO", "EL", "RFEP", "Y", "N",
     "700", "201", "400", "Hispanic", "White", "Two or More Races", "F", "R", "", "zz", "True"]
)


@settings(max_examples=50, deadline=None)
@given(st.lists(vocab_values, min_size=1, max_size=15))
def test_vocabulary_normalisers_idempotent(values):
    s = pd.Series(values, dtype="str")
    for fn in (nz.normalize_gender, nz.normalize_el_status, nz.normalize_race_ethnicity):
        once = fn(s)
        pd.testing.assert_series_equal(once, fn(once), check_names=False)
    g = nz.normalize_grade(s)
    pd.testing.assert_series_equal(g, nz.normalize_grade(g.astype("str")))
    for fn in (nz.normalize_flag, nz.normalize_swd, nz.normalize_econ_disadv):
        once = fn(s)
        pd.testing.assert_series_equal(once, fn(once.astype("str")))


@settings(max_examples=60, deadline=None)
@given(st.dates(min_value=pd.Timestamp("1990-01-01").date(),
                max_value=pd.Timestamp("2060-12-31").date()))
def test_parse_dates_round_trip(d):
    ts = pd.Timestamp(d)
    forms = S(ts.strftime("%m/%d/%Y"), f"{ts.month}/{ts.day}/{ts.year}", ts.strftime("%m-%d-%Y"),
              ts.strftime("%Y-%m-%d"), ts.strftime("%d-%b-%Y"),
              str((ts - pd.Timestamp("1899-12-30")).days))
    out = nz.parse_dates(forms)
    assert set(out) == {ts}
    # idempotent on its own output
    again = nz.parse_dates(out)
    assert set(again) == {ts}


@pytest.mark.parametrize("n", [0, 1])
def test_parse_dates_empty_and_all_blank(n):
    out = nz.parse_dates(pd.Series([None] * n, dtype="str"))
    assert len(out) == n and out.isna().all()


def test_huge_exponent_is_not_expanded():
    """An ID such as 1E999999999 stays text (expanding it would build a billion digits)."""
    from rce.io.normalize import normalize_student_id

    got = normalize_student_id(pd.Series(["1E999999999", "4.512E+05", "0E00"], dtype="str"))
    assert got.tolist() == ["1E999999999", "451200", "0"]
