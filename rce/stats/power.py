"""Minimum detectable effect size (MDES) and required sample size, as the RCE Coach's ``MDES``
package computes them (``methods.md`` §1.8; ``mathematica-mpr/MDES@a703493``).

- Matched comparison (``MDES_MCG``):
  MDES = (t_{1-alpha/2, N-2} + t_{power, N-2}) · √[(1 - R²_y) / ((1 - R²_T) · N · p(1 - p))].
- Clustered (``MDES_CL``; with R²_T: ``MDES_MCG_CL``), g clusters of m students:
  MDES = (t_{1-alpha/2, g-2} + t_{power, g-2}) ·
         √{[1/(p(1-p)(1 - R²_T))] · [(1-rho)(1-R²_W)/(g·m) + rho(1-R²_B)/g]}.

R²_T (default 0.15 for matched designs, 0 for randomized) is the share of the treatment indicator's
variance explained by the covariates -- the precision lost to matching. MDES is in SD units; times
the outcome SD it is the minimum detectable effect (MDE) in outcome units.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from rce.errors import DataError
from rce.stats import _dist
from rce.stats._impact_common import fmt, json_safe

#: Defaults of the RCE Coach's MDES package (methods.md §1.8).
DEFAULT_ALPHA = 0.05
DEFAULT_POWER = 0.80
DEFAULT_P_TREATED = 0.5
DEFAULT_R2_TREATMENT_MATCHED = 0.15
DEFAULT_ICC = 0.02

DESIGNS = ("matched", "randomized", "clustered", "clustered-matched")


@dataclass(frozen=True)
class PowerResult:
    """MDES and/or required sample size for one design and its assumptions."""

    design: str
    mdes: float
    n_students: float
    n_clusters: float | None
    cluster_size: float | None
    df: float
    alpha: float
    power: float
    p_treated: float
    r2_outcome: float
    r2_treatment: float
    icc: float | None
    r2_between: float | None
    solved_for: str  # "mdes" | "n_students" | "n_clusters"
    sd_outcome: float | None = None
    notes: tuple[str, ...] = field(default=())

    @property
    def mde(self) -> float | None:
        """Minimum detectable effect in outcome units (needs ``sd_outcome``)."""
        return None if self.sd_outcome is None else self.mdes * self.sd_outcome

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict."""
        d = self.__dict__.copy()
        d["mde"] = self.mde
        return json_safe(d)

    def to_frame(self) -> pd.DataFrame:
        """One row: the design, its assumptions and the result."""
        return pd.DataFrame([{k: v for k, v in self.to_dict().items() if k != "notes"}])

    def summary(self) -> str:
        """Readable text."""
        if self.n_clusters is not None:
            size = (f"{fmt(self.n_clusters, 1)} clusters of {fmt(self.cluster_size, 1)} students "
                    f"({fmt(self.n_students, 0)} students), ICC {fmt(self.icc, 2)}")
        else:
            size = f"{fmt(self.n_students, 0)} students"
        mde = "" if self.mde is None else f" (= {fmt(self.mde, 2)} outcome units)"
        return (
            f"{self.design} design, {size}: MDES {fmt(self.mdes)} SD{mde} at power "
            f"{self.power:.0%}, two-sided alpha {self.alpha:g}, "
            f"R²(outcome) {fmt(self.r2_outcome, 2)}, R²(treatment) {fmt(self.r2_treatment, 2)}."
        )


def _check(alpha: float, power: float, p: float, *r2: float) -> None:
    if not (0 < alpha < 1 and 0 < power < 1 and 0 < p < 1):
        raise DataError(
            "alpha, power and the treated share must lie strictly between 0 and 1",
            where="power",
            hint="Typical values: alpha 0.05, power 0.80, treated share 0.5.",
        )
    for v in r2:
        if v is not None and not (0 <= v < 1):
            raise DataError("R² values must lie in [0, 1)", where="power", hint=None)


def _factor(df: float, alpha: float, power: float) -> float:
    return float(_dist.t_ppf(1 - alpha / 2, df) + _dist.t_ppf(power, df))


def _mdes_individual(n: float, alpha, power, p, r2_y, r2_t) -> tuple[float, float]:
    df = n - 2
    if df <= 0:
        return math.inf, df
    return _factor(df, alpha, power) * math.sqrt((1 - r2_y) / ((1 - r2_t) * n * p * (1 - p))), df


def _mdes_clustered(g: float, m: float, alpha, power, p, r2_w, r2_b, r2_t, icc):
    df = g - 2
    if df <= 0:
        return math.inf, df
    a = 1.0 / (p * (1 - p) * (1 - r2_t))
    v = (1 - icc) * (1 - r2_w) / (g * m) + icc * (1 - r2_b) / g
    return _factor(df, alpha, power) * math.sqrt(a * v), df


