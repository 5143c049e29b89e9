"""The dosage step on PySpark (local mode) gives exactly the DuckDB result from one definition.

Spark tests skip, saying why, where Java or pyspark is missing; the transpiler tests need only
sqlglot. Equivalence is checked on the example district (examples/sierra-vista, rows produced by
rce's DuckDB reader stage) and on generated student-day rows (hypothesis).
"""

from __future__ import annotations

import datetime as dt
import shutil
import warnings
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rce import dosage_spark as ds
from rce.config import Plan, plan_from_dict
from rce.dosage import ROWS_RELATION, aggregation_sql, compute_dosage, distinct_usage_ids
from rce.errors import DataError, PlanError

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "sierra-vista"
WINDOW = {
    "join": "LEFT JOIN (SELECT student_id, CAST(b AS DATE) AS b, CAST(o AS DATE) AS o "
    "FROM rce_windows_in) w ON d.student_id = w.student_id",
    "w_lo": "coalesce(w.b, DATE '2024-01-01')",
    "w_hi": "coalesce(w.o, DATE '2024-06-30')",
}


def _why_no_spark() -> str | None:
    try:
        import pyspark  # noqa: F401
        import sqlglot  # noqa: F401
    except ImportError:
        return 'pyspark/sqlglot not installed (pip install "rce[spark]")'
    if shutil.which("java") is None:
        return "Java is not installed (PySpark needs a JVM, Java 17+)"
    return None


NO_SPARK = _why_no_spark()
needs_spark = pytest.mark.skipif(NO_SPARK is not None, reason=NO_SPARK or "")


@pytest.fixture(scope="module")
def spark():
    with warnings.catch_warnings():
        # pyspark warns that it does not yet fully support pandas 3 (FutureWarning)
        warnings.simplefilter("ignore")
        from pyspark.sql import SparkSession

        s = (
            SparkSession.builder.master("local[2]")
            .appName("rce-test")
            .config("spark.sql.session.timeZone", "UTC")
            .config("spark.sql.shuffle.partitions", "2")
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .getOrCreate()
        )
    s.sparkContext.setLogLevel("ERROR")
    yield s
    s.stop()


def _same(a, b, *, facts_from_rows: bool = False) -> None:
    for attr in ("per_student", "monthly", "trend"):
        pd.testing.assert_frame_equal(getattr(a, attr), getattr(b, attr), obj=attr)
    assert a.rows_read == b.rows_read
    assert a.rows_deduplicated == b.rows_deduplicated
    assert a.rows_outside_window == b.rows_outside_window
    assert a.rows_unmatched == b.rows_unmatched
    assert a.rows_bad_date == b.rows_bad_date
    if facts_from_rows:
        # rows already de-duplicated do not tell which columns made a row a duplicate
        assert b.definition["duplicates"].startswith("rows identical in every column")
        assert {**a.definition, "duplicates": ""} == {**b.definition, "duplicates": ""}
    else:
        assert a.definition == b.definition
    assert a.notes == b.notes


