"""Propensity-score matching and balance (rce.stats.matching).

Reference: validation.md §4 -- MatchIt's reference example
``matchit(treat ~ age + educ + race + nodegree + married + re74 + re75, data = lalonde)``
(logit PS, 1:1 nearest neighbour without replacement, ATT). Both balance tables are published to
4 dp; tolerance abs=5e-5 (validation.md §13). Data: MatchIt's ``lalonde`` (614 rows) vendored
from Rdatasets (csv/MatchIt/lalonde.csv) in tests/data/reference/matchit_lalonde.csv.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rce.errors import DataError
from rce.stats.matching import (
    balance_table,
    match,
    match_weights,
    nearest_neighbor,
    overlap_coefficient,
)

ATOL = 5e-5  # 4-dp source table (validation.md §4, §13)
DATA = Path(__file__).parent / "data" / "reference" / "matchit_lalonde.csv"

# validation.md §4, "Balance, all data": variable -> (mean T, mean C, SMD, VR)
ALL = {
    "distance": (0.5774, 0.1822, 1.7941, 0.9211),
    "age": (25.8162, 28.0303, -0.3094, 0.4400),
    "educ": (10.3459, 10.2354, 0.0550, 0.4959),
    "race[black]": (0.8432, 0.2028, 1.7615, None),
    "race[hispan]": (0.0595, 0.1422, -0.3498, None),
    "race[white]": (0.0973, 0.6550, -1.8819, None),
    "married": (0.1892, 0.5128, -0.8263, None),
    "nodegree": (0.7081, 0.5967, 0.2450, None),
    "re74": (2095.5737, 5619.2365, -0.7211, 0.5181),
    "re75": (1532.0553, 2466.4844, -0.2903, 0.9563),
}
# validation.md §4, "After matching (185 / 185)": variable -> (mean C matched, SMD, VR)
AFTER = {
    "distance": (0.3629, 0.9739, 0.7566),
    "age": (25.3027, 0.0718, 0.4568),
    "educ": (10.6054, -0.1290, 0.5721),
    "race[black]": (0.4703, 1.0259, None),
    "race[hispan]": (0.2162, -0.6629, None),
    "race[white]": (0.3135, -0.7296, None),
    "nodegree": (0.6378, 0.1546, None),
    "married": (0.2108, -0.0552, None),
    "re74": (2342.1076, -0.0505, 1.3289),
    "re75": (1614.7451, -0.0257, 1.4956),
}


@pytest.fixture(scope="module")
def lalonde_match():
    d = pd.read_csv(DATA)
    return match(d, "treat", ["age", "educ", "married", "nodegree", "re74", "re75"],
                 categorical=["race"], distance="ps")


def test_lalonde_shape(lalonde_match):
    r = lalonde_match
    assert (r.n_treated, r.n_comparison) == (185, 429)
    assert (r.n_treated_matched, r.n_comparison_matched) == (185, 185)
    assert r.estimand == "ATT"


def test_matchit_balance_all_data(lalonde_match):
    b = lalonde_match.balance_before.set_index("variable")
    for v, (mt, mc, smd, vr) in ALL.items():
        assert b.at[v, "mean_treatment"] == pytest.approx(mt, abs=ATOL), v
        assert b.at[v, "mean_comparison"] == pytest.approx(mc, abs=ATOL), v
        assert b.at[v, "smd"] == pytest.approx(smd, abs=ATOL), v
        if vr is None:
            assert np.isnan(b.at[v, "var_ratio"])
        else:
            assert b.at[v, "var_ratio"] == pytest.approx(vr, abs=ATOL), v


def test_matchit_balance_after_matching(lalonde_match):
    a = lalonde_match.balance_after.set_index("variable")
    for v, (mc, smd, vr) in AFTER.items():
        assert a.at[v, "mean_comparison"] == pytest.approx(mc, abs=ATOL), v
        assert a.at[v, "smd"] == pytest.approx(smd, abs=ATOL), v
        if vr is not None:
            assert a.at[v, "var_ratio"] == pytest.approx(vr, abs=ATOL), v


def test_wwc_convention_differs_and_is_pooled_sd(lalonde_match):
    # The WWC column uses the pooled within-group SD with omega on the sample at hand.
    d = pd.read_csv(DATA)
    t, c = d.loc[d.treat == 1, "age"], d.loc[d.treat == 0, "age"]
    n = len(t) + len(c)
    sp = np.sqrt(((len(t) - 1) * t.var() + (len(c) - 1) * c.var()) / (n - 2))
    g = (1 - 3 / (4 * n - 9)) * (t.mean() - c.mean()) / sp
    b = lalonde_match.balance_before.set_index("variable")
    assert b.at["age", "smd_wwc"] == pytest.approx(g, rel=1e-12)


def test_to_frame_and_dict_are_json_safe(lalonde_match):
    import json

    f = lalonde_match.to_frame()
    assert {"smd_before", "smd_after", "var_ratio_before", "smd_wwc_after"} <= set(f.columns)
    json.dumps(lalonde_match.to_dict())
    assert "ATT" in lalonde_match.summary()


def test_greedy_order_and_caliper():
    # Two treated, two controls: greedy from the largest score takes the closest control first.
    dist = pd.Series([0.9, 0.5, 0.85, 0.1], index=["t1", "t2", "c1", "c2"])
    treated = pd.Series([1, 1, 0, 0], index=dist.index)
    p = nearest_neighbor(dist, treated)
    assert dict(zip(p.treated, p.control, strict=True)) == {"t1": "c1", "t2": "c2"}
    # A caliper of 0.2 leaves t2 unmatched (|0.5 - 0.1| > 0.2).
    p = nearest_neighbor(dist, treated, caliper=0.2)
    assert list(p.treated) == ["t1"]


def test_exact_strata_never_cross():
    dist = pd.Series([0.5, 0.5, 0.51, 0.9])
    treated = pd.Series([1, 1, 0, 0])
    grade = pd.Series(["3", "4", "4", "3"])
    p = nearest_neighbor(dist, treated, strata=grade)
    pairs = dict(zip(p.treated, p.control, strict=True))
    assert pairs == {0: 3, 1: 2}


def test_ratio_and_replacement_weights():
    dist = pd.Series([0.5, 0.6, 0.49, 0.52, 0.61, 0.2])
    treated = pd.Series([1, 1, 0, 0, 0, 0])
    p = nearest_neighbor(dist, treated, ratio=2)
    assert p.groupby("treated").size().to_dict() == {0: 2, 1: 2}
    assert p.control.is_unique
    p = nearest_neighbor(dist, treated, ratio=1, replace=True)
    w = match_weights(p)
    assert w.loc[0] == 1 and w.loc[1] == 1
    # ATT weights of the comparison units sum to the number of distinct units used.
    assert w.loc[p.control.unique()].sum() == pytest.approx(p.control.nunique())


def test_users_outnumber_nonusers_keeps_att():
    rng = np.random.default_rng(3)
    n = 300
    x = rng.normal(size=n)
    t = (rng.random(n) < 0.8).astype(int)
    d = pd.DataFrame({"t": t, "x": x})
    r = match(d, "t", ["x"])
    assert r.estimand == "ATT"
    assert r.n_treated_matched == r.n_comparison < r.n_treated
    assert any("never switched" in n for n in r.notes)


def test_missing_covariates_counted_and_errors():
    d = pd.DataFrame({"t": [1, 1, 0, 0, 1, 0], "x": [1.0, None, 0.5, 0.2, 0.9, 0.1]})
    r = match(d, "t", ["x"])
    assert r.n_dropped_missing == 1
    with pytest.raises(DataError):
        match(d.assign(t=1), "t", ["x"])
    with pytest.raises(DataError):
        match(d, "t", ["nope"])


def test_overlap_coefficient_bounds():
    a = np.linspace(0, 1, 100)
    assert overlap_coefficient(a, a) == pytest.approx(1.0)
    assert overlap_coefficient(a, a + 5) == pytest.approx(0.0)


def test_balance_table_unit_weights_equal_unweighted():
    rng = np.random.default_rng(0)
    d = pd.DataFrame({"t": rng.integers(0, 2, 50), "x": rng.normal(size=50)})
    a = balance_table(d, "t", ["x"])
    b = balance_table(d, "t", ["x"], weights=pd.Series(1.0, index=d.index))
    pd.testing.assert_frame_equal(a, b)
