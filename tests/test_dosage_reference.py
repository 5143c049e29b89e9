"""A small pure-pandas reference implementation of the dosage definition, and the checks that
DuckDB (``rce.dosage``) agrees with it exactly: on the sample district and on Hypothesis logs.

The reference is written from the definition in ``rce/dosage.py``'s module docstring, row by
row in plain pandas / Python, without sharing any SQL or aggregation code with the engine. Only
the post-aggregation usage clusters (a pure numpy function, not engine work) are shared.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rce.canonical import UsageSource
from rce.config import DosageConfig, Plan, StudyConfig
from rce.dosage import compute_dosage, resolve_unit

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "sierra-vista"

# --- the reference ------------------------------------------------------------------------------


def ref_norm_id(v: object) -> str | None:
    """IDs: trim; blank -> None; drop a trailing .0; expand integer sci notation; strip zeros."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    t = str(v).strip(" \t\n\r\x0b\x0c")
    if t == "":
        return None
    if re.fullmatch(r"[0-9]+", t):
        return t.lstrip("0") or "0"
    if re.fullmatch(r"[0-9]+\.0+", t):
        return t.split(".")[0].lstrip("0") or "0"
    m = re.fullmatch(r"([0-9]+)(?:\.([0-9]+))?[eE]\+?([0-9]{1,2})", t)
    if m:
        ip, fp, ex = m.group(1), m.group(2) or "", int(m.group(3))
        if ex >= len(fp):
            digits = ip + fp + "0" * (ex - len(fp))
        elif set(fp[ex:]) <= {"0"}:
            digits = ip + fp[:ex]
        else:
            return t
        return digits.lstrip("0") or "0"
    return t


def _excel(t: str) -> datetime | None:
    if re.fullmatch(r"[0-9]{5}(\.[0-9]+)?", t) and 20000 <= float(t) <= 80000:
        return datetime(1899, 12, 30) + timedelta(days=math.floor(float(t)))
    return None


def ref_parse_date(v: object, formats: tuple[str, ...]) -> date | None:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    t = str(v).strip()
    for f in formats:
        try:
            return datetime.strptime(t, f).date()
        except ValueError:
            pass
    try:
        return datetime.fromisoformat(t).date()
    except ValueError:
        pass
    x = _excel(t)
    return x.date() if x else None


def ref_local_date(v: object, src_tz: str, local_tz: str) -> date | None:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    t = str(v).strip()
    try:
        ts = datetime.fromisoformat(t)
    except ValueError:
        return None
    if ts.tzinfo is not None:
        return ts.astimezone(ZoneInfo(local_tz)).date()
    if src_tz:
        return ts.replace(tzinfo=ZoneInfo(src_tz)).astimezone(ZoneInfo(local_tz)).date()
    return ts.date()


def _num(v: object) -> float:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return float("nan")
    try:
        return float(str(v).strip().replace(",", ""))
    except ValueError:
        return float("nan")


def _passed(v: object) -> float:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return float("nan")
    w = str(v).strip().lower()
    if w in ("passed", "pass", "y", "yes", "true", "t"):
        return 1.0
    if w in ("not passed", "not pass", "failed", "fail", "n", "no", "false", "f"):
        return 0.0
    return _num(v)


def _read(src: UsageSource) -> pd.DataFrame:
    frames = []
    for p in src.paths:
        if src.file_format == "parquet":
            frames.append(pd.read_parquet(p))
        else:
            frames.append(
                pd.read_csv(p, dtype=str, keep_default_na=False, na_values=[""], sep=src.delimiter)
            )
    return pd.concat(frames, ignore_index=True)


