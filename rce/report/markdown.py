"""report.md: the same content as report.html, readable on GitHub and in wikis.

Charts become their title, takeaway and alt text (the numbers behind them are in the tables).
Every string is escaped with :func:`rce.report.escape.escape_markdown`, so a school called
``| pipes |`` or ``<script>`` cannot break a table or inject HTML.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rce.report.escape import escape_markdown as md
from rce.report.narrative import Section, Table, build_view

__all__ = ["render_markdown"]


def _table(table: Table) -> list[str]:
    lines = [f"**{md(table.caption)}**", ""]
    lines.append("| " + " | ".join(md(h) for h in table.headers) + " |")
    lines.append("|" + "|".join("---" for _ in table.headers) + "|")
    for row in table.rows:
        lines.append("| " + " | ".join(md(c) if c != "" else " " for c in row) + " |")
    lines.append("")
    for note in table.notes:
        lines.extend([f"_{md(note)}_", ""])
    return lines


def _section(section: Section, level: int) -> list[str]:
    lines = ["#" * level + " " + md(section.heading), ""]
    for paragraph in section.paragraphs:
        lines.extend([md(paragraph), ""])
    for figure in section.figures:
        lines.extend([f"**Figure: {md(figure.title)}.** {md(figure.takeaway)}", "",
                      f"> {md(figure.alt)}", ""])
    for table in section.tables:
        lines.extend(_table(table))
    if section.bullets:
        lines.extend(f"- {md(b)}" for b in section.bullets)
        lines.append("")
    return lines


def render_markdown(results: Mapping[str, Any]) -> str:
    """Render the Markdown report from a results dict.

    Parameters
    ----------
    results
        The results dict (what ``results.json`` holds); never raw data.

    Returns
    -------
    str
        GitHub-flavoured Markdown ending in a newline.
    """
    return render_view_markdown(build_view(results, with_charts=False))


def render_view_markdown(view: Any) -> str:
    """Render any report view (analysis, trend) as GitHub-flavoured Markdown."""
    lines = [f"# {md(view.title)}", "", md(view.subtitle), ""]
    if view.badges:
        lines.extend([" · ".join(f"**{md(b)}**" for b in view.badges), ""])
    lines.extend(["## Summary", ""])
    lines.extend(f"- {md(s)}" for s in view.summary)
    lines.append("")
    for section in view.sections:
        lines.extend(_section(section, 2))
    if view.appendix:
        lines.extend(["## Technical appendix", ""])
    for section in view.appendix:
        lines.extend(_section(section, 3))
    lines.extend(["---", "", md(view.footer), ""])
    return "\n".join(lines)
