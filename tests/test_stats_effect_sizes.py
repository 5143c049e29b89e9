"""Reference-value tests for rce.stats.effect_sizes (validation.md §5, §6; methods.md §3.1-3.2)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats

from rce.errors import DataError
from rce.stats.effect_sizes import (
    cohens_d,
    cox_index,
    glass_delta,
    hedges_g,
    hedges_g_from_summary,
    improvement_index,
    omega,
    pooled_sd,
    pooled_sd_from_summary,
    se_hedges_g,
    welch,
)

# validation.md §5: R t.test(extra ~ group, data = sleep).
SLEEP_1 = [0.7, -1.6, -0.2, -1.2, -0.1, 3.4, 3.7, 0.8, 0.0, 2.0]
SLEEP_2 = [1.9, 0.8, 1.1, 0.1, -0.1, 4.4, 5.5, 1.6, 4.6, 3.4]


def test_welch_sleep():
    w = welch(SLEEP_1, SLEEP_2)
    assert w.t == pytest.approx(-1.8608, abs=5e-5)
    assert w.df == pytest.approx(17.776, abs=5e-4)
    assert w.p_value == pytest.approx(0.07939, abs=5e-6)
    assert w.ci_low == pytest.approx(-3.3654832, abs=5e-8)
    assert w.ci_high == pytest.approx(0.2054832, abs=5e-8)
    assert (w.mean_x, w.mean_y) == (pytest.approx(0.75), pytest.approx(2.33))
    json.dumps(w.to_dict())
    assert "Welch" in w.summary()


def test_welch_matches_scipy_and_ignores_missing():
    rng = np.random.default_rng(3)
    a, b = rng.normal(0, 1, 15), rng.normal(0.5, 3, 40)
    ref = stats.ttest_ind(a, b, equal_var=False)
    w = welch(np.r_[a, np.nan], b, level=0.9)
    assert w.n_x == 15
    assert w.t == pytest.approx(ref.statistic) and w.p_value == pytest.approx(ref.pvalue)
    ci = ref.confidence_interval(0.9)
    assert (w.ci_low, w.ci_high) == (pytest.approx(ci.low), pytest.approx(ci.high))


def test_welch_tiny_group_gives_nan_not_error():
    w = welch([1.0], [1.0, 2.0, 3.0])
    assert math.isnan(w.se) and w.notes
    assert json.loads(json.dumps(w.to_dict()))["ci_low"] is None


def test_borenstein_example():
    # validation.md §6 (Borenstein et al. 2009 ch. 4; transcription unverified, formulas exact).
    h = hedges_g_from_summary(103, 100, 5.5, 4.5, 50, 50)
    assert pooled_sd_from_summary(5.5, 50, 4.5, 50) == pytest.approx(5.0249, abs=5e-5)
    assert h.d == pytest.approx(0.5970, abs=5e-5)
    assert h.omega == pytest.approx(0.9923, abs=5e-5)
    assert h.g == pytest.approx(0.5924, abs=5e-5)
    # Borenstein's variance is J^2 V_d with V_d in terms of d; rce's HedgesG.se is the WWC v4.1
    # formula in terms of g (methods.md §3.1), which differs in the 4th decimal here.
    v_d = (50 + 50) / (50 * 50) + h.d**2 / (2 * 100)
    assert v_d == pytest.approx(0.0418, abs=5e-5)
    assert h.omega**2 * v_d == pytest.approx(0.0411, abs=5e-5)
    assert math.sqrt(h.omega**2 * v_d) == pytest.approx(0.2028, abs=5e-5)
    assert h.se == pytest.approx(math.sqrt(100 / 2500 + h.g**2 / 200))


def test_omega_values():
    # methods.md §3.1: 0.958 at N = 20, 0.998 at N = 400; equals Hedges' J with df = N - 2.
    assert omega(20) == pytest.approx(0.958, abs=5e-4)
    assert omega(400) == pytest.approx(0.998, abs=5e-4)
    assert omega(100) == pytest.approx(1 - 3 / (4 * 98 - 1))
    with pytest.raises(DataError):
        omega(2)


def test_improvement_index_wwc():
    # validation.md §6: g = 0.25 -> 9.87 -> "+10"; methods.md §3.2: 0.10 -> +4, 0.50 -> +19.
    assert abs(improvement_index(0.25) - 9.871) < 1e-3
    assert round(improvement_index(0.25)) == 10
    assert round(improvement_index(0.10)) == 4
    assert round(improvement_index(0.50)) == 19
    assert math.isnan(improvement_index(float("nan")))


def test_hedges_g_adjusted_numerator_keeps_unadjusted_sd():
    rng = np.random.default_rng(0)
    t, c = rng.normal(1, 2, 60), rng.normal(0, 2, 80)
    raw = hedges_g(t, c)
    adj = hedges_g(t, c, adjusted_difference=0.5)
    assert adj.pooled_sd == raw.pooled_sd == pytest.approx(pooled_sd(t, c))
    assert adj.g == pytest.approx(omega(140) * 0.5 / raw.pooled_sd)
    assert raw.d == pytest.approx(cohens_d(t, c))
    assert raw.se == pytest.approx(se_hedges_g(raw.g, 60, 80))


def test_glass_delta_formula():
    # validation.md §6: Borenstein inputs with the control SD -> 0.6667 (formula-level).
    a = np.array([103 - 5.5, 103 + 5.5])  # mean 103, sd 7.78 (irrelevant to Glass)
    b = np.array([100 - 4.5 / math.sqrt(2), 100 + 4.5 / math.sqrt(2)])  # mean 100, sd 4.5
    assert glass_delta(a, b) == pytest.approx(3 / 4.5, abs=5e-5)


def test_cox_index_formula():
    p_t, p_c = 0.6, 0.4
    expect = omega(200) * (math.log(1.5) - math.log(2 / 3)) / 1.65
    assert cox_index(p_t, p_c, 100, 100) == pytest.approx(expect)
    with pytest.raises(DataError):
        cox_index(1.0, 0.5, 10, 10)