def ref_rows(src: UsageSource, plan: Plan) -> tuple[pd.DataFrame, int, int]:
    """Rows of one source with (raw_id, day, measures), after de-duplication."""
    raw = _read(src)
    n_read = len(raw)
    c = src.columns
    # the layout's record columns, else every column
    record = [c[k] for k in src.record_columns if k in c] or None
    raw = raw.drop_duplicates(subset=record)
    fmts = tuple(f for f in src.date_formats if "%" in f)
    rows = pd.DataFrame({"rid": raw[c["student_id"]].map(ref_norm_id)})
    if "timestamp" in c:
        day = raw[c["timestamp"]].map(
            lambda v: ref_local_date(v, src.timestamp_tz, plan.study.timezone)
        )
    else:
        day = raw[c["date"]].map(lambda v: ref_parse_date(v, fmts))
    rows["day"] = day
    rows["minutes"] = raw[c["minutes"]].map(_num) if "minutes" in c else np.nan
    rows["sessions"] = raw[c["sessions"]].map(_num) if "sessions" in c else np.nan
    if "lessons_completed" in c:
        rows["lc"] = raw[c["lessons_completed"]].map(_passed)
    else:
        rows["lc"] = 1.0 if src.granularity == "lesson" else np.nan
    passed = c.get("lessons_passed", c.get("passed"))
    rows["lp"] = raw[passed].map(_passed) if passed else np.nan
    if src.granularity in ("event", "lesson"):
        rows["active"] = True
    elif "active" in c:
        rows["active"] = raw[c["active"]].map(
            lambda v: (
                isinstance(v, str)
                and v.strip().lower() in ("true", "t", "yes", "y", "1", "active", "1.0")
            )
        )
    else:
        used = [k for k in ("sessions", "minutes", "lc") if k in rows and rows[k].notna().any()]
        rows["active"] = (rows[used].fillna(0) > 0).any(axis=1) if used else True
    if src.dedupe_keys:
        keys = ["day"] + (["rid"] if "student_id" in src.dedupe_keys else [])
        for k in src.dedupe_keys:
            if k not in ("student_id", "date", "timestamp", "month", "end_date"):
                rows[f"key_{k}"] = raw[c[k]].to_numpy()
                keys.append(f"key_{k}")
        rows = rows.sort_values(["minutes", "sessions", "lc"], ascending=False, na_position="last")
        rows = rows.drop_duplicates(keys, keep="first").sort_index()
    rows["product"] = src.product
    rows["gran"] = src.granularity
    rows["unit"] = resolve_unit(plan.dosage.unit, src.granularity)
    return rows, n_read, n_read - len(rows)


