"""Time the shared dosage aggregation on DuckDB and on Spark (local mode) on the 30M-row log.

Steps, each timed: (1) ``rce.dosage_spark.export_rows`` -- rce's DuckDB reader stage turns the
session log into canonical student-day rows (Parquet); (2) ``dosage_from_rows`` on DuckDB;
(3) ``dosage_from_rows`` on Spark (``--master``, default ``local[2]``; JVM start included in
"spark session", not in the step); then the two results are compared (identical or exit 1).

Usage::

    python benchmarks/gen_usage.py --rows 30000000 --format parquet \
        --out benchmarks/data/usage_30m.parquet
    python benchmarks/bench_engines.py benchmarks/data/usage_30m.parquet --master local[2]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import warnings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("path")
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--memory-limit", default="1GB")
    parser.add_argument("--driver-memory", default="2g")
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args()
    warnings.simplefilter("ignore", FutureWarning)  # pyspark's pandas-3 notice

    import pandas as pd
    import pyarrow.parquet as pq

    from rce import dosage_spark as ds
    from rce.canonical import UsageSource
    from rce.config import DosageConfig, EngineConfig, Plan

    src = UsageSource(
        paths=(args.path,),
        product="Reading Plus",
        granularity="event",
        columns={"student_id": "student_id", "timestamp": "session_start", "minutes": "minutes"},
        file_format="parquet" if args.path.endswith(".parquet") else "csv",
        timestamp_tz="UTC",
    )
    plan = Plan(
        dosage=DosageConfig(unit="row", window="all"),
        engine=EngineConfig(
            name="spark",
            memory_limit=args.memory_limit,
            spark_master=args.master,
            spark_conf={"spark.driver.memory": args.driver_memory, "spark.ui.enabled": "false"},
        ),
    )
    work = args.workdir or tempfile.mkdtemp(prefix="rce-bench-engines-")
    rows = os.path.join(work, "student_days.parquet")

    t = time.perf_counter()
    facts = ds.export_rows([src], rows, plan=plan)
    print(
        f"export_rows (DuckDB reader stage) {time.perf_counter() - t:7.1f} s  "
        f"{pq.read_metadata(rows).num_rows:,} student-day rows",
        flush=True,
    )

    t = time.perf_counter()
    duck = ds.dosage_from_rows(rows, plan=plan, products=facts, engine="duckdb")
    print(
        f"aggregation on DuckDB             {time.perf_counter() - t:7.1f} s  "
        f"{len(duck.per_student):,} students",
        flush=True,
    )

    t = time.perf_counter()
    spark = ds.spark_session(plan)
    spark.sparkContext.setLogLevel("ERROR")
    print(f"spark session ({args.master})       {time.perf_counter() - t:7.1f} s", flush=True)
    t = time.perf_counter()
    sp = ds.dosage_from_rows(rows, plan=plan, products=facts, engine="spark", spark=spark)
    print(
        f"aggregation on Spark              {time.perf_counter() - t:7.1f} s  "
        f"{len(sp.per_student):,} students",
        flush=True,
    )
    spark.stop()

    same = True
    for attr in ("per_student", "monthly", "trend"):
        try:
            pd.testing.assert_frame_equal(getattr(duck, attr), getattr(sp, attr))
        except AssertionError as exc:
            same = False
            print(f"{attr} differs: {str(exc)[:300]}")
    print("results identical" if same else "RESULTS DIFFER")
    sys.exit(0 if same else 1)


if __name__ == "__main__":
    main()
