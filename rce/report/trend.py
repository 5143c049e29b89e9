"""trend.html, trend.md and trend.json: successive runs of one study side by side.

Rendered from the ``trend.json`` dict only (which holds aggregates of each run's results.json,
never student data), with the same template, escaping and charts as the analysis report.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rce.report import charts
from rce.report.narrative import (
    Figure,
    Section,
    Table,
    View,
    fmt,
    fmt_ci,
    fmt_int,
    fmt_pct,
)

__all__ = ["build_trend_view", "trend_to_json", "validate_trend", "write_trend_report"]


def trend_to_json(trend: Mapping[str, Any]) -> str:
    """Deterministic JSON text of a trend document."""
    return json.dumps(trend, sort_keys=True, indent=2, allow_nan=False) + "\n"


def validate_trend(trend: Mapping[str, Any]) -> None:
    """Check a trend document against the shipped schema (``rce/data/trend.schema.json``)."""
    from importlib.resources import files

    import jsonschema

    from rce.errors import DataError

    schema = json.loads((files("rce") / "data" / "trend.schema.json").read_text("utf-8"))
    try:
        jsonschema.validate(trend, schema)
    except jsonschema.ValidationError as exc:
        raise DataError(
            f"trend document does not match its schema: {exc.message}",
            where="trend.json " + "/".join(str(p) for p in exc.absolute_path),
            hint="This is a bug in rce; please report it.",
        ) from None


def _estimate_rows(cycles: list[Mapping[str, Any]], key: str) -> list[dict[str, Any]]:
    rows = []
    for c in cycles:
        part = c.get(key) or {}
        rows.append(
            {
                "label": c["label"],
                "series": "estimate",
                "estimate": part.get("estimate"),
                "ci_low": part.get("ci_low"),
                "ci_high": part.get("ci_high"),
                "suppressed": False,
            }
        )
    return rows


def _change_takeaway(rows: list[dict[str, Any]]) -> str:
    if len(rows) < 2:
        return "Only one run has an estimate, so no change can be read yet."
    first, last = rows[0], rows[-1]
    bounds = (first["ci_low"], first["ci_high"], last["ci_low"], last["ci_high"])
    if any(b is None for b in bounds):
        return "The intervals are incomplete, so no change can be read."
    if first["ci_high"] < last["ci_low"] or last["ci_high"] < first["ci_low"]:
        direction = "higher" if last["estimate"] > first["estimate"] else "lower"
        return (f"The latest run's estimate is {direction} than the first run's and the intervals "
                "do not overlap.")
    return "The first and latest intervals overlap: the runs do not show a clear change."


def build_trend_view(trend: Mapping[str, Any]) -> View:
    """The trend report as a document model (same shape as the analysis report)."""
    cycles = list(trend.get("cycles") or [])
    flags = list(trend.get("flags") or [])
    products = sorted({str(c.get("product")) for c in cycles if c.get("product")})
    product = products[0] if len(products) == 1 else ", ".join(products)
    summary = [
        f"{len(cycles)} runs of the evaluation of {product} are compared, in the order given."
    ]
    if flags:
        summary.append(
            "Not every run is comparable: " + " ".join(str(f["message"]) for f in flags)
        )
    else:
        summary.append("Every run used the same product, outcome and dosage definition.")
    last = cycles[-1] if cycles else {}
    if last.get("dose_response"):
        dr = last["dose_response"]
        summary.append(
            f"In the latest run ({last['label']}), each habitual month went with "
            f"{fmt(dr.get('estimate'), 2)} {dr.get('unit') or ''} "
            f"(95% CI {fmt_ci(dr.get('ci_low'), dr.get('ci_high'), 2)})."
        )
    if any(c.get("interim") for c in cycles):
        summary.append("Runs marked interim used a winter outcome test; final results may differ.")

    usage_rows = tuple(
        (
            str(c["label"]),
            str(c.get("outcome_window") or ""),
            "interim" if c.get("interim") else "final",
            fmt_int(c.get("students_scored")),
            fmt_int(c.get("users")),
            fmt_int(c.get("habitual_users")),
            fmt_pct(c.get("habitual_share")),
        )
        for c in cycles
    )
    usage_table = Table(
        caption="Students and use per run",
        headers=("Run", "Outcome window", "Status", "Students scored", "Users",
                 "Habitual users", "Habitual share"),
        rows=usage_rows,
    )
    share_alt = "Bar chart of the habitual share of scored students per run: " + "; ".join(
        f"{c['label']}: {fmt_pct(c.get('habitual_share'))}" for c in cycles
    ) + "."
    share_fig = Figure(
        charts.bar_chart(
            [c["label"] for c in cycles],
            [c.get("habitual_share") for c in cycles],
            title="Habitual users as a share of scored students",
            alt=share_alt,
            value_format="{:.0%}",
        ),
        "Habitual users as a share of scored students",
        "How the habitual share moved from run to run.",
        share_alt,
    )
    sections = [
        Section(id="usage", heading="Use across runs", figures=(share_fig,), tables=(usage_table,))
    ]
    for key, heading, what in (
        ("dose_response", "Dose-response across runs", "per habitual month"),
        ("impact", "Impact across runs", "users vs matched non-users"),
    ):
        rows = _estimate_rows(cycles, key)
        present = [r for r in rows if r["estimate"] is not None]
        if not present:
            sections.append(Section(id=key, heading=heading,
                                    paragraphs=(f"No run has an estimate ({what}).",)))
            continue
        alt = f"Estimates {what} with 95% confidence intervals, per run: " + "; ".join(
            f"{r['label']}: {fmt(r['estimate'], 2)} ({fmt_ci(r['ci_low'], r['ci_high'], 2)})"
            for r in rows
        ) + "."
        fig = Figure(
            charts.forest_chart(rows, title=f"{heading} ({what})", alt=alt,
                                xlabel="Estimate with 95% CI"),
            f"{heading} ({what})",
            _change_takeaway(present),
            alt,
        )
        table_rows = tuple(
            (
                str(c["label"]),
                fmt((c.get(key) or {}).get("estimate"), 2),
                fmt_ci((c.get(key) or {}).get("ci_low"), (c.get(key) or {}).get("ci_high"), 2),
                str((c.get(key) or {}).get("unit") or (c.get(key) or {}).get("design") or ""),
            )
            for c in cycles
        )
        table = Table(caption=f"{heading}", headers=("Run", "Estimate", "95% CI", "Unit / design"),
                      rows=table_rows)
        sections.append(Section(id=key, heading=heading, figures=(fig,), tables=(table,)))
    sources = Table(
        caption="Runs compared",
        headers=("Run", "Plan sha256", "Plan locked", "rce results file"),
        rows=tuple(
            (
                str(c["label"]),
                str(c.get("plan_sha256") or "")[:12],
                {True: "yes", False: "no"}.get(c.get("plan_locked"), "unknown"),
                Path(str(c.get("source"))).name,
            )
            for c in cycles
        ),
    )
    appendix = (
        Section(id="runs", heading="Runs and plans", tables=(sources,),
                bullets=tuple(str(n) for n in trend.get("notes") or ())),
    )
    return View(
        title=f"Trend across runs: {product}",
        subtitle=f"{len(cycles)} runs",
        badges=("Definitions changed",) if flags else (),
        summary=tuple(summary),
        sections=tuple(sections),
        appendix=appendix,
        footer=f"rce trend, schema {trend.get('schema_version')}",
    )


def write_trend_report(trend: Mapping[str, Any], out_dir: Path) -> list[Path]:
    """Write trend.html, trend.md and trend.json into ``out_dir`` atomically."""
    from rce import __version__
    from rce.fileio import atomic_write_text
    from rce.report.html import render_view_html
    from rce.report.markdown import render_view_markdown

    validate_trend(trend)
    view = build_trend_view(trend)
    outputs = {
        "trend.json": trend_to_json(trend),
        "trend.md": render_view_markdown(view),
        "trend.html": render_view_html(view, rce_version=__version__),
    }
    paths = []
    for name, text in outputs.items():
        path = Path(out_dir) / name
        atomic_write_text(path, text)
        paths.append(path)
    return paths