def reference_dosage(
    sources: list[UsageSource], plan: Plan, windows: pd.DataFrame | None = None
) -> dict[str, object]:
    """The dosage definition in plain pandas: per_student (no clusters), monthly, counts."""
    parts, n_read, n_dup = [], 0, 0
    for s in sources:
        r, a, b = ref_rows(s, plan)
        parts.append(r)
        n_read += a
        n_dup += b
    rows = pd.concat(parts, ignore_index=True)
    blank = rows["rid"].isna()
    bad = ~blank & rows["day"].isna()
    rows = rows.loc[~blank & ~bad].rename(columns={"rid": "student_id"})
    thr = plan.dosage.min_sessions_per_month

    # student-day
    rows = rows.assign(
        n_act=rows["active"].astype(int),
        s_act=rows["sessions"].where(rows["active"]),
        m_act=rows["minutes"].where(rows["active"]),
        lc_act=rows["lc"].where(rows["active"]),
        lp_act=rows["lp"].where(rows["active"]),
        has_sessions=rows["sessions"].notna(),
    )
    keys = ["student_id", "product", "gran", "day"]
    g = rows.groupby(keys, sort=False)
    dl = pd.DataFrame(
        {
            "unit": g["unit"].first(),
            "n": g.size(),
            "n_act": g["n_act"].sum(),
            "s_act": g["s_act"].sum(),
            "has_sessions": g["has_sessions"].any(),
            "minutes": g["m_act"].sum(min_count=1),
            "lc": g["lc_act"].sum(min_count=1),
            "lp": g["lp_act"].sum(min_count=1),
            "lc0": g["lc_act"].sum(),
        }
    ).reset_index()
    sess = np.where(
        dl["unit"] == "student-day",
        (dl["n_act"] > 0).astype(float),
        np.where(
            dl["unit"] == "row",
            dl["n_act"].astype(float),
            np.where(
                dl["has_sessions"],
                dl["s_act"],
                np.where(dl["gran"].isin(["event", "lesson", "daily"]), dl["n_act"], dl["lc0"]),
            ),
        ),
    )
    dl = dl.assign(sess=sess)
    dl["lo"] = [
        d - timedelta(days=6) if g == "weekly" else d
        for d, g in zip(dl["day"], dl["gran"], strict=True)
    ]
    dl["hi"] = dl["day"]

    # window
    mode = plan.dosage.window
    win: dict[str, tuple[date, date]] = {}
    if mode == "dates":
        fixed = (plan.dosage.window_start, plan.dosage.window_end)
        win = dict.fromkeys(dl["student_id"].unique(), fixed)
    elif mode == "baseline-to-outcome" and windows is not None:
        w = {
            str(r.student_id): (
                pd.Timestamp(r.baseline_date).date(),
                pd.Timestamp(r.outcome_date).date(),
            )
            for r in windows.itertuples()
        }
        g_lo = min(v[0] for v in w.values())
        g_hi = max(v[1] for v in w.values())
        win = {s: w.get(s, (g_lo, g_hi)) for s in dl["student_id"].unique()}
    if win:
        dl["in_win"] = [
            hi >= win[s][0] and lo <= win[s][1]
            for s, lo, hi in zip(dl["student_id"], dl["lo"], dl["hi"], strict=True)
        ]
    else:
        dl["in_win"] = True
    outside = int(dl.loc[~dl["in_win"], "n"].sum())
    inn = dl.loc[dl["in_win"]].copy()
    inn["month"] = [date(d.year, d.month, 1) for d in inn["day"]]
    inn["act_day"] = ((inn["sess"] > 0) & inn["gran"].isin(["event", "lesson", "daily"])).astype(
        int
    )
    inn["use_day"] = pd.to_datetime(inn["day"]).where(inn["sess"] > 0)
    g = inn.groupby(["student_id", "product", "month"])
    monthly = pd.DataFrame(
        {
            "sessions": g["sess"].sum(),
            "minutes": g["minutes"].sum(min_count=1),
            "active_days": g["act_day"].sum(),
            "lc": g["lc"].sum(min_count=1),
            "lp": g["lp"].sum(min_count=1),
            "first": g["use_day"].min(),
            "last": g["use_day"].max(),
        }
    ).reset_index()
    span = {p: (g["lo"].min(), g["hi"].max()) for p, g in dl.groupby("product")}
    m = monthly.assign(
        act=(monthly["sessions"] > 0).astype(int), hab=(monthly["sessions"] >= thr).astype(int)
    )
    g = m.groupby(["student_id", "product"])
    agg = pd.DataFrame(
        {
            "sessions": g["sessions"].sum(),
            "minutes": g["minutes"].sum(min_count=1),
            "active_days": g["active_days"].sum(),
            "active_months": g["act"].sum(),
            "habitual_months": g["hab"].sum(),
            "first_use": g["first"].min().dt.date,
            "last_use": g["last"].max().dt.date,
            "lc": g["lc"].sum(min_count=1),
            "lp": g["lp"].sum(min_count=1),
        }
    )
    keys_all = dl[["student_id", "product"]].drop_duplicates().set_index(["student_id", "product"])
    per_df = keys_all.join(agg, how="left").reset_index()
    for c in ("sessions", "active_days", "active_months", "habitual_months"):
        per_df[c] = per_df[c].fillna(0).astype(int)
    per_df["window_days"] = [
        (win.get(s, span[p])[1] - win.get(s, span[p])[0]).days + 1
        for s, p in zip(per_df["student_id"], per_df["product"], strict=True)
    ]
    return {
        "per": per_df,
        "monthly": monthly,
        "rows_read": n_read,
        "rows_deduplicated": n_dup,
        "rows_outside_window": outside,
        "rows_blank": int(blank.sum()),
        "rows_bad_date": int(bad.sum()),
    }


