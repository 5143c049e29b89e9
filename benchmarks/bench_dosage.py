"""Time the dosage step (``rce.dosage.compute_dosage``) against the floor on the same file.

The floor is a hand-written two-level DuckDB query (student-day first, then student-month, then
student; no ``count(DISTINCT)``) doing the least work the definition allows on this layout:
typed read, UTC -> district-local date, sessions and minutes per student-day and month, habitual
months. The dosage step does everything the definition asks on top (text read that keeps ID
zeros, exact de-duplication, ID normalisation, window, fidelity, clusters, monthly table).

Each measurement runs in a fresh Python process (interpreter start and imports included) so
that its peak RSS is its own; floor and dosage alternate, and the median of ``--repeat`` runs
is reported.

Usage::

    python benchmarks/gen_usage.py --rows 30000000 --format parquet \
        --out benchmarks/data/usage_30m.parquet
    python benchmarks/bench_dosage.py benchmarks/data/usage_30m.parquet \
        --memory-limit 1GB --repeat 3

``--window per-student`` times the dosage step with a test-date window for every student (the
default of an analysis: the roster match comes before the aggregation, so text exports too
large to parse once are scanned for their IDs first); the floor is the same.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

FLOOR = r"""
import sys, time, tempfile, shutil, duckdb
path, mem = sys.argv[1], sys.argv[2]
tmp = tempfile.mkdtemp()
con = duckdb.connect()
con.execute(f"SET memory_limit = '{mem}'")
con.execute(f"SET temp_directory = '{tmp}'")
con.execute("SET preserve_insertion_order = false")
con.execute("SET enable_progress_bar = false")
if path.endswith(".parquet"):
    src = f"read_parquet('{path}')"
else:
    src = (f"read_csv('{path}', header = true, columns = {{'student_id': 'VARCHAR', "
           "'session_start': 'TIMESTAMP', 'minutes': 'DOUBLE', 'product': 'VARCHAR'})")
df = con.execute(f'''
WITH sd AS (
  SELECT student_id,
         CAST(timezone('America/Los_Angeles', timezone('UTC', session_start)) AS DATE) AS day,
         count(*) AS sessions, sum(minutes) AS minutes
  FROM {src} GROUP BY ALL),
sm AS (
  SELECT student_id, date_trunc('month', day) AS month, sum(sessions) AS sessions,
         sum(minutes) AS minutes, count(*) AS active_days
  FROM sd GROUP BY ALL)
SELECT student_id, count(*) AS active_months,
       count(*) FILTER (sessions >= 3) AS habitual_months,
       sum(sessions) AS sessions, sum(minutes) AS minutes, sum(active_days) AS active_days
FROM sm GROUP BY ALL''').df()
con.close()
shutil.rmtree(tmp, ignore_errors=True)
print(len(df))
"""

DOSAGE = r"""
import sys
from rce.canonical import UsageSource
from rce.config import DosageConfig, EngineConfig, Plan
from rce.dosage import compute_dosage
path, mem, window, students = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
src = UsageSource(
    paths=(path,), product="Reading Plus", granularity="event",
    columns={"student_id": "student_id", "timestamp": "session_start", "minutes": "minutes"},
    file_format="parquet" if path.endswith(".parquet") else "csv", timestamp_tz="UTC")
windows = None
if window == "per-student":
    # a fall and a spring test date for every student, staggered over three weeks
    import pandas as pd
    k = pd.RangeIndex(1, students + 1)
    windows = pd.DataFrame({
        "student_id": [f"{i:07d}" for i in k],
        "baseline_date": pd.Timestamp("2024-09-03") + pd.to_timedelta(k % 21, "D"),
        "outcome_date": pd.Timestamp("2025-05-05") + pd.to_timedelta(k % 21, "D"),
    })
    window = "baseline-to-outcome"
plan = Plan(dosage=DosageConfig(unit="row", window=window), engine=EngineConfig(memory_limit=mem))
r = compute_dosage([src], plan=plan, windows=windows)
print(len(r.per_student))
"""


def run_measured(code: str, *args: str) -> tuple[float, float, float, str]:
    """Wall seconds, CPU seconds (user + system) and peak RSS (MiB) of one fresh process.

    Measured by a wrapper process. CPU time moves less than wall time when other programs
    share the cores, so both are reported.
    """
    wrapper = (
        "import resource, subprocess, sys, time, json\n"
        "t0 = time.perf_counter()\n"
        "p = subprocess.run([sys.executable, '-c', *sys.argv[1:]],"
        " capture_output=True, text=True)\n"
        "wall = time.perf_counter() - t0\n"
        "ru = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
        "peak = ru.ru_maxrss / 1024.0\n"
        "cpu = ru.ru_utime + ru.ru_stime\n"
        "print(json.dumps({'rc': p.returncode, 'wall': wall, 'peak': peak, 'cpu': cpu,"
        " 'out': p.stdout.strip(), 'err': p.stderr[-2000:]}))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", wrapper, code, *args], capture_output=True, text=True, check=True
    )
    res = json.loads(proc.stdout)
    if res["rc"] != 0:
        raise SystemExit(res["err"])
    return res["wall"], res["cpu"], res["peak"], res["out"]


#: As in gen_usage.py: the generated IDs are 0000001 .. rows / 150.
SESSIONS_PER_STUDENT = 150


def _rows(path: str) -> int:
    import duckdb

    if path.endswith(".parquet"):
        sql = f"SELECT sum(num_rows) FROM parquet_file_metadata('{path}')"
    else:
        sql = f"SELECT count(*) FROM read_csv('{path}', header = true, all_varchar = true)"
    return int(duckdb.sql(sql).fetchall()[0][0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("path")
    parser.add_argument("--memory-limit", default="1GB")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-floor", action="store_true")
    parser.add_argument(
        "--window",
        choices=("all", "per-student"),
        default="all",
        help="dosage window: all rows (as the floor), or a test-date window for every student "
        "(the default of an analysis, which needs the roster match before the aggregation)",
    )
    args = parser.parse_args()
    students = _rows(args.path) // SESSIONS_PER_STUDENT
    results: dict[str, list[tuple[float, float, float]]] = {"floor": [], "dosage": []}
    for i in range(args.repeat):
        for name, code in (("floor", FLOOR), ("dosage", DOSAGE)):
            if name == "floor" and args.skip_floor:
                continue
            extra = () if name == "floor" else (args.window, str(students))
            wall, cpu, peak, out = run_measured(code, args.path, args.memory_limit, *extra)
            results[name].append((wall, cpu, peak))
            print(
                f"run {i + 1} {name:6s} wall {wall:7.2f} s  cpu {cpu:7.2f} s  "
                f"peak {peak:7.0f} MiB  ({out} students)",
                flush=True,
            )
    summary = {}
    for name, runs in results.items():
        if runs:
            summary[name] = tuple(statistics.median(r[k] for r in runs) for k in range(3))
    for name, (w, c, p) in summary.items():
        print(f"median {name:6s} wall {w:7.2f} s  cpu {c:7.2f} s  peak {p:7.0f} MiB")
    if "floor" in summary:
        d, f = summary["dosage"], summary["floor"]
        print(
            f"ratio dosage/floor: wall {d[0] / f[0]:.2f}x, cpu {d[1] / f[1]:.2f}x, "
            f"peak {d[2] / f[2]:.2f}x"
        )


if __name__ == "__main__":
    main()
