"""Charts as inline SVG strings: deterministic, accessible, colour-blind safe.

Every function takes plain numbers (lists of dicts as they appear in ``results.json``), never raw
data, and returns one ``<svg>`` element ready to paste into HTML. The SVG carries a ``<title>``
and a ``<desc>`` (alt text) referenced by ``aria-labelledby``; text stays text
(``svg.fonttype = "none"``), and the output is byte-identical for the same input
(``metadata={"Date": None}``, a per-chart ``svg.hashsalt``, no random ids) so reports can be
diffed and golden-tested.

Suppressed cells (``suppressed: true``) are never drawn as values: bars and points are left out
and marked "n<10" (or whatever the cell-size rule is) so a reader sees that something is hidden.
Text that comes from input files (group, school, product names) is escaped for matplotlib's
mathtext and for XML by the SVG backend.
"""

from __future__ import annotations

import functools
import hashlib
import io
import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import matplotlib
import matplotlib.style
import matplotlib.ticker
from matplotlib.backends.backend_svg import FigureCanvasSVG
from matplotlib.figure import Figure

# Short name: it is read in almost every plotting expression below.
from rce.jsonsafe import finite_or_none as _num
from rce.report.escape import escape_html, escape_mathtext

__all__ = [
    "PALETTE",
    "bar_chart",
    "dose_response_chart",
    "forest_chart",
    "habitual_months_chart",
    "love_plot",
    "monthly_trend_chart",
    "probability_bars",
    "scatter_chart",
]

#: Okabe & Ito (2008) colour-blind-safe palette.
PALETTE = {
    "blue": "#0072B2",
    "orange": "#E69F00",
    "sky": "#56B4E9",
    "green": "#009E73",
    "vermillion": "#D55E00",
    "purple": "#CC79A7",
    "yellow": "#F0E442",
    "black": "#000000",
    "grey": "#8C8C8C",
}
_SERIES = ("blue", "orange", "green", "vermillion", "purple", "sky", "black")
_MARKERS = ("o", "s", "D", "^", "v", "P", "X")

_RC = {
    "svg.fonttype": "none",
    "font.family": "DejaVu Sans",
    "font.size": 9.0,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titlesize": 10.0,
    "axes.titleweight": "bold",
    "axes.titlelocation": "left",
    "text.usetex": False,
}


