"""Subgroup gaps: who scores how much, among users and non-users, in fall and in spring.

A vendor's "non-white users scored 6 points higher than their white peers" mixes three things: the
gap that already existed in the fall, the gap among students who did not use the product, and any
change that goes with use. This module lays them side by side for every subgroup dimension:

- rows per dimension x group x population (all, users, non_users, light, habitual) x measure
  (``baseline`` score, ``outcome`` score, ``gain`` = outcome - baseline), on the students who
  have both scores; ``window`` names the test window of the score ("fall", "winter", "spring"
  from the plan; None for gains);
- each group's gap to its reference group (plan; default the largest group) with a Welch interval,
  Benjamini-Hochberg adjusted p within the dimension, Hedges' g (WWC omega);
- the baseline-adjusted spring gap (OLS on baseline and group, clustered by school);
- a partially pooled (empirical-Bayes) group mean and gap beside the raw one, so that a group of 12
  students does not headline;
- per dimension, whether use goes with a change in the gap: the difference in gain gaps between
  users and non-users, and the use x group interaction in a regression with baseline control,
  clustered by school;
- small cells suppressed with complementary suppression (across groups of a dimension, and across
  users / non-users / usage levels of a group); a hidden reference group hides every gap to it.

What it cannot show: gaps describe groups; they do not say that the product caused any change in a
gap (students chose their use), and percentile gaps are not interval-scale.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from rce.config import Plan
from rce.errors import DataError
from rce.jsonsafe import json_value
from rce.privacy import suppress_cells
from rce.stats import _dist
from rce.stats.effect_sizes import hedges_g_from_summary, welch_from_summary
from rce.stats.multiplicity import bh_adjust
from rce.stats.ols import design_matrix, fit_ols
from rce.stats.shrinkage import eb_shrink

POPULATIONS = ("all", "users", "non_users", "light", "habitual")
#: What a row measures: the baseline score, the outcome score, or the gain between them.
MEASURES = ("baseline", "outcome", "gain")
OUTCOME_UNITS = {"percentile": "percentile points", "scale_score": "scale-score points"}

#: Statistics hidden in a suppressed cell.
_VALUE_COLS = (
    "mean", "sd", "gap", "se", "ci_low", "ci_high", "p_value", "p_adjusted", "hedges_g",
    "adjusted_gap", "adjusted_ci_low", "adjusted_ci_high", "adjusted_p_value",
    "pooled_mean", "pooled_estimate",
)

#: Dimensions with more groups than this (e.g. hundreds of schools) get descriptive gaps only:
#: a regression with one indicator per group would not fit in memory on large data.
_MAX_REGRESSION_GROUPS = 30

LIMIT_SENTENCE = (
    "Gaps describe groups of students; they do not show that the product changed any gap, "
    "because students and teachers chose how much to use it."
)


def _population_masks(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    n = len(frame)
    masks = {"all": np.ones(n, bool)}
    if "usage_level" not in frame.columns:
        return masks
    level = frame["usage_level"]
    known = level.notna().to_numpy()
    for name in ("light", "habitual"):
        masks[name] = (level == name).to_numpy() & known
    masks["non_users"] = (level == "none").to_numpy() & known
    masks["users"] = masks["light"] | masks["habitual"]
    return masks


@dataclass(frozen=True)
class GapsResult:
    """Subgroup gap tables.

    Attributes
    ----------
    outcome, unit
        "percentile" or "scale_score", and its unit.
    rows
        One row per dimension x group x population x measure (see module docstring); suppressed
        cells have ``suppressed=True`` and missing statistics. ``pooled_estimate`` is the
        partially pooled gap, ``pooled_mean`` the partially pooled group mean.
    interactions
        One row per dimension x non-reference group: difference in gain gaps (users minus
        non-users) and the use x group interaction from the regression.
    references
        Reference group per dimension.
    n, n_dropped
        Students analysed (both scores present) and students left out for a missing score.
    min_n
        Suppression threshold used.
    """

    outcome: str
    unit: str
    rows: pd.DataFrame
    interactions: pd.DataFrame
    references: dict[str, str]
    n: int
    n_dropped: int
    min_n: int
    windows: tuple[str, str] = ("fall", "spring")
    limits: str = LIMIT_SENTENCE
    notes: tuple[str, ...] = field(default_factory=tuple)

    def to_frame(self) -> pd.DataFrame:
        """The gap rows."""
        return self.rows

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict: ``rows`` (the design.md ``gaps[]`` entries, plus extra fields),
        ``interactions``, ``references``, counts and notes."""
        return {
            "outcome": self.outcome,
            "unit": self.unit,
            "n": self.n,
            "n_dropped": self.n_dropped,
            "min_n": self.min_n,
            "references": dict(self.references),
            "rows": _records(self.rows),
            "interactions": _records(self.interactions),
            "limits": self.limits,
            "notes": list(self.notes),
        }

    def interactions_to_dict(self) -> list[dict[str, Any]]:
        """JSON-safe list of interaction rows."""
        return _records(self.interactions)

    def summary(self) -> str:
        """Readable text: for each dimension, the spring gap among users and non-users and the
        fall gap, side by side."""
        lines = [f"Subgroup gaps in {self.outcome} ({self.unit}); n = {self.n:,} students with "
                 f"fall and spring scores; cells under {self.min_n} suppressed"]
        r = self.rows
        base_w, out_w = self.windows
        for dim in dict.fromkeys(r["dimension"]):
            lines.append(f"{dim} (reference: {self.references.get(dim, '?')})")
            sub = r[(r["dimension"] == dim) & ~r["is_reference"]]
            for group in dict.fromkeys(sub["group"]):
                g = sub[sub["group"] == group]

                def cell(pop: str, win: str, g: pd.DataFrame = g) -> str:
                    x = g[(g["population"] == pop) & (g["measure"] == win)]
                    if x.empty:
                        return "   -   "
                    x = x.iloc[0]
                    if x["suppressed"]:
                        return f"n<{self.min_n}"
                    return f"{x['gap']:+.1f}"

                lines.append(
                    f"  {group}: users {out_w} {cell('users', 'outcome')}, {base_w} "
                    f"{cell('users', 'baseline')}; non-users {out_w} "
                    f"{cell('non_users', 'outcome')}, {base_w} {cell('non_users', 'baseline')}"
                )
        lines.append(self.limits)
        lines.extend(f"Note: {n}" for n in self.notes)
        return "\n".join(lines)


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    out = []
    for rec in frame.to_dict(orient="records"):
        row = {}
        for k, v in rec.items():
            v = json_value(v)
            # Labels that are neither numbers nor text (categories, dates) are written as text.
            row[k] = v if v is None or isinstance(v, bool | int | float | str) else str(v)
        out.append(row)
    return out


