"""WWC arithmetic (rce.stats.wwc).

References: attrition boundaries -- WWC Standards Handbook v4.1 Table II.1, selected points printed
in methods.md §3.4; clustering correction identities -- validation.md §6 (Hedges 2007 / WWC eq.
E.21); equivalence bands -- methods.md §3.3 and validation.md §6 (edges inclusive: ≤ 0.05,
≤ 0.25).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from rce.errors import DataError
from rce.stats.wwc import (
    attrition,
    attrition_boundary,
    attrition_level,
    baseline_equivalence,
    cluster_correction,
    equivalence_verdict,
    wwc_rating,
)

# methods.md §3.4: overall % -> max differential (percentage points)
CAUTIOUS = {0: 5.7, 5: 6.1, 10: 6.3, 15: 5.9, 20: 5.4, 30: 4.1, 40: 2.6, 50: 1.0, 57: 0.0}
OPTIMISTIC = {0: 10.0, 5: 10.5, 10: 10.9, 15: 10.7, 20: 10.0, 30: 8.2, 40: 6.0, 50: 3.7,
              57: 2.1, 60: 1.4, 65: 0.3}


@pytest.mark.parametrize(("overall", "limit"), sorted(CAUTIOUS.items()))
def test_cautious_boundary_points(overall, limit):
    assert attrition_boundary(overall / 100, "cautious") == pytest.approx(limit / 100)


@pytest.mark.parametrize(("overall", "limit"), sorted(OPTIMISTIC.items()))
def test_optimistic_boundary_points(overall, limit):
    assert attrition_boundary(overall / 100, "optimistic") == pytest.approx(limit / 100)


def test_beyond_table_is_high():
    assert attrition_boundary(0.60, "cautious") is None
    assert attrition_boundary(0.70, "optimistic") is None
    assert attrition_level(0.60, 0.0, "cautious") == "high"
    assert attrition_level(0.60, 0.01, "optimistic") == "low"


def test_lookup_rounds_to_whole_percent_and_edge_inclusive():
    # 29.6% rounds to 30%: cautious limit 4.1 pp; exactly on the boundary counts as low.
    assert attrition_boundary(0.296, "cautious") == pytest.approx(0.041)
    assert attrition_level(0.30, 0.041, "cautious") == "low"
    assert attrition_level(0.30, 0.042, "cautious") == "high"
    # 30% overall, 6 pp differential: high if cautious, low if optimistic (baselinr example).
    assert attrition_level(0.30, 0.06, "cautious") == "high"
    assert attrition_level(0.30, 0.06, "optimistic") == "low"


def test_attrition_from_counts():
    r = attrition(100, 100, 90, 82)
    assert r.overall == pytest.approx(0.14)
    assert r.differential == pytest.approx(0.08)
    assert r.level_cautious == "high" and r.level_optimistic == "low"
    assert set(r.to_frame()["boundary"]) == {"cautious", "optimistic"}
    assert "cautious" in r.summary()
    with pytest.raises(DataError):
        attrition(10, 10, 11, 5)
    with pytest.raises(DataError):
        attrition_boundary(1.5)


def test_cluster_correction_rho_zero_is_identity():
    # validation.md §6 identity 1: rho = 0 -> t unchanged, h = N - 2.
    r = cluster_correction(2.5, 400, 20, 0.0)
    assert r.t_adjusted == pytest.approx(2.5)
    assert r.df == pytest.approx(398)
    assert r.p_value == pytest.approx(2 * stats.t.sf(2.5, 398))


def test_cluster_correction_rho_one_equals_cluster_means_t():
    # validation.md §6 identity 2: in-sample ICC = 1, m = 10 clusters per arm of n = 20;
    # corrected t equals the t-test on cluster means (2.622426), h = 2m - 2 = 18.
    rng = np.random.default_rng(1)
    m, n = 10, 20
    mt, mc = rng.normal(0.3, 1, m), rng.normal(0, 1, m)
    t_naive = stats.ttest_ind(np.repeat(mt, n), np.repeat(mc, n)).statistic
    r = cluster_correction(t_naive, 2 * m * n, n, 1.0)
    assert r.t_adjusted == pytest.approx(stats.ttest_ind(mt, mc).statistic, abs=1e-6)
    assert r.t_adjusted == pytest.approx(2.622426, abs=1e-6)
    assert r.df == pytest.approx(18, abs=1e-6)


def test_cluster_correction_shrinks_t():
    r = cluster_correction(3.0, 500, 25, 0.20)
    assert 0 < r.t_adjusted < 3.0 and r.df < 498


@pytest.mark.parametrize(
    ("g", "verdict"),
    [(0.0, "satisfied"), (0.05, "satisfied"), (-0.05, "satisfied"), (0.0501, "adjust"),
     (0.25, "adjust"), (-0.25, "adjust"), (0.2501, "fails"), (float("nan"), "not computed")],
)
def test_equivalence_bands(g, verdict):
    assert equivalence_verdict(g) == verdict


def test_baseline_equivalence_continuous_and_binary():
    rng = np.random.default_rng(2)
    n = 400
    t = np.repeat([1, 0], n // 2)
    d = pd.DataFrame({
        "t": t,
        "pre": rng.normal(0, 1, n) + 0.15 * t,
        "el": (rng.random(n) < 0.3).astype(float),
    })
    r = baseline_equivalence(d, "t", ["pre", "el"])
    rows = {x.variable: x for x in r.rows}
    a, b = d.pre[d.t == 1], d.pre[d.t == 0]
    sp = np.sqrt((a.var() * (len(a) - 1) + b.var() * (len(b) - 1)) / (n - 2))
    assert rows["pre"].g == pytest.approx((1 - 3 / (4 * n - 9)) * (a.mean() - b.mean()) / sp)
    pt, pc = d.el[d.t == 1].mean(), d.el[d.t == 0].mean()
    cox = (1 - 3 / (4 * n - 9)) * (np.log(pt / (1 - pt)) - np.log(pc / (1 - pc))) / 1.65
    assert rows["el"].kind == "binary" and rows["el"].g == pytest.approx(cox)
    assert rows["pre"].verdict == equivalence_verdict(rows["pre"].g)
    assert r.to_dict()["rows"][0]["variable"] == "pre"


def test_rating_emulation():
    rating, crit = wwc_rating("randomized", attrition_low=True, equivalence_satisfied=None)
    assert rating == "Meets WWC standards without reservations"
    rating, _ = wwc_rating("randomized", attrition_low=False, equivalence_satisfied=True)
    assert rating == "Meets WWC standards with reservations"
    rating, _ = wwc_rating("randomized", attrition_low=False, equivalence_satisfied=False)
    assert rating == "Does not meet WWC standards"
    rating, crit = wwc_rating("matched", attrition_low=None, equivalence_satisfied=True)
    assert rating == "Meets WWC standards with reservations"
    assert all(c.met is not None for c in crit)
    rating, _ = wwc_rating("none", attrition_low=None, equivalence_satisfied=None)
    assert rating == "Not eligible for review"


def test_required_variables_gate_equivalence():
    import pandas as pd

    d = pd.DataFrame({
        "t": [1] * 50 + [0] * 50,
        "pre": list(range(50)) + list(range(50)),          # identical: g = 0
        "rare": [1] * 10 + [0] * 40 + [1] * 2 + [0] * 48,  # rare dummy, large Cox index
    })
    gated = baseline_equivalence(d, "t", ["pre", "rare"], required=("pre",))
    assert "rare" in gated.failing and gated.failing_required == ()
    assert gated.satisfied
    assert not baseline_equivalence(d, "t", ["pre", "rare"]).satisfied
