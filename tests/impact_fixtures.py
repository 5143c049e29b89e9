"""Simulated analysis frames with planted effects, shared by the impact and evidence tests.

No published figures: the truth is planted, so tests check coverage and decisions against it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def district(effect: float, n: int = 2000, seed: int = 0, nonuser_share: float | None = None):
    """A district with self-selection into use on baseline score and poverty."""
    rng = np.random.default_rng(seed)
    school = rng.integers(0, 8, n)
    grade = rng.integers(3, 6, n)
    s_eff = rng.normal(0, 8, 8)[school]
    el = rng.random(n) < 0.2
    sed = rng.random(n) < 0.5
    base = 480 + 10 * (grade - 3) + s_eff - 15 * el - 8 * sed + rng.normal(0, 35, n)
    z = (base - base.mean()) / base.std()
    lin = -0.2 + 0.5 * z - 0.3 * sed + rng.normal(0, 0.5, n)
    p_use = 1 / (1 + np.exp(-lin))
    if nonuser_share is not None:
        p_use = np.full(n, 1 - nonuser_share)
    u = rng.random(n)
    level = np.where(u < p_use * 0.75, "habitual", np.where(u < p_use, "light", "none"))
    y = 100 + 0.85 * base + s_eff + effect * (level == "habitual") + rng.normal(0, 20, n)
    return pd.DataFrame({
        "student_id": [f"S{i:05d}" for i in range(n)],
        "school": [f"School {s}" for s in school],
        "grade": grade.astype(str),
        "el_status": np.where(el, "EL", "EO"),
        "econ_disadv": sed,
        "gender": rng.choice(["F", "M"], n),
        "race_ethnicity": rng.choice(["Hispanic", "White", "Asian", "Black"], n,
                                     p=[.5, .25, .15, .1]),
        "baseline_scale_score": base,
        "outcome_scale_score": y,
        "usage_level": level,
        "met_fidelity": level == "habitual",
    })


def pilot(effect: float, seed: int = 7, n: int = 800, drop_t: float = 0.1, drop_c: float = 0.1):
    rng = np.random.default_rng(seed)
    f = district(0.0, n=n, seed=seed)
    a = np.zeros(n, dtype=int)
    a[rng.permutation(n)[: n // 2]] = 1
    f["assigned"] = a
    f["outcome_scale_score"] = f["outcome_scale_score"] + effect * a
    gone = rng.random(n) < np.where(a == 1, drop_t, drop_c)
    f.loc[gone, "outcome_scale_score"] = np.nan
    return f