def ref_finish(per: pd.DataFrame, plan: Plan, has_minutes: bool, has_pass: bool) -> pd.DataFrame:
    d = plan.dosage
    minutes = (
        per["minutes"].astype(float).fillna(0.0)
        if has_minutes
        else pd.Series(np.nan, index=per.index)
    )
    avg = minutes / (per["window_days"] / 7.0)
    lc = per["lc"].astype(float)
    pass_rate = (
        per["lp"].astype(float) / lc.where(lc > 0)
        if has_pass
        else pd.Series(np.nan, index=per.index)
    )
    met = avg >= d.fidelity_minutes_per_week
    if has_pass:
        met = met & (pass_rate >= d.fidelity_pass_rate)
    level = [
        "habitual" if h >= d.min_habitual_months else ("light" if s > 0 else "none")
        for h, s in zip(per["habitual_months"], per["sessions"], strict=True)
    ]
    return per.assign(
        minutes=minutes,
        avg_weekly_minutes=avg,
        pass_rate=pass_rate,
        met_fidelity=met,
        usage_level=level,
    )


def assert_agree(result, ref, plan: Plan, has_minutes: bool, has_pass: bool) -> None:
    exp = (
        ref_finish(ref["per"], plan, has_minutes, has_pass)
        .sort_values(["product", "student_id"])
        .reset_index(drop=True)
    )
    got = result.per_student.sort_values(["product", "student_id"]).reset_index(drop=True)
    assert got["student_id"].tolist() == exp["student_id"].tolist()
    for col in ("sessions", "active_months", "habitual_months"):
        assert got[col].tolist() == exp[col].astype(int).tolist(), col
    assert got["active_days"].astype(int).tolist() == exp["active_days"].tolist()
    np.testing.assert_allclose(
        got["minutes"].to_numpy(float), exp["minutes"].to_numpy(float), rtol=1e-12
    )
    np.testing.assert_allclose(
        got["avg_weekly_minutes"].to_numpy(float),
        exp["avg_weekly_minutes"].to_numpy(float),
        rtol=1e-12,
    )
    np.testing.assert_allclose(
        got["pass_rate"].to_numpy(float), exp["pass_rate"].to_numpy(float), rtol=1e-12
    )
    assert got["met_fidelity"].astype(bool).tolist() == exp["met_fidelity"].astype(bool).tolist()
    assert got["usage_level"].tolist() == exp["usage_level"].tolist()
    fu = [None if pd.isna(x) else pd.Timestamp(x).date() for x in got["first_use"]]
    lu = [None if pd.isna(x) else pd.Timestamp(x).date() for x in got["last_use"]]
    assert fu == [None if x is None or pd.isna(x) else x for x in exp["first_use"]]
    assert lu == [None if x is None or pd.isna(x) else x for x in exp["last_use"]]
    assert result.rows_read == ref["rows_read"]
    assert result.rows_deduplicated == ref["rows_deduplicated"]
    assert result.rows_outside_window == ref["rows_outside_window"]
    assert result.rows_bad_date == ref["rows_bad_date"]
    assert result.rows_unmatched.get("blank_id", 0) == ref["rows_blank"]
    # monthly table
    m_got = result.monthly.sort_values(["product", "student_id", "month"]).reset_index(drop=True)
    m_exp = ref["monthly"].sort_values(["product", "student_id", "month"]).reset_index(drop=True)
    assert len(m_got) == len(m_exp)
    assert m_got["sessions"].tolist() == m_exp["sessions"].astype(int).tolist()
    assert [pd.Timestamp(x).date() for x in m_got["month"]] == [
        pd.Timestamp(x).date() for x in m_exp["month"]
    ]
    assert (
        m_got["habitual"].tolist()
        == (m_exp["sessions"] >= plan.dosage.min_sessions_per_month).tolist()
    )


