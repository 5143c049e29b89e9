"""The dosage step on Apache Spark (or DuckDB) from canonical student-day rows.

One definition, two engines: the aggregation after the reader stage (session unit, evaluation
window, habitual month, per-student sums) is the DuckDB SQL of
:func:`rce.dosage.aggregation_sql`; for Spark the same text is transpiled to Spark SQL with
sqlglot (``sqlglot.transpile(sql, read="duckdb", write="spark")``). Nothing is maintained twice.
Only the per-student, student-month and product-month aggregates come back (as Arrow); the
finishing (fidelity, usage level, clusters, notes) is the same pandas code for both engines.

Input is a relation of **canonical student-day rows** (see :data:`ROW_COLUMNS`), the shape a
warehouse already holds: a Spark table, a Parquet path, or a Spark / pandas DataFrame.
:func:`export_rows` writes exactly those rows from usage exports with rce's DuckDB reader stage
(so files parsed by rce can be moved to a cluster). The Spark engine does not parse the raw
vendor exports itself: their formats, time zones and ID spellings are parsed only by the DuckDB
reader stage.

pyspark and sqlglot are optional (``pip install "rce[spark]"``); they are imported only when the
Spark engine is used.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from typing import Any

import pandas as pd

from rce import dosage as dz
from rce import dosage_sql as q
from rce.canonical import UsageSource
from rce.config import Plan
from rce.errors import DataError, InputFileError, PlanError

#: Canonical student-day row columns -> (meaning, required). One row per student x product x
#: district-local day (x export), before the evaluation window is applied.
ROW_COLUMNS: dict[str, tuple[str, bool]] = {
    "student_id": ("rce student ID (text); NULL for rows whose ID is blank or unmatched", True),
    "product": ("product name", True),
    "day": ("district-local date (DATE); NULL when the export's date was unreadable", True),
    "sessions": ("sessions that day (a count; any positive value for student-day units)", True),
    "minutes": ("minutes that day (DOUBLE; NULL when the export has none)", False),
    "lessons_completed": ("lessons completed (DOUBLE)", False),
    "lessons_passed": ("lessons passed (DOUBLE)", False),
    "granularity": ('"event", "lesson", "session", "daily" (default), "weekly", "monthly"', False),
    "unit": ('session unit: "row", "student-day" or "provided" (default)', False),
    "reason": ("why student_id is NULL (blank_id, not_in_id_map, ...); NULL when matched", False),
    "source": ("export number 0..62 (default 0)", False),
    "rows_read": ("raw export rows behind this row (default 1)", False),
    "rows_kept": ("rows left after removing duplicates (default rows_read)", False),
}

#: The canonical rows as the relation the shared aggregation reads (DuckDB SQL, transpiled for
#: Spark like the aggregation). ``{opt}`` placeholders are filled per present column.
_ROWS_SQL = """SELECT CAST({source} AS INTEGER) AS src, CAST(product AS VARCHAR) AS product,
  CAST({granularity} AS VARCHAR) AS gran, CAST({unit} AS VARCHAR) AS unit,
  CAST(student_id AS VARCHAR) AS student_id, CAST({reason} AS VARCHAR) AS reason,
  CAST(day AS DATE) AS day, CAST({rows_read} AS BIGINT) AS n_read,
  CAST({rows_kept} AS BIGINT) AS n_kept, CAST(sessions AS DOUBLE) AS sess,
  CAST({minutes} AS DOUBLE) AS minutes,
  CAST({lessons_completed} AS DOUBLE) AS lessons_completed,
  CAST({lessons_passed} AS DOUBLE) AS lessons_passed
FROM rce_rows_in"""

_DEFAULTS = {
    "source": "0",
    "granularity": "'daily'",
    "unit": "'provided'",
    "reason": "NULL",
    "rows_read": "1",
    "minutes": "NULL",
    "lessons_completed": "NULL",
    "lessons_passed": "NULL",
}

#: What each product's rows can show, read from the rows themselves (small result).
_FACTS_SQL = f"""SELECT product, gran, unit,
  max(CASE WHEN minutes IS NOT NULL THEN 1 ELSE 0 END) AS has_minutes,
  max(CASE WHEN lessons_passed IS NOT NULL THEN 1 ELSE 0 END) AS has_pass,
  max(CASE WHEN lessons_completed IS NOT NULL THEN 1 ELSE 0 END) AS has_lessons
