"""Time loading a district: roster + i-Ready diagnostics + a 3-million-row usage log.

The roster and diagnostics come from ``rce sample`` at district size (20,000 students by
default); the usage log is the session-log shape of ``benchmarks/gen_usage.py`` (student_id,
session_start, minutes, product; ~150 sessions per student). Timed steps:

* ``load_roster`` and ``load_assessments`` (the analysis path; small files, pandas);
* ``build_analysis_frame`` (ID resolution, baseline/outcome selection, demographics);
* ``usage_sources`` on the 3M-row log (the analysis path only sniffs it; DuckDB reads it later);
* ``read_table`` of the whole log and ``resolve_ids`` on its distinct IDs (the validate path);
* ``validate_files`` on roster + diagnostics + log.

Usage::

    python benchmarks/bench_load.py [--rows 3000000] [--students 20000] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=3_000_000)
    parser.add_argument("--students", type=int, default=20_000)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()

    from gen_usage import generate

    from rce.config import load_plan
    from rce.io import load_assessments, load_roster, read_table, usage_source_for
    from rce.io.load import expand_paths
    from rce.io.normalize import resolve_ids
    from rce.prepare import build_analysis_frame
    from rce.sample import generate_sample
    from rce.validate import validate_files

    work = args.workdir or Path(tempfile.mkdtemp(prefix="rce-bench-load-"))
    district = work / "district"
    log = work / f"usage_{args.rows}.csv"
    t = time.perf_counter()
    if not (district / "rce.toml").is_file():
        generate_sample(district, students=args.students, seed=7)
    if not log.is_file():
        generate(args.rows, log, "csv")
    print(f"setup (sample district + usage log, not timed below): {time.perf_counter() - t:.1f} s")
    print(f"usage log: {args.rows:,} rows, {log.stat().st_size / 2**20:,.0f} MiB")

    plan = load_plan(district / "rce.toml")
    timings: list[tuple[str, float]] = []

    def timed(label, fn):
        t0 = time.perf_counter()
        out = fn()
        timings.append((label, time.perf_counter() - t0))
        print(f"{label:<58} {timings[-1][1]:7.2f} s   (peak RSS {_peak_mib():,.0f} MiB)")
        return out

    roster = timed("load_roster", lambda: load_roster(list(plan.inputs.roster), plan))
    scores = timed("load_assessments (ELA diagnostics)",
                   lambda: load_assessments(list(plan.inputs.scores), plan))
    af = timed("build_analysis_frame", lambda: build_analysis_frame(roster, scores, plan))
    timed("usage_sources (sniff 3M-row log)",
          lambda: usage_source_for(expand_paths([str(log)]), plan))
    table = timed("read_table (whole log, all text)", lambda: read_table(log))
    timed("resolve_ids (distinct IDs of the log)",
          lambda: resolve_ids(table.frame["student_id"], roster.frame))
    del table
    analysis = sum(s for label, s in timings[:4])
    print(f"{'analysis path total (roster + scores + join + sniff)':<58} {analysis:7.2f} s")
    report = timed("validate_files (roster + diagnostics + log)",
                   lambda: validate_files([*expand_paths(list(plan.inputs.roster), plan),
                                           *expand_paths(list(plan.inputs.scores), plan), log],
                                          plan))
    print(f"roster rows {roster.files[0].rows:,}; score rows {scores.files[0].rows:,}; "
          f"students scored {af.join['students_scored']:,}; validate findings "
          f"{report.counts()}")


if __name__ == "__main__":
    main()