# --- the sample district ------------------------------------------------------------------------


def _sample_sources(plan: Plan) -> list[UsageSource]:
    from rce import io as rio

    return [s for s in rio.usage_sources(plan) if s.granularity in ("lesson", "event")]


@pytest.mark.skipif(not (EXAMPLE / "rce.toml").is_file(), reason="sample district not generated")
def test_duckdb_matches_pandas_reference_on_sample_district():
    from rce.config import load_plan

    plan = load_plan(EXAMPLE / "rce.toml")
    sources = _sample_sources(plan)
    assert {s.granularity for s in sources} == {"lesson", "event"}
    # Test windows for two thirds of the i-Ready students, staggered so month edges and
    # partial months occur; the others fall back to the study-wide window.
    ids = sorted(
        _read(sources[0])[sources[0].columns["student_id"]].dropna().map(ref_norm_id).unique()
    )
    w = pd.DataFrame({"student_id": ids[: 2 * len(ids) // 3]})
    k = np.arange(len(w))
    w["baseline_date"] = pd.to_datetime("2024-08-26") + pd.to_timedelta(k % 40, "D")
    w["outcome_date"] = pd.to_datetime("2025-04-20") + pd.to_timedelta(k % 50, "D")
    res = compute_dosage(sources, plan=plan, windows=w)
    ref = reference_dosage(sources, plan, windows=w)
    for product in res.per_student["product"].unique():
        sub_res = type(res)(
            **{
                **res.__dict__,
                "per_student": res.per_student.loc[res.per_student["product"] == product],
                "monthly": res.monthly.loc[res.monthly["product"] == product],
            }
        )
        sub_ref = dict(ref)
        sub_ref["per"] = ref["per"].loc[ref["per"]["product"] == product]
        sub_ref["monthly"] = ref["monthly"].loc[ref["monthly"]["product"] == product]
        has_pass = any(
            ("passed" in s.columns or "lessons_passed" in s.columns) and s.product == product
            for s in sources
        )
        assert_agree(sub_res, sub_ref, plan, has_minutes=True, has_pass=has_pass)
    assert res.rows_outside_window > 0
    assert res.rows_deduplicated > 0  # the sample plants exact duplicate lesson rows


# --- property-based logs ------------------------------------------------------------------------

_ID_SPELLINGS = (
    lambda n: f"{n:06d}",
    lambda n: str(n),
    lambda n: f"{n}.0",
    lambda n: f" {n} ",
)
_DATE_SPELLINGS = (
    lambda d: d.strftime("%m/%d/%Y"),
    lambda d: f"{d.month}/{d.day}/{d.year}",
    lambda d: d.strftime("%m-%d-%Y"),
    lambda d: d.isoformat(),
    lambda d: str((d - date(1899, 12, 30)).days),
)
BASE = datetime(2024, 8, 20, 0, 0)


@st.composite
def event_logs(draw):
    n = draw(st.integers(1, 40))
    rows = []
    for i in range(n):
        sid = draw(st.integers(1, 6)) * 101
        spelling = draw(st.integers(0, len(_ID_SPELLINGS) - 1))
        minutes_offset = (
            draw(st.integers(0, 60 * 24 * 150))
            if draw(st.booleans())
            else draw(st.integers(0, 60 * 24 * 2))
        )
        ts = BASE + timedelta(minutes=minutes_offset)
        zulu = draw(st.booleans())
        rows.append(
            {
                "sid": _ID_SPELLINGS[spelling](sid),
                "start": ts.strftime("%Y-%m-%d %H:%M:%S") + ("Z" if zulu else ""),
                "mins": str(draw(st.integers(0, 60))),
                "seq": str(i),
            }
        )
    blanks = draw(st.integers(0, 2))
    for j in range(blanks):
        rows.append({"sid": "", "start": "2024-09-03 10:00:00", "mins": "5", "seq": f"b{j}"})
    return rows


@st.composite
def lesson_logs(draw):
    n = draw(st.integers(1, 40))
    rows = []
    for i in range(n):
        sid = draw(st.integers(1, 6)) * 7
        # half the rows crowd into a few days, so busy student-days (3+ rows) occur
        offset = draw(st.integers(0, 150)) if draw(st.booleans()) else draw(st.integers(0, 3))
        d = date(2024, 8, 20) + timedelta(days=offset)
        rows.append(
            {
                "Student ID": _ID_SPELLINGS[draw(st.integers(0, 3))](sid),
                "Completion Date": _DATE_SPELLINGS[draw(st.integers(0, 4))](d),
                "Total Time on Lesson (min)": str(draw(st.integers(1, 40))),
                "Passed or Not Passed": draw(st.sampled_from(["Passed", "Not Passed"])),
                "Lesson ID": f"L{i}",
            }
        )
    if draw(st.booleans()):
        rows.append(dict(rows[0], **{"Completion Date": "not a date", "Lesson ID": "bad"}))
    return rows


def _write(tmp: Path, rows: list[dict], split: int, overlap: int, dups: int) -> tuple[str, ...]:
    """Write rows as one or two export windows that overlap, with exact duplicates planted."""
    df = pd.DataFrame(rows)
    if dups:
        df = pd.concat([df, df.head(dups)], ignore_index=True)
    if split <= 0 or split >= len(df):
        p = tmp / "usage.csv"
        df.to_csv(p, index=False)
        return (str(p),)
    a = df.iloc[: split + overlap]
    b = df.iloc[split:]
    pa, pb = tmp / "usage_fall.csv", tmp / "usage_spring.csv"
    a.to_csv(pa, index=False)
    b.to_csv(pb, index=False)
    return (str(pa), str(pb))


def _plan(threshold: int, window: str, unit: str) -> Plan:
    return Plan(
        study=StudyConfig(timezone="America/Los_Angeles"),
        dosage=DosageConfig(
            min_sessions_per_month=threshold,
            window=window,
            window_start=date(2024, 9, 15),
            window_end=date(2024, 12, 20),
            unit=unit,
        ),
    )


def _windows(draw, ids: list[int]) -> pd.DataFrame | None:
    chosen = draw(st.lists(st.sampled_from(ids), unique=True, max_size=len(ids)))
    if not chosen:
        return None
    recs = []
    for sid in chosen:
        b = date(2024, 8, 25) + timedelta(days=draw(st.integers(0, 60)))
        o = b + timedelta(days=draw(st.integers(0, 120)))
        recs.append(
            {
                "student_id": str(sid),
                "baseline_date": pd.Timestamp(b),
                "outcome_date": pd.Timestamp(o),
            }
        )
    return pd.DataFrame(recs)


SETTINGS = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@SETTINGS
@given(
    rows=event_logs(),
    threshold=st.integers(1, 4),
    window=st.sampled_from(["all", "dates", "baseline-to-outcome"]),
    unit=st.sampled_from(["auto", "row"]),
    split=st.integers(0, 20),
    overlap=st.integers(0, 5),
    dups=st.integers(0, 3),
    data=st.data(),
)
def test_duckdb_matches_reference_on_event_logs(
    tmp_path_factory, rows, threshold, window, unit, split, overlap, dups, data
):
    tmp = tmp_path_factory.mktemp("ev")
    paths = _write(tmp, rows, split, overlap, dups)
    src = UsageSource(
        paths=paths,
        product="Lexia",
        granularity="event",
        columns={"student_id": "sid", "timestamp": "start", "minutes": "mins"},
        timestamp_tz="UTC",
    )
    plan = _plan(threshold, window, unit)
    windows = (
        _windows(data.draw, [101 * k for k in range(1, 7)])
        if window == "baseline-to-outcome"
        else None
    )
    res = compute_dosage([src], plan=plan, windows=windows)
    ref = reference_dosage([src], plan, windows)
    assert_agree(res, ref, plan, has_minutes=True, has_pass=False)


@SETTINGS
@given(
    rows=lesson_logs(),
    threshold=st.integers(1, 4),
    window=st.sampled_from(["all", "dates", "baseline-to-outcome"]),
    split=st.integers(0, 20),
    overlap=st.integers(0, 5),
    dups=st.integers(0, 3),
    data=st.data(),
)
def test_duckdb_matches_reference_on_lesson_logs(
    tmp_path_factory, rows, threshold, window, split, overlap, dups, data
):
    tmp = tmp_path_factory.mktemp("ls")
    paths = _write(tmp, rows, split, overlap, dups)
    src = UsageSource(
        paths=paths,
        product="i-Ready",
        granularity="lesson",
        columns={
            "student_id": "Student ID",
            "date": "Completion Date",
            "minutes": "Total Time on Lesson (min)",
            "passed": "Passed or Not Passed",
        },
    )
    plan = _plan(threshold, window, "auto")
    windows = (
        _windows(data.draw, [7 * k for k in range(1, 7)])
        if window == "baseline-to-outcome"
        else None
    )
    res = compute_dosage([src], plan=plan, windows=windows)
    ref = reference_dosage([src], plan, windows)
    assert_agree(res, ref, plan, has_minutes=True, has_pass=True)


@settings(max_examples=100, deadline=None)
@given(
    st.one_of(
        st.text(alphabet="0123456789.eE+- \tabc", max_size=14),
        st.integers(0, 10**12).map(str),
        st.integers(0, 10**6).map(lambda n: f"{n:09d}"),
        st.integers(1, 10**9).map(lambda n: f"{n}.0"),
        st.tuples(st.integers(1, 9), st.integers(0, 99999), st.integers(0, 12)).map(
            lambda t: f"{t[0]}.{t[1]}E+{t[2]:02d}"
        ),
    )
)
def test_id_normalisation_matches_reference(value):
    """The ID normalisation the engine applies (rce.io) agrees with the reference's."""
    from rce.io.normalize import normalize_student_id

    io = normalize_student_id(pd.Series([value], dtype="str")).iloc[0]
    io = None if pd.isna(io) else io
    assert io == ref_norm_id(value)


def test_reference_parsers_agree_with_engine_on_fixed_cases(tmp_path):
    """Pin the date parsers both sides use, on the spellings data-formats.md §2 lists."""
    rows = [
        {"id": "1", "d": "08/14/2024"},
        {"id": "2", "d": "8/14/2024"},
        {"id": "3", "d": "08-14-2024"},
        {"id": "4", "d": "2024-08-14"},
        {"id": "5", "d": "14-Aug-24"},
        {"id": "6", "d": "45518"},
    ]
    p = tmp_path / "u.csv"
    pd.DataFrame(rows).to_csv(p, index=False)
    src = UsageSource(
        paths=(str(p),),
        product="x",
        granularity="lesson",
        columns={"student_id": "id", "date": "d"},
    )
    res = compute_dosage([src], plan=Plan(dosage=DosageConfig(window="all")))
    firsts = {r.student_id: pd.Timestamp(r.first_use).date() for r in res.per_student.itertuples()}
    assert set(firsts.values()) == {date(2024, 8, 14)}
    assert all(
        ref_parse_date(r["d"], UsageSource.__dataclass_fields__["date_formats"].default)
        == date(2024, 8, 14)
        for r in rows
    )
    assert datetime(2024, 8, 14, tzinfo=UTC).date() == date(2024, 8, 14)


@pytest.mark.skipif(not (EXAMPLE / "rce.toml").is_file(), reason="sample district not generated")
def test_text_exports_parsed_once_or_scanned_twice_give_the_same_dosage(monkeypatch):
    """Small CSV exports keep their distinct rows in a temp table (one parse); large ones are
    scanned for their IDs and read again. Both routes give the same result."""
    from rce import dosage as dz
    from rce import io as rio
    from rce.config import load_plan

    plan = load_plan(EXAMPLE / "rce.toml")
    sources = rio.usage_sources(plan)
    assert any(s.file_format == "csv" for s in sources)
    once = compute_dosage(sources, plan=plan)
    monkeypatch.setattr(dz, "PARSE_ONCE_BYTES_PER_GB", 0)
    twice = compute_dosage(sources, plan=plan)
    for attr in ("per_student", "monthly", "trend"):
        pd.testing.assert_frame_equal(getattr(once, attr), getattr(twice, attr), obj=attr)
    assert once.to_dict() == twice.to_dict()


@pytest.mark.skipif(not (EXAMPLE / "rce.toml").is_file(), reason="sample district not generated")
def test_distinct_rows_materialised_for_state_sized_logs_give_the_same_dosage(monkeypatch):
    """Logs with far more rows than memory get their distinct rows written to a temp table
    before the student-month aggregation; the result is the same as in one statement."""
    from rce import dosage as dz
    from rce import io as rio
    from rce.config import load_plan

    plan = load_plan(EXAMPLE / "rce.toml")
    sources = rio.usage_sources(plan)
    one = compute_dosage(sources, plan=plan)
    monkeypatch.setattr(dz, "MANY_ROWS_PER_GB", 0)
    seen: list[float] = []
    two = compute_dosage(sources, plan=plan, progress=seen.append)
    for attr in ("per_student", "monthly", "trend"):
        pd.testing.assert_frame_equal(getattr(one, attr), getattr(two, attr), obj=attr)
    assert one.to_dict() == two.to_dict()
    assert seen[-1] == 1.0 and seen == sorted(seen)


@pytest.mark.skipif(not (EXAMPLE / "rce.toml").is_file(), reason="sample district not generated")
@pytest.mark.parametrize("window", ["all", "dates"])
def test_ids_matched_after_the_first_aggregation_give_the_same_dosage(monkeypatch, window):
    """With a study-wide window, text exports are read once and their IDs matched after the
    first aggregation; the result is the one of scanning the IDs first."""
    from dataclasses import replace

    from rce import dosage as dz
    from rce import io as rio
    from rce.config import load_plan

    plan = load_plan(EXAMPLE / "rce.toml")
    plan = replace(
        plan,
        dosage=replace(
            plan.dosage, window=window, window_start=date(2024, 9, 15),
            window_end=date(2025, 3, 20),
        ),
    )  # fmt: skip
    sources = rio.usage_sources(plan)
    assert all(s.file_format == "csv" for s in sources) and len(sources) > 1
    assert dz._ids_after(sources, plan)
    asked: list[int] = []

    def id_map(ids: pd.Series) -> pd.DataFrame:
        # every seventh student is not on the roster; two spellings of each ID are one student
        asked.append(len(ids))
        kept = ids[[sum(map(ord, t)) % 7 != 0 for t in ids]]
        return pd.DataFrame({"raw_id": kept, "student_id": "s" + kept.str.lstrip("0")})

    seen: list[float] = []
    after = compute_dosage(sources, plan=plan, id_map=id_map, progress=seen.append)
    with monkeypatch.context() as m:  # state-sized logs: distinct rows materialised first
        m.setattr(dz, "MANY_ROWS_PER_GB", 0)
        after_materialised = compute_dosage(sources, plan=plan, id_map=id_map)
    monkeypatch.setattr(dz, "_ids_after", lambda *_: False)
    first = compute_dosage(sources, plan=plan, id_map=id_map)
    for other in (first, after_materialised):
        for attr in ("per_student", "monthly", "trend"):
            pd.testing.assert_frame_equal(getattr(after, attr), getattr(other, attr), obj=attr)
        assert after.to_dict() == other.to_dict()
    assert asked[0] == asked[1] == asked[2] > 0  # the same distinct IDs reach the ID map
    assert after.rows_unmatched.get("not_in_id_map", 0) > 0
    assert seen[-1] == 1.0 and seen == sorted(seen)
