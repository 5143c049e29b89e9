"""Time ``rce analyze`` end to end: the example district and a 20,000-student district.

Each measurement is a fresh ``python -m rce analyze`` process (interpreter start, imports, every
stage, the whole report folder written), timed by wall clock with the peak RSS of that process
(``/usr/bin/time -v`` where it exists, else ``resource.getrusage`` of the child).

The large district is ``rce sample --students 20000 --seed 11`` whose i-Ready lesson log is
enlarged to ``--rows`` rows (3,000,000 by default): the sample's own lesson rows are repeated
with the completion date moved on by 0, 1, 2, ... days per copy, cut at exactly ``--rows``
rows, so every row keeps the export's shape (text IDs, US dates, quoted names) and matches a
rostered student. The Lexia and VendorX exports of the sample are read as they are. Both are
cached under the git-ignored ``benchmarks/data/analyze/`` and reused on the next run.

``--stages`` also runs the large district once inside this process with the pipeline's progress
callback and prints the seconds spent in each stage (imports included in the first one) and,
on Linux, the CPU seconds of each stage and of each thread (DuckDB's workers and the chart
helper process included).
``--floor`` times, after each round on the large district, DuckDB counting the rows of its
lesson log in a fresh process: the machine's speed at that moment, since a shared machine's
speed moves by a factor of two within an hour.

Usage::

    python benchmarks/bench_analyze.py [--students 20000] [--rows 3000000] [--repeat 1]
        [--skip-example] [--skip-large] [--stages] [--floor] [--data DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
EXAMPLE = ROOT / "examples" / "sierra-vista"
LESSON_LOG = Path("iready") / "personalized_instruction_by_lesson_ela.csv"


def build_district(data: Path, *, students: int, rows: int, seed: int) -> Path:
    """Write (or reuse) the sample district with a lesson log of exactly ``rows`` rows."""
    district = data / f"district_{students}_{rows}_{seed}"
    stamp = district / ".bench-complete"
    if stamp.is_file():
        return district
    import duckdb

    from rce.sample import generate_sample

    t = time.perf_counter()
    log = district / LESSON_LOG
    original = log.with_name(log.stem + ".sample.csv")
    if not original.is_file():
        # An earlier run may have stopped after the sample was written: reuse it.
        if not (district / "truth.json").is_file():
            generate_sample(district, students=students, seed=seed)
        log.replace(original)
    con = duckdb.connect()
    n = con.execute(
        f"SELECT count(*) FROM read_csv('{original}', all_varchar=true, header=true)"
    ).fetchone()[0]
    copies = -(-rows // n)
    # Copy j of each lesson is completed j days later; insertion order is kept (copy-major)
    # so the cut at `rows` is the same on every run.
    con.execute("SET preserve_insertion_order = true")
    con.execute(
        f"""
        COPY (
          SELECT * REPLACE (
            strftime(strptime("Completion Date", '%m/%d/%Y') + to_days(CAST(j AS INTEGER)),
                     '%m/%d/%Y') AS "Completion Date")
          FROM range({copies}) c(j), read_csv('{original}', all_varchar=true, header=true)
          ORDER BY j
          LIMIT {rows}
        ) TO '{log}' (HEADER, DELIMITER ',')
        """
    )
    con.close()
    original.unlink()
    stamp.write_text(f"students={students} rows={rows} seed={seed}\n", encoding="utf-8")
    print(f"built {district.name} in {time.perf_counter() - t:.0f} s "
          f"({rows:,} lesson rows from {n:,} sample rows x {copies})")
    return district


def time_analyze(study: Path, out: Path, *, rce_path: Path | None = None,
                 extra_env: dict[str, str] | None = None
                 ) -> tuple[float, float | None, int, float | None]:
    """Wall seconds, peak RSS (MiB), exit code and CPU seconds (user + system) of one fresh
    ``rce analyze`` process.

    ``rce_path`` runs another copy of the package (a folder holding ``rce/``, e.g. an older
    commit extracted with ``git archive <commit> rce | tar -x -C DIR``) for before/after figures
    under the same machine load; ``extra_env`` adds environment variables to the child.
    """
    cmd = [sys.executable, "-m", "rce", "analyze", str(study), "--out", str(out)]
    env = dict(os.environ, **(extra_env or {}))
    if rce_path is not None:
        env["PYTHONPATH"] = os.pathsep.join(
            [str(rce_path), *filter(None, [os.environ.get("PYTHONPATH")])])
    timer = shutil.which("time") or ("/usr/bin/time" if Path("/usr/bin/time").exists() else None)
    if timer:
        cmd = [timer, "-v", *cmd]
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    wall = time.perf_counter() - t
    peak = None
    cpu = sum(float(x) for x in re.findall(r"(?:User|System) time \(seconds\): ([\d.]+)",
                                            proc.stderr)) or None
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr)
    if m:
        peak = int(m.group(1)) / 1024
    elif not timer:
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    if proc.returncode not in (0, 1):
        # 1 = findings (e.g. a gate); anything else is a failure worth showing.
        sys.stderr.write(proc.stderr[-3000:])
    return wall, peak, proc.returncode, cpu


FLOOR = """
import sys, time, duckdb
con = duckdb.connect()
con.execute("SET threads = 2")
con.execute("SET enable_progress_bar = false")
t = time.perf_counter()
con.execute("SELECT count(*) FROM read_csv(?, header = true, all_varchar = true)",
            [sys.argv[1]]).fetchall()