def _on_spark(rows, spark, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # pyspark's pandas-3 notice
        return ds.dosage_from_rows(rows, engine="spark", spark=spark, **kw)


# --- one definition: the transpiled text ---------------------------------------------------------


def test_every_statement_transpiles_to_spark_sql_keeping_the_definition():
    pytest.importorskip("sqlglot")
    sql = aggregation_sql(3, WINDOW)
    spark_sql = {k: ds.to_spark_sql(v) for k, v in sql.items()}
    assert set(spark_sql) == {
        "mo_raw", "mo_all", "accounting", "unmatched", "product_sources", "mo", "per", "monthly", "trend",
    }  # fmt: skip
    # the definition's pieces survive: threshold, window overlap, habitual test, week span
    assert "sessions >= 3 AS habitual" in spark_sql["mo"]
    assert "hi >= w_lo AND lo <= w_hi" in spark_sql["mo_raw"]
    assert "INTERVAL '6' DAY" in spark_sql["mo_raw"]
    assert "DATEDIFF(DAY" in spark_sql["per"]
    # any_value in DuckDB skips NULLs; Spark needs it said
    assert "ANY_VALUE(unit) IGNORE NULLS" in spark_sql["mo_all"]
    # a student-day is a bit of the month's mask; several rows of one day set it once, and
    # the masks of the first aggregation merge in the second
    assert "BIT_OR(day_bit) AS use_mask" in spark_sql["mo_raw"]
    assert "BIT_COUNT(BIT_OR(use_mask))" in spark_sql["mo_all"]
    assert "SHIFTLEFT(CAST(1 AS BIGINT), DAYOFMONTH(day))" in spark_sql["mo_raw"]
    assert ROWS_RELATION in spark_sql["mo_raw"]


def test_rows_need_the_four_required_columns():
    with pytest.raises(DataError, match="day, sessions"):
        ds.rows_sql(["student_id", "product"])
    text = ds.rows_sql(["student_id", "product", "day", "sessions", "minutes"])
    assert "CAST(minutes AS DOUBLE)" in text and "CAST('provided' AS VARCHAR) AS unit" in text


def test_unknown_engine_and_missing_table_are_plan_errors():
    with pytest.raises(PlanError, match="unknown engine"):
        ds.dosage_from_rows(pd.DataFrame(), plan=Plan(), engine="postgres")
    with pytest.raises(PlanError, match="no student-day rows"):
        ds.dosage_from_rows(None, plan=Plan())


def test_plan_selects_spark_with_master_conf_and_table():
    p = plan_from_dict(
        {
            "engine": {
                "name": "spark",
                "spark_master": "local[2]",
                "spark_conf": {"spark.executor.memory": "2g"},
                "usage_table": "edw.usage_days",
            }
        }
    )
    assert p.engine.name == "spark" and p.engine.usage_table == "edw.usage_days"
    assert p.engine.spark_conf == {"spark.executor.memory": "2g"}


# --- equivalence on Spark ------------------------------------------------------------------------


@needs_spark
@pytest.mark.slow  # about 40-70 s on 2 shared cores: a cold JVM compiles every query plan
@pytest.mark.skipif(not (EXAMPLE / "rce.toml").is_file(), reason="sample district not generated")
def test_example_district_is_identical_on_spark_and_duckdb(spark, tmp_path):
    from rce import io as rio
    from rce.config import load_plan
    from rce.io.normalize import resolve_ids

    plan = load_plan(EXAMPLE / "rce.toml")
    roster = rio.load_roster(plan.inputs.roster, plan)
    a = rio.load_assessments(plan.inputs.scores, plan).frame
    fall = a.loc[a["window"] == "fall"].groupby("student_id")["test_date"].max()
    spring = a.loc[a["window"] == "spring"].groupby("student_id")["test_date"].max()
    w = pd.DataFrame({"baseline_date": fall, "outcome_date": spring}).dropna().reset_index()
    sources = list(rio.usage_sources(plan))
    id_map = resolve_ids(distinct_usage_ids(sources, plan), roster.frame)

    reference = compute_dosage(sources, plan=plan, windows=w, id_map=id_map)
    path = tmp_path / "rows.parquet"
    facts = ds.export_rows(sources, path, plan=plan, id_map=id_map)
    got = _on_spark(str(path), spark, plan=plan, windows=w)
    _same(reference, got, facts_from_rows=True)
    assert len(got.per_student) > 100 and got.rows_unmatched  # a real, non-trivial comparison
    # the facts read back from the rows agree with those of the exports here
    _same(
        reference,
        ds.dosage_from_rows(path, plan=plan, windows=w, engine="duckdb"),
        facts_from_rows=True,
    )
    _same(reference, ds.dosage_from_rows(path, plan=plan, windows=w, products=facts))


_day = st.dates(min_value=dt.date(2023, 12, 20), max_value=dt.date(2024, 7, 10))
_row = st.fixed_dictionaries(
    {
        "student_id": st.sampled_from(["1", "2", "3", "4", "5", "6", None]),
        "product": st.sampled_from(["Lexia", "Zearn"]),
        "day": st.one_of(_day, st.none()),
        "sessions": st.integers(0, 4),
        "minutes": st.one_of(st.floats(0, 90, allow_nan=False), st.none()),
        "source": st.integers(0, 2),
    }
)


@needs_spark
@settings(
    max_examples=4,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    rows=st.lists(_row, min_size=1, max_size=40),
    window=st.sampled_from(["all", "dates", "baseline-to-outcome"]),
    thr=st.integers(1, 4),
)
def test_generated_rows_are_identical_on_spark_and_duckdb(spark, rows, window, thr):
    df = pd.DataFrame(rows).astype({"student_id": "str", "product": "str"})
    df = df.assign(
        day=pd.to_datetime(df["day"]).dt.date.astype("object"),
        reason=pd.Series(["blank_id" if s is None else None for s in rows], dtype="str"),
        granularity=pd.Series(["daily"] * len(rows), dtype="str"),
        unit=pd.Series(
            ["student-day" if p == "Lexia" else "provided" for p in df["product"]], dtype="str"
        ),
    )
    plan = plan_from_dict(
        {
            "dosage": {
                "window": window,
                "window_start": "2024-01-15",
                "window_end": "2024-05-31",
                "min_sessions_per_month": thr,
            }
        }
    )
    windows = pd.DataFrame(
        {
            "student_id": ["1", "2", "3"],
            "baseline_date": pd.to_datetime(["2024-01-10", "2024-02-01", "2024-03-15"]),
            "outcome_date": pd.to_datetime(["2024-05-20", "2024-06-01", "2024-04-30"]),
        }
    )
    duck = ds.dosage_from_rows(df, plan=plan, windows=windows, engine="duckdb")
    _same(duck, _on_spark(df, spark, plan=plan, windows=windows))
