"""Rollout stages: pilot, expansion, district-wide -- is the spread deep or only wide?

A practice that works in a pilot school often thins out as it spreads: more schools have licences,
fewer students use the product habitually, fidelity drops, and the effect with it. The plan tags
schools with a stage (``[rollout] stages``); :func:`compare_stages` puts usage, fidelity and the
dose-response slope of each stage side by side and warns when a later stage falls far behind the
pilot ("spread without depth").

What it cannot show: stages differ in more than the rollout (schools chose or were chosen to pilot),
so a weaker slope in expansion schools describes those schools, not what the pilot schools would
have done later. With one school in a stage, its slope uses heteroskedasticity-robust (HC1) errors
that ignore clustering within the school, and is less certain than its interval suggests.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from rce.config import Plan
from rce.jsonsafe import json_value
from rce.stats.ols import design_matrix, fit_ols

#: The stage every other stage is compared with.
PILOT = "pilot"
#: Warn when a later stage's dose-response slope is below this share of the pilot's.
MIN_SLOPE_RATIO = 0.5


@dataclass(frozen=True)
class RolloutResult:
    """Usage, fidelity and dose-response by rollout stage."""

    table: pd.DataFrame
    warnings: tuple[dict[str, str], ...] = ()
    notes: tuple[str, ...] = field(default=())
    outcome: str = "outcome_scale_score"

    def to_frame(self) -> pd.DataFrame:
        """One row per stage."""
        return self.table.copy()

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form (``results.json`` ``rollout``)."""
        rows = []
        for r in self.table.to_dict(orient="records"):
            rows.append({k: json_value(v) for k, v in r.items()})
        return {
            "outcome": self.outcome,
            "stages": rows,
            "warnings": [dict(w) for w in self.warnings],
            "notes": list(self.notes),
        }

    def summary(self) -> str:
        """Readable text, one line per stage."""
        lines = ["Rollout stages"]
        for r in self.table.to_dict(orient="records"):
            if r["suppressed"]:
                lines.append(f"  {r['stage']}: fewer than the minimum students, suppressed")
                continue
            lines.append(
                f"  {r['stage']}: {r['schools']} schools, {r['students']} students, "
                f"{_pct(r['share_habitual'])} habitual, {_pct(r['share_fidelity'])} met fidelity, "
                f"slope {_num(r['slope'])} per habitual month "
                f"({_num(r['slope_ci_low'])} to {_num(r['slope_ci_high'])})"
            )
        lines.extend(f"  ! {w['message']}" for w in self.warnings)
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<RolloutResult {len(self.table)} stages, {len(self.warnings)} warnings>"


def _pct(x: Any) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.0%}"


def _num(x: Any) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.2f}"


def stage_of(schools: pd.Series, plan: Plan) -> pd.Series:
    """The rollout stage of each student's school; schools the plan does not tag are 'untagged'."""
    mapping = {str(k).strip().casefold(): v for k, v in plan.rollout.stages.items()}
    return schools.astype("str").str.strip().str.casefold().map(mapping).fillna("untagged")


def _slope(frame: pd.DataFrame, outcome: str, baseline: str, level: float) -> dict[str, Any]:
    numeric = ["habitual_months", baseline]
    categorical = [c for c in ("grade", "baseline_window") if c in frame.columns]
    X, names = design_matrix(frame, numeric=numeric, categorical=categorical)
    y = pd.to_numeric(frame[outcome], errors="coerce").to_numpy(dtype=float)
    schools = frame["school"].astype("str").to_numpy()
    n_schools = len(set(schools))
    if n_schools >= 2:
        fit = fit_ols(y, X, names=names, cluster=schools, absorb=schools, vcov="cluster",
                      level=level)
        vcov = f"clustered by school (G = {n_schools})"
    else:
        fit = fit_ols(y, X, names=names, vcov="HC1", level=level)
        vcov = "HC1 (one school: clustering not possible)"
    term = fit.term("habitual_months")
    return {
        "slope": term["estimate"],
        "slope_se": term["se"],
        "slope_ci_low": term["ci_low"],
        "slope_ci_high": term["ci_high"],
        "slope_vcov": vcov,
        "slope_n": fit.n,
    }