def mdes(
    design: str = "matched",
    *,
    n_students: float | None = None,
    n_clusters: float | None = None,
    cluster_size: float | None = None,
    alpha: float = DEFAULT_ALPHA,
    power: float = DEFAULT_POWER,
    p_treated: float = DEFAULT_P_TREATED,
    r2_outcome: float = 0.0,
    r2_treatment: float | None = None,
    icc: float = DEFAULT_ICC,
    r2_between: float = 0.0,
    sd_outcome: float | None = None,
) -> PowerResult:
    """Minimum detectable effect size for a design and sample.

    Parameters
    ----------
    design
        ``"matched"`` or ``"randomized"`` (students), ``"clustered"`` (randomized clusters) or
        ``"clustered-matched"``.
    n_students
        Total students (individual designs; for clustered designs, with ``n_clusters``, it sets the
        cluster size).
    n_clusters, cluster_size
        Clustered designs: number of clusters g and students per cluster m.
    alpha, power, p_treated
        Two-sided significance level, power, share of units treated.
    r2_outcome
        Share of outcome variance explained by covariates (within clusters for clustered designs).
    r2_treatment
        Share of treatment variance explained by covariates; default 0.15 for matched designs and
        0 for randomized ones (the Coach's defaults).
    icc, r2_between
        Intraclass correlation (default 0.02, the Coach's) and between-cluster R².
    sd_outcome
        Optional outcome SD to express the MDE in outcome units.

    Examples
    --------
    >>> round(mdes("matched", n_students=400, r2_outcome=0.5).mdes, 3)
    0.215
    """
    if design not in DESIGNS:
        raise DataError(f"unknown design {design!r}", where="power",
                        hint=f"Use one of: {', '.join(DESIGNS)}.")
    if r2_treatment is None:
        r2_treatment = DEFAULT_R2_TREATMENT_MATCHED if design.endswith("matched") else 0.0
    _check(alpha, power, p_treated, r2_outcome, r2_treatment, r2_between)
    if design in ("matched", "randomized"):
        if n_students is None or n_students <= 2:
            raise DataError("give the number of students (more than 2)", where="power",
                            hint="e.g. n_students=400")
        value, df = _mdes_individual(float(n_students), alpha, power, p_treated, r2_outcome,
                                     r2_treatment)
        return PowerResult(design, value, float(n_students), None, None, df, alpha, power,
                           p_treated, r2_outcome, r2_treatment, None, None, "mdes", sd_outcome,
                           _notes(design))
    g, m = _cluster_dims(n_students, n_clusters, cluster_size)
    value, df = _mdes_clustered(g, m, alpha, power, p_treated, r2_outcome, r2_between,
                                r2_treatment, icc)
    return PowerResult(design, value, g * m, g, m, df, alpha, power, p_treated, r2_outcome,
                       r2_treatment, icc, r2_between, "mdes", sd_outcome, _notes(design))


def _cluster_dims(n_students, n_clusters, cluster_size) -> tuple[float, float]:
    if n_clusters is None or n_clusters <= 2:
        raise DataError("clustered designs need more than 2 clusters", where="power",
                        hint="Give n_clusters and cluster_size (or n_students).")
    if cluster_size is None:
        if n_students is None:
            raise DataError("give the cluster size or the total number of students",
                            where="power", hint=None)
        cluster_size = n_students / n_clusters
    if cluster_size < 1:
        raise DataError("clusters must hold at least one student", where="power", hint=None)
    return float(n_clusters), float(cluster_size)


def _notes(design: str) -> tuple[str, ...]:
    notes = ["Formulas of the RCE Coach's MDES package (Mathematica); t critical values use "
             "df = N - 2 (students) or g - 2 (clusters)."]
    if design.endswith("matched"):
        notes.append("R²(treatment) is the share of treatment variance explained by covariates; "
                     "it inflates the MDES of a matched design.")
    if design.startswith("clustered"):
        notes.append("The ICC and the between-cluster R² dominate power when clusters are few.")
    return tuple(notes)


