"""Neutralising text that comes from input files before it reaches a report.

School names, product names, subgroup labels and file names are typed by people and exported by
vendors; any of them can contain markup (``<script>``), Markdown syntax (``| pipes |``) or a
spreadsheet formula (``=HYPERLINK(...)``). Every renderer passes such text through one of these
functions; the Jinja2 templates autoescape on top of that.
"""

from __future__ import annotations

import math
import re
from typing import Any

from markupsafe import escape as _markup_escape

__all__ = [
    "FORMULA_PREFIXES",
    "escape_html",
    "escape_markdown",
    "escape_mathtext",
    "neutralize_cell",
    "neutralize_frame",
    "plain_text",
]

#: A cell starting with one of these is read as a formula (or DDE command) by Excel, LibreOffice
#: and Google Sheets (OWASP "CSV Injection"); tab and CR are included because some importers strip
#: them and then see the character after them.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# Characters that are Markdown syntax anywhere in a line (emphasis, code, links, tables,
# strikethrough); '<', '>' and '&' are turned into entities separately.
_MD_INLINE = re.compile(r"([\\`*_\[\]|~])")
# Characters that are syntax only at the start of a line (headings, lists, quotes, rules).
_MD_LINE_START = re.compile(r"^(\s*)(?:([#+\-=])|(\d+)([.)]))")


def plain_text(value: Any) -> str:
    """Text form of a value with control characters removed (newlines become spaces).

    Parameters
    ----------
    value
        Any value; ``None`` and NaN become the empty string.

    Examples
    --------
    >>> plain_text("North\\nHigh")
    'North High'
    """
    if value is None:
        return ""
    if isinstance(value, float) and math.isnan(value):
        return ""
    text = str(value)
    text = text.replace("\r\n", " ").replace("\n", " ").replace("\r", " ").replace("\t", " ")
    return _CONTROL.sub("", text)


def escape_html(value: Any) -> str:
    """Escape text for HTML element content or a quoted attribute.

    Examples
    --------
    >>> escape_html('<script>alert("x")</script>')
    '&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;'
    """
    return str(_markup_escape(plain_text(value)))


def escape_markdown(value: Any) -> str:
    """Escape text for Markdown, including inside a table cell.

    Inline syntax characters (emphasis, code, links, table pipes, strikethrough) get a
    backslash wherever they are; heading, list and quote markers only at the start of the text,
    where they would act; ``<``, ``>`` and ``&`` become HTML entities because GitHub renders raw
    HTML inside Markdown. Numbers such as ``-1.5`` inside a sentence stay readable.

    Examples
    --------
    >>> escape_markdown("| pipes | <b>")
    '\\\\| pipes \\\\| &lt;b&gt;'
    >>> escape_markdown("# 1. *x*")
    '\\\\# 1. \\\\*x\\\\*'
    """
    text = plain_text(value)
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = _MD_INLINE.sub(r"\\\1", text)
    return _MD_LINE_START.sub(_escape_line_start, text)


def _escape_line_start(match: re.Match[str]) -> str:
    if match.group(2):
        return match.group(1) + "\\" + match.group(2)
    # An ordered-list marker: the backslash goes before the '.' or ')' (digits cannot be escaped).
    return match.group(1) + match.group(3) + "\\" + match.group(4)


def escape_mathtext(value: Any) -> str:
    """Escape text for a matplotlib label: a ``$`` would otherwise start mathtext.

    Examples
    --------
    >>> escape_mathtext("Costs $5")
    'Costs \\\\$5'
    """
    return plain_text(value).replace("$", r"\$")


def neutralize_cell(value: Any) -> Any:
    """Make one CSV or spreadsheet cell safe to open in Excel, LibreOffice or Google Sheets.

    Numbers, booleans and None pass through unchanged (they stay numbers). Text that a
    spreadsheet would run as a formula gets a leading apostrophe, which spreadsheets display as
    text; control characters are removed.

    Examples
    --------
    >>> neutralize_cell("=HYPERLINK(\\"http://x\\")")
    '\\'=HYPERLINK("http://x")'
    >>> neutralize_cell(-3.5)
    -3.5
    """
    if value is None or isinstance(value, bool | int | float):
        return value
    if not isinstance(value, str):
        # Dates, numpy scalars and the like are not formulas.
        try:
            import numpy as np

            if isinstance(value, np.generic):
                return value.item()
        except ImportError:  # pragma: no cover - numpy is a dependency
            pass
        return value
    text = _CONTROL.sub("", value)
    if text.startswith(FORMULA_PREFIXES):
        return "'" + text
    return text


def neutralize_frame(frame: Any) -> Any:
    """Return a copy of a DataFrame with every text cell passed through :func:`neutralize_cell`.

    Column names are neutralised as well. Numeric columns are returned unchanged.
    """
    import pandas as pd

    out = frame.copy()
    for col in out.columns:
        series = out[col]
        if pd.api.types.is_string_dtype(series) or series.dtype == object:
            out[col] = series.map(neutralize_cell, na_action="ignore")
    out.columns = [neutralize_cell(str(c)) for c in out.columns]
    return out
