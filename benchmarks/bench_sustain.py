"""Time ``rce sustain-report``: end to end on the sample district, and the core on large frames.

Usage::

    /work/venv/bin/python benchmarks/bench_sustain.py            # example district + synthetic
    /work/venv/bin/python benchmarks/bench_sustain.py --students 200000 --products 12

1. End to end (products file -> usage through rce.io / rce.dosage -> rules -> four output files)
   on ``examples/sierra-vista`` (generated into ``benchmarks/data/sierra-vista`` with
   ``rce.sample.generate_sample`` when the committed example is missing). Target: < 5 s.
2. The core (:func:`rce.sustain.compute_sustain`) and the renderers on a synthetic per-student
   frame (``--students`` x ``--products`` rows), to show how the rule engine scales.

Wall times are the best of ``--repeat`` runs (default 3), measured with ``time.perf_counter``.
"""

from __future__ import annotations

import argparse
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=50_000)
    parser.add_argument("--products", type=int, default=12)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    bench_example(args.repeat)
    bench_synthetic(args.students, args.products, args.repeat)


if __name__ == "__main__":
    main()
