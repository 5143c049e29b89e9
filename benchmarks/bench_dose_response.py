"""Benchmark: the dose-response fit on 2,000,000 students.

Times (1) building the design matrix directly from the analysis frame and fitting OLS with school
fixed effects absorbed and school-clustered standard errors -- the step the issue bounds at 8 s on
2 cores -- and (2) the whole ``fit_dose_response`` (naive fit, linearity tests, plateau search,
wild cluster bootstrap, binned means), for information.

Run:  /work/venv/bin/python benchmarks/bench_dose_response.py [--students N] [--full]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd


def make_frame(n: int, n_schools: int = 200, seed: int = 1) -> pd.DataFrame:
    """A synthetic analysis frame with school confounding and a planted slope of 2 per month."""
    rng = np.random.default_rng(seed)
    school = rng.integers(0, n_schools, n)
    s_eff = rng.normal(0, 3, n_schools)
    grade = rng.integers(0, 9, n)
    base = rng.normal(50, 20, n)
    months = np.clip(np.rint(2.5 + s_eff[school] / 2 + 0.02 * (base - 50)
                             + rng.normal(0, 1.5, n)), 0, 8)
    y = 10 + 0.8 * base + 2.0 * months + s_eff[school] + rng.normal(0, 8, n)
    cats = {
        "race_ethnicity": ["White", "Hispanic", "Black", "Asian", "Filipino", "AIAN", "NHPI",
                           "Two or more"],
        "el_status": ["EO", "EL", "RFEP", "IFEP"],
        "gender": ["F", "M", "X"],
        "swd": ["N", "Y"],
        "econ_disadv": ["N", "Y"],
    }
    frame = {
        "school": pd.Series([f"S{s:03d}" for s in range(n_schools)], dtype="str").to_numpy()[
            school],
        "grade": pd.Series([str(g) for g in range(9)], dtype="str").to_numpy()[grade],
    }
    for col, levels in cats.items():
        p = np.linspace(3, 1, len(levels))
        frame[col] = np.asarray(levels, dtype=object)[rng.choice(len(levels), n, p=p / p.sum())]
    frame.update({"baseline_percentile": base, "outcome_percentile": y,
                  "habitual_months": months})
    return pd.DataFrame(frame).astype(dict.fromkeys(["school", "grade", *cats], "str"))


def main() -> None:
    from rce.config import Plan
    from rce.stats.dose_response import fit_dose_response
    from rce.stats.ols import design_matrix, fit_ols

    ap = argparse.ArgumentParser()
    ap.add_argument("--students", type=int, default=2_000_000)
    ap.add_argument("--full", action="store_true", help="also time fit_dose_response")
    args = ap.parse_args()
    t0 = time.perf_counter()
    frame = make_frame(args.students)
    print(f"generated {len(frame):,} students in {time.perf_counter() - t0:.1f} s")
    covs = ("race_ethnicity", "el_status", "gender", "swd", "econ_disadv")
    t0 = time.perf_counter()
    X, names = design_matrix(frame, numeric=("habitual_months", "baseline_percentile"),
                             categorical=("grade", *covs))
    t1 = time.perf_counter()
    fit = fit_ols(frame["outcome_percentile"].to_numpy(), X, names=names,
                  cluster=frame["school"], absorb=frame["school"])
    t2 = time.perf_counter()
    print(f"design matrix {X.shape}: {t1 - t0:.2f} s; OLS + absorb + cluster: {t2 - t1:.2f} s; "
          f"total {t2 - t0:.2f} s")
    print(f"per-month slope {fit.coef['habitual_months']:.4f} "
          f"[{fit.ci_low['habitual_months']:.4f}, {fit.ci_high['habitual_months']:.4f}], "
          f"G = {fit.n_clusters}")
    if args.full:
        t0 = time.perf_counter()
        r = fit_dose_response(frame, plan=Plan())
        print(f"fit_dose_response (all diagnostics): {time.perf_counter() - t0:.2f} s; "
              f"slope {r.per_month.estimate:.4f}")


if __name__ == "__main__":
    main()