def required_sample_size(
    target_mdes: float,
    design: str = "matched",
    *,
    cluster_size: float | None = None,
    alpha: float = DEFAULT_ALPHA,
    power: float = DEFAULT_POWER,
    p_treated: float = DEFAULT_P_TREATED,
    r2_outcome: float = 0.0,
    r2_treatment: float | None = None,
    icc: float = DEFAULT_ICC,
    r2_between: float = 0.0,
    sd_outcome: float | None = None,
) -> PowerResult:
    """Smallest sample whose MDES is at most ``target_mdes``.

    For individual designs the answer is a number of students; for clustered designs a number of
    clusters of ``cluster_size`` students. Both are rounded up to whole units.

    Examples
    --------
    >>> target = mdes("matched", n_students=400, r2_outcome=0.5).mdes
    >>> int(required_sample_size(target, "matched", r2_outcome=0.5).n_students)
    400
    """
    if not (target_mdes > 0):
        raise DataError("the target MDES must be positive", where="power", hint="e.g. 0.20")
    if design not in DESIGNS:
        raise DataError(f"unknown design {design!r}", where="power",
                        hint=f"Use one of: {', '.join(DESIGNS)}.")
    clustered = design.startswith("clustered")
    if clustered and (cluster_size is None or cluster_size < 1):
        raise DataError("clustered designs need the cluster size", where="power",
                        hint="e.g. cluster_size=25")
    kw = {"alpha": alpha, "power": power, "p_treated": p_treated, "r2_outcome": r2_outcome,
          "r2_treatment": r2_treatment, "icc": icc, "r2_between": r2_between,
          "sd_outcome": sd_outcome}

    def at(size: float) -> float:
        if clustered:
            return mdes(design, n_clusters=size, cluster_size=cluster_size, **kw).mdes
        return mdes(design, n_students=size, **kw).mdes

    lo = 3.0
    hi = 8.0
    while at(hi) > target_mdes:
        hi *= 2
        if hi > 1e9:
            raise DataError(
                "no feasible sample size reaches that MDES",
                where="power",
                hint="With clustered designs the ICC sets a floor on the MDES; add clusters' "
                "covariates (R² between) or accept a larger MDES.",
            )
    from scipy.optimize import brentq  # only here: scipy.optimize costs ~1 s to import

    root = brentq(lambda s: at(s) - target_mdes, lo, hi, xtol=1e-6) if at(lo) > \
        target_mdes else lo
    size = math.ceil(root - 1e-6)
    while at(size) > target_mdes:  # guard against the tolerance of the root finder
        size += 1
    res = (mdes(design, n_clusters=size, cluster_size=cluster_size, **kw) if clustered
           else mdes(design, n_students=size, **kw))
    return PowerResult(**{**res.__dict__, "solved_for": "n_clusters" if clustered else
                          "n_students"})


# ``power_analysis`` takes an argument named ``mdes`` (the CLI option); keep a second name.
_compute_mdes = mdes


@dataclass(frozen=True)
class PowerTable:
    """MDES or required sample for a design family, one row per variant (``rce power``)."""

    rows: tuple[PowerResult, ...]
    question: str  # "mdes" | "sample size"
    notes: tuple[str, ...] = ()

    def to_frame(self) -> pd.DataFrame:
        """One row per design variant."""
        return pd.concat([r.to_frame() for r in self.rows], ignore_index=True)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict."""
        return json_safe({"question": self.question, "rows": [r.to_dict() for r in self.rows],
                          "notes": list(self.notes)})

    def summary(self) -> str:
        """Readable text."""
        return "\n".join([*(r.summary() for r in self.rows), *self.notes])


def power_analysis(
    *,
    design: str = "individual",
    n: int | None = None,
    mdes: float | None = None,
    clusters: int | None = None,
    icc: float = DEFAULT_ICC,
    r2: float = 0.0,
    treated_share: float = DEFAULT_P_TREATED,
    alpha: float = DEFAULT_ALPHA,
    power: float = DEFAULT_POWER,
) -> PowerTable:
    """What ``rce power`` computes: the MDES for ``n`` students, or the sample for ``mdes``.

    Parameters
    ----------
    design
        ``"individual"`` (students matched or randomized: both rows are given) or ``"cluster"``
        (schools/classes randomized or matched: both rows).
    n
        Students in the study (gives the MDES). For cluster designs, with ``clusters``.
    mdes
        Effect to detect in SD units (gives the number of students, or of clusters of
        n / clusters students -- ``n`` is then needed for the cluster size).
    clusters, icc
        Number of clusters and the intraclass correlation (cluster designs).
    r2
        Share of outcome variance explained by covariates (a prior-year score typically explains
        0.5 or more).
    treated_share, alpha, power
        Share of units treated, two-sided significance level and power.
    """
    target_mdes = mdes  # the target effect (the CLI option), not the function
    if design not in ("individual", "cluster"):
        raise DataError(f"unknown design {design!r}", where="--design",
                        hint="Use 'individual' or 'cluster'.")
    if (n is None) == (target_mdes is None) and design == "individual":
        raise DataError("give either --n (for the MDES) or --mdes (for the sample size)",
                        where="rce power", hint="e.g. rce power --n 400")
    variants = (("randomized", "matched") if design == "individual"
                else ("clustered", "clustered-matched"))
    kw = {"alpha": alpha, "power": power, "p_treated": treated_share, "r2_outcome": r2}
    rows = []
    if design == "individual":
        for v in variants:
            rows.append(_compute_mdes(v, n_students=n, **kw) if target_mdes is None
                        else required_sample_size(target_mdes, v, **kw))
    else:
        if clusters is None:
            raise DataError("cluster designs need --clusters", where="rce power",
                            hint="e.g. rce power --design cluster --clusters 20 --n 500")
        if n is None:
            raise DataError("cluster designs need --n (students in all clusters) to set the "
                            "cluster size", where="rce power", hint=None)
        size = n / clusters
        for v in variants:
            rows.append(_compute_mdes(v, n_clusters=clusters, cluster_size=size, icc=icc, **kw)
                        if target_mdes is None else
                        required_sample_size(target_mdes, v, cluster_size=size, icc=icc, **kw))
    return PowerTable(tuple(rows), "mdes" if target_mdes is None else "sample size",
                      ("Matched rows include the RCE Coach's design-effect penalty R²(treatment) "
                       "= 0.15; randomized rows have none.",))
