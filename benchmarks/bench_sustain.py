"""Time ``rce sustain-report``: end to end on the sample district, and the core on large frames.

Usage::

    /work/venv/bin/python benchmarks/bench_sustain.py            # example district + synthetic
    /work/venv/bin/python benchmarks/bench_sustain.py --students 200000 --products 12
    /work/venv/bin/python benchmarks/bench_sustain.py --many-products 100   # 100 usage exports
    /work/venv/bin/python benchmarks/bench_sustain.py --fresh 3             # CLI, new processes

1. End to end (products file -> usage through rce.io / rce.dosage -> rules -> four output files)
   on ``examples/sierra-vista`` (generated into ``benchmarks/data/sierra-vista`` with
   ``rce.sample.generate_sample`` when the committed example is missing). Target: < 5 s.
2. The core (:func:`rce.sustain.compute_sustain`) and the renderers on a synthetic per-student
   frame (``--students`` x ``--products`` rows), to show how the rule engine scales.
3. ``--many-products N``: a products file with N products, each with its own small session log
   (``--students-per-product`` students, generated into ``benchmarks/data/sustain-<N>/``,
   git-ignored), through :func:`rce.sustain.run_sustain_report` end to end (usage exports in
   dosage runs of at most 63, the rules, all four outputs).
4. ``--fresh N``: ``rce sustain-report`` on the example district in N new processes (what a user
   waits for: interpreter, imports, usage, rules, four files), wall and CPU seconds and peak RSS,
   then where the time of one fresh process goes (imports, usage + dosage, rules, each file).

Wall times are the best of ``--repeat`` runs (default 3), measured with ``time.perf_counter``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from datetime import date
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from rce.config import Plan, load_plan  # noqa: E402
from rce.report.sustain import write_sustain_report  # noqa: E402
from rce.sustain import Evidence, Product, compute_sustain, run_sustain_report  # noqa: E402

AS_OF = date(2025, 2, 1)


def timed(repeat: int, fn) -> tuple[float, float, object]:
    """First-run time (pays lazy imports: matplotlib, xlsxwriter, DuckDB), best time, output."""
    times, out = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return times[0], min(times), out


def best_of(repeat: int, fn) -> tuple[float, object]:
    _, best, out = timed(repeat, fn)
    return best, out


def example_dir() -> Path:
    committed = REPO / "examples" / "sierra-vista"
    if (committed / "products.toml").is_file():
        return committed
    target = REPO / "benchmarks" / "data" / "sierra-vista"
    if not (target / "products.toml").is_file():
        from rce.sample import generate_sample

        generate_sample(target, students=1500, seed=7)
    return target


def bench_example(repeat: int) -> None:
    folder = example_dir()
    plan = load_plan(folder / "rce.toml")
    try:
        import rce.dosage  # noqa: F401
    except ImportError:
        print("end-to-end: skipped (rce.dosage is not available in this checkout)")
        return
    with tempfile.TemporaryDirectory() as tmp:
        first, seconds, run = timed(
            repeat,
            lambda: run_sustain_report(
                folder / "products.toml", plan=plan, out_dir=Path(tmp) / "out", as_of=AS_OF
            ),
        )
    result = run.result
    recs = ", ".join(f"{a.product.product}: {a.recommendation}" for a in result.products)
    print(
        f"end-to-end on {folder.relative_to(REPO)}: first run {first:.2f} s, best of {repeat} "
        f"{seconds:.2f} s; {recs}"
    )


def synthetic(students: int, products: int, seed: int = 1) -> tuple[list[Product], pd.DataFrame,
                                                                     list[Evidence]]:
    rng = np.random.default_rng(seed)
    prods, frames, evs = [], [], []
    for k in range(products):
        name = f"Product {k:02d}"
        seats = int(students * rng.uniform(0.3, 1.2))
        prods.append(
            Product(
                product=name,
                subject=("ela", "math")[k % 2],
                annual_cost=Decimal(seats) * Decimal("27.35"),
                price_per_seat=Decimal("27.35"),
                seats_purchased=seats,
                funding_source=("ESSER III", "Title I", "General Fund")[k % 3],
                renewal_date=date(2025, 3 + k % 6, 1 + k),
                privacy_agreement="signed",
            )
        )
        n = int(students * rng.uniform(0.1, 0.9))
        ids = rng.choice(students, size=n, replace=False)
        sessions = rng.poisson(rng.uniform(0.5, 12), size=n)
        level = np.where(sessions >= 6, "habitual", np.where(sessions > 0, "light", "none"))
        frames.append(
            pd.DataFrame(
                {
                    "student_id": pd.array([f"{i:07d}" for i in ids], dtype="str"),
                    "product": name,
                    "sessions": sessions,
                    "usage_level": level,
                }
            )
        )
        if k % 2 == 0:
            p = float(rng.uniform(0.05, 0.99))
            evs.append(Evidence(product=name, estimate=2.0, ci_low=-0.5, ci_high=4.5,
                                probability_positive=0.9, probability_meaningful=p,
                                hedges_g=0.08, outcome_window="spring"))
    return prods, pd.concat(frames, ignore_index=True), evs


def bench_synthetic(students: int, products: int, repeat: int) -> None:
    prods, frame, evs = synthetic(students, products)
    seconds, result = best_of(
        repeat,
        lambda: compute_sustain(prods, frame, evidence=evs, plan=Plan(), as_of=AS_OF),
    )
    print(
        f"compute_sustain: {len(frame):,} per-student rows, {products} products: "
        f"{seconds:.2f} s (best of {repeat})"
    )
    with tempfile.TemporaryDirectory() as tmp:
        seconds, _ = best_of(repeat, lambda: write_sustain_report(result, Path(tmp)))
    print(f"write_sustain_report (html+md+json+xlsx, {products} products): {seconds:.2f} s")


def write_many_products(folder: Path, products: int, students: int, seed: int = 5) -> Path:
    """products.toml and one session log per product (IDs, dates and minutes only).

    Product k has ``students`` x U(0.2, 1.0) students, each with a Poisson number of sessions
    per month (mean U(0.5, 6) by product) from September to May, so products range from barely
    used to habitual; some small products fall under the minimum cell size on purpose.
    """
    rng = np.random.default_rng(seed)
    usage_dir = folder / "usage"
    usage_dir.mkdir(parents=True, exist_ok=True)
    months = np.arange("2024-09", "2025-06", dtype="datetime64[M]").astype("datetime64[D]")
    entries = []
    for k in range(products):
        n = max(3, int(students * rng.uniform(0.2, 1.0)))
        ids = 1_000_000 + k * 10_000 + np.arange(n)
        per_month = rng.poisson(rng.uniform(0.5, 6.0), size=(n, len(months)))
        sid = np.repeat(np.repeat(ids, len(months)), per_month.ravel())
        month = np.repeat(np.tile(np.arange(len(months)), n), per_month.ravel())
        day = rng.integers(0, 27, size=len(sid)).astype("timedelta64[D]")
        dates = np.datetime_as_string(months[month] + day, unit="D")
        pd.DataFrame(
            {"student_id": sid, "date": dates, "minutes": rng.integers(5, 45, len(sid))}
        ).to_csv(usage_dir / f"product_{k:03d}.csv", index=False)
        seats = int(n * rng.uniform(0.8, 3.0))
        subject = ("ela", "math", "science")[k % 3]
        entries.append(
            f'[[product]]\nproduct = "Product {k:03d}"\nsubject = "{subject}"\n'
            f"price_per_seat = {rng.integers(8, 60)}.00\nseats_purchased = {seats}\n"
            f'funding_source = "{("ESSER III", "Title I", "General Fund")[k % 3]}"\n'
            f"renewal_date = 2025-{1 + k % 12:02d}-{1 + k % 28:02d}\n"
            f'usage = "usage/product_{k:03d}.csv"\nprivacy_agreement = "signed"\n'
        )
    path = folder / "products.toml"
    path.write_text("\n".join(entries), encoding="utf-8")
    return path


def bench_many_products(products: int, students: int, repeat: int) -> None:
    folder = REPO / "benchmarks" / "data" / f"sustain-{products}"
    path = folder / "products.toml"
    if not path.is_file():
        start = time.perf_counter()
        write_many_products(folder, products, students)
        print(f"generated {products} usage exports in {folder.relative_to(REPO)} "
              f"({time.perf_counter() - start:.1f} s)")
    plan = Plan()
    with tempfile.TemporaryDirectory() as tmp:
        first, best, run = timed(
            repeat,
            lambda: run_sustain_report(path, plan=plan, out_dir=Path(tmp) / "out", as_of=AS_OF),
        )
        start = time.perf_counter()
        computed = run_sustain_report(path, plan=plan, out_dir=None, as_of=AS_OF)
        compute_only = time.perf_counter() - start
        sizes = {f.name: f.stat().st_size for f in run.files}
    result = run.result
    rows = sum(1 for _ in (folder / "usage").glob("*.csv"))
    hidden = sum(1 for a in result.products if a.suppressed)
    users = sum(a.students_activated or 0 for a in result.products)
    assert computed.json_text == run.json_text
    print(
        f"{products} products ({rows} usage exports, {users:,} student-product rows): "
        f"end to end first {first:.2f} s, best of {repeat} {best:.2f} s; "
        f"without writing files {compute_only:.2f} s; {hidden} products with suppressed figures; "
        + ", ".join(f"{k} {v / 1e3:,.0f} kB" for k, v in sizes.items())
    )


def bench_fresh(runs: int) -> None:
    folder = example_dir()
    rce_bin = Path(sys.executable).with_name("rce")
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [str(rce_bin), "sustain-report", "--config", str(folder / "rce.toml"), "--out",
               str(Path(tmp) / "out"), "--as-of", AS_OF.isoformat(), "--quiet"]
        # /usr/bin/time measures the command alone: a child's rusage would also count the
        # pages it shared with this (large) process between fork and exec.
        stats = Path(tmp) / "time.txt"
        for i in range(runs):
            load = os.getloadavg()[0]
            subprocess.run(["/usr/bin/time", "-o", str(stats), "-f", "%e %U %S %M", *cmd],
                           check=True, cwd=tmp)
            wall, user, system, peak_kb = stats.read_text().split()[-4:]
            print(f"fresh process {i + 1}: {float(wall):.2f} s wall, "
                  f"{float(user) + float(system):.2f} s CPU, peak RSS {int(peak_kb) / 1024:.0f} MB "
                  f"(load average before the run {load:.1f})")
        phases = subprocess.run(
            [sys.executable, "-c", _PHASES, str(folder), str(Path(tmp) / "phases")],
            check=True, capture_output=True, text=True, cwd=tmp,
        )
    print("one fresh process, by phase:\n" + phases.stdout, end="")


#: Run in a new interpreter: seconds per phase of one sustain report.
_PHASES = """
import sys, time
t = [time.perf_counter()]
names = []
def mark(name):
    t.append(time.perf_counter()); names.append(name)