def _dimensions(plan: Plan, frame: pd.DataFrame) -> list[str]:
    dims = list(plan.subgroups.dimensions)
    if plan.subgroups.include_grade_and_school:
        dims += ["grade", "school"]
    return [d for d in dict.fromkeys(dims) if d in frame.columns]


def compute_gaps(
    frame: pd.DataFrame,
    *,
    plan: Plan,
    outcome: str = "percentile",
    dimensions: Sequence[str] | None = None,
) -> GapsResult:
    """Subgroup gap tables for one score measure.

    Parameters
    ----------
    frame
        The analysis frame (``rce.canonical.ANALYSIS_COLUMNS``).
    plan
        Study plan: dimensions and reference groups (``plan.subgroups``), minimum cell size
        (``plan.privacy.min_cell_size``), cluster variable and confidence level
        (``plan.analysis``).
    outcome
        "percentile" or "scale_score" (``baseline_<outcome>`` and ``outcome_<outcome>``).
    dimensions
        Override of the dimensions analysed.

    Returns
    -------
    GapsResult
    """
    if outcome not in OUTCOME_UNITS:
        raise DataError(f"unknown gap outcome {outcome!r}", where="gaps",
                        hint="Use 'percentile' or 'scale_score'.")
    base_col, out_col = f"baseline_{outcome}", f"outcome_{outcome}"
    for col in (base_col, out_col):
        if col not in frame.columns:
            raise DataError(f"the analysis frame has no column {col!r}", where="analysis frame",
                            hint="Both a baseline and an outcome score are needed for gaps.")
    level = plan.analysis.confidence_level
    min_n = plan.privacy.min_cell_size
    cluster_var = plan.analysis.cluster
    notes: list[str] = []
    both = frame[base_col].notna() & frame[out_col].notna()
    n_dropped = int((~both).sum())
    data = frame.loc[both].reset_index(drop=True)
    if n_dropped:
        notes.append(f"{n_dropped:,} students without both a fall and a spring score are not in "
                     "the gap tables, so fall and spring gaps describe the same students.")
    if len(data) == 0:
        raise DataError("no student has both a baseline and an outcome score", where="gaps",
                        hint="Check the baseline and outcome windows in rce.toml [outcomes].")
    dims = list(dimensions) if dimensions is not None else _dimensions(plan, data)
    masks = _population_masks(data)
    if len(masks) == 1:
        notes.append("No usage level in the analysis frame: only whole-population gaps.")
    values = {
        "baseline": data[base_col].to_numpy(dtype=float),
        "outcome": data[out_col].to_numpy(dtype=float),
    }
    values["gain"] = values["outcome"] - values["baseline"]
    window_of = {"baseline": plan.outcomes.baseline_window,
                 "outcome": plan.outcomes.outcome_window, "gain": None}
    clusters = ((cluster_var, pd.factorize(data[cluster_var])[0])
                if cluster_var in data.columns else None)
    if clusters is None:
        notes.append(f"No {cluster_var} column: regression standard errors are HC1, not "
                     "clustered.")

    all_rows: list[dict[str, Any]] = []
    inter_rows: list[dict[str, Any]] = []
    references: dict[str, str] = {}
    for dim in dims:
        col = data[dim]
        present = col.notna().to_numpy()
        n_missing = int((~present).sum())
        if n_missing:
            notes.append(f"{n_missing:,} students with no recorded {dim} are not in the {dim} "
                         "table.")
        labels = col.astype("str")
        counts = labels[present].value_counts()
        if counts.empty:
            continue
        ref = plan.subgroups.reference.get(dim)
        if ref is not None and ref not in counts.index:
            notes.append(f"Reference group {ref!r} for {dim} is not in the data; the largest "
                         "group is used.")
            ref = None
        if ref is None:
            top = counts[counts == counts.max()].index
            ref = sorted(top)[0]
        references[dim] = ref
        groups = sorted(counts.index, key=lambda g: (g != ref, -counts[g], g))
        # One integer code per student (position in ``groups``; -1 = not recorded), so every
        # statistic below is a bincount pass rather than one boolean mask per group.
        raw, uniques = pd.factorize(labels.where(present))
        position = {g: j for j, g in enumerate(groups)}
        mapping = np.array([position[u] for u in uniques], dtype=np.int64)
        codes = np.where(raw >= 0, mapping[np.maximum(raw, 0)], -1) if len(mapping) else raw
        regress = len(groups) <= _MAX_REGRESSION_GROUPS
        if not regress:
            notes.append(f"{dim} has {len(groups)} groups: the baseline-adjusted gaps and the use "
                         "x group interaction are not estimated for it.")
        dim_rows = _dimension_rows(dim, ref, groups, codes, masks, values, data, base_col,
                                   out_col, clusters, level, window_of, outcome, regress)
        all_rows.extend(dim_rows)
        inter_rows.extend(_interactions(dim, ref, groups, codes, masks, data, base_col,
                                        out_col, clusters, level, dim_rows, regress))
    rows = pd.DataFrame(all_rows)
    if rows.empty:
        raise DataError("no subgroup dimension has any recorded value", where="gaps",
                        hint="Check the roster columns (race_ethnicity, el_status, ...).")
    rows = _pool(rows)
    rows = _suppress(rows, min_n)
    # BH within each dimension over every published, non-reference gap.
    rows["p_adjusted"] = np.nan
    for dim in dict.fromkeys(rows["dimension"]):
        sel = (rows["dimension"] == dim) & ~rows["is_reference"] & ~rows["suppressed"]
        rows.loc[sel, "p_adjusted"] = bh_adjust(rows.loc[sel, "p_value"].to_numpy(dtype=float))
    inter = pd.DataFrame(inter_rows)
    if not inter.empty:
        inter = _suppress_interactions(inter, rows)
        inter["p_adjusted"] = np.nan
        for dim in dict.fromkeys(inter["dimension"]):
            sel = (inter["dimension"] == dim) & ~inter["suppressed"]
            inter.loc[sel, "p_adjusted"] = bh_adjust(
                inter.loc[sel, "interaction_p_value"].to_numpy(dtype=float))
    notes.append("Gaps are group mean minus reference-group mean; intervals are Welch intervals; "
                 "p_adjusted is Benjamini-Hochberg within each dimension.")
    notes.append("pooled_mean / pooled_estimate are empirical-Bayes (REML) partially pooled "
                 "values: "
                 "small groups are pulled toward the average of all groups.")
    if "grade" in dims and outcome == "scale_score":
        notes.append("Scale scores rise with grade, so grade gaps in scale score mostly show the "
                     "grade difference itself.")
    return GapsResult(
        outcome=outcome,
        unit=OUTCOME_UNITS[outcome],
        rows=rows,
        interactions=inter,
        references=references,
        n=len(data),
        n_dropped=n_dropped,
        min_n=min_n,
        windows=(plan.outcomes.baseline_window, plan.outcomes.outcome_window),
        notes=tuple(dict.fromkeys(notes)),
    )


