"""Rendering the sustain report: sustain.html, sustain.md, sustain.json and sustain.xlsx.

Every renderer takes the sustain dict (what sustain.json holds, ``SustainResult.to_dict()``),
never usage data, so no student identifier can reach an output. Text from the products file
(product names, funding sources, approval statuses) is escaped for HTML and Markdown and
neutralised for spreadsheets (a name such as ``=cmd|' /C calc'!A0`` stays inert text).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rce import __version__
from rce.fileio import atomic_write_text
from rce.report.escape import escape_markdown, neutralize_frame, plain_text

if TYPE_CHECKING:
    import jinja2

    from rce.sustain import SustainResult

# matplotlib (the charts, ~0.6 s to import), jinja2 and the workbook writer are imported where
# they are used: sustain.json alone (``run_sustain_report(out_dir=None)``) needs none of them.

__all__ = [
    "SHEETS",
    "render_sustain_html",
    "render_sustain_markdown",
    "sustain_to_json",
    "write_sustain_files",
    "write_sustain_report",
    "write_sustain_workbook",
]

#: Worksheets of sustain.xlsx, one per view.
SHEETS = (
    "README",
    "Totals",
    "Recommendations",
    "Utilization and cost",
    "Evidence",
    "Funding cliff",
    "Cliff by month",
    "Overlap",
    "Rules",
)

_REC_LABEL = {
    "sustain": "Sustain",
    "scale": "Scale",
    "right-size": "Right-size",
    "improve-implementation": "Improve implementation",
    "sunset": "Sunset",
    "insufficient-evidence": "Insufficient evidence",
}

_PRIVACY_FLAGS = ("PRIVACY_AGREEMENT_EXPIRED", "NO_PRIVACY_AGREEMENT", "PRIVACY_AGREEMENT_UNKNOWN")

_LEVEL_COLOURS = {"seats": "grey", "activated": "sky", "active": "blue", "habitual": "green"}


def _data(result: SustainResult | Mapping[str, Any]) -> Mapping[str, Any]:
    return result if isinstance(result, Mapping) else result.to_dict()


# --- formatting (rounding happens here, at render time) ----------------------------------------


def _money(value: Any) -> str:
    return "n/a" if value is None else f"${value:,.2f}"


def _pct(value: Any, digits: int = 0) -> str:
    return "n/a" if value is None else f"{100 * value:.{digits}f}%"


def _int(value: Any) -> str:
    return "n/a" if value is None else f"{value:,}"


def _num(value: Any, fmt: str = "{:.2f}") -> str:
    return "n/a" if value is None else fmt.format(value)


#: What a suppressed figure reads in sustain.html, sustain.md and sustain.xlsx (null in JSON).
SUPPRESSED = "suppressed"


def _hidden(p: Mapping[str, Any], key: str) -> bool:
    return key in p.get("suppressed", ())


def _cell(p: Mapping[str, Any], key: str, fmt: Any) -> str:
    """A product figure as text: "suppressed" when small-cell suppression hid it."""
    return SUPPRESSED if _hidden(p, key) else fmt(p[key])


def _effect_text(effect: Mapping[str, Any] | None) -> str:
    if not effect:
        return "no local estimate"
    text = (
        f"{effect['estimate']:+.2f} ({effect['ci_low']:+.2f} to {effect['ci_high']:+.2f})"
    )
    if effect.get("probability_positive") is not None:
        text += f", P(>0) {effect['probability_positive']:.0%}"
    if effect.get("interim"):
        text += ", interim"
    return text


def _tier(effect: Mapping[str, Any] | None) -> str:
    if not effect or effect.get("evidence_tier") in (None, ""):
        return "none"
    return f"consistent with tier {effect['evidence_tier']}"


# --- the view (shared by HTML and Markdown) ----------------------------------------------------


def _view(data: Mapping[str, Any]) -> dict[str, Any]:
    products = list(data["products"])
    totals = data["totals"]
    counts = totals.get("by_recommendation", {})
    summary = [
        f"{len(products)} products cost {_money(totals['annual_cost'])} a year; "
        f"{_money(totals['one_time_funded_cost'])} of it is paid from one-time funds (ESSER and "
        "similar) and must move to ongoing funds or stop.",
        "Recommendations: "
        + ", ".join(
            f"{_REC_LABEL[rec].lower()} {n}" for rec, n in counts.items() if n
        )
        + ".",
        f"Following them would save {_money(totals['projected_savings'])} a year "
        "(licence costs only).",
    ]
    flagged = [p["product"] for p in products if p.get("flags")]
    privacy = [
        p["product"]
        for p in products
        if any(f in _PRIVACY_FLAGS for f in p.get("flags", []))
    ]
    if privacy:
        summary.append(
            f"{len(privacy)} product(s) lack a current student-data-privacy agreement: "
            + ", ".join(plain_text(x) for x in privacy)
            + "."
        )
    early = [p["product"] for p in products if "RENEWAL_BEFORE_OUTCOMES" in p.get("flags", [])]
    if early:
        summary.append(
            f"{len(early)} renewal(s) fall before this year's spring outcome data "
            f"(expected by {data.get('outcome_data_expected')}); they are decided on interim "
            "evidence or none."
        )

    rec_rows = [
        [
            p["product"],
            _REC_LABEL[p["recommendation"]],
            _money(p["annual_cost"]),
            p["funding_source"] or "n/a",
            p["renewal_date"] or "n/a",
            _int(p["seats_purchased"]),
            _int(p["seats_recommended"]),
            _money(p["projected_savings"]),
        ]
        for p in products
    ]
    util_rows = [
        [
            p["product"],
            _int(p["seats_purchased"]),
            _cell(p, "students_activated", _int),
            _cell(p, "students_active", _int),
            _cell(p, "students_habitual", _int),
            _cell(p, "utilization_activated", _pct),
            _cell(p, "utilization_active", _pct),
            _cell(p, "utilization_habitual", _pct),
            _money(p["cost_per_seat"]),
            _cell(p, "cost_per_activated_user", _money),
            _cell(p, "cost_per_active_user", _money),
            _cell(p, "cost_per_habitual_user", _money),
            _cell(p, "price_index", _num),
        ]
        for p in products
    ]
    ev_rows = [
        [
            p["product"],
            _effect_text(p["effect"]),
            _pct((p["effect"] or {}).get("probability_meaningful")),
            p["evidence_verdict"],
            _tier(p["effect"]),
            _cell(p, "cost_per_habitual_user_per_tenth_sd", _money),
            _cell(p, "cost_per_habitual_user_per_percentile_point", _money),
        ]
        for p in products
    ]
    cliff = data["funding_cliff"]
    cliff_rows = [
        [
            r["product"],
            r["funding_source"],
            r["renewal_date"] or "n/a",
            r["one_time_fund_ends"] or "n/a",
            _money(r["annual_cost"]),
            _REC_LABEL[r["recommendation"]],
            _money(r["ongoing_cost_if_recommendation_followed"]),
        ]
        for r in cliff["rows"]
    ]
    month_rows = [
        [
            m["renewal_month"],
            _int(m["products"]),
            _money(m["annual_cost"]),
            _money(m["ongoing_cost_if_recommendations_followed"]),
            _money(m["cumulative_annual_cost"]),
            _money(m["cumulative_ongoing_cost"]),
        ]
        for m in cliff["by_month"]
    ]
    overlap_rows = [
        [
            p["product"],
            o["product"],
            o["subject"],
            SUPPRESSED if o["suppressed"] else _int(o["students_both"]),
            SUPPRESSED if o["suppressed"] else _pct(o["share_of_active"]),
        ]
        for p in products
        for o in p.get("overlaps", [])
    ]
    rules = data["rules"]
    rule_rows = [[k, _rule_value(v)] for k, v in rules.items()]
    decision = data.get("decision_rule", {})
    rule_rows += [[f"plan.decision.{k}", _rule_value(v)] for k, v in decision.items()]
    cards = [
        {
            "product": p["product"],
            "recommendation": _REC_LABEL[p["recommendation"]],
            "key": p["recommendation"],
            "flags": list(p.get("flags", [])),
            "reasons": list(p["reasons"]),
        }
        for p in products
    ]
    return {
        "title": "Sustain report",
        "subtitle": f"Licences, use, evidence and funding as of {data['as_of']}",
        "summary": summary,
        "flagged": flagged,
        "cards": cards,
        "tables": {
            "recommendations": {
                "caption": "Recommendation per product",
                "header": ["Product", "Recommendation", "Annual cost", "Funding", "Renewal",
                           "Seats bought", "Seats recommended", "Projected savings"],
                "rows": rec_rows,
            },
            "utilization": {
                "caption": "Utilization and cost per user",
                "header": ["Product", "Seats", "Activated", "Active", "Habitual",
                           "Activated/seats", "Active/seats", "Habitual/seats", "Per seat",
                           "Per activated", "Per active", "Per habitual", "Price index"],
                "rows": util_rows,
            },
            "evidence": {
                "caption": "Evidence and cost per unit of outcome",
                "header": ["Product", "Effect (outcome units, CI)", "P(meaningful)", "Verdict",
                           "ESSA", "Per habitual student per 0.1 SD",
                           "Per habitual student per percentile point"],
                "rows": ev_rows,
            },
            "cliff": {
                "caption": "Funding cliff: products paid from one-time funds, by renewal date",
                "header": ["Product", "Funding", "Renewal", "One-time fund ends", "Annual cost",
                           "Recommendation", "Ongoing cost if followed"],
                "rows": cliff_rows,
            },
            "cliff_months": {
                "caption": "One-time-funded cost by renewal month, with running totals",
                "header": ["Renewal month", "Products", "Annual cost", "Ongoing if followed",
                           "Cumulative cost", "Cumulative ongoing"],
                "rows": month_rows,
            },
            "overlap": {
                "caption": "Overlap: active users shared with another product for the same "
                "subject",
                "header": ["Product", "Also used", "Subject", "Students in both",
                           "Share of its active users"],
                "rows": overlap_rows,
            },
            "rules": {
                "caption": "Decision thresholds used",
                "header": ["Rule", "Value"],
                "rows": rule_rows,
            },
        },
        "definitions": [[k, v] for k, v in data["definitions"].items()],
        "notes": list(data.get("notes", [])),
        "totals": totals,
        "one_time_text": _money(totals["one_time_funded_cost"]),
        "as_of": data["as_of"],
    }


def _rule_value(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if value is None:
        return "not set"
    return str(value)


#: Most products a chart draws; with more, each chart shows the products with the largest annual
#: cost (the decisions with the most money at stake) and says so. Every product is in the tables.
CHART_MAX_PRODUCTS = {"cost": 30, "scatter": 20, "funnel": 10}


def _chart_products(products: list[Mapping[str, Any]], kind: str) -> tuple[list[Any], str]:
    """The products a chart draws, and a sentence stating the selection rule when it applies."""
    limit = CHART_MAX_PRODUCTS[kind]
    if len(products) <= limit:
        return products, ""
    order = sorted(range(len(products)),
                   key=lambda i: (-(products[i]["annual_cost"] or 0), str(products[i]["product"])))
    keep = sorted(order[:limit])  # file order among the chosen, as in the tables
    return [products[i] for i in keep], (
        f" The chart shows the {limit} products with the largest annual cost, of "
        f"{len(products)}; every product is in the tables."
    )


def _charts(data: Mapping[str, Any]) -> list[dict[str, str]]:
    from rce.report import charts

    all_products = list(data["products"])
    figures: list[dict[str, str]] = []

    products, rule = _chart_products(all_products, "cost")
    names = [p["product"] for p in products]
    cost = [p["cost_per_habitual_user"] for p in products]
    hidden = [_hidden(p, "cost_per_habitual_user") for p in products]
    shown = [(n, c) for n, c, h in zip(names, cost, hidden, strict=True)
             if c is not None and not h]
    dearest = max(shown, key=lambda t: t[1]) if shown else None
    alt = "; ".join(
        f"{plain_text(p['product'])}: {_cell(p, 'cost_per_habitual_user', _money)}"
        for p in products
    )
    n_hidden = sum(hidden)
    hidden_text = (
        f" {n_hidden} product(s) with fewer than {_min_cell(data)} habitual users are marked "
        "suppressed."
        if n_hidden
        else ""
    )
    figures.append(
        {
            "title": "Annual cost per habitual student",
            "takeaway": (
                f"{plain_text(dearest[0])} costs the most per habitual student "
                f"({_money(dearest[1])})"
                + (" among the products whose figure is shown." if n_hidden else ".")
                if dearest
                else "No product has habitual users to divide the cost by."
                if not n_hidden
                else "No cost per habitual student can be shown."
            ) + hidden_text + rule,
            "alt": alt,
            "svg": "" if not shown else charts.bar_chart(
                names,
                cost,
                title="Annual cost per habitual student",
                alt=alt,
                xlabel="dollars per habitual student per year",
                horizontal=True,
                value_format="${:,.2f}",
                suppressed=hidden,
            ),
        }
    )

    products, rule = _chart_products(all_products, "scatter")
    points = []
    left_out = 0
    for p in products:
        effect = p["effect"]
        if _hidden(p, "cost_per_habitual_user"):
            left_out += 1
            continue
        points.append(
            {
                "label": p["product"],
                "x": p["cost_per_habitual_user"],
                "y": effect["estimate"] if effect else None,
                "ci_low": effect["ci_low"] if effect else None,
                "ci_high": effect["ci_high"] if effect else None,
            }
        )
    with_effect = [pt for pt in points if pt["x"] is not None and pt["y"] is not None]
    alt = "; ".join(
        f"{plain_text(pt['label'])}: {_money(pt['x'])} per habitual student, effect "
        + ("not estimated" if pt["y"] is None else f"{pt['y']:+.2f} ({pt['ci_low']:+.2f} to "
           f"{pt['ci_high']:+.2f})")
        for pt in points
    )
    left_text = (
        f" {left_out} product(s) whose cost per habitual student is suppressed are not plotted."
        if left_out
        else ""
    )
    if not with_effect:
        figures.append(
            {
                "title": "Effect against cost per habitual student",
                "takeaway": "No product has both a local effect estimate and habitual users, so "
                "there is no effect-against-cost chart; it appears once a results.json from "
                "`rce analyze` is available for a product.",
                "alt": alt,
                "svg": "",
            }
        )
    else:
        figures.append(
            {
                "title": "Effect against cost per habitual student",
                "takeaway": (
                    f"{len(with_effect)} of {len(points)} products have a local effect estimate; "
                    "products without one are listed under the chart."
                ) + left_text + rule,
                "alt": alt,
                "svg": charts.scatter_chart(
                    points,
                    title="Effect against cost per habitual student",
                    alt=alt,
                    xlabel="annual cost per habitual student ($)",
                    ylabel="effect (outcome units, CI)",
                    x_format="${:,.0f}",
                    y_format="{:+.1f}",
                ),
            }
        )

    products, rule = _chart_products(all_products, "funnel")
    cats: list[str] = []
    vals: list[Any] = []
    cols: list[str] = []
    flags: list[bool] = []
    for p in products:
        for level, key in (
            ("seats", "seats_purchased"),
            ("activated", "students_activated"),
            ("active", "students_active"),
            ("habitual", "students_habitual"),
        ):
            # Level first: chart labels are cut at 40 characters and the level must stay visible.
            cats.append(f"{level}: {p['product']}")
            vals.append(p[key])
            cols.append(_LEVEL_COLOURS[level])
            flags.append(_hidden(p, key))
    alt = "; ".join(
        f"{plain_text(p['product'])}: {_int(p['seats_purchased'])} seats, "
        f"{_cell(p, 'students_activated', _int)} activated, "
        f"{_cell(p, 'students_active', _int)} active, "
        f"{_cell(p, 'students_habitual', _int)} habitual"
        for p in products
    )
    lowest = [
        p for p in all_products
        if p["utilization_habitual"] is not None and not _hidden(p, "utilization_habitual")
    ]
    low = min(lowest, key=lambda p: p["utilization_habitual"]) if lowest else None
    any_hidden = any(_hidden(p, "utilization_habitual") for p in all_products)
    figures.append(
        {
            "title": "Utilization funnel: seats, activated, active, habitual",
            "takeaway": (
                f"{plain_text(low['product'])} has the lowest habitual use"
                + (" among the products whose figure is shown" if any_hidden else "")
                + f": {_pct(low['utilization_habitual'])} of its seats."
                if low
                else "No product has both seats and usage to compare."
            ) + rule,
            "alt": alt,
            "svg": charts.bar_chart(
                cats,
                vals,
                title="Utilization funnel: seats, activated, active, habitual",
                alt=alt,
                xlabel="students (seats for the first bar of each product)",
                horizontal=True,
                colors=cols,
                suppressed=flags,
            ),
        }
    )
    return figures


def _min_cell(data: Mapping[str, Any]) -> str:
    """The minimum cell size the figures were suppressed with (for chart sentences)."""
    value = (data.get("privacy") or {}).get("min_cell_size")
    return str(value) if value else "the minimum number of"


# --- renderers --------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    import jinja2

    return jinja2.Environment(
        loader=jinja2.PackageLoader("rce.report", "templates"),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",), default=False),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def render_sustain_html(result: SustainResult | Mapping[str, Any]) -> str:
    """Render sustain.html: one self-contained file with inline SVG charts, no JavaScript.

    Parameters
    ----------
    result
        A :class:`~rce.sustain.SustainResult` or its ``to_dict()``.
    """
    data = _data(result)
    return _html(data, _view(data))


def _html(data: Mapping[str, Any], view: Mapping[str, Any]) -> str:
    return _environment().get_template("sustain.html.j2").render(
        view=view, figures=_charts(data), rce_version=__version__
    )


def render_sustain_markdown(result: SustainResult | Mapping[str, Any]) -> str:
    """Render sustain.md (same content as the HTML, without charts), every input text escaped."""
    return _markdown(_view(_data(result)))


def _markdown(view: Mapping[str, Any]) -> str:
    return _environment().get_template("sustain.md.j2").render(
        view=view, md=escape_markdown, rce_version=__version__
    )


def sustain_to_json(result: SustainResult | Mapping[str, Any]) -> str:
    """sustain.json text: sorted keys, NaN never written (``allow_nan=False``)."""
    body = {"rce_version": __version__, **_data(result)}
    return json.dumps(body, sort_keys=True, indent=2, allow_nan=False, ensure_ascii=False) + "\n"


#: Excel number formats by column title (the same title means the same kind of number).
_MONEY_COLUMNS = (
    "Dollars", "Annual cost", "Projected savings", "Per seat", "Per activated", "Per active",
    "Per habitual", "Per habitual student per 0.1 SD", "Upper (CI)", "Per percentile point",
    "Ongoing cost if followed", "Ongoing if followed", "Cumulative cost", "Cumulative ongoing",
    "Price per seat",
)
_PCT_COLUMNS = (
    "Activated/seats", "Active/seats", "Habitual/seats", "P(effect > 0)", "P(meaningful)",
    "Share of its active users",
)
NUMBER_FORMATS: dict[str, str] = {
    **dict.fromkeys(_MONEY_COLUMNS, "$#,##0.00"),
    **dict.fromkeys(_PCT_COLUMNS, "0.0%"),
    **dict.fromkeys(("Price index", "Effect", "CI low", "CI high"), "0.00"),
    "Hedges g": "0.000",
}


def _date(value: Any) -> Any:
    from datetime import date

    return date.fromisoformat(value) if isinstance(value, str) else value


def _sheets(data: Mapping[str, Any]) -> dict[str, Any]:
    """One DataFrame per view; numbers stay numbers, money is already rounded to the cent."""
    import pandas as pd

    # A suppressed figure is the text "suppressed" in its cell (Excel sums skip text), never
    # an empty cell that could be mistaken for "not applicable".
    products = [
        {**p, **dict.fromkeys(p.get("suppressed", ()), SUPPRESSED)} for p in data["products"]
    ]
    totals = data["totals"]
    frames: dict[str, pd.DataFrame] = {}
    frames["Totals"] = pd.DataFrame(
        [
            ["Total annual cost", totals["annual_cost"]],
            ["Paid from one-time funds", totals["one_time_funded_cost"]],
            [
                "One-time-funded cost still needed if recommendations are followed",
                totals.get("one_time_funded_ongoing_cost_if_recommendations_followed"),
            ],
            ["Projected savings if recommendations are followed", totals["projected_savings"]],
        ],
        columns=["Item", "Dollars"],
    )
    frames["Recommendations"] = pd.DataFrame(
        [
            [p["product"], p["recommendation"], p["annual_cost"], p["seats_purchased"],
             p["seats_recommended"], p["projected_savings"], ", ".join(p.get("flags", [])),
             " ".join(p["reasons"])]
            for p in products
        ],
        columns=["Product", "Recommendation", "Annual cost", "Seats bought", "Seats recommended",
                 "Projected savings", "Flags", "Reasons"],
    )
    frames["Utilization and cost"] = pd.DataFrame(
        [
            [p["product"], p["subject"], p["funding_source"], _date(p["renewal_date"]),
             p["seats_purchased"], p["students_activated"], p["students_active"],
             p["students_habitual"], p.get("students_fidelity"), p["utilization_activated"],
             p["utilization_active"], p["utilization_habitual"], p["annual_cost"],
             p.get("price_per_seat"), p["cost_per_seat"], p["cost_per_activated_user"],
             p["cost_per_active_user"], p["cost_per_habitual_user"], p["price_index"],
             p["right_sized_seats"], p.get("privacy_agreement"),
             _date(p.get("privacy_agreement_expires")), p.get("approval_status")]
            for p in products
        ],
        columns=["Product", "Subject", "Funding source", "Renewal date", "Seats", "Activated",
                 "Active", "Habitual", "Fidelity", "Activated/seats", "Active/seats",
                 "Habitual/seats", "Annual cost", "Price per seat", "Per seat", "Per activated",
                 "Per active", "Per habitual", "Price index", "Right-sized seats",
                 "Privacy agreement", "Agreement expires", "Approval status"],
    )
    ev_rows = []
    for p in products:
        e = p["effect"] or {}
        ev_rows.append(
            [p["product"], e.get("design"), e.get("estimate"), e.get("ci_low"), e.get("ci_high"),
             e.get("hedges_g"), e.get("probability_positive"), e.get("probability_meaningful"),
             p["evidence_verdict"], e.get("evidence_tier"), e.get("outcome_window"),
             e.get("interim"), p["cost_per_habitual_user_per_tenth_sd"],
             p["cost_per_habitual_user_per_tenth_sd_upper"],
             p["cost_per_habitual_user_per_percentile_point"]]
        )
    frames["Evidence"] = pd.DataFrame(
        ev_rows,
        columns=["Product", "Design", "Effect", "CI low", "CI high", "Hedges g", "P(effect > 0)",
                 "P(meaningful)", "Verdict", "ESSA tier", "Outcome window", "Interim",
                 "Per habitual student per 0.1 SD", "Upper (CI)", "Per percentile point"],
    )
    cliff = data["funding_cliff"]
    frames["Funding cliff"] = pd.DataFrame(
        [
            [r["product"], r["funding_source"], r["esser_round"], _date(r["renewal_date"]),
             _date(r["one_time_fund_ends"]), r["annual_cost"], r["recommendation"],
             r["ongoing_cost_if_recommendation_followed"]]
            for r in cliff["rows"]
        ],
        columns=["Product", "Funding source", "ESSER round", "Renewal date",
                 "One-time fund ends", "Annual cost", "Recommendation",
                 "Ongoing cost if followed"],
    )
    frames["Cliff by month"] = pd.DataFrame(
        [
            [m["renewal_month"], m["products"], m["annual_cost"],
             m["ongoing_cost_if_recommendations_followed"], m["cumulative_annual_cost"],
             m["cumulative_ongoing_cost"]]
            for m in cliff["by_month"]
        ],
        columns=["Renewal month", "Products", "Annual cost", "Ongoing if followed",
                 "Cumulative cost", "Cumulative ongoing"],
    )
    frames["Overlap"] = pd.DataFrame(
        [
            [p["product"], o["product"], o["subject"],
             SUPPRESSED if o["suppressed"] else o["students_both"],
             SUPPRESSED if o["suppressed"] else o["share_of_active"], o["suppressed"]]
            for p in products
            for o in p.get("overlaps", [])
        ],
        columns=["Product", "Also used", "Subject", "Students in both",
                 "Share of its active users", "Suppressed"],
    )
    rules = [[k, v if isinstance(v, int | float) and not isinstance(v, bool) else _rule_value(v)]
             for k, v in data["rules"].items()]
    rules += [[f"plan.decision.{k}", v] for k, v in data.get("decision_rule", {}).items()]
    frames["Rules"] = pd.DataFrame(rules, columns=["Rule", "Value"])
    # Text from the products file is neutralised here as well as by the writer's settings, so
    # the cells stay inert when the sheet is exported to CSV and opened again.
    return {name: neutralize_frame(frame) for name, frame in frames.items()}


def _readme(data: Mapping[str, Any]) -> list[tuple[str, str]]:
    rows = [
        ("Report", "rce sustain-report: keep, scale, right-size or drop, per product"),
        ("As of", str(data["as_of"])),
        ("Spring outcome data expected by", str(data.get("outcome_data_expected"))),
        ("Money", "Dollars per year, rounded half-up to the cent."),
    ]
    rows += [(f"Definition: {k}", v) for k, v in data["definitions"].items()]
    rows += [("Note", n) for n in data.get("notes", [])]
    return rows


def write_sustain_workbook(result: SustainResult | Mapping[str, Any], path: Path | str) -> Path:
    """Write sustain.xlsx: a README sheet, then one sheet per view (:data:`SHEETS`).

    Numbers are written as numbers with money, percent and ratio formats; text from the products
    file is neutralised (:func:`rce.report.escape.neutralize_frame`) and the workbook never turns
    text into formulas, so a product named ``=cmd|...`` stays inert.
    """
    from rce.report.xlsx import write_workbook

    data = _data(result)
    return write_workbook(
        path, _sheets(data), readme=_readme(data), number_formats=NUMBER_FORMATS
    )


def write_sustain_report(
    result: SustainResult | Mapping[str, Any], out_dir: Path | str
) -> list[Path]:
    """Write sustain.html, sustain.md, sustain.json and sustain.xlsx (each atomically).

    Returns
    -------
    list of Path
        The files written, in that order.
    """
    written, _ = write_sustain_files(_data(result), Path(out_dir))
    return written


def write_sustain_files(data: Mapping[str, Any], out_dir: Path) -> tuple[list[Path], str]:
    """:func:`write_sustain_report` for a sustain dict, also returning the sustain.json text.

    The view shared by the HTML and Markdown is built once, and the JSON text is rendered once
    for the file and the caller (``rce sustain-report --format json``).
    """
    view = _view(data)
    json_text = sustain_to_json(data)
    files = {
        "sustain.html": _html(data, view),
        "sustain.md": _markdown(view),
        "sustain.json": json_text,
    }
    written: list[Path] = []
    for name, text in files.items():
        atomic_write_text(out_dir / name, text)
        written.append(out_dir / name)
    written.append(write_sustain_workbook(data, out_dir / "sustain.xlsx"))
    return written, json_text

