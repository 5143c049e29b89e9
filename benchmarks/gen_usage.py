"""Generate a synthetic session log of the sample-district shape at any size.

Shape (as in house-style.md §B5): one row per session, columns ``student_id`` (7-digit,
zero-padded text), ``session_start`` (ISO timestamp in UTC), ``minutes`` (integer) and
``product``. About 150 sessions per student over a school year (Aug 12 - Jun 6), so
3M rows ~ 20,000 students (a district), 30M ~ 200,000 (a county), 300M ~ 2M (a state).
Sessions cluster in the afternoon local time, so some cross midnight UTC.

The data are generated inside DuckDB from a hash of the row number, so the output is identical
on every run and machine, and the generator itself never holds the log in memory.

Usage::

    python benchmarks/gen_usage.py --rows 30000000 --format csv --out benchmarks/data/usage_30m.csv
    python benchmarks/gen_usage.py --rows 300000000 --format parquet \
        --out benchmarks/data/usage_300m.parquet
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import duckdb

SESSIONS_PER_STUDENT = 150


def generate(rows: int, out: Path, fmt: str, *, memory_limit: str = "2GB") -> None:
    """Write ``rows`` session rows to ``out`` (CSV or Parquet)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    students = max(1, rows // SESSIONS_PER_STUDENT)
    con = duckdb.connect()
    con.execute(f"SET memory_limit = '{memory_limit}'")
    con.execute("SET preserve_insertion_order = false")
    # hash(i, k) gives independent uniform 64-bit draws per row; the modulus picks a range.
    query = f"""
        SELECT
          lpad(CAST(1 + hash(i, 1) % {students} AS VARCHAR), 7, '0') AS student_id,
          (TIMESTAMP '2024-08-12 15:00:00'
             + to_days(CAST(hash(i, 2) % 298 AS INTEGER))
             + to_minutes(CAST(hash(i, 3) % 600 AS INTEGER))) AS session_start,
          CAST(3 + hash(i, 4) % 45 AS INTEGER) AS minutes,
          'Reading Plus' AS product
        FROM range({rows}) t(i)
    """
    if fmt == "csv":
        opts = "HEADER, DELIMITER ',', TIMESTAMPFORMAT '%Y-%m-%d %H:%M:%S'"
        copy = f"COPY ({query}) TO '{out}' ({opts})"
    else:
        copy = f"COPY ({query}) TO '{out}' (FORMAT parquet, ROW_GROUP_SIZE 1000000)"
    con.execute(copy)
    con.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, required=True)
    parser.add_argument("--format", choices=("csv", "parquet"), default="csv")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--memory-limit", default="2GB")
    args = parser.parse_args()
    t0 = time.perf_counter()
    generate(args.rows, args.out, args.format, memory_limit=args.memory_limit)
    size = args.out.stat().st_size / 2**20
    print(
        f"wrote {args.rows:,} rows to {args.out} ({size:,.0f} MiB) "
        f"in {time.perf_counter() - t0:.1f} s"
    )


if __name__ == "__main__":
    main()