def _group_stats(codes: np.ndarray, v: np.ndarray, sel: np.ndarray, G: int):
    """n, mean and sample SD of ``v`` per group code among the selected rows (two passes)."""
    c = codes[sel]
    x = v[sel]
    n = np.bincount(c, minlength=G).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.bincount(c, weights=x, minlength=G) / n
        ss = np.bincount(c, weights=(x - mean[c]) ** 2, minlength=G)
        sd = np.sqrt(ss / (n - 1))
    sd[n < 2] = np.nan
    return n.astype(int), mean, sd


def _dimension_rows(dim, ref, groups, codes, masks, values, data, base_col, out_col, clusters,
                    level, window_of, outcome, regress) -> list[dict[str, Any]]:
    rows = []
    G = len(groups)
    ref_j = groups.index(ref)
    for pop, pmask in masks.items():
        sel = pmask & (codes >= 0)
        # Baseline-adjusted outcome gaps: one regression per population.
        adj = (_adjusted_gaps(dim, ref, groups, codes, pmask, data, base_col, out_col, clusters,
                              level) if regress else {})
        for measure in MEASURES:
            n_g, mean_g, sd_g = _group_stats(codes, values[measure], sel, G)
            for j, g in enumerate(groups):
                n = int(n_g[j])
                row = {
                    "dimension": dim, "group": g, "reference": ref, "population": pop,
                    "users_only": pop == "users", "window": window_of[measure],
                    "measure": measure, "outcome": outcome, "is_reference": g == ref,
                    "n": n,
                    "mean": float(mean_g[j]) if n else float("nan"),
                    "sd": float(sd_g[j]),
                }
                if g == ref:
                    row.update(gap=float("nan"), se=float("nan"), ci_low=float("nan"),
                               ci_high=float("nan"), p_value=float("nan"),
                               hedges_g=float("nan"))
                else:
                    nr = int(n_g[ref_j])
                    mr = float(mean_g[ref_j]) if nr else float("nan")
                    sr = float(sd_g[ref_j])
                    w = welch_from_summary(row["mean"], row["sd"] ** 2, n, mr, sr**2, nr, level)
                    hg = hedges_g_from_summary(row["mean"], mr, row["sd"], sr, n, nr)
                    row.update(gap=w.diff, se=w.se, ci_low=w.ci_low, ci_high=w.ci_high,
                               p_value=w.p_value, hedges_g=hg.g)
                a = adj.get(g) if measure == "outcome" else None
                row.update(
                    adjusted_gap=a["estimate"] if a else float("nan"),
                    adjusted_ci_low=a["ci_low"] if a else float("nan"),
                    adjusted_ci_high=a["ci_high"] if a else float("nan"),
                    adjusted_p_value=a["p_value"] if a else float("nan"),
                )
                rows.append(row)
    return rows