print(time.perf_counter() - t)
"""


def floor_seconds(study: Path) -> tuple[str, float]:
    """The machine's speed now: DuckDB counting the rows of the district's lesson log (every
    column as text, two threads) in a fresh process -- the least any reading of that file
    costs. A ratio to it moves less with the load of a shared machine than wall time does."""
    log = study / LESSON_LOG
    out = subprocess.run([sys.executable, "-c", FLOOR, str(log)], capture_output=True,
                         text=True, check=True)
    return log.name, float(out.stdout.split()[-1])


class ThreadCpu:
    """CPU seconds of each thread of this process and of its child processes (Linux ``/proc``).

    Python threads are named by their ``threading`` name (a pool's ``_N`` suffix dropped);
    DuckDB's own worker threads have no Python name. A sampler thread records every thread's
    latest figure every 0.1 s, so a thread that ends keeps its CPU (one shorter than the
    interval may be missed).
    """

    ENGINE = "DuckDB's worker threads (native)"
    HELPER = "chart helper process"

    def __init__(self) -> None:
        self.tick = os.sysconf("SC_CLK_TCK")
        self.latest: dict[tuple[str, str], float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="bench-sampler", daemon=True)

    def _cpu(self, fields: list[str]) -> float:
        return (int(fields[11]) + int(fields[12])) / self.tick  # utime + stime

    @staticmethod
    def _fields(stat_path: Path) -> list[str]:
        """The fields of a ``stat`` file after the command name (which may hold spaces)."""
        return stat_path.read_text().rsplit(")", 1)[1].split()

    def snapshot(self) -> float:
        """Record every thread's CPU now; the total of all threads seen so far."""
        names = {t.native_id: re.sub(r"_\d+$", "", t.name) for t in threading.enumerate()
                 if t is not self._thread}
        me = os.getpid()
        for task in Path("/proc/self/task").iterdir():
            with contextlib.suppress(OSError, ValueError):
                tid = int(task.name)
                if tid == self._thread.native_id:
                    continue  # the sampler's own reading is not the run's
                name = "MainThread" if tid == me else names.get(tid, self.ENGINE)
                self.latest[(task.name, name)] = self._cpu(self._fields(task / "stat"))
        for proc in Path("/proc").glob("[0-9]*"):
            with contextlib.suppress(OSError, ValueError, IndexError):
                fields = self._fields(proc / "stat")
                if int(fields[1]) == me:
                    self.latest[(proc.name, self.HELPER)] = self._cpu(fields)
        return sum(self.latest.values())

    def _sample(self) -> None:
        while not self._stop.wait(0.1):
            self.snapshot()

    def __enter__(self) -> ThreadCpu:
        self.snapshot()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.snapshot()

    def by_name(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for (_, name), cpu in self.latest.items():
            out[name] = out.get(name, 0.0) + cpu
        return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def stage_times(study: Path, out: Path,
                cpu: ThreadCpu | None = None) -> list[tuple[str, float, float | None]]:
    """Seconds per pipeline stage of one in-process run (first stage includes imports), with
    the CPU seconds all threads and the helper used in it when ``cpu`` samples them."""
    def mark(text: str) -> None:
        marks.append((text, time.perf_counter(), cpu.snapshot() if cpu else None))

    marks: list[tuple[str, float, float | None]] = []
    mark("start (imports of rce.api)")
    from rce.api import analyze

    mark("Reading the plan")
    analyze(study_dir=study, out=out, timestamp=False,
            progress=lambda text, done=None: mark(text) if done is None else None)
    mark("end")
    return [(text, t1 - t0, c1 - c0 if cpu else None)
            for (text, t0, c0), (_, t1, c1) in itertools.pairwise(marks)]


LOOP = "sum(range(30_000_000))"


def core_check() -> tuple[float, float]:
    """Seconds of a CPU-bound loop alone, and (the slower of) two run at once.

    The machine's two vCPUs are not always two full cores (shared hosts): when two loops take
    much longer than one, the parallel stages of ``rce analyze`` slow down with them.
    """
    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen([sys.executable, "-c", LOOP])

    t0 = time.perf_counter()
    start().wait()
    one = time.perf_counter() - t0
    t0 = time.perf_counter()
    ends = []
    procs = [start(), start()]
    for p in procs:
        p.wait()
        ends.append(time.perf_counter() - t0)
    return one, max(ends)


def report_cores(when: str) -> None:
    one, two = core_check()
    print(f"two-core check {when}: a pure-Python loop {one:.2f} s alone, {two:.2f} s with a "
          f"second one beside it ({2 * one / two:.2f} cores' worth of the two)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--students", type=int, default=20_000)
    parser.add_argument("--rows", type=int, default=3_000_000)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--skip-example", action="store_true")
    parser.add_argument("--skip-large", action="store_true")
    parser.add_argument("--stages", action="store_true")
    parser.add_argument("--floor", action="store_true",
                        help="after each round on the large district, time DuckDB counting the "
                        "rows of its lesson log (the machine's speed at that moment)")
    parser.add_argument("--data", type=Path, default=HERE / "data" / "analyze")
    parser.add_argument("--rce-path", type=Path, action="append", default=[],
                        help="also time the package found in this folder (repeatable); runs "
                        "alternate with the working tree's")
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                        help="environment for the timed processes, e.g. OPENBLAS_NUM_THREADS=1")
    args = parser.parse_args()
    extra_env = dict(item.split("=", 1) for item in args.env)
    variants: list[tuple[str, Path | None]] = [("working tree", None)]
    variants += [(str(p), p.resolve()) for p in args.rce_path]

    studies: list[tuple[str, Path]] = []
    if not args.skip_example:
        studies.append(("example (sierra-vista, 1,500 students)", EXAMPLE))
    if not args.skip_large:
        district = build_district(args.data, students=args.students, rows=args.rows,
                                  seed=args.seed)
        studies.append((f"{args.students:,} students, {args.rows:,} lesson rows", district))

    out_root = Path(tempfile.mkdtemp(prefix="rce-bench-analyze-"))
    report_cores("before")
    try:
        if extra_env:
            print("environment: " + " ".join(f"{k}={v}" for k, v in extra_env.items()))
        for label, study in studies:
            for i in range(args.repeat):
                for name, path in variants:
                    wall, peak, rc, cpu = time_analyze(study, out_root / f"run{i}",
                                                       rce_path=path, extra_env=extra_env)
                    peak_text = f"{peak:,.0f} MiB" if peak is not None else "n/a"
                    cpu_text = f"  CPU {cpu:5.2f} s" if cpu is not None else ""
                    tag = f" [{name}]" if len(variants) > 1 else ""
                    print(f"{label:<44} run {i + 1}{tag}: {wall:6.2f} s{cpu_text}  peak RSS "
                          f"{peak_text}  exit {rc}", flush=True)
                if args.floor and study != EXAMPLE:
                    name, sec = floor_seconds(study)
                    print(f"{'':<44} floor: DuckDB counts {name} in {sec:.2f} s "
                          f"(fresh process, 2 threads)", flush=True)
        if args.stages and not args.skip_large:
            print("stages of one in-process run on the large district (wall, and CPU of all "
                  "threads and the helper):")
            linux = Path("/proc/self/task").is_dir()
            with ThreadCpu() if linux else contextlib.nullcontext() as cpu:
                rows = stage_times(studies[-1][1], out_root / "stages", cpu)
            for text, sec, used in rows:
                used_text = f"  CPU {used:5.2f} s" if used is not None else ""
                print(f"  {text:<50} {sec:6.2f} s{used_text}")
            if cpu is not None:
                threads = cpu.by_name()
                print(f"  {'in all':<50} {sum(r[1] for r in rows):6.2f} s  CPU "
                      f"{sum(threads.values()):5.2f} s, by thread:")
                for name, used in threads.items():
                    if used >= 0.01:
                        print(f"    {name:<48} CPU {used:5.2f} s")
        print(f"load average: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
        report_cores("after")
    finally:
        shutil.rmtree(out_root, ignore_errors=True)


if __name__ == "__main__":
    main()
