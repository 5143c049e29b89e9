"""report.html: one self-contained file (inline CSS and SVG, no JavaScript, no network).

Rendered from the results dict through :func:`rce.report.narrative.build_view` and a Jinja2
template with autoescaping on, so every text that comes from an input file is escaped. A
Content-Security-Policy meta tag forbids scripts and remote loads as a second line of defence.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import jinja2

from rce.report.narrative import build_view

__all__ = ["render_html", "render_view_html"]


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("rce.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def render_html(results: Mapping[str, Any]) -> str:
    """Render the HTML report from a results dict.

    Parameters
    ----------
    results
        The results dict (what ``results.json`` holds); never raw data.

    Returns
    -------
    str
        A complete HTML5 document.
    """
    return render_view_html(build_view(results), rce_version=str(results.get("rce_version", "")))


def render_view_html(view: Any, *, rce_version: str = "") -> str:
    """Render any report view (analysis, trend) with the shared report template."""
    template = _environment().get_template("report.html.j2")
    return template.render(view=view, rce_version=rce_version)