def _fit(y, X, names, clusters, mask, level, dim):
    """Clustered by school unless the dimension is the cluster itself (then HC1).

    ``clusters`` is (name, integer codes) so that no string column is re-hashed per fit.
    """
    if clusters is not None and dim != clusters[0]:
        cl = clusters[1][mask]
        if len(np.unique(cl)) >= 2:
            return fit_ols(y, X, names=names, cluster=cl, vcov="cluster", level=level)
    return fit_ols(y, X, names=names, vcov="HC1", level=level)


def _adjusted_gaps(dim, ref, all_groups, codes, pmask, data, base_col, out_col, clusters, level):
    m = pmask & (codes >= 0)
    counts = np.bincount(codes[m], minlength=len(all_groups))
    groups = [g for j, g in enumerate(all_groups) if g != ref and counts[j] >= 2]
    if not groups or counts[all_groups.index(ref)] < 2 or m.sum() < len(groups) + 3:
        return {}
    sub = data.loc[m, [base_col, out_col, dim]]
    X, names = design_matrix(sub, numeric=(base_col,), categorical=(dim,),
                             reference={dim: ref})
    try:
        fit = _fit(sub[out_col].to_numpy(dtype=float), X, names, clusters, m, level, dim)
    except DataError:
        return {}
    out = {}
    for g in groups:
        term = f"{dim}[{g}]"
        if term in fit.coef.index:
            out[g] = fit.term(term) | {"estimate": float(fit.coef[term])}
            out[g] = {k: (float("nan") if v is None else v) for k, v in out[g].items()}
    return out


