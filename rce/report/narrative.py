"""Words and layout shared by the HTML and Markdown reports.

:func:`build_view` turns a results dict into a small document model -- an executive summary,
sections with paragraphs, figures (SVG + title + takeaway + alt text) and tables of formatted
strings, then a technical appendix -- so report.html and report.md say the same things.
Numbers are rounded here, at render time, never in the results. Strings in the view are plain
text; each renderer escapes every one of them for its own format.
"""

from __future__ import annotations

import calendar
import contextvars
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

# Short name: it is read in almost every sentence built below.
from rce.jsonsafe import finite_or_none as _num
from rce.report import charts

__all__ = ["Figure", "Section", "Table", "View", "build_view", "executive_summary"]


# --- formatting -------------------------------------------------------------------------------


def fmt(value: Any, digits: int = 1, *, sign: bool = False) -> str:
    """A number rounded for display; missing values show as an em dash."""
    v = _num(value)
    if v is None:
        return "\u2014"
    if v == 0:
        v = 0.0  # no "-0.0"
    text = f"{v:+,.{digits}f}" if sign else f"{v:,.{digits}f}"
    return text.replace("-", "\u2212")


def fmt_int(value: Any) -> str:
    v = _num(value)
    return "\u2014" if v is None else f"{round(v):,d}"


def fmt_pct(value: Any, digits: int = 0) -> str:
    v = _num(value)
    return "\u2014" if v is None else f"{100 * v:.{digits}f}%"


def fmt_prob(value: Any) -> str:
    """A probability in words-friendly percent: never "100%" or "0%" for an estimate."""
    v = _num(value)
    if v is None:
        return "\u2014"
    if v >= 0.995:
        return "> 99%"
    if v < 0.005:
        return "< 1%"
    return f"{100 * v:.0f}%"


def fmt_ci(low: Any, high: Any, digits: int = 1) -> str:
    if _num(low) is None or _num(high) is None:
        return "\u2014"
    return f"{fmt(low, digits)} to {fmt(high, digits)}"


def fmt_p(value: Any) -> str:
    v = _num(value)
    if v is None:
        return "\u2014"
    return "< 0.001" if v < 0.001 else f"{v:.3f}"


def count_words(value: Any, min_n: int) -> str:
    """A count for prose, never revealing a small cell."""
    v = _num(value)
    if v is None:
        return f"fewer than {min_n} (suppressed)"
    if 0 < v < min_n:
        return f"fewer than {min_n}"
    return fmt_int(v)


def month_label(month: Any) -> str:
    text = str(month or "")
    try:
        year, mon = text.split("-")[:2]
        return f"{calendar.month_abbr[int(mon)]} {year}"
    except (ValueError, IndexError):
        return text


def _plural(n: float | None, word: str) -> str:
    return word if n == 1 else word + "s"


#: How figures are drawn (see build_view): None draws each chart when it is met; otherwise a
#: hook given (chart function, args, kwargs) returns its SVG. A context variable so threads
#: don't interfere.
_DRAW: contextvars.ContextVar[Callable[[Any, tuple, dict], str] | None] = contextvars.ContextVar(
    "rce_report_draw", default=None)


def _draw(function: Any, *args: Any, **kwargs: Any) -> str:
    hook = _DRAW.get()
    return function(*args, **kwargs) if hook is None else hook(function, args, kwargs)


# --- document model ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Figure:
    """One chart: inline SVG plus the words around it."""

    svg: str
    title: str
    takeaway: str
    alt: str


@dataclass(frozen=True)
class Table:
    """A table of display strings (already rounded)."""

    caption: str
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Section:
    """A heading with paragraphs, figures, tables and bullet notes, in that order."""

    id: str
    heading: str
    paragraphs: tuple[str, ...] = ()
    figures: tuple[Figure, ...] = ()
    tables: tuple[Table, ...] = ()
    bullets: tuple[str, ...] = ()


@dataclass(frozen=True)
class View:
    """The whole report."""

    title: str
    subtitle: str
    badges: tuple[str, ...]
    summary: tuple[str, ...]
    sections: tuple[Section, ...]
    appendix: tuple[Section, ...]
    footer: str
    extra: dict[str, Any] = field(default_factory=dict)


# --- helpers over the results dict ------------------------------------------------------------


def _min_n(results: Mapping[str, Any]) -> int:
    plan = results.get("plan") or {}
    value = plan.get("min_cell_size")
    if isinstance(value, int) and value > 0:
        return value
    from rce.config import Plan

    return Plan().privacy.min_cell_size


def _study(results: Mapping[str, Any]) -> Mapping[str, Any]:
    return results.get("study") or {}


def _product(results: Mapping[str, Any]) -> str:
    return str(_study(results).get("product") or "the product")


def _window(results: Mapping[str, Any]) -> str:
    return str(_study(results).get("outcome_window") or "outcome")


def _outcome_words(outcome: Any, unit: Any) -> str:
    text = str(outcome or "outcome").removeprefix("outcome_").replace("_", " ")
    return text


def _decision_rule(results: Mapping[str, Any]) -> tuple[float | None, float | None, float | None]:
    impact = results.get("impact") or {}
    decision = impact.get("decision") or {}
    plan = results.get("plan") or {}
    meaningful = _num(decision.get("meaningful_effect"))
    if meaningful is None:
        meaningful = _num(plan.get("meaningful_effect"))
    pass_p = _num(decision.get("pass_probability"))
    if pass_p is None:
        pass_p = _num(plan.get("pass_probability"))
    fail_p = _num(decision.get("fail_probability"))
    if fail_p is None:
        fail_p = _num(plan.get("fail_probability"))
    return meaningful, pass_p, fail_p


