"""Excel workbooks through XlsxWriter: one sheet per table, numbers as numbers.

Header row bold and frozen, autofilter on, column widths from the content, and no formula or
URL is ever created from text (``strings_to_formulas=False``, ``strings_to_urls=False``): a
product called ``=HYPERLINK(...)`` stays text. An optional README sheet comes first.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from rce.errors import NotAvailableError
from rce.fileio import atomic_write_bytes
from rce.report.escape import plain_text

__all__ = ["sheet_name", "write_workbook"]

_BAD_SHEET_CHARS = re.compile(r"[\[\]:*?/\\']")
#: Workbook creation time recorded in the file, fixed so the same tables give the same bytes.
FIXED_CREATED = dt.datetime(2000, 1, 1)


def sheet_name(name: str, taken: set[str]) -> str:
    """A valid, unique Excel sheet name (31 characters, no ``[]:*?/\\'``)."""
    base = _BAD_SHEET_CHARS.sub("_", plain_text(name)).strip() or "Sheet"
    base = base[:31]
    candidate, i = base, 2
    while candidate.lower() in taken:
        suffix = f" ({i})"
        candidate = base[: 31 - len(suffix)] + suffix
        i += 1
    taken.add(candidate.lower())
    return candidate


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def write_workbook(
    path: Path | str,
    sheets: Mapping[str, pd.DataFrame],
    *,
    readme: Sequence[tuple[str, str]] = (),
    number_formats: Mapping[str, str] | None = None,
    created: dt.datetime = FIXED_CREATED,
) -> Path:
    """Write DataFrames to an .xlsx file, one sheet each, atomically.

    Parameters
    ----------
    path
        Output file.
    sheets
        Sheet title to table, in order.
    readme
        ``(label, text)`` rows for a first "README" sheet (data sources, date, definitions).
    number_formats
        Column name to Excel number format, e.g. ``{"cost_per_student": "$#,##0.00",
        "share_users": "0%"}``; other numeric columns get ``General``.
    created
        Creation time stored in the workbook properties (fixed by default, for reproducible
        files).

    Returns
    -------
    Path
        The path written.
    """
    try:
        import xlsxwriter
    except ImportError as exc:
        raise NotAvailableError(
            "writing .xlsx files needs the XlsxWriter package",
            hint="pip install 'rce[xlsx]'",
        ) from exc
    import io

    buf = io.BytesIO()
    workbook = xlsxwriter.Workbook(
        buf,
        {
            "in_memory": True,
            "strings_to_formulas": False,
            "strings_to_urls": False,
            "strings_to_numbers": False,
            "nan_inf_to_errors": False,
        },
    )
    workbook.set_properties({"created": created, "title": "rce report"})
    header = workbook.add_format({"bold": True, "bg_color": "#F2F2F2", "bottom": 1,
                                  "text_wrap": True, "valign": "top"})
    date_fmt = workbook.add_format({"num_format": "yyyy-mm-dd"})
    formats = {k: workbook.add_format({"num_format": v}) for k, v in (number_formats or {}).items()}
    taken: set[str] = set()
    if readme:
        ws = workbook.add_worksheet(sheet_name("README", taken))
        ws.set_column(0, 0, 28)
        ws.set_column(1, 1, 100)
        wrap = workbook.add_format({"text_wrap": True, "valign": "top"})
        for r, (label, text) in enumerate(readme):
            ws.write_string(r, 0, plain_text(label), header)
            ws.write_string(r, 1, plain_text(text), wrap)
    for title, frame in sheets.items():
        ws = workbook.add_worksheet(sheet_name(title, taken))
        columns = [str(c) for c in frame.columns]
        widths = [min(60, max(8, len(c) + 2)) for c in columns]
        for c, name in enumerate(columns):
            ws.write_string(0, c, plain_text(name), header)
        for r, row in enumerate(frame.itertuples(index=False, name=None), start=1):
            for c, value in enumerate(row):
                fmt = formats.get(columns[c])
                if _is_missing(value):
                    ws.write_blank(r, c, None, fmt)
                elif isinstance(value, bool):
                    ws.write_boolean(r, c, value, fmt)
                elif isinstance(value, int | float) or hasattr(value, "dtype"):
                    number = float(value)
                    if math.isfinite(number):
                        ws.write_number(r, c, number, fmt)
                    else:
                        ws.write_blank(r, c, None, fmt)
                elif isinstance(value, dt.datetime | dt.date):
                    if isinstance(value, dt.datetime) and value.tzinfo is not None:
                        # Excel has no time zones: store the wall-clock time in UTC.
                        value = value.astimezone(dt.UTC).replace(tzinfo=None)
                    ws.write_datetime(r, c, value, fmt or date_fmt)
                else:
                    text = plain_text(value)
                    ws.write_string(r, c, text, fmt)
                    widths[c] = min(60, max(widths[c], len(text) + 2))
        for c, width in enumerate(widths):
            ws.set_column(c, c, width)
        ws.freeze_panes(1, 0)
        if columns:
            ws.autofilter(0, 0, max(1, len(frame)), len(columns) - 1)
    workbook.close()
    path = Path(path)
    atomic_write_bytes(path, buf.getvalue())
    return path
