"""Cycles: line up successive runs of the same study (``rce trend``).

Districts evaluate in short cycles -- usage every month, an interim result at winter, the final
result in spring, then the next year. ``compare_runs`` reads the ``results.json`` of each run and
puts the figures that matter side by side: students, users, habitual share, the dose-response
slope and the impact estimate with their confidence intervals. It refuses to compare unlike
things silently: when the dosage definition, the outcome measure or the product differs between
runs, the cycle is flagged and the reader is told what changed.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rce.errors import InputFileError, LayoutError

TREND_SCHEMA_VERSION = "1"

#: Parts of a run that must agree for its figures to be comparable with the first run.
_DEFINITION_KEYS = ("product", "outcome_measure", "dosage_definition", "subject")


@dataclass(frozen=True)
class Cycle:
    """One run of the study, reduced to the figures that are compared across runs."""

    label: str
    source: str
    generated_at: str | None
    academic_year: str | None
    outcome_window: str | None
    interim: bool
    product: str | None
    subject: str | None
    plan_sha256: str | None
    plan_locked: bool | None
    dosage_definition: dict[str, Any] | None
    students_scored: int | None
    users: int | None
    habitual_users: int | None
    outcome_measure: str | None
    dose_response: dict[str, Any] | None
    impact: dict[str, Any] | None

    @property
    def habitual_share(self) -> float | None:
        """Habitual users as a share of scored students."""
        if not self.students_scored or self.habitual_users is None:
            return None
        return self.habitual_users / self.students_scored

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form (one entry of ``trend.json`` ``cycles[]``)."""
        return {
            "label": self.label,
            "source": self.source,
            "generated_at": self.generated_at,
            "academic_year": self.academic_year,
            "outcome_window": self.outcome_window,
            "interim": self.interim,
            "product": self.product,
            "subject": self.subject,
            "plan_sha256": self.plan_sha256,
            "plan_locked": self.plan_locked,
            "dosage_definition": self.dosage_definition,
            "students_scored": self.students_scored,
            "users": self.users,
            "habitual_users": self.habitual_users,
            "habitual_share": self.habitual_share,
            "outcome_measure": self.outcome_measure,
            "dose_response": self.dose_response,
            "impact": self.impact,
        }