def _impact_reason(results: Mapping[str, Any]) -> str:
    impact = results.get("impact") or {}
    reason = results.get("impact_reason") or impact.get("reason")
    return str(reason or "no comparison group was available")


# --- executive summary ------------------------------------------------------------------------


def executive_summary(results: Mapping[str, Any]) -> list[str]:
    """At most five plain-language sentences with the numbers that matter.

    Who used the product and how much; the dose-response estimate with its interval in plain
    words; the impact estimate, its probability and the decision; the main caveat. Sections
    that are missing get a sentence saying why. No p-values (they are in the appendix).

    Parameters
    ----------
    results
        The results dict (as in ``results.json``).

    Returns
    -------
    list of str
        Plain text (renderers escape it).
    """
    min_n = _min_n(results)
    product = _product(results)
    out: list[str] = []

    dosage = results.get("dosage") or {}
    join = results.get("join") or {}
    total = _num(dosage.get("students"))
    if total is None:
        total = _num(join.get("students_scored"))
    users, habitual = _num(dosage.get("users")), _num(dosage.get("habitual_users"))
    definition = dosage.get("definition") or {}
    if users is not None and total:
        habit_rule = (
            f"at least {definition.get('min_sessions_per_month', '?')} sessions in at least "
            f"{definition.get('min_habitual_months') or 1} month"
            f"{'' if (definition.get('min_habitual_months') or 1) == 1 else 's'}"
        )
        sentence = (
            f"{count_words(users, min_n)} of {fmt_int(total)} students with scores used {product}"
            f" ({fmt_pct(users / total) if users >= min_n else 'a small share'})"
        )
        if habitual is not None:
            share = f" ({fmt_pct(habitual / total)})" if habitual >= min_n else ""
            sentence += (
                f", and {count_words(habitual, min_n)}{share} were habitual users ({habit_rule})"
            )
        out.append(_capitalise(sentence) + ".")
    else:
        out.append(f"Usage of {product} could not be summarised because no usage was matched to "
                   "students with scores.")

    dose = next(iter(results.get("dose_response") or []), None)
    if dose:
        pm = dose.get("per_month") or {}
        est, lo, hi = _num(pm.get("estimate")), _num(pm.get("ci_low")), _num(pm.get("ci_high"))
        unit = dose.get("unit") or "points"
        if est is not None:
            direction = "higher" if est >= 0 else "lower"
            sentence = (
                f"Each additional month of habitual use went with {fmt(abs(est))} {unit}"
                f" {direction}"
                f" {_window(results)} {_outcome_words(dose.get('outcome'), unit)} scores"
                f" (95% confidence interval {fmt_ci(lo, hi)}; {fmt_int(dose.get('n'))} students)"
            )
            if lo is not None and hi is not None and lo <= 0 <= hi:
                sentence += ", an interval that includes no relationship at all"
            sentence += "; students chose how much to use it, so this is an association, not proof"
            out.append(sentence + ".")
        else:
            out.append("The dose-response estimate could not be computed.")
    else:
        out.append("No dose-response estimate was possible with these data.")

    impact = results.get("impact")
    meaningful, pass_p, fail_p = _decision_rule(results)
    if impact:
        est = _num(impact.get("estimate"))
        unit = impact.get("unit") or "points"
        p_meaningful = _num(impact.get("probability_meaningful"))
        if est is not None:
            direction = "higher" if est >= 0 else "lower"
            sentence = (
                f"Compared with {count_words(impact.get('n_comparison'), min_n)} similar students"
                f" who did not use it, {count_words(impact.get('n_treatment'), min_n)} users"
                f" scored {fmt(abs(est))} {unit} {direction}"
                f" (95% confidence interval {fmt_ci(impact.get('ci_low'), impact.get('ci_high'))};"
                f" effect size g = {fmt(impact.get('hedges_g'), 2)})"
            )
            if p_meaningful is not None and meaningful is not None:
                sentence += (
                    f", and the probability that the effect is meaningful (g of at least"
                    f" {fmt(meaningful, 2)}) is {fmt_prob(p_meaningful)}"
                )
            out.append(sentence + ".")
        else:
            out.append("The impact estimate could not be computed.")
        out.append(_decision_sentence(impact, pass_p, fail_p))
    else:
        out.append(f"No impact estimate: {_impact_reason(results).rstrip('.')}.")
        evidence = results.get("evidence") or {}
        if evidence.get("essa_tier"):
            out.append(f"The evidence rates as ESSA Tier {evidence['essa_tier']} at best, so a "
                       "decision should weigh cost and use rather than proven impact.")
    caveat = _main_caveat(results)
    if caveat:
        out.append(caveat)
    return out[:5]


def _capitalise(text: str) -> str:
    return text[:1].upper() + text[1:]