import pandas; mark("import pandas")
import rce.sustain as S; from rce.config import load_plan; mark("import rce.sustain")
import rce.dosage, rce.io; mark("import rce.dosage, rce.io (DuckDB)")
from datetime import date; from pathlib import Path
folder, out = Path(sys.argv[1]), Path(sys.argv[2])
run = S.run_sustain_report(folder / "products.toml", plan=load_plan(folder / "rce.toml"),
                           out_dir=None, as_of=date(2025, 2, 1))
mark("products, evidence, usage + dosage, rules, sustain.json")
import rce.report.sustain as R; from rce.report import charts; mark("import charts (matplotlib)")
data = run.result.to_dict(); view = R._view(data)
html = R._html(data, view); mark("sustain.html (charts)")
md = R._markdown(view); mark("sustain.md")
out.mkdir(parents=True, exist_ok=True); R.write_sustain_workbook(data, out / "sustain.xlsx")
mark("sustain.xlsx")
for name, a, b in zip(names, t, t[1:]):
    print(f"  {name:58s} {b - a:5.2f} s")
print(f"  {'total':58s} {t[-1] - t[0]:5.2f} s")
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=50_000)
    parser.add_argument("--products", type=int, default=12)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--many-products", type=int, default=0, metavar="N",
                        help="also run N products, each with its own usage export")
    parser.add_argument("--students-per-product", type=int, default=300)
    parser.add_argument("--fresh", type=int, default=0, metavar="N",
                        help="also time N fresh `rce sustain-report` processes")
    args = parser.parse_args()
    bench_example(args.repeat)
    bench_synthetic(args.students, args.products, args.repeat)
    if args.many_products:
        bench_many_products(args.many_products, args.students_per_product, args.repeat)
    if args.fresh:
        bench_fresh(args.fresh)


if __name__ == "__main__":
    main()