@dataclass(frozen=True)
class TrendResult:
    """Successive runs side by side, with flags where they are not comparable."""

    cycles: tuple[Cycle, ...]
    flags: tuple[dict[str, str], ...] = ()
    notes: tuple[str, ...] = field(default=())

    @property
    def comparable(self) -> bool:
        """True when no run changed a definition relative to the first run."""
        return not any(f["code"] == "DEFINITION_CHANGED" for f in self.flags)

    def to_frame(self) -> Any:
        """One row per cycle with the compared figures."""
        import pandas as pd

        rows = []
        for c in self.cycles:
            dr = c.dose_response or {}
            im = c.impact or {}
            rows.append(
                {
                    "cycle": c.label,
                    "outcome_window": c.outcome_window,
                    "interim": c.interim,
                    "students_scored": c.students_scored,
                    "users": c.users,
                    "habitual_users": c.habitual_users,
                    "habitual_share": c.habitual_share,
                    "per_month_estimate": dr.get("estimate"),
                    "per_month_ci_low": dr.get("ci_low"),
                    "per_month_ci_high": dr.get("ci_high"),
                    "impact_estimate": im.get("estimate"),
                    "impact_ci_low": im.get("ci_low"),
                    "impact_ci_high": im.get("ci_high"),
                    "probability_positive": im.get("probability_positive"),
                }
            )
        return pd.DataFrame(rows)

    def to_dict(self) -> dict[str, Any]:
        """The ``trend.json`` document (shape documented in ``rce/data/trend.schema.json``)."""
        return {
            "schema_version": TREND_SCHEMA_VERSION,
            "comparable": self.comparable,
            "cycles": [c.to_dict() for c in self.cycles],
            "flags": [dict(f) for f in self.flags],
            "notes": list(self.notes),
        }

    def summary(self) -> str:
        """Readable text: one line per cycle, then the flags."""
        lines = [f"{len(self.cycles)} runs compared"]
        for c in self.cycles:
            dr = c.dose_response or {}
            share = c.habitual_share
            slope = dr.get("estimate")
            lines.append(
                f"- {c.label}: {_fmt_int(c.students_scored)} students, "
                f"{_fmt_int(c.habitual_users)} habitual users"
                + (f" ({share:.0%})" if share is not None else "")
                + (
                    f"; {_fmt(slope)} {dr.get('unit', '')} per habitual month "
                    f"(95% CI {_fmt(dr.get('ci_low'))} to {_fmt(dr.get('ci_high'))})"
                    if slope is not None
                    else ""
                )
                + (" [interim]" if c.interim else "")
            )
        for f in self.flags:
            lines.append(f"! {f['message']}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<TrendResult {len(self.cycles)} cycles, {len(self.flags)} flags>"


def _fmt(x: Any) -> str:
    return "n/a" if x is None else f"{x:.2f}"


def _fmt_int(x: Any) -> str:
    return "n/a" if x is None else f"{x:,}"


def _results_path(path: Path) -> Path:
    if path.is_dir():
        candidate = path / "results.json"
        if candidate.is_file():
            return candidate
        raise InputFileError(
            "folder has no results.json",
            where=str(path),
            hint="Pass the output folder of an `rce analyze` run or its results.json.",
        )
    return path


def read_results(path: Path | str) -> dict[str, Any]:
    """Read one ``results.json`` written by ``rce analyze``."""
    path = _results_path(Path(path))
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputFileError(
            "results file not found", where=str(path), hint="Check the path."
        ) from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputFileError(
            f"not a JSON results file ({exc.__class__.__name__})",
            where=str(path),
            hint="Pass the results.json that `rce analyze` wrote.",
        ) from None
    except OSError as exc:
        raise InputFileError(
            f"results file cannot be read ({exc.strerror})", where=str(path)
        ) from None
    if not isinstance(data, dict) or "schema_version" not in data:
        raise LayoutError(
            "not an rce results.json (no schema_version)",
            where=str(path),
            hint="Pass the results.json that `rce analyze` wrote.",
        )
    if str(data["schema_version"]) != "1":
        raise LayoutError(
            f"results.json schema_version {data['schema_version']!r} is not supported",
            where=str(path),
            hint="Re-run `rce analyze` with this version of rce.",
        )
    return data


def _primary_dose_response(results: dict[str, Any]) -> dict[str, Any] | None:
    entries = results.get("dose_response") or []
    for entry in entries:
        per_month = entry.get("per_month") or {}
        if per_month.get("estimate") is not None:
            return {
                "outcome": entry.get("outcome"),
                "unit": entry.get("unit"),
                "n": entry.get("n"),
                "clusters": entry.get("clusters"),
                "estimate": per_month.get("estimate"),
                "ci_low": per_month.get("ci_low"),
                "ci_high": per_month.get("ci_high"),
                "p_value": per_month.get("p_value"),
            }
    return None


def cycle_from_results(results: dict[str, Any], *, source: str, label: str | None = None) -> Cycle:
    """Reduce one results document to a :class:`Cycle`."""
    study = results.get("study") or {}
    plan = results.get("plan") or {}
    join = results.get("join") or {}
    dosage = results.get("dosage") or {}
    impact = results.get("impact")
    dr = _primary_dose_response(results)
    window = study.get("outcome_window")
    year = study.get("academic_year")
    interim = bool(study.get("interim", window not in (None, "spring")))
    default_label = " ".join(str(p) for p in (year, window) if p) or Path(source).parent.name
    impact_part = None
    if isinstance(impact, dict) and impact.get("estimate") is not None:
        impact_part = {
            k: impact.get(k)
            for k in (
                "design",
                "estimate",
                "ci_low",
                "ci_high",
                "hedges_g",
                "probability_positive",
                "probability_meaningful",
            )
        }
    return Cycle(
        label=label or default_label,
        source=source,
        generated_at=results.get("generated_at"),
        academic_year=year,
        outcome_window=window,
        interim=interim,
        product=study.get("product"),
        subject=study.get("subject"),
        plan_sha256=plan.get("sha256"),
        plan_locked=plan.get("locked"),
        dosage_definition=dosage.get("definition"),
        students_scored=join.get("students_scored"),
        users=dosage.get("users"),
        habitual_users=dosage.get("habitual_users"),
        outcome_measure=dr.get("outcome") if dr else None,
        dose_response=dr,
        impact=impact_part,
    )


def compare_runs(paths: list[Path | str], *, labels: list[str] | None = None) -> TrendResult:
    """Line up successive runs (``results.json`` files or run folders), in the order given.

    Examples
    --------
    >>> compare_runs(["fall-2024/results.json", "spring-2025/"])  # doctest: +SKIP
    <TrendResult 2 cycles, 0 flags>
    """
    if not paths:
        raise InputFileError(
            "no results given", hint="Pass two or more results.json files or run folders."
        )
    cycles = []
    for i, p in enumerate(paths):
        results = read_results(p)
        label = labels[i] if labels and i < len(labels) else None
        cycles.append(cycle_from_results(results, source=str(p), label=label))
    flags: list[dict[str, str]] = []
    notes: list[str] = []
    first = cycles[0]
    for c in cycles[1:]:
        changed = [
            key for key in _DEFINITION_KEYS if _definition_value(c, key) != _definition_value(first, key)
        ]
        if changed:
            flags.append(
                {
                    "code": "DEFINITION_CHANGED",
                    "cycle": c.label,
                    "message": (
                        f"{c.label} is not comparable with {first.label}: "
                        + ", ".join(_describe_change(first, c, k) for k in changed)
                        + ". Its figures are shown but should not be read as a trend."
                    ),
                }
            )
        elif c.plan_sha256 and first.plan_sha256 and c.plan_sha256 != first.plan_sha256:
            flags.append(
                {
                    "code": "PLAN_CHANGED",
                    "cycle": c.label,
                    "message": (
                        f"The study plan of {c.label} differs from that of {first.label} "
                        "(the dosage definition, product and outcome are the same)."
                    ),
                }
            )
    for c in cycles:
        if c.plan_locked is False:
            notes.append(f"{c.label}: the plan was not pre-registered.")
        if c.interim:
            notes.append(
                f"{c.label} is an interim result ({c.outcome_window} outcome); the final result "
                "may differ."
            )
    if len(cycles) == 1:
        notes.append("Only one run given: nothing to compare yet.")
    return TrendResult(cycles=tuple(cycles), flags=tuple(flags), notes=tuple(notes))


def _definition_value(c: Cycle, key: str) -> Any:
    value = getattr(c, key)
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    return value


def _describe_change(a: Cycle, b: Cycle, key: str) -> str:
    if key == "dosage_definition":
        da, db = a.dosage_definition or {}, b.dosage_definition or {}
        parts = [
            f"{k} {da.get(k)!r} -> {db.get(k)!r}"
            for k in sorted(set(da) | set(db))
            if da.get(k) != db.get(k)
        ]
        return "dosage definition changed (" + "; ".join(parts) + ")"
    return f"{key.replace('_', ' ')} changed ({getattr(a, key)!r} -> {getattr(b, key)!r})"


def _finite(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)