def _decision_sentence(impact: Mapping[str, Any], pass_p: float | None,
                       fail_p: float | None) -> str:
    decision = impact.get("decision") or {}
    verdict = decision.get("verdict")
    rule = (
        f"pass at {fmt_pct(pass_p)} or more, fail at {fmt_pct(fail_p)} or less"
        if pass_p is not None and fail_p is not None
        else "the pre-registered rule"
    )
    meaning = {
        "pass": "the evidence supports keeping the product at this level of use",
        "fail": "the evidence does not support the product at this level of use",
        "inconclusive": "gather another cycle of data (or more users) before deciding",
    }
    if verdict in meaning:
        return (f"Under the pre-registered decision rule ({rule}) the result is {verdict}: "
                f"{meaning[verdict]}.")
    return "No decision rule was applied to the impact estimate."


def _main_caveat(results: Mapping[str, Any]) -> str | None:
    study = _study(results)
    plan = results.get("plan") or {}
    if study.get("interim"):
        return ("Main caveat: these are interim results from a "
                f"{_window(results)} test; spring scores may tell a different story.")
    if plan and (plan.get("locked") is False or plan.get("changed")):
        return ("Main caveat: the study plan was not locked before outcomes were seen (or changed "
                "since), so the analysis choices were not pre-registered.")
    warnings = results.get("warnings") or []
    if warnings:
        return "Main caveat: " + str(warnings[0].get("message", "")).rstrip(".") + "."
    dose = next(iter(results.get("dose_response") or []), None)
    if dose and dose.get("limits"):
        return "Main caveat: " + str(dose["limits"]).rstrip(".") + "."
    return None


# --- sections ---------------------------------------------------------------------------------


def _usage_section(results: Mapping[str, Any], min_n: int) -> Section:
    product = _product(results)
    usage = results.get("usage") or {}
    figures: list[Figure] = []
    paragraphs: list[str] = []
    trend = usage.get("monthly_trend") or []
    shown = [r for r in trend if _num(r.get("students_active")) is not None]
    if shown:
        peak = max(shown, key=lambda r: _num(r.get("students_active")) or 0)
        habit = [_num(r.get("students_habitual")) for r in trend]
        habit = [h for h in habit if h is not None]
        takeaway = (f"Use peaked in {month_label(peak.get('month'))} with "
                    f"{fmt_int(peak.get('students_active'))} active students")
        if habit:
            takeaway += (f"; habitual users ranged from {fmt_int(min(habit))} to "
                         f"{fmt_int(max(habit))} a month")
        takeaway += "."
        alt = ("Line chart of students active and students with a habitual month, by month: " +
               "; ".join(f"{month_label(r.get('month'))}: {fmt_int(r.get('students_active'))} "
                         f"active, {fmt_int(r.get('students_habitual'))} habitual"
                         for r in trend) + ".")
        title = f"Students using {product} each month"
        rows = [dict(r, month=month_label(r.get("month")).replace(" ", "\n")) for r in trend]
        figures.append(Figure(_draw(charts.monthly_trend_chart, rows, title=title, alt=alt,
                                                         min_n=min_n), title, takeaway, alt))
    else:
        paragraphs.append("No monthly usage trend can be shown: "
                          + ("every month has fewer than "
                             f"{min_n} students and is suppressed." if trend
                             else "monthly usage was not provided."))
    dist = usage.get("habitual_months_distribution") or []
    visible = [r for r in dist if not r.get("suppressed") and _num(r.get("n")) is not None]
    if visible:
        total = sum(_num(r.get("n")) or 0 for r in visible)
        mode = max(visible, key=lambda r: _num(r.get("n")) or 0)
        hidden = sum(1 for r in dist if r.get("suppressed"))
        takeaway = (f"The most common count was {mode.get('months')} "
                    f"{_plural(_num(mode.get('months')), 'month')} of habitual use "
                    f"({fmt_int(mode.get('n'))} students)")
        takeaway += (f"; {hidden} {_plural(hidden, 'bar')} with fewer than {min_n} students "
                     "are hidden." if hidden else ".")
        alt = ("Bar chart of students by number of months of habitual use: " +
               "; ".join(f"{r.get('months')} {_plural(_num(r.get('months')), 'month')}: "
                         f"{'suppressed' if r.get('suppressed') else fmt_int(r.get('n'))}"
                         for r in dist) + f". {fmt_int(total)} students shown.")
        title = "Students by months of habitual use"
        figures.append(Figure(_draw(charts.habitual_months_chart, dist, title=title, alt=alt,
                                                           min_n=min_n), title, takeaway, alt))
    else:
        paragraphs.append("The distribution of habitual months cannot be shown: "
                          + (f"every bar has fewer than {min_n} students and is suppressed."
                             if dist else "it was not provided."))
    tables = []
    by_group = usage.get("by_group") or []
    if by_group:
        minutes_key, minutes_label = ("median_minutes", "Median minutes")
        if not any("median_minutes" in r for r in by_group):
            minutes_key, minutes_label = ("mean_minutes_active", "Mean minutes (users)")
        rows = []
        for r in by_group:
            if r.get("suppressed"):
                rows.append((str(r.get("dimension")), str(r.get("group")), f"n<{min_n}", "", "",
                             ""))
            else:
                rows.append((str(r.get("dimension")), str(r.get("group")), fmt_int(r.get("n")),
                             fmt_pct(r.get("share_users")), fmt_pct(r.get("share_habitual")),
                             fmt(r.get(minutes_key), 0)))
        tables.append(Table("Use by group", ("Dimension", "Group", "Students", "Used it",
                                             "Habitual users", minutes_label), tuple(rows),
                            (f"Groups with fewer than {min_n} students are suppressed, with a "
                             "second group where needed so none can be worked out.",)))
    return Section("usage", f"Who used {product}, and how much", tuple(paragraphs),
                   tuple(figures), tuple(tables))


