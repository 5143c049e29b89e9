"""State scale: the dosage step on a 300-million-row usage log under a 4 GiB memory budget.

Generates (once) the state-sized session log of ``gen_usage.py`` -- 300M rows, 2,000,000
students, Parquet -- then runs ``rce.dosage.compute_dosage`` on it in a fresh process with the
DuckDB memory limit of the issue (3 GB), showing a progress bar fed by DuckDB's own progress
(the same callback ``rce analyze`` draws), and reports wall time, the process's peak RSS and the
largest size of the private spill folder. Exit code 1 when the peak RSS exceeds the budget.

Usage::

    python benchmarks/bench_state_scale.py                       # 300M rows, 3GB limit
    python benchmarks/bench_state_scale.py --rows 30000000       # a county, for a quick check

Needs about 3 GB of disk for the Parquet file and up to ~40 GB for DuckDB's spill files.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

RUN = r"""
import json, os, resource, sys, time
from rce.canonical import UsageSource
from rce.config import DosageConfig, EngineConfig, Plan
from rce.dosage import compute_dosage

path, mem = sys.argv[1], sys.argv[2]
src = UsageSource(
    paths=(path,), product="Reading Plus", granularity="event",
    columns={"student_id": "student_id", "timestamp": "session_start", "minutes": "minutes"},
    file_format="parquet", timestamp_tz="UTC")
plan = Plan(dosage=DosageConfig(unit="row", window="all"), engine=EngineConfig(memory_limit=mem))

def progress(done):
    print(json.dumps({"progress": done}), file=sys.stderr, flush=True)

t0 = time.perf_counter()
res = compute_dosage([src], plan=plan, progress=progress)
wall = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
print(json.dumps({"wall": wall, "peak_mib": peak, "students": len(res.per_student),
                  "rows_read": res.rows_read, "monthly_rows": len(res.monthly),
                  "notes": list(res.notes)}))
"""


def spill_watcher(stop: threading.Event, sizes: list[int]) -> None:
    """Largest total size of rce's DuckDB spill folders (rce-duckdb-*) in the temp dir."""
    import tempfile

    root = Path(tempfile.gettempdir())
    while not stop.wait(2.0):
        total = 0
        for d in root.glob("rce-duckdb-*"):
            for f in d.rglob("*"):
                with contextlib.suppress(OSError):
                    total += f.stat().st_size
        sizes.append(total)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=300_000_000)
    parser.add_argument("--memory-limit", default="3GB")
    parser.add_argument("--budget-gib", type=float, default=4.0)
    args = parser.parse_args()
    path = HERE / "data" / f"usage_{args.rows // 1_000_000}m.parquet"
    if not path.exists():
        subprocess.run(
            [sys.executable, str(HERE / "gen_usage.py"), "--rows", str(args.rows),
             "--format", "parquet", "--out", str(path), "--memory-limit", args.memory_limit],
            check=True,
        )
    from rich.progress import Progress

    sizes: list[int] = []
    stop = threading.Event()
    watcher = threading.Thread(target=spill_watcher, args=(stop, sizes), daemon=True)
    watcher.start()
    proc = subprocess.Popen(
        [sys.executable, "-c", RUN, str(path), args.memory_limit],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    t0 = time.perf_counter()
    with Progress(transient=False) as bar:
        task = bar.add_task(f"{args.rows:,} usage rows read", total=1.0)
        assert proc.stderr is not None
        tail: list[str] = []
        for line in proc.stderr:
            try:
                bar.update(task, completed=json.loads(line)["progress"])
            except (ValueError, KeyError, TypeError):
                tail = [*tail, line][-20:]
    out = proc.stdout.read() if proc.stdout else ""
    proc.wait()
    stop.set()
    watcher.join()
    if proc.returncode != 0:
        sys.exit("".join(tail) or f"failed with exit code {proc.returncode}")
    res = json.loads(out.strip().splitlines()[-1])
    peak_gib = res["peak_mib"] / 1024
    print(
        f"{res['rows_read']:,} rows, {res['students']:,} students: dosage {res['wall']:.0f} s "
        f"(process {time.perf_counter() - t0:.0f} s), peak RSS {res['peak_mib']:,.0f} MiB "
        f"({peak_gib:.2f} GiB; budget {args.budget_gib} GiB), "
        f"largest spill {max(sizes, default=0) / 2**30:.1f} GiB, "
        f"monthly rows kept {res['monthly_rows']:,}"
    )
    for note in res["notes"]:
        print(f"  note: {note}")
    sys.exit(0 if peak_gib <= args.budget_gib else 1)


if __name__ == "__main__":
    main()
