"""Normal-normal posterior, three regions and the decision rule (rce.stats.bayes).

References: validation.md §10 -- BDA3 §5.5 eight schools, complete pooling with a flat prior:
mean 7.7 (reproduced 7.686), variance 16.6 (16.58), sd 4.1 (4.072), ±2 sd interval [-0.5, 15.9];
derived P(theta > 0) = 0.9705. Informative-prior example: mu0 = 0, tau0 = 0.2, b = 0.15,
se = 0.10 -> mean 0.1200, sd 0.0894, P(> 0) = 0.9101.
"""

from __future__ import annotations

import json
import math

import pytest

from rce.errors import DataError
from rce.stats.bayes import (
    Prior,
    apply_decision,
    complete_pooling,
    effect_probabilities,
    normal_posterior,
)

Y = [28, 8, -3, 7, -1, 1, 18, 12]
S = [15, 10, 16, 11, 9, 11, 10, 18]


def test_eight_schools_complete_pooling():
    p = complete_pooling(Y, S)
    assert p.mean == pytest.approx(7.686, abs=5e-4)
    assert p.sd**2 == pytest.approx(16.58, abs=5e-3)
    assert p.sd == pytest.approx(4.072, abs=5e-4)
    # BDA3 prints the rounded mean ± 2 x the rounded sd: 7.7 ± 8.2 = [-0.5, 15.9]
    m, s = round(p.mean, 1), round(p.sd, 1)
    assert (m, s) == (7.7, 4.1)
    assert round(m - 2 * s, 1) == -0.5 and round(m + 2 * s, 1) == 15.9
    assert p.prob_positive == pytest.approx(0.9705, abs=5e-5)


def test_informative_prior_example():
    p = normal_posterior(0.15, 0.10, prior=Prior("test", 0.0, 0.2, ""))
    assert p.mean == pytest.approx(0.1200, abs=5e-5)
    assert p.sd == pytest.approx(0.0894, abs=5e-5)
    assert p.prob_positive == pytest.approx(0.9101, abs=5e-5)


def test_flat_limit_and_shrinkage():
    flat = normal_posterior(0.3, 0.1, prior=Prior.flat())
    wide = normal_posterior(0.3, 0.1, prior=Prior("wide", 0.0, 1e6, ""))
    assert wide.mean == pytest.approx(flat.mean) and wide.sd == pytest.approx(flat.sd)
    sc = normal_posterior(0.3, 0.1, prior=Prior.sceptical())
    assert 0 < sc.mean < 0.3 and sc.sd < 0.1


@pytest.mark.parametrize("c", [0.0, 0.05, 0.2])
def test_three_regions_sum_to_one(c):
    p = normal_posterior(0.1, 0.08, meaningful=c)
    assert p.prob_worse + p.prob_no_change + p.prob_better == pytest.approx(1.0)
    if c == 0:
        assert p.prob_no_change == pytest.approx(0.0, abs=1e-12)


def test_decision_rule():
    strong = normal_posterior(0.4, 0.05, meaningful=0.1)
    assert apply_decision(strong, pass_probability=0.75, fail_probability=0.5).verdict == "pass"
    none = normal_posterior(0.0, 0.05, meaningful=0.1)
    assert apply_decision(none, pass_probability=0.75, fail_probability=0.5).verdict == "fail"
    mid = normal_posterior(0.13, 0.06, prior=Prior.flat(), meaningful=0.1)
    assert 0.5 < mid.prob_better < 0.75
    assert apply_decision(mid, pass_probability=0.75, fail_probability=0.5).verdict == \
        "inconclusive"
    with pytest.raises(DataError):
        apply_decision(mid, pass_probability=0.4, fail_probability=0.5)


def test_effect_probabilities_result():
    r = effect_probabilities(0.2, 0.07, meaningful=0.1, pass_probability=0.75,
                             fail_probability=0.5)
    f = r.to_frame()
    assert list(f["prior"]) == ["weakly informative", "flat", "sceptical"]
    d = r.to_dict()
    json.dumps(d)
    assert d["decision"]["verdict"] == "pass"
    assert set(d["three_region"]) == {"meaningfully_worse", "no_meaningful_change",
                                      "meaningfully_better"}
    # flat prior -> infinite prior sd serialises as null
    assert d["sensitivity"][0]["prior"]["sd"] is None
    assert "Decision" in r.summary()


def test_bad_inputs():
    with pytest.raises(DataError):
        normal_posterior(0.1, 0.0)
    with pytest.raises(DataError):
        normal_posterior(math.nan, 0.1)
    with pytest.raises(DataError):
        complete_pooling([1, 2], [1])