def _dose_sections(results: Mapping[str, Any], min_n: int) -> Section:
    entries = results.get("dose_response") or []
    if not entries:
        return Section("dose-response", "Does more use go with higher scores?",
                       ("No dose-response analysis was possible with these data.",))
    paragraphs: list[str] = []
    figures: list[Figure] = []
    rows = []
    bullets: list[str] = []
    for dose in entries:
        outcome = _outcome_words(dose.get("outcome"), dose.get("unit"))
        unit = str(dose.get("unit") or "points")
        pm = dose.get("per_month") or {}
        naive = dose.get("naive") or {}
        rows.append((outcome, "adjusted (model below)", fmt(pm.get("estimate"), 2, sign=True),
                     fmt_ci(pm.get("ci_low"), pm.get("ci_high"), 2), fmt_int(dose.get("n")),
                     fmt_int(dose.get("clusters"))))
        if naive:
            rows.append((outcome, "unadjusted", fmt(naive.get("estimate"), 2, sign=True),
                         fmt_ci(naive.get("ci_low"), naive.get("ci_high"), 2),
                         fmt_int(dose.get("n")), fmt_int(dose.get("clusters"))))
        bins = dose.get("bins") or []
        visible = [b for b in bins if not b.get("suppressed") and _num(b.get("mean")) is not None]
        title = f"{_capitalise(outcome)} by months of habitual use"
        if visible:
            takeaway = (f"Each month of habitual use went with "
                        f"{fmt(pm.get('estimate'), 1, sign=True)}"
                        f" {unit} (95% CI {fmt_ci(pm.get('ci_low'), pm.get('ci_high'))}) after "
                        "adjusting for prior scores and background.")
            alt = (f"Mean {outcome} with 95% confidence intervals by months of habitual use, and "
                   "the fitted line: " +
                   "; ".join(f"{b.get('months')} {_plural(_num(b.get('months')), 'month')}: "
                             + ("suppressed" if b.get("suppressed") else
                                f"mean {fmt(b.get('mean'))} (n = {fmt_int(b.get('n'))})")
                             for b in bins) + ".")
            figures.append(Figure(
                _draw(charts.dose_response_chart, bins, dose.get("fitted"), title=title, alt=alt,
                                           ylabel=f"{_capitalise(outcome)} ({unit})",
                                           min_n=min_n),
                title, takeaway, alt))
        else:
            paragraphs.append(f"The binned means for {outcome} cannot be shown: every bin has "
                              f"fewer than {min_n} students and is suppressed.")
        for key in ("limits", "essa_note"):
            if dose.get(key):
                bullets.append(str(dose[key]))
        prefix = f"{_capitalise(outcome)}: " if len(entries) > 1 else ""
        bullets.extend(prefix + str(n) for n in dose.get("notes") or [])
    bullets = list(dict.fromkeys(bullets))  # several outcomes repeat the same caveats
    table = Table("Change per month of habitual use",
                  ("Outcome", "Estimate", "Per month", "95% CI", "Students", "Schools"),
                  tuple(rows))
    return Section("dose-response", "Does more use go with higher scores?", tuple(paragraphs),
                   tuple(figures), (table,), tuple(bullets))


def _series_name(row: Mapping[str, Any]) -> str:
    pop = {"users": "users", "non_users": "non-users", "all": "all students"}.get(
        str(row.get("population") or ""), str(row.get("population") or "all students"))
    window = row.get("window")
    return f"{pop}, {window}" if window else pop


