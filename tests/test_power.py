"""MDES and required sample size (rce.stats.power).

References: methods.md §1.8 -- the RCE Coach's MDES package (mathematica-mpr/MDES@a703493):
matched comparison N = 400, R²_y = .5 (R²_T = .15 default) -> MDES ≈ 0.215 SD. The clustered
formulas have no published worked number; they are tested against the formula written out
(MDES_CL / MDES_MCG_CL) and against limiting identities.
"""

from __future__ import annotations

import json
import math

import pytest
from scipy import stats

from rce.errors import DataError
from rce.stats.power import mdes, required_sample_size


def test_matched_coach_example():
    r = mdes("matched", n_students=400, r2_outcome=0.5)
    assert r.mdes == pytest.approx(0.215, abs=5e-4)
    assert r.r2_treatment == 0.15 and r.df == 398


def test_randomized_has_no_matching_penalty():
    m = mdes("matched", n_students=400).mdes
    r = mdes("randomized", n_students=400).mdes
    assert r == pytest.approx(m * math.sqrt(0.85))


def test_clustered_formula():
    g, m, rho = 20, 25, 0.02
    f = stats.t.ppf(0.975, g - 2) + stats.t.ppf(0.8, g - 2)
    expected = f * math.sqrt(4 * ((1 - rho) / (g * m) + rho / g))
    r = mdes("clustered", n_clusters=g, cluster_size=m)
    assert r.mdes == pytest.approx(expected)
    assert r.df == g - 2
    # MDES_MCG_CL: the same with 1/(1 - R²_T) inside the square root.
    rm = mdes("clustered-matched", n_students=5000, n_clusters=20)
    f = stats.t.ppf(0.975, 18) + stats.t.ppf(0.8, 18)
    expected = f * math.sqrt(4 / 0.85 * ((1 - rho) / 5000 + rho / 20))
    assert rm.mdes == pytest.approx(expected)


def test_icc_zero_clustered_close_to_individual_shape():
    # With rho = 0 the variance term equals the individual one; only the df differ.
    r = mdes("clustered", n_clusters=40, cluster_size=10, icc=0.0)
    f = stats.t.ppf(0.975, 38) + stats.t.ppf(0.8, 38)
    assert r.mdes == pytest.approx(f * math.sqrt(4 / 400))


def test_required_n_inverts_mdes():
    target = mdes("matched", n_students=400, r2_outcome=0.5).mdes
    r = required_sample_size(target, "matched", r2_outcome=0.5)
    assert r.n_students == 400 and r.solved_for == "n_students"
    r = required_sample_size(0.25, "clustered", cluster_size=25, icc=0.15)
    assert r.mdes <= 0.25
    assert mdes("clustered", n_clusters=r.n_clusters - 1, cluster_size=25, icc=0.15).mdes > 0.25


def test_outputs_and_errors():
    r = mdes("matched", n_students=400, sd_outcome=40.0)
    assert r.mde == pytest.approx(r.mdes * 40)
    json.dumps(r.to_dict())
    assert len(r.to_frame()) == 1 and "MDES" in r.summary()
    with pytest.raises(DataError):
        mdes("bogus", n_students=10)
    with pytest.raises(DataError):
        mdes("clustered", n_clusters=2, cluster_size=10)
    with pytest.raises(DataError):
        required_sample_size(-1)