def _interactions(dim, ref, groups, codes, masks, data, base_col, out_col, clusters,
                  level, dim_rows, regress) -> list[dict[str, Any]]:
    if "users" not in masks:
        return []
    users, non = masks["users"], masks["non_users"]
    known = users | non
    m = known & (codes >= 0)
    others = [g for g in groups if g != ref]
    fit = None
    if regress and others and m.sum() > 2 * len(groups) + 3:
        sub = data.loc[m, [base_col, out_col, dim]].assign(user=users[m].astype(float))
        X, names = design_matrix(sub, numeric=(base_col, "user"), categorical=(dim,),
                                 reference={dim: ref})
        cols = [X]
        inames = list(names)
        for g in others:
            j = names.index(f"{dim}[{g}]") if f"{dim}[{g}]" in names else None
            if j is None:
                continue
            cols.append((X[:, j] * sub["user"].to_numpy())[:, None])
            inames.append(f"user:{dim}[{g}]")
        try:
            fit = _fit(sub[out_col].to_numpy(dtype=float), np.hstack(cols), inames, clusters, m,
                       level, dim)
        except DataError:
            fit = None
    lookup = {(r["group"], r["population"], r["measure"]): r for r in dim_rows}
    out = []
    for g in others:
        gu = lookup.get((g, "users", "gain"))
        gn = lookup.get((g, "non_users", "gain"))
        ru = lookup.get((ref, "users", "gain"))
        rn = lookup.get((ref, "non_users", "gain"))
        row = {"dimension": dim, "group": g, "reference": ref}
        cells = [c for c in (gu, gn, ru, rn) if c is not None]
        if len(cells) == 4 and all(c["n"] >= 2 and math.isfinite(c["sd"]) for c in cells):
            diff = gu["gap"] - gn["gap"]
            # Four independent group means: Welch-Satterthwaite degrees of freedom.
            v = [c["sd"] ** 2 / c["n"] for c in cells]
            se = math.sqrt(sum(v))
            den = sum(vi**2 / (c["n"] - 1) for vi, c in zip(v, cells, strict=True))
            df = sum(v) ** 2 / den if den > 0 else float("nan")
            crit = float(_dist.t_ppf(0.5 + level / 2, df))
            row.update(gain_gap_users=gu["gap"], gain_gap_non_users=gn["gap"],
                       diff_in_gain_gaps=diff, diff_se=se, diff_ci_low=diff - crit * se,
                       diff_ci_high=diff + crit * se,
                       diff_p_value=float(2 * _dist.t_sf(abs(diff / se), df)) if se > 0
                       else float("nan"))
        else:
            row.update(gain_gap_users=float("nan"), gain_gap_non_users=float("nan"),
                       diff_in_gain_gaps=float("nan"), diff_se=float("nan"),
                       diff_ci_low=float("nan"), diff_ci_high=float("nan"),
                       diff_p_value=float("nan"))
        term = f"user:{dim}[{g}]"
        if fit is not None and term in fit.coef.index:
            row.update(interaction=float(fit.coef[term]), interaction_se=float(fit.se[term]),
                       interaction_ci_low=float(fit.ci_low[term]),
                       interaction_ci_high=float(fit.ci_high[term]),
                       interaction_p_value=float(fit.p_value[term]),
                       interaction_model=f"{out_col} ~ {base_col} + user + C({dim}) + "
                       f"user:C({dim}); " + ("HC1" if fit.vcov == "HC1" else
                                             f"clustered by {fit.n_clusters} clusters"))
        else:
            row.update(interaction=float("nan"), interaction_se=float("nan"),
                       interaction_ci_low=float("nan"), interaction_ci_high=float("nan"),
                       interaction_p_value=float("nan"), interaction_model="")
        out.append(row)
    return out