def _primary_gaps(results: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """Gap rows of the primary outcome only (all rows when outcomes are not labelled)."""
    gaps = list(results.get("gaps") or [])
    outcomes = [str(g.get("outcome")) for g in gaps if g.get("outcome")]
    if not outcomes:
        return gaps
    primary = str(_study(results).get("primary_outcome") or "")
    wanted = next((o for o in outcomes if primary and o.removeprefix("outcome_") ==
                   primary.removeprefix("outcome_")), outcomes[0])
    return [g for g in gaps if str(g.get("outcome")) == wanted]


def _filter_gaps(
    gaps: list[Mapping[str, Any]], *, populations: tuple[str, ...], windows: tuple[str, ...] | None
) -> list[Mapping[str, Any]]:
    """Rows of the given populations and windows; a filter that matches nothing is dropped."""
    by_pop = [g for g in gaps if g.get("population") in populations] or gaps
    if windows is None:
        return by_pop
    return [g for g in by_pop if g.get("window") in windows] or by_pop


def _gaps_section(results: Mapping[str, Any], min_n: int) -> Section:
    all_gaps = _primary_gaps(results)
    outcome_window = _window(results)
    # The chart compares users with non-users at baseline and outcome; other populations and
    # outcomes are in the appendix and tables/gaps.csv.
    windows = tuple(sorted({str(g.get("window")) for g in all_gaps if g.get("window")}))
    gaps = _filter_gaps(all_gaps, populations=("users", "non_users"), windows=windows or None)
    if not gaps:
        return Section("gaps", "Gaps between student groups",
                       ("No subgroup analysis was possible with these data.",))
    figures: list[Figure] = []
    paragraphs: list[str] = []
    dims: list[str] = []
    for g in gaps:
        if str(g.get("dimension")) not in dims:
            dims.append(str(g.get("dimension")))
    for dim in dims:
        rows = [g for g in gaps if str(g.get("dimension")) == dim and g.get("group") !=
                g.get("reference")]
        if not rows:
            continue
        reference = rows[0].get("reference")
        title = f"Gap to {reference} by {dim.replace('_', ' ')}"
        visible = [g for g in rows if not g.get("suppressed") and _num(g.get("gap")) is not None]
        if not visible:
            paragraphs.append(f"All {dim.replace('_', ' ')} groups have fewer than {min_n} "
                              "students "
                              "(or are suppressed to protect a small group), so no gaps are shown.")
            continue
        focus = [g for g in visible if g.get("window") == outcome_window] or visible
        biggest = max(focus, key=lambda g: abs(_num(g.get("gap")) or 0))
        takeaway = (f"The largest gap is for {biggest.get('group')} ({_series_name(biggest)}):"
                    f" {fmt(biggest.get('gap'), 1, sign=True)} points versus {reference} "
                    f"(95% CI {fmt_ci(biggest.get('ci_low'), biggest.get('ci_high'))}).")
        alt = (f"Forest plot of score gaps to {reference} by {dim.replace('_', ' ')}: " +
               "; ".join(f"{g.get('group')} ({_series_name(g)}): "
                         + ("suppressed" if g.get("suppressed") or _num(g.get("gap")) is None
                            else f"{fmt(g.get('gap'), 1, sign=True)} "
                                 f"[{fmt_ci(g.get('ci_low'), g.get('ci_high'))}]")
                         for g in rows) + ".")
        forest_rows = [{"label": g.get("group"), "series": _series_name(g),
                        "estimate": g.get("gap"), "ci_low": g.get("ci_low"),
                        "ci_high": g.get("ci_high"), "suppressed": g.get("suppressed")}
                       for g in rows]
        figures.append(Figure(_draw(charts.forest_chart, forest_rows, title=title, alt=alt,
                                                  xlabel=f"Gap to {reference} (points)",
                                                  min_n=min_n), title, takeaway, alt))
    table_rows = []
    for g in _filter_gaps(gaps, populations=("users", "non_users"), windows=(outcome_window,)):
        hidden = g.get("suppressed")
        table_rows.append((str(g.get("dimension")), str(g.get("group")), _series_name(g),
                           f"n<{min_n}" if hidden else fmt_int(g.get("n")),
                           "" if hidden else fmt(g.get("mean")),
                           "" if hidden else ("reference" if g.get("group") == g.get("reference")
                                              else fmt(g.get("gap"), 1, sign=True)),
                           "" if hidden else fmt_ci(g.get("ci_low"), g.get("ci_high"))))
    table = Table("Group means and gaps to the reference group",
                  ("Dimension", "Group", "Students, test", "n", "Mean", "Gap", "95% CI"),
                  tuple(table_rows),
                  (f"Cells with fewer than {min_n} students are suppressed (n<{min_n}), with a "
                   "complementary cell where needed. Adjusted p-values are in the appendix; "
                   "every outcome and population is in tables/gaps.csv.",))
    return Section("gaps", "Gaps between student groups", tuple(paragraphs), tuple(figures),
                   (table,))


def _impact_section(results: Mapping[str, Any], min_n: int) -> Section:
    impact = results.get("impact")
    heading = "Did using it make a difference?"
    if not impact:
        return Section("impact", heading,
                       (f"No impact estimate could be made: {_impact_reason(results).rstrip('.')}."
                        " The dose-response analysis above is the best available evidence.",))
    meaningful, pass_p, fail_p = _decision_rule(results)
    paragraphs = [
        f"Design: {impact.get('design')}; estimand: {impact.get('estimand')}. "
        f"{count_words(impact.get('n_treatment'), min_n)} users were compared with "
        f"{count_words(impact.get('n_comparison'), min_n)} similar non-users.",
        _decision_sentence(impact, pass_p, fail_p),
    ]
    figures: list[Figure] = []
    regions = impact.get("regions") or {}
    if regions and any(_num(regions.get(k)) is not None for k in ("worse", "no_change",
                                                                   "better")):
        title = "How likely is each conclusion?"
        better = _num(regions.get("better"))
        takeaway = (f"The probability of a meaningful improvement is {fmt_prob(better)}"
                    + (f", {'at or above' if (better or 0) >= pass_p else 'below'} the "
                       f"{fmt_pct(pass_p)} needed to pass." if pass_p is not None else "."))
        alt = (f"Bar chart of three probabilities: meaningfully worse "
               f"{fmt_prob(regions.get('worse'))}"
               f", no meaningful change {fmt_prob(regions.get('no_change'))}, meaningfully better "
               f"{fmt_prob(regions.get('better'))}"
               + (f"; meaningful means an effect of at least {fmt(meaningful, 2)} SD"
                  if meaningful is not None else "")
               + (f"; dashed line at the {fmt_pct(pass_p)} decision threshold." if pass_p
                  is not None else "."))
        figures.append(Figure(_draw(charts.probability_bars, regions, threshold=pass_p, title=title,
                                                      alt=alt), title, takeaway, alt))
    else:
        paragraphs.append("Probabilities for the three conclusions were not computed.")
    balance = impact.get("balance") or []
    if balance:
        title = "Balance before and after matching"
        after = [(_num(b.get("smd_after")), b.get("variable")) for b in balance]
        after = [(abs(v), name) for v, name in after if v is not None]
        within = sum(1 for v, _ in after if v <= 0.05)
        worst = max(after, default=(None, None))
        takeaway = (f"After matching, {within} of {len(balance)} variables differ by 0.05 SD or "
                    "less" + (f"; the largest difference is {worst[1]} at {fmt(worst[0], 2)} SD."
                              if worst[0] is not None else "."))
        alt = ("Dot plot of absolute standardized mean differences before and after matching: " +
               "; ".join(f"{b.get('variable')}: {fmt(abs(_num(b.get('smd_before')) or 0), 2)} "
                         f"before, {fmt(abs(_num(b.get('smd_after')) or 0), 2)} after"
                         for b in balance) + "; reference lines at 0.05 and 0.25.")
        figures.append(Figure(_draw(charts.love_plot, balance, title=title, alt=alt), title,
                              takeaway,
                              alt))
    rows = (
        ("Difference (users minus comparison)",
         f"{fmt(impact.get('estimate'), 2, sign=True)} {impact.get('unit') or ''}".strip()),
        ("95% confidence interval", fmt_ci(impact.get("ci_low"), impact.get("ci_high"), 2)),
        ("Effect size (Hedges' g)", fmt(impact.get("hedges_g"), 3)),
        ("WWC improvement index", fmt(impact.get("improvement_index"), 1)),
        ("Probability the effect is positive", fmt_prob(impact.get("probability_positive"))),
        ("Probability the effect is meaningful", fmt_prob(impact.get("probability_meaningful"))),
    )
    table = Table("Impact estimate", ("Quantity", "Value"), rows)
    bullets = tuple(str(n) for n in impact.get("notes") or [])
    return Section("impact", heading, tuple(paragraphs), tuple(figures), (table,), bullets)


def _rollout_section(results: Mapping[str, Any], min_n: int) -> Section | None:
    """Usage, fidelity and the dose-response slope by rollout stage (pilot vs expansion)."""
    rollout = results.get("rollout") or {}
    stages = rollout.get("stages") or []
    if not stages:
        return None
    product = _product(results)
    shown = [s for s in stages if not s.get("suppressed")]
    names = [str(s.get("stage")) for s in stages]
    shares = [s.get("share_habitual") for s in stages]
    alt = ("Bar chart of the share of students who were habitual users, by rollout stage: "
           + "; ".join(f"{s.get('stage')}: "
                       + ("suppressed" if s.get("suppressed") else fmt_pct(s.get("share_habitual")))
                       for s in stages) + ".")
    title = f"Habitual users of {product} by rollout stage"
    takeaway = "Habitual use by rollout stage."
    if len(shown) >= 2:
        best = max(shown, key=lambda s: _num(s.get("share_habitual")) or 0)
        worst = min(shown, key=lambda s: _num(s.get("share_habitual")) or 0)
        takeaway = (f"{fmt_pct(best.get('share_habitual'))} of students in the {best.get('stage')} "
                    f"stage were habitual users, against {fmt_pct(worst.get('share_habitual'))} "
                    f"in the {worst.get('stage')} stage.")
    figure = Figure(_draw(charts.bar_chart, names, shares, title=title, alt=alt,
                          ylabel="Share of students", value_format="{:.0%}",
                          suppressed=[bool(s.get("suppressed")) for s in stages], min_n=min_n),
                    title, takeaway, alt)
    rows = []
    for s in stages:
        if s.get("suppressed"):
            rows.append((str(s.get("stage")), str(s.get("start_date") or ""), f"n<{min_n}",
                         "", "", "", "", "", ""))
            continue
        rows.append((
            str(s.get("stage")),
            str(s.get("start_date") or ""),
            fmt_int(s.get("schools")),
            fmt_int(s.get("students")),
            fmt_pct(s.get("share_users")),
            fmt_pct(s.get("share_habitual")),
            fmt(s.get("mean_habitual_months_users")),
            fmt_pct(s.get("share_fidelity")),
            (f"{fmt(s.get('slope'), 2, sign=True)} ({fmt_ci(s.get('slope_ci_low'), s.get('slope_ci_high'), 2)})"
             if _num(s.get("slope")) is not None else "not estimable"),
        ))
    table = Table(
        caption="Usage, fidelity and dose-response by rollout stage",
        headers=("Stage", "Started", "Schools", "Students", "Used it", "Habitual users",
                 "Habitual months (users)", "Met fidelity", "Slope per habitual month (95% CI)"),
        rows=tuple(rows),
        notes=tuple(str(n) for n in rollout.get("notes") or ()),
    )
    paragraphs = [str(w.get("message")) for w in rollout.get("warnings") or ()]
    if not paragraphs:
        paragraphs.append("No stage falls far behind the pilot in habitual use or in its "
                          "dose-response slope.")
    return Section(id="rollout", heading="Pilot and expansion: is the spread deep or only wide?",
                   paragraphs=tuple(paragraphs), figures=(figure,), tables=(table,))


def _evidence_section(results: Mapping[str, Any]) -> Section:
    evidence = results.get("evidence")
    if not evidence:
        return Section("evidence", "Strength of evidence",
                       ("No evidence rating was produced: "
                        f"{_impact_reason(results).rstrip('.')}.",))
    paragraphs = [f"ESSA evidence tier: {evidence.get('essa_tier') or 'none'}. "
                  f"What Works Clearinghouse rating (emulated): "
                  f"{evidence.get('wwc_rating') or 'not rated'}."]
    if evidence.get("rationale"):
        paragraphs.append(str(evidence["rationale"]))
    rows = tuple((str(c.get("name")), {True: "met", False: "not met"}.get(c.get("met"),
                                                                          "unknown"),
                  str(c.get("detail") or "")) for c in evidence.get("criteria") or [])
    tables = (Table("Evidence criteria", ("Criterion", "Status", "Detail"), rows),) if rows else ()
    return Section("evidence", "Strength of evidence", tuple(paragraphs), (), tables)


def _appendix(results: Mapping[str, Any], min_n: int) -> tuple[Section, ...]:
    sections: list[Section] = []
    inputs = results.get("inputs") or []
    join = results.get("join") or {}
    input_rows = tuple((str(i.get("path")), str(i.get("kind") or ""), str(i.get("preset") or ""),
                        fmt_int(i.get("rows")), str(i.get("sha256") or "")[:12])
                       for i in inputs)
    join_rows = tuple((label, fmt_pct(join.get(key), 1) if key.endswith("rate")
                       else fmt_int(join.get(key)))
                      for key, label in (
                          ("students_scored", "Students with scores"),
                          ("roster_students", "Students on the roster"),
                          ("students_with_usage", "Students with usage"),
                          ("usage_rows", "Usage rows"),
                          ("usage_rows_matched", "Usage rows matched to a student"),
                          ("usage_match_rate", "Usage match rate"),
                          ("score_match_rate", "Score match rate"))
                      if key in join)
    sections.append(Section(
        "appendix-data", "A. Data sources and match rates", (),
        (), (Table("Input files", ("File", "Kind", "Layout", "Rows", "sha256 (first 12)"),
                   input_rows),
             Table("Joining the files", ("Quantity", "Value"), join_rows))))
    dosage = results.get("dosage") or {}
    definition = dosage.get("definition") or {}
    plan = results.get("plan") or {}
    bullets = [
        f"Habitual month: a calendar month with at least "
        f"{definition.get('min_sessions_per_month', '?')} sessions (counted per "
        f"{definition.get('unit', '?')}); habitual user: at least "
        f"{definition.get('min_habitual_months') or 1} habitual month(s); usage window: "
        f"{definition.get('window', '?')}.",
        f"Small cells: groups with fewer than {min_n} students are suppressed in every table, "
        "chart and sentence, with complementary suppression.",
        "Plan: " + ("locked" + (f" at {plan.get('locked_at')}" if plan.get("locked_at") else "")
                    if plan.get("locked") else "not locked")
        + ("; changed since it was locked" if plan.get("changed") else "")
        + (f"; sha256 {str(plan.get('sha256'))[:12]}" if plan.get("sha256") else "") + ".",
    ]
    meaningful, pass_p, fail_p = _decision_rule(results)
    if meaningful is not None:
        bullets.append(f"Meaningful effect: g of at least {fmt(meaningful, 2)}; pass when the "
                       f"probability of a meaningful effect is at least {fmt_pct(pass_p)}, fail "
                       f"when it is at most {fmt_pct(fail_p)}.")
    bullets.extend(f"{d.get('term')}: {d.get('definition')}" for d in
                   results.get("definitions") or [])
    sections.append(Section("appendix-definitions", "B. Definitions", bullets=tuple(bullets)))
    model_bullets = []
    for dose in results.get("dose_response") or []:
        pm = dose.get("per_month") or {}
        covariates = ", ".join(map(str, dose.get("covariates") or [])) or "none"
        model_bullets.append(
            f"Dose-response ({_outcome_words(dose.get('outcome'), dose.get('unit'))}): "
            f"{dose.get('model')}. Covariates: {covariates}. Estimate "
            f"{fmt(pm.get('estimate'), 3)} (SE {fmt(pm.get('se'), 3)}, "
            f"p = {fmt_p(pm.get('p_value'))}); {fmt_int(dose.get('n'))} students, "
            f"{fmt_int(dose.get('clusters'))} clusters.")
    impact = results.get("impact")
    if impact:
        model_bullets.append(
            f"Impact: {impact.get('model') or impact.get('design')}; estimand "
            f"{impact.get('estimand')}. Estimate {fmt(impact.get('estimate'), 3)} "
            f"(SE {fmt(impact.get('se'), 3)}, p = {fmt_p(impact.get('p_value'))}). "
            + (f"Prior for the probabilities: {impact.get('prior')}. " if impact.get("prior")
               else "")
            + (f"Minimum detectable effect size: {fmt(impact.get('mdes'), 2)} SD."
               if impact.get("mdes") is not None else ""))
    sections.append(Section("appendix-models", "C. Models", bullets=tuple(model_bullets) or
                            ("No models were fitted.",)))
    tables: list[Table] = []
    if impact and impact.get("balance"):
        tables.append(Table(
            "Balance before and after matching",
            ("Variable", "SMD before", "SMD after", "Variance ratio before",
             "Variance ratio after"),
            tuple((str(b.get("variable")), fmt(b.get("smd_before"), 3),
                   fmt(b.get("smd_after"), 3), fmt(b.get("var_ratio_before"), 2),
                   fmt(b.get("var_ratio_after"), 2)) for b in impact["balance"])))
    if impact and impact.get("baseline_equivalence"):
        tables.append(Table(
            "Baseline equivalence (WWC)", ("Variable", "g", "Verdict"),
            tuple((str(b.get("variable")), fmt(b.get("g"), 3), str(b.get("verdict")))
                  for b in impact["baseline_equivalence"])))
    sections.append(Section("appendix-balance", "D. Balance tables",
                            () if tables else ("No matched comparison, so no balance tables.",),
                            (), tuple(tables)))
    gaps = _filter_gaps(_primary_gaps(results), populations=("users", "non_users", "all"),
                        windows=None)
    gaps = [g for g in gaps if g.get("window") or not any(x.get("window") for x in gaps)]
    if gaps:
        rows = tuple(
            (str(g.get("dimension")), str(g.get("group")), _series_name(g),
             f"n<{min_n}" if g.get("suppressed") else fmt_int(g.get("n")),
             fmt(g.get("gap"), 2, sign=True), fmt_p(g.get("p_adjusted")),
             fmt(g.get("hedges_g"), 3), fmt(g.get("pooled_estimate"), 2, sign=True))
            for g in gaps)
        sections.append(Section("appendix-gaps", "E. Subgroup details", (), (), (Table(
            "Gaps with adjusted p-values (Benjamini-Hochberg within dimension)",
            ("Dimension", "Group", "Students, test", "n", "Gap", "Adjusted p", "Hedges' g",
             "Pooled (shrunken) gap"), rows),)))
    warnings = results.get("warnings") or []
    sections.append(Section(
        "appendix-warnings", "F. Warnings",
        () if warnings else ("No warnings.",),
        bullets=tuple(f"{w.get('code')}: {w.get('message')}" for w in warnings)))
    return tuple(sections)


def build_view(results: Mapping[str, Any], *, with_charts: bool = True) -> View:
    """The report as a document model (see module docstring).

    ``with_charts=False`` leaves every ``Figure.svg`` empty (Markdown has no use for the SVG and
    drawing is the slow part); titles, takeaways and alt texts are the same.
    """
    from rce.report import chart_helper

    if not with_charts:
        return _view_with(results, lambda function, args, kwargs: "")
    if not chart_helper.helper_running():
        return _view_with(results, None)
    # Two passes: the first lists the charts, which are then drawn on two cores
    # (rce.report.chart_helper); the second builds the view with them. A view without charts
    # takes about 10 ms.
    jobs: list[chart_helper.Job] = []
    _view_with(results, lambda function, args, kwargs: jobs.append((function, args, kwargs))
               or "")
    drawn = list(zip(jobs, chart_helper.render_jobs(jobs), strict=True))
    drawn.reverse()

    def take(function: Any, args: tuple, kwargs: dict) -> str:
        (f, a, k), svg = drawn.pop() if drawn else ((None, None, None), "")
        # The same results give the same charts in the same order; anything else is drawn anew.
        return svg if (f is function and a == args and k == kwargs) else function(*args,
                                                                                 **kwargs)

    return _view_with(results, take)


def prefetch_charts(results: Mapping[str, Any]) -> None:
    """Hand the report's charts to the helper process now (if one runs), so that it draws
    while this process finishes the results; :func:`build_view` then collects them."""
    from rce.report import chart_helper

    if not chart_helper.helper_running():
        return
    jobs: list[chart_helper.Job] = []
    _view_with(results, lambda function, args, kwargs: jobs.append((function, args, kwargs))
               or "")
    chart_helper.prefetch(jobs)


def _view_with(results: Mapping[str, Any], hook: Callable[[Any, tuple, dict], str] | None
               ) -> View:
    token = _DRAW.set(hook)
    try:
        return _build_view(results)
    finally:
        _DRAW.reset(token)


def _build_view(results: Mapping[str, Any]) -> View:
    min_n = _min_n(results)
    study = _study(results)
    product = _product(results)
    badges = []
    if study.get("interim"):
        badges.append("Interim results")
    plan = results.get("plan") or {}
    if plan.get("locked"):
        badges.append("Plan locked" + (" (changed since)" if plan.get("changed") else ""))
    else:
        badges.append("Plan not locked")
    subtitle_bits = [product]
    if study.get("subject"):
        subtitle_bits.append(str(study["subject"]))
    if study.get("academic_year"):
        subtitle_bits.append(str(study["academic_year"]))
    subtitle_bits.append(f"outcome: {_window(results)} test")
    sections = tuple(section for section in (
        _usage_section(results, min_n),
        _dose_sections(results, min_n),
        _rollout_section(results, min_n),
        _gaps_section(results, min_n),
        _impact_section(results, min_n),
        _evidence_section(results),
    ) if section is not None)
    footer = (f"rce {results.get('rce_version', '')}, results schema "
              f"{results.get('schema_version', '')}"
              + (f", generated {results['generated_at']}" if results.get("generated_at") else "")
              + ". No student identifiers appear in this report.")
    return View(
        title=str(study.get("name") or "Rapid-cycle evaluation"),
        subtitle=" \u00b7 ".join(subtitle_bits),
        badges=tuple(badges),
        summary=tuple(executive_summary(results)),
        sections=sections,
        appendix=_appendix(results, min_n),
        footer=footer,
    )