def _styled(function: Callable[..., str]) -> Callable[..., str]:
    """Draw under the house style only, whatever the caller's global rcParams say."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> str:
        with matplotlib.style.context(_RC, after_reset=True):
            return function(*args, **kwargs)

    return wrapper


def _label(value: Any, limit: int = 40) -> str:
    text = escape_mathtext(value)
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def _chart_id(title: str, key: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:40] or "chart"
    return f"chart-{slug}-{hashlib.sha256((key + title).encode()).hexdigest()[:8]}"


def _render(fig: Figure, *, key: str, title: str, alt: str) -> str:
    """Serialise a figure to an inline ``<svg>`` element with a title and alt text."""
    chart_id = _chart_id(title, key)
    buf = io.StringIO()
    with matplotlib.rc_context({**_RC, "svg.hashsalt": chart_id, "svg.id": chart_id}):
        # print_svg directly, not savefig: savefig draws the figure twice when a layout engine
        # is set (once with drawing disabled to place the axes, then for real); the engine
        # also runs at the start of the real draw, on the same 72-dpi SVG renderer.
        FigureCanvasSVG(fig).print_svg(buf, metadata={"Date": None})
    svg = buf.getvalue()
    start = svg.index("<svg")
    svg = svg[start:]
    svg = re.sub(r"<metadata>.*?</metadata>\s*", "", svg, count=1, flags=re.S)
    # matplotlib numbers its groups per document (figure_1, axes_1, ...); several charts in one
    # HTML page would repeat them, so every id and reference gets the chart's own prefix.
    svg = re.sub(r'\bid="(?!chart-)([^"]+)"', rf'id="{chart_id}-\1"', svg)
    svg = svg.replace("url(#", f"url(#{chart_id}-").replace('href="#', f'href="#{chart_id}-')
    open_end = svg.index(">") + 1
    opening = svg[:open_end]
    opening = opening.replace(
        "<svg ",
        f'<svg role="img" class="chart" aria-labelledby="{chart_id}-title {chart_id}-desc" ',
        1,
    )
    accessible = (
        f'<title id="{chart_id}-title">{escape_html(title)}</title>'
        f'<desc id="{chart_id}-desc">{escape_html(alt)}</desc>'
    )
    return opening + accessible + svg[open_end:].rstrip() + "\n"


def _figure(width: float = 7.0, height: float = 3.4) -> Figure:
    with matplotlib.rc_context(_RC):
        return Figure(figsize=(width, height), layout="constrained")


def _axes(fig: Figure, title: str) -> Any:
    with matplotlib.rc_context(_RC):
        ax = fig.add_subplot()
        ax.set_title(_label(title, 90))
        ax.grid(axis="y", color="#DDDDDD", linewidth=0.6)
        ax.set_axisbelow(True)
    return ax


def _suppressed_mark(min_n: int | None) -> str:
    return f"n<{min_n}" if min_n else "suppressed"


@_styled
def monthly_trend_chart(
    rows: Sequence[Mapping[str, Any]],
    *,
    title: str = "Students using the product each month",
    alt: str = "",
    series: Sequence[tuple[str, str]] = (
        ("students_active", "active"),
        ("students_habitual", "habitual"),
    ),
    ylabel: str = "Students",
    min_n: int | None = None,
) -> str:
    """Line chart of monthly usage with direct labels at the end of each line.

    Parameters
    ----------
    rows
        ``usage.monthly_trend`` rows: ``month`` (``YYYY-MM``) and the ``series`` keys. A None
        value (suppressed or missing) leaves a gap in the line.
    title, alt
        Chart title and the alt-text sentence.
    series
        ``(key, direct label)`` pairs to draw.
    ylabel
        Y-axis label.
    min_n
        Cell-size rule, only used to word the suppression mark.
    """
    fig = _figure()
    ax = _axes(fig, title)
    months = [str(r.get("month", "")) for r in rows]
    x = list(range(len(months)))
    for i, (key, name) in enumerate(series):
        ys = [_num(r.get(key)) for r in rows]
        color = PALETTE[_SERIES[i % len(_SERIES)]]
        ax.plot(
            x,
            [math.nan if y is None else y for y in ys],
            color=color,
            marker=_MARKERS[i % len(_MARKERS)],
            markersize=4,
            linewidth=1.8,
        )
        last = max((j for j, y in enumerate(ys) if y is not None), default=None)
        if last is not None:
            ax.annotate(
                _label(name),
                (x[last], ys[last]),
                xytext=(6, 0),
                textcoords="offset points",
                va="center",
                color=color,
                fontweight="bold",
            )
        for j, y in enumerate(ys):
            if y is None and rows[j].get("suppressed"):
                ax.annotate(_suppressed_mark(min_n), (x[j], 0), ha="center", va="bottom",
                            fontsize=7, color=PALETTE["grey"])
    # A label may hold a line break ("Sep\n2025") so that many months fit side by side.
    ax.set_xticks(x, ["\n".join(_label(part, 12) for part in m.split("\n")) for m in months])
    ax.set_ylabel(ylabel)
    ax.set_ylim(bottom=0)
    if x:
        ax.set_xlim(-0.5, len(x) - 0.5 + 0.9)
    return _render(fig, key="monthly", title=title, alt=alt)


@_styled
def bar_chart(
    categories: Sequence[Any],
    values: Sequence[Any],
    *,
    title: str,
    alt: str = "",
    xlabel: str = "",
    ylabel: str = "",
    suppressed: Sequence[bool] | None = None,
    horizontal: bool = False,
    value_format: str = "{:,.0f}",
    colors: Sequence[str] | None = None,
    min_n: int | None = None,
    reference_line: float | None = None,
    reference_label: str = "",
) -> str:
    """Bar chart with each value written on its bar (no legend needed).

    Parameters
    ----------
    categories
        Bar labels (escaped; may come from input files).
    values
        Bar heights; None draws no bar.
    suppressed
        Per bar, True draws no bar and writes the suppression mark instead.
    horizontal
        Horizontal bars (better for long labels such as product names).
    value_format
        Format for the direct labels, e.g. ``"${:,.2f}"`` or ``"{:.0%}"``.
    colors
        Palette names or hex colours per bar; default one colour.
    reference_line, reference_label
        Optional threshold line (e.g. a cost target) with its direct label.
    """
    height = max(2.6, 0.32 * len(categories) + 1.2) if horizontal else 3.4
    fig = _figure(7.0, height)
    ax = _axes(fig, title)
    flags = list(suppressed) if suppressed is not None else [False] * len(categories)
    nums = [None if flags[i] else _num(v) for i, v in enumerate(values)]
    labels = [_label(c) for c in categories]
    pos = list(range(len(categories)))
    cols = [
        PALETTE.get(colors[i], colors[i]) if colors else PALETTE["blue"]
        for i in range(len(categories))
    ]
    heights = [0.0 if v is None else v for v in nums]
    span = max([abs(h) for h in heights] + [1e-9])
    if horizontal:
        ax.barh(pos, heights, color=cols, height=0.65)
        ax.set_yticks(pos, labels)
        ax.invert_yaxis()
        ax.grid(axis="y", visible=False)
        ax.grid(axis="x", color="#DDDDDD", linewidth=0.6)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
    else:
        ax.bar(pos, heights, color=cols, width=0.7)
        ax.set_xticks(pos, labels, rotation=30 if max((len(s) for s in labels), default=0) > 8
                      else 0, ha="right" if max((len(s) for s in labels), default=0) > 8
                      else "center")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
    for i, v in enumerate(nums):
        text = _suppressed_mark(min_n) if flags[i] else ("n/a" if v is None else
                                                         value_format.format(v))
        color = PALETTE["grey"] if v is None else "#222222"
        if horizontal:
            ax.annotate(text, (0 if v is None else v, i), xytext=(4, 0),
                        textcoords="offset points", va="center", fontsize=8, color=color)
        else:
            ax.annotate(text, (i, 0 if v is None else v), xytext=(0, 3),
                        textcoords="offset points", ha="center", fontsize=8, color=color)
    if reference_line is not None:
        if horizontal:
            ax.axvline(reference_line, color=PALETTE["black"], linestyle="--", linewidth=1)
            ax.annotate(_label(reference_label), (reference_line, 1.0),
                        xycoords=("data", "axes fraction"), xytext=(3, -2),
                        textcoords="offset points", va="top", fontsize=8)
        else:
            ax.axhline(reference_line, color=PALETTE["black"], linestyle="--", linewidth=1)
            ax.annotate(_label(reference_label), (1.0, reference_line),
                        xycoords=("axes fraction", "data"), xytext=(-3, 3),
                        textcoords="offset points", ha="right", fontsize=8)
    if horizontal:
        ax.set_xlim(min(0.0, min(heights, default=0.0)) * 1.15, span * 1.2)
    else:
        ax.set_ylim(min(0.0, min(heights, default=0.0)) * 1.15, span * 1.18)
    return _render(fig, key="bar", title=title, alt=alt)


@_styled
def habitual_months_chart(
    rows: Sequence[Mapping[str, Any]],
    *,
    title: str = "Students by months of habitual use",
    alt: str = "",
    min_n: int | None = None,
) -> str:
    """Distribution of months of habitual use (``usage.habitual_months_distribution``)."""
    return bar_chart(
        [str(r.get("months")) for r in rows],
        [r.get("n") for r in rows],
        suppressed=[bool(r.get("suppressed")) for r in rows],
        title=title,
        alt=alt,
        xlabel="Months of habitual use",
        ylabel="Students",
        min_n=min_n,
    )


@_styled
def dose_response_chart(
    bins: Sequence[Mapping[str, Any]],
    fitted: Mapping[str, Any] | None,
    *,
    title: str,
    alt: str = "",
    xlabel: str = "Months of habitual use",
    ylabel: str = "Outcome",
    min_n: int | None = None,
) -> str:
    """Binned means with confidence intervals and the fitted line.

    Parameters
    ----------
    bins
        ``dose_response[].bins``: ``months``, ``n``, ``mean``, ``ci_low``, ``ci_high``,
        ``suppressed``.
    fitted
        ``dose_response[].fitted``: either ``points`` (list of ``{months, value}`` and optional
        ``ci_low``/``ci_high``) or ``intercept`` and ``slope`` of a straight line.
    """
    fig = _figure()
    ax = _axes(fig, title)
    shown = [b for b in bins if not b.get("suppressed") and _num(b.get("mean")) is not None]
    xs = [_num(b.get("months")) or 0.0 for b in shown]
    ys = [_num(b.get("mean")) or 0.0 for b in shown]
    lo = [y - (_num(b.get("ci_low")) if _num(b.get("ci_low")) is not None else y)
          for b, y in zip(shown, ys, strict=True)]
    hi = [(_num(b.get("ci_high")) if _num(b.get("ci_high")) is not None else y) - y
          for b, y in zip(shown, ys, strict=True)]
    ax.errorbar(xs, ys, yerr=[lo, hi], fmt="o", color=PALETTE["blue"], ecolor=PALETTE["blue"],
                capsize=3, markersize=5, linewidth=1.2)
    for b, x, y, h in zip(shown, xs, ys, hi, strict=True):
        n = _num(b.get("n"))
        if n is not None:
            ax.annotate(f"n={n:,.0f}", (x, y + h), xytext=(0, 3), textcoords="offset points",
                        ha="center", fontsize=7, color="#444444")
    all_x = [_num(b.get("months")) for b in bins]
    all_x = [x for x in all_x if x is not None]
    for b in bins:
        if b.get("suppressed") and _num(b.get("months")) is not None:
            ax.annotate(_suppressed_mark(min_n), (_num(b.get("months")), 0.02),
                        xycoords=("data", "axes fraction"), ha="center", fontsize=7,
                        color=PALETTE["grey"])
    if fitted:
        points = fitted.get("points") or []
        if points:
            px = [_num(p.get("months")) for p in points]
            py = [_num(p.get("value")) for p in points]
            keep = [(a, b) for a, b in zip(px, py, strict=True) if a is not None and b is not None]
            if keep:
                ax.plot([k[0] for k in keep], [k[1] for k in keep], color=PALETTE["orange"],
                        linewidth=2)
                lows = [_num(p.get("ci_low")) for p in points]
                highs = [_num(p.get("ci_high")) for p in points]
                if all(v is not None for v in lows + highs) and len(points) == len(keep):
                    ax.fill_between([k[0] for k in keep], lows, highs, color=PALETTE["orange"],
                                    alpha=0.18, linewidth=0)
                ax.annotate("fitted", keep[-1], xytext=(5, 0), textcoords="offset points",
                            color=PALETTE["orange"], fontweight="bold", va="center")
        elif _num(fitted.get("intercept")) is not None and _num(fitted.get("slope")) is not None:
            a, s = _num(fitted["intercept"]), _num(fitted["slope"])
            x0, x1 = (min(all_x), max(all_x)) if all_x else (0.0, 1.0)
            ax.plot([x0, x1], [a + s * x0, a + s * x1], color=PALETTE["orange"], linewidth=2)
            ax.annotate("fitted line", (x1, a + s * x1), xytext=(5, 0),
                        textcoords="offset points", color=PALETTE["orange"], fontweight="bold",
                        va="center")
    if all_x:
        ax.set_xticks(sorted(set(all_x)))
        ax.set_xlim(min(all_x) - 0.5, max(all_x) + 1.2)
    ax.set_xlabel(_label(xlabel, 80))
    ax.set_ylabel(_label(ylabel, 60))
    return _render(fig, key="dose", title=title, alt=alt)


@_styled
def forest_chart(
    rows: Sequence[Mapping[str, Any]],
    *,
    title: str,
    alt: str = "",
    xlabel: str = "Gap to reference group",
    min_n: int | None = None,
    reference_value: float = 0.0,
) -> str:
    """Forest plot: one line per label, one marker per series, with confidence intervals.

    Parameters
    ----------
    rows
        Dicts with ``label``, ``series`` (e.g. "users, spring"), ``estimate``, ``ci_low``,
        ``ci_high`` and ``suppressed``. Labels keep their first-seen order.
    reference_value
        Where the vertical "no difference" line is drawn.
    """
    labels: list[str] = []
    series: list[str] = []
    for r in rows:
        if str(r.get("label")) not in labels:
            labels.append(str(r.get("label")))
        if str(r.get("series", "")) not in series:
            series.append(str(r.get("series", "")))
    fig = _figure(7.0, max(2.4, 0.42 * len(labels) * max(1, len(series)) ** 0.5 + 1.4))
    ax = _axes(fig, title)
    ax.grid(axis="y", visible=False)
    ax.grid(axis="x", color="#DDDDDD", linewidth=0.6)
    step = 0.6 / max(1, len(series))
    xs_all: list[float] = []
    for s_i, name in enumerate(series):
        color = PALETTE[_SERIES[s_i % len(_SERIES)]]
        marker = _MARKERS[s_i % len(_MARKERS)]
        offset = (s_i - (len(series) - 1) / 2) * step
        first = True
        for r in rows:
            if str(r.get("series", "")) != name:
                continue
            y = labels.index(str(r.get("label"))) + offset
            est, lo, hi = _num(r.get("estimate")), _num(r.get("ci_low")), _num(r.get("ci_high"))
            if r.get("suppressed") or est is None:
                ax.annotate(_suppressed_mark(min_n) if r.get("suppressed") else "n/a",
                            (reference_value, y), xytext=(4, 0), textcoords="offset points",
                            va="center", fontsize=7, color=PALETTE["grey"])
                continue
            if lo is not None and hi is not None:
                ax.plot([lo, hi], [y, y], color=color, linewidth=1.4)
                xs_all.extend([lo, hi])
            ax.plot([est], [y], marker=marker, color=color, markersize=5, linestyle="none",
                    label=_label(name) if first else None)
            xs_all.append(est)
            first = False
    ax.axvline(reference_value, color=PALETTE["black"], linewidth=0.8)
    ax.set_yticks(range(len(labels)), [_label(lbl) for lbl in labels])
    ax.invert_yaxis()
    ax.set_xlabel(_label(xlabel, 80))
    if xs_all:
        span = max(abs(v - reference_value) for v in xs_all) or 1.0
        ax.set_xlim(reference_value - span * 1.25, reference_value + span * 1.25)
    if len(series) > 1 and any(s for s in series):
        # Series names sit above the plot as a single row, read left to right.
        fig.legend(loc="outside upper right", ncols=min(4, len(series)), frameon=False,
                   fontsize=8, handlelength=1.0)
    return _render(fig, key="forest", title=title, alt=alt)


@_styled
def love_plot(
    balance: Sequence[Mapping[str, Any]],
    *,
    title: str = "Balance before and after matching",
    alt: str = "",
    thresholds: tuple[float, float] = (0.05, 0.25),
) -> str:
    """Absolute standardized mean differences before and after matching.

    Lines at the WWC thresholds (0.05: equivalent; 0.25: adjustment can no longer make the
    groups comparable) let a reader check balance at a glance.
    """
    fig = _figure(7.0, max(2.4, 0.34 * len(balance) + 1.4))
    ax = _axes(fig, title)
    ax.grid(axis="y", visible=False)
    ax.grid(axis="x", color="#DDDDDD", linewidth=0.6)
    names = [_label(b.get("variable")) for b in balance]
    top = 0
    values: list[float] = []
    for i, b in enumerate(balance):
        before, after = _num(b.get("smd_before")), _num(b.get("smd_after"))
        before = abs(before) if before is not None else None
        after = abs(after) if after is not None else None
        if before is not None and after is not None:
            ax.annotate("", xy=(after, i), xytext=(before, i),
                        arrowprops={"arrowstyle": "->", "color": "#999999", "linewidth": 0.8})
        if before is not None:
            ax.plot([before], [i], marker="o", markerfacecolor="white",
                    markeredgecolor=PALETTE["vermillion"], linestyle="none", markersize=6)
            values.append(before)
        if after is not None:
            ax.plot([after], [i], marker="o", color=PALETTE["blue"], linestyle="none",
                    markersize=6)
            values.append(after)
        if i == top and before is not None:
            ax.annotate("before", (before, i), xytext=(0, 7), textcoords="offset points",
                        ha="center", fontsize=7, color=PALETTE["vermillion"])
        if i == top and after is not None:
            ax.annotate("after", (after, i), xytext=(0, -11), textcoords="offset points",
                        ha="center", fontsize=7, color=PALETTE["blue"])
    for t in thresholds:
        ax.axvline(t, color="#555555", linestyle="--", linewidth=0.8)
        ax.annotate(f"{t:g}", (t, 1.0), xycoords=("data", "axes fraction"), xytext=(2, -2),
                    textcoords="offset points", va="top", fontsize=7, color="#555555")
    ax.set_yticks(range(len(names)), names)
    ax.invert_yaxis()
    ax.set_xlim(0, max([*values, max(thresholds)]) * 1.15)
    ax.set_xlabel("Absolute standardized mean difference")
    return _render(fig, key="love", title=title, alt=alt)


@_styled
def probability_bars(
    regions: Mapping[str, Any],
    *,
    threshold: float | None = None,
    title: str = "How likely is each conclusion?",
    alt: str = "",
    labels: Mapping[str, str] | None = None,
) -> str:
    """Bars for P(meaningfully worse), P(no meaningful change), P(meaningfully better).

    Parameters
    ----------
    regions
        ``impact.regions``: ``worse``, ``no_change``, ``better`` as probabilities in [0, 1].
    threshold
        Decision probability (the plan's pass probability), drawn as a dashed line.
    labels
        Display names for the three regions.
    """
    names = {"worse": "Worse", "no_change": "No meaningful\nchange", "better": "Better"}
    names.update(labels or {})
    keys = ["worse", "no_change", "better"]
    colors = [PALETTE["vermillion"], PALETTE["grey"], PALETTE["blue"]]
    fig = _figure(6.0, 3.2)
    ax = _axes(fig, title)
    vals = [_num(regions.get(k)) for k in keys]
    ax.bar(range(3), [0.0 if v is None else v for v in vals], color=colors, width=0.6)
    for i, v in enumerate(vals):
        text = "n/a" if v is None else ("> 99%" if v >= 0.995 else "< 1%" if v < 0.005
                                        else f"{v:.0%}")
        ax.annotate(text, (i, 0.0 if v is None else v),
                    xytext=(0, 3), textcoords="offset points", ha="center", fontsize=9,
                    fontweight="bold")
    if threshold is not None:
        ax.axhline(threshold, color=PALETTE["black"], linestyle="--", linewidth=1)
        ax.annotate(f"{threshold:.0%} decision threshold", (1.0, threshold),
                    xycoords=("axes fraction", "data"), xytext=(0, 3),
                    textcoords="offset points", ha="right", fontsize=8)
    ax.set_xticks(range(3), [_label(names[k]) for k in keys])
    ax.set_ylim(0, 1.1)
    ax.set_yticks([0, 0.25, 0.5, 0.75, 1.0], ["0%", "25%", "50%", "75%", "100%"])
    ax.set_ylabel("Probability")
    return _render(fig, key="prob", title=title, alt=alt)


@_styled
def scatter_chart(
    points: Sequence[Mapping[str, Any]],
    *,
    title: str,
    alt: str = "",
    xlabel: str = "",
    ylabel: str = "",
    x_format: str = "{:,.0f}",
    y_format: str = "{:,.2f}",
    reference_y: float | None = 0.0,
) -> str:
    """Labelled scatter (e.g. effect vs cost per student), each point named directly.

    Parameters
    ----------
    points
        Dicts with ``label``, ``x``, ``y`` and optional ``ci_low``/``ci_high`` for ``y``.
        Points with a missing coordinate are listed under the chart as "not shown".
    """
    fig = _figure()
    ax = _axes(fig, title)
    missing: list[str] = []
    for i, p in enumerate(points):
        x, y = _num(p.get("x")), _num(p.get("y"))
        if x is None or y is None:
            missing.append(_label(p.get("label"), 25))
            continue
        color = PALETTE[_SERIES[i % len(_SERIES)]]
        lo, hi = _num(p.get("ci_low")), _num(p.get("ci_high"))
        if lo is not None and hi is not None:
            ax.plot([x, x], [lo, hi], color=color, linewidth=1.2)
        ax.plot([x], [y], marker=_MARKERS[i % len(_MARKERS)], color=color, markersize=6,
                linestyle="none")
        ax.annotate(_label(p.get("label"), 30), (x, y), xytext=(6, 4),
                    textcoords="offset points", fontsize=8, color=color)
    if reference_y is not None:
        ax.axhline(reference_y, color="#555555", linewidth=0.8)
    ax.set_xlabel(_label(xlabel, 80))
    ax.set_ylabel(_label(ylabel, 60))
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(
        lambda v, _pos: x_format.format(v)))
    ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(
        lambda v, _pos: y_format.format(v)))
    if missing:
        ax.annotate("not shown (no estimate): " + ", ".join(missing), (0, 0),
                    xycoords="figure fraction", xytext=(4, 2), textcoords="offset points",
                    fontsize=7, color=PALETTE["grey"])
    return _render(fig, key="scatter", title=title, alt=alt)