def _pool(rows: pd.DataFrame) -> pd.DataFrame:
    pooled_mean = np.full(len(rows), np.nan)
    key = ["dimension", "population", "measure"]
    # Whole columns as arrays once: taking a 30-column sub-frame per group cost 0.15 s a call.
    mean = rows["mean"].to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        se_all = rows["sd"].to_numpy(dtype=float) / np.sqrt(rows["n"].to_numpy())
    for _, idx in rows.groupby(key, sort=False).indices.items():
        res = eb_shrink(mean[idx], se_all[idx])
        pooled_mean[idx] = res.pooled
    rows = rows.assign(pooled_mean=pooled_mean)
    ref_pooled = rows[rows["is_reference"]].set_index(key)["pooled_mean"]
    ref_for_row = ref_pooled.reindex(pd.MultiIndex.from_frame(rows[key])).to_numpy()
    gap = np.where(rows["is_reference"], np.nan, rows["pooled_mean"].to_numpy() - ref_for_row)
    return rows.assign(pooled_estimate=gap)


def _suppress(rows: pd.DataFrame, min_n: int) -> pd.DataFrame:
    counts = (rows[rows["measure"] == "outcome"][["dimension", "group", "population", "n"]]
              .reset_index(drop=True))
    table = suppress_cells(
        counts,
        n_col="n",
        partition_cols=[["dimension", "population"]],
        value_cols=[],
        min_n=min_n,
        nested=[
            (["dimension", "group"], "population", ["users", "non_users"]),
            (["dimension", "group"], "population", ["non_users", "light", "habitual"]),
            (["dimension", "group"], "population", ["light", "habitual"]),
        ],
    )
    flags = table.set_index(["dimension", "group", "population"])[["suppressed", "suppression"]]
    merged = rows.join(flags, on=["dimension", "group", "population"])
    hidden = merged["suppressed"].to_numpy(dtype=bool)
    # A hidden reference hides every gap to it (gap + published mean would reveal it).
    ref_hidden = (merged[merged["is_reference"] & merged["suppressed"]]
                  [["dimension", "population"]].drop_duplicates())
    gap_cols = [c for c in _VALUE_COLS if c not in ("mean", "sd", "pooled_mean")]
    gap_hidden = hidden.copy()
    if not ref_hidden.empty:
        key = pd.MultiIndex.from_frame(merged[["dimension", "population"]])
        gap_hidden |= key.isin(pd.MultiIndex.from_frame(ref_hidden))
    out = merged.copy()
    for c in _VALUE_COLS:
        if c not in out.columns:
            continue
        mask = gap_hidden if c in gap_cols else hidden
        out[c] = out[c].astype(float).where(~mask)
    out["n"] = pd.array(np.where(hidden, np.nan, out["n"].to_numpy(dtype=float)),
                        dtype="Float64").round().astype("Int64")
    return out


def _suppress_interactions(inter: pd.DataFrame, rows: pd.DataFrame) -> pd.DataFrame:
    """Hide an interaction when any users / non-users cell of the group or reference is hidden."""
    cells = rows[rows["population"].isin(["users", "non_users"])]
    bad = set(map(tuple, cells[cells["suppressed"]][["dimension", "group"]].to_numpy()))
    hide = np.array([
        (d, g) in bad or (d, r) in bad
        for d, g, r in inter[["dimension", "group", "reference"]].to_numpy()
    ], dtype=bool)
    out = inter.assign(suppressed=hide)
    for c in out.columns:
        if c in ("dimension", "group", "reference", "suppressed", "interaction_model"):
            continue
        out[c] = out[c].astype(float).where(~hide)
    return out