def compare_stages(
    frame: pd.DataFrame,
    *,
    plan: Plan,
    outcome: str = "outcome_scale_score",
    baseline: str = "baseline_scale_score",
) -> RolloutResult | None:
    """Usage, fidelity and the dose-response slope per rollout stage (None without stages).

    Parameters
    ----------
    frame
        The analysis frame with dosage attached (``school``, ``usage_level``,
        ``habitual_months``, ``met_fidelity``, outcome and baseline columns).
    plan
        ``plan.rollout.stages`` tags schools; ``plan.rollout.min_habitual_ratio`` sets the warning;
        ``plan.privacy.min_cell_size`` suppresses small stages.
    """
    if not plan.rollout.stages:
        return None
    min_n = plan.privacy.min_cell_size
    stages = stage_of(frame["school"], plan)
    data = frame.assign(stage=stages)
    rows = []
    notes: list[str] = []
    order = _stage_order(data["stage"].unique().tolist(), plan)
    for stage in order:
        g = data.loc[data["stage"] == stage]
        n = len(g)
        users = int((g["usage_level"] != "none").sum())
        habitual = int((g["usage_level"] == "habitual").sum())
        fidelity = g["met_fidelity"].fillna(False).astype(bool)
        row: dict[str, Any] = {
            "stage": stage,
            "start_date": plan.rollout.start_dates.get(stage),
            "schools": int(g["school"].nunique()),
            "students": n,
            "users": users,
            "habitual_users": habitual,
            "share_users": users / n if n else None,
            "share_habitual": habitual / n if n else None,
            "share_fidelity": float(fidelity.mean()) if n else None,
            "mean_habitual_months_users": float(g.loc[g["usage_level"] != "none",
                                                      "habitual_months"].mean())
            if users
            else None,
            "suppressed": n < min_n,
        }
        if n >= min_n and g["habitual_months"].nunique() > 1:
            row.update(_slope(g, outcome, baseline, plan.analysis.confidence_level))
        else:
            row.update(
                {
                    "slope": None,
                    "slope_se": None,
                    "slope_ci_low": None,
                    "slope_ci_high": None,
                    "slope_vcov": None,
                    "slope_n": None,
                }
            )
        if row["suppressed"]:
            for key in row:
                if key not in ("stage", "start_date", "suppressed"):
                    row[key] = None
        rows.append(row)
    table = pd.DataFrame(rows)
    warnings = _spread_warnings(table, plan)
    if (table["stage"] == "untagged").any():
        notes.append("Schools without a stage in [rollout] stages are shown as 'untagged'.")
    notes.append(
        "Stages differ in more than timing (pilot schools were chosen or volunteered), so "
        "differences between stages describe those schools, not what the rollout caused."
    )
    return RolloutResult(table=table, warnings=tuple(warnings), notes=tuple(notes),
                         outcome=outcome)


def _stage_order(stages: list[str], plan: Plan) -> list[str]:
    declared = list(dict.fromkeys(plan.rollout.stages.values()))
    known = [s for s in (PILOT, "expansion", "district-wide") if s in stages]
    rest = [s for s in declared if s in stages and s not in known]
    tail = sorted(s for s in stages if s not in known and s not in rest)
    return known + rest + tail


def _spread_warnings(table: pd.DataFrame, plan: Plan) -> list[dict[str, str]]:
    pilot = table.loc[(table["stage"] == PILOT) & ~table["suppressed"].astype(bool)]
    if pilot.empty:
        return []
    p = pilot.iloc[0]
    out = []
    for r in table.itertuples(index=False):
        if r.stage in (PILOT, "untagged") or r.suppressed:
            continue
        reasons = []
        if (
            p.share_habitual
            and r.share_habitual is not None
            and r.share_habitual < plan.rollout.min_habitual_ratio * p.share_habitual
        ):
            reasons.append(
                f"{r.share_habitual:.0%} of its students are habitual users against "
                f"{p.share_habitual:.0%} in the pilot"
            )
        if (
            _finite(p.mean_habitual_months_users)
            and _finite(r.mean_habitual_months_users)
            and r.mean_habitual_months_users
            < plan.rollout.min_habitual_ratio * p.mean_habitual_months_users
        ):
            reasons.append(
                f"its users average {r.mean_habitual_months_users:.1f} habitual months against "
                f"{p.mean_habitual_months_users:.1f} in the pilot"
            )
        if (
            _finite(p.slope)
            and _finite(p.slope_ci_low)
            and p.slope_ci_low > 0
            and _finite(r.slope)
            and r.slope < MIN_SLOPE_RATIO * p.slope
        ):
            reasons.append(
                f"its dose-response slope is {r.slope:.2f} per habitual month against "
                f"{p.slope:.2f} in the pilot"
            )
        if reasons:
            out.append(
                {
                    "code": "SPREAD_WITHOUT_DEPTH",
                    "message": f"Spread without depth in the {r.stage} stage: "
                    + "; ".join(reasons)
                    + f" (fidelity {_pct(r.share_fidelity)} against {_pct(p.share_fidelity)}).",
                }
            )
    return out


def _finite(x: Any) -> bool:
    return x is not None and isinstance(x, float | int) and math.isfinite(float(x))