FROM {dz.ROWS_RELATION} WHERE reason IS NULL GROUP BY product, gran, unit"""


def rows_sql(columns: Sequence[str]) -> str:
    """The canonical-row relation for an input with these columns (DuckDB SQL)."""
    have = {c.lower() for c in columns}
    missing = [c for c, (_, req) in ROW_COLUMNS.items() if req and c not in have]
    if missing:
        raise DataError(
            f"the student-day rows lack column(s) {', '.join(missing)}",
            where="engine.usage_table",
            hint="Give student_id, product, day and sessions (see docs/spark.md).",
        )
    fill = {c: (c if c in have else d) for c, d in _DEFAULTS.items()}
    fill["rows_kept"] = "rows_kept" if "rows_kept" in have else fill["rows_read"]
    return _ROWS_SQL.format(**fill)


@functools.lru_cache(maxsize=64)
def to_spark_sql(duckdb_sql: str) -> str:
    """One DuckDB statement as Spark SQL (sqlglot transpiler)."""
    import sqlglot

    out = sqlglot.transpile(duckdb_sql, read="duckdb", write="spark")
    if len(out) != 1:
        raise PlanError("internal: one SQL statement expected", where="engine")
    return out[0]


# --- engines -----------------------------------------------------------------------------------


class _DuckBackend:
    """Runs the shared SQL on an rce DuckDB connection."""

    name = "duckdb"

    def __init__(self, con: Any):
        self.con = con

    def register(self, name: str, df: pd.DataFrame) -> None:
        self.con.register(name, df)

    def load_rows(self, rows: Any) -> list[str]:
        if isinstance(rows, pd.DataFrame):
            self.con.register("rce_rows_in", rows)
        else:
            path = os.fspath(rows)
            if not os.path.exists(path):
                raise InputFileError(
                    "the student-day rows file does not exist",
                    where=path,
                    hint="Write it with rce.dosage_spark.export_rows, or fix the path.",
                )
            self.con.execute(
                f"CREATE TEMP VIEW rce_rows_in AS SELECT * FROM read_parquet({q.lit(path)})"
            )
        return [c for c, *_ in self.con.execute("DESCRIBE rce_rows_in").fetchall()]

    def view(self, name: str, sql: str) -> None:
        self.con.execute(f"CREATE TEMP VIEW {name} AS {sql}")

    def materialise(self, name: str, sql: str) -> None:
        dz._run(self.con, f"CREATE TEMP TABLE {name} AS {sql}")

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in dz._run(self.con, sql).fetchall()]

    def arrow(self, sql: str) -> Any:
        return dz._arrow(self.con, sql)

    def close(self) -> None:
        pass


class _SparkBackend:
    """Runs the same SQL, transpiled, on a SparkSession; collects aggregates only."""

    name = "spark"

    def __init__(self, spark: Any):
        self.spark = spark
        self.cached: list[Any] = []

    def register(self, name: str, df: pd.DataFrame) -> None:
        # Dates travel as dates (not timestamps) so the session time zone cannot shift them.
        cols = {
            c: df[c].dt.date.astype("object")
            for c in df.columns
            if pd.api.types.is_datetime64_any_dtype(df[c])
        }
        frame = df.assign(**cols) if cols else df
        self.spark.createDataFrame(frame).createOrReplaceTempView(name)

    def load_rows(self, rows: Any) -> list[str]:
        df = self._input(rows)
        df.createOrReplaceTempView("rce_rows_in")
        return list(df.columns)

    def _input(self, rows: Any) -> Any:
        if isinstance(rows, pd.DataFrame):
            return self.spark.createDataFrame(rows)
        if hasattr(rows, "createOrReplaceTempView"):
            return rows
        text = os.fspath(rows)
        try:
            if "/" in text or text.endswith(".parquet") or os.path.exists(text):
                return self.spark.read.parquet(text)
            return self.spark.table(text)
        except Exception as exc:  # pyspark's AnalysisException and friends
            raise InputFileError(
                f"Spark could not read the student-day rows ({type(exc).__name__})",
                where=text,
                hint="Give an existing Spark table name or a Parquet path (engine.usage_table).",
            ) from None

    def view(self, name: str, sql: str) -> None:
        self.spark.sql(to_spark_sql(sql)).createOrReplaceTempView(name)

    def materialise(self, name: str, sql: str) -> None:
        df = self.spark.sql(to_spark_sql(sql)).cache()
        self.cached.append(df)
        df.createOrReplaceTempView(name)

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in self.spark.sql(to_spark_sql(sql)).collect()]

    def arrow(self, sql: str) -> Any:
        return self.spark.sql(to_spark_sql(sql)).toArrow()

    def close(self) -> None:
        for df in self.cached:
            df.unpersist()
        for name in ("mo", "mo_all", "mo_raw", dz.ROWS_RELATION, "rce_rows_in", "rce_windows_in"):
            self.spark.catalog.dropTempView(name)


def spark_session(plan: Plan) -> Any:
    """The Spark session for ``plan.engine``: the active one, or a new one on ``spark_master``.

    A new session gets ``plan.engine.spark_conf`` and the UTC session time zone.
    """
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise PlanError(
            'engine.name = "spark" needs pyspark',
            where="engine.name",
            hint='Install it with: pip install "rce[spark]" (and Java 17 or newer).',
        ) from None
    e = plan.engine
    active = SparkSession.getActiveSession()
    if active is not None and not e.spark_master:
        return active
    b = SparkSession.builder.master(e.spark_master or "local[*]").appName("rce-dosage")
    b = b.config("spark.sql.session.timeZone", "UTC")
    b = b.config("spark.ui.showConsoleProgress", "false")  # never draw on the user's terminal
    if (e.spark_master or "local").startswith("local"):
        # one machine: 200 shuffle partitions of a few rows each cost more than the work
        b = b.config("spark.sql.shuffle.partitions", str(2 * (os.cpu_count() or 2)))
    for k, v in e.spark_conf.items():
        b = b.config(k, v)
    return b.getOrCreate()


def dosage_from_rows(
    rows: Any,
    *,
    plan: Plan,
    windows: pd.DataFrame | None = None,
    seats: dict[str, int] | None = None,
    products: dict[str, dict[str, Any]] | None = None,
    engine: str | None = None,
    spark: Any = None,
) -> dz.DosageResult:
    """Compute dosage from canonical student-day rows on DuckDB or Spark (same definition).

    Parameters
    ----------
    rows
        The rows (:data:`ROW_COLUMNS`): a Parquet path (both engines), a pandas DataFrame (both),
        a Spark table name or Spark DataFrame (Spark). ``None`` reads ``plan.engine.usage_table``.
    plan
        The study plan (``plan.dosage`` is the definition; ``plan.engine`` picks the engine).
    windows
        Test-date windows, as for :func:`rce.dosage.compute_dosage`.
    seats
        Licenses per product, for :func:`rce.dosage.utilization`.
    products
        Facts per product as returned by :func:`export_rows`; without them they are read from
        the rows (a measure counts as present when some matched row has a value).
    engine
        ``"duckdb"`` or ``"spark"``; default ``plan.engine.name``.
    spark
        A SparkSession; default :func:`spark_session` of the plan.

    Returns
    -------
    rce.dosage.DosageResult
    """
    engine = engine or plan.engine.name
    if rows is None:
        if not plan.engine.usage_table:
            raise PlanError(
                "no student-day rows were given",
                where="engine.usage_table",
                hint="Set engine.usage_table to a Spark table or Parquet path.",
            )
        rows = plan.engine.usage_table
    if engine == "spark":
        return _run_rows(
            _SparkBackend(spark or spark_session(plan)), rows, plan, windows, seats, products
        )
    if engine == "duckdb":
        with dz.connect(plan) as con:
            return _run_rows(_DuckBackend(con), rows, plan, windows, seats, products)
    raise PlanError(
        f"unknown engine {engine!r}", where="engine.name", hint='Use "duckdb" or "spark".'
    )


def _run_rows(
    be: Any,
    rows: Any,
    plan: Plan,
    windows: pd.DataFrame | None,
    seats: dict[str, int] | None,
    products: dict[str, dict[str, Any]] | None,
) -> dz.DosageResult:
    notes: list[str] = []
    try:
        cols = be.load_rows(rows)
        be.view(dz.ROWS_RELATION, rows_sql(cols))
        window_rule = dz._window_sql(be, plan, windows, notes)
        # Rows from several exports or IDs may share a student-day: the aggregation counts it
        # once (unit and granularity not known in advance: the general form of the SQL).
        sql = dz.aggregation_sql(int(plan.dosage.min_sessions_per_month), window_rule)
        be.materialise("mo_raw", sql["mo_raw"])
        be.materialise("mo_all", sql["mo_all"])
        acct = be.rows(sql["accounting"])[0]
        unmatched_rows = be.rows(sql["unmatched"])
        facts = products if products is not None else _facts(be.rows(_FACTS_SQL))
        be.materialise("mo", sql["mo"])
        per = be.arrow(sql["per"])
        monthly = be.arrow(sql["monthly"])
        trend = be.arrow(sql["trend"])
    finally:
        be.close()
    per, monthly, trend = (dz._to_pandas(t) for t in (per, monthly, trend))
    return dz.finish_dosage(
        per,
        monthly,
        trend,
        acct,
        unmatched_rows,
        facts,
        plan=plan,
        windows=windows,
        seats=seats,
        window_rule=window_rule,
        notes=notes,
    )


def _facts(rows: list[tuple[Any, ...]]) -> dict[str, dict[str, Any]]:
    by: dict[str, list[tuple[Any, ...]]] = {}
    for r in rows:
        by.setdefault(str(r[0]), []).append(r)
    facts = {}
    for product, rs in sorted(by.items()):
        units = sorted({str(r[2]) for r in rs})
        if len(units) > 1:
            raise PlanError(
                f"the rows of product {product!r} have different session units "
                f"({' and '.join(units)})",
                where="engine.usage_table",
                hint="Give each product one unit, or split it into two product names.",
            )
        grans = sorted({str(r[1]) for r in rs})
        facts[product] = {
            "granularity": grans,
            "unit": units[0],
            "minutes": any(r[3] for r in rs),
            "pass": any(r[4] for r in rs),
            "lessons": any(r[5] for r in rs) or "lesson" in grans,
            "day_level": all(g in dz._DAY_LEVEL for g in grans),
            "ignored_measures": [],
            "record_columns": [],
        }
    return facts


def export_rows(
    sources: Sequence[UsageSource],
    path: str | os.PathLike[str],
    *,
    plan: Plan,
    id_map: pd.DataFrame | None = None,
) -> dict[str, dict[str, Any]]:
    """Write canonical student-day rows of usage exports to Parquet with rce's DuckDB reader.

    The rows are those the aggregation reads (IDs normalised and mapped, dates district-local,
    duplicates removed), so :func:`dosage_from_rows` on them gives the result of
    :func:`rce.dosage.compute_dosage` on the exports, on either engine.

    Returns
    -------
    dict
        The product facts to pass as ``products=`` to :func:`dosage_from_rows`.
    """
    target = os.fspath(path)
    with dz.connect(plan) as con:
        prepared, files = dz.reader_stage(con, sources, plan, id_map)
        # The reader stage gives one row per distinct export row; the canonical rows are one
        # per student x product x day x export.
        dz._run(
            con,
            f"""COPY (SELECT st.student_id, r.product, r.day, sum(r.sess) AS sessions,
                  sum(r.minutes) AS minutes, sum(r.lessons_completed) AS lessons_completed,
                  sum(r.lessons_passed) AS lessons_passed, r.gran AS granularity, r.unit,
                  r.reason, r.src AS source, sum(r.n_read) AS rows_read,
                  sum(r.n_kept) AS rows_kept
                FROM {dz.MAPPED_ROWS} r LEFT JOIN {dz.STUDENTS} st ON r.student_id = st.sk
                GROUP BY st.student_id, r.product, r.day, r.gran, r.unit, r.reason, r.src)
                TO {q.lit(target)} (FORMAT parquet)""",
            files,
        )
        masks = con.execute(
            "SELECT product, bit_or(CAST(1 AS BIGINT) << source) "
            f"FROM read_parquet({q.lit(target)}) "
            "WHERE reason IS NULL GROUP BY product"
        ).fetchall()
    product_sources = {
        str(prod): [i for i in range(len(prepared)) if (int(mask) >> i) & 1] for prod, mask in masks
    }
    return dz._product_facts(prepared, product_sources)
