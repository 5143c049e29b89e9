"""Turning numpy/pandas scalars into values ``json.dumps(..., allow_nan=False)`` accepts.

Result objects build their ``to_dict()`` from numpy arrays and pandas frames, whose scalars
(``np.float64``, ``np.int64``, ``np.bool_``, ``pd.NA``, ``pd.NaT``) the ``json`` module either
rejects or writes as the non-standard ``NaN``/``Infinity``. The three helpers here are the one
place that conversion is defined:

- :func:`finite_or_none` -- a plain finite ``float`` or None; for numbers that are read, compared
  or plotted (a missing, suppressed or infinite value is None, never a number).
- :func:`json_value` -- one leaf made JSON-safe, keeping its kind (an int stays an int, a bool a
  bool, text stays text).
- :func:`json_tree` -- dicts, lists and tuples converted recursively, dates written as ISO text,
  leaves through :func:`json_value`.

``rce.report.results.to_jsonable`` (the ``results.json`` writer) additionally unwraps result
objects, dataclasses, frames and paths; it is the last step before writing, these are the steps
inside each result.
"""

from __future__ import annotations

import math
import numbers
import sys
from collections.abc import Mapping
from datetime import date
from typing import Any

import numpy as np

__all__ = ["finite_or_none", "json_tree", "json_value"]


def _pandas_missing(value: Any) -> bool:
    """True for ``pd.NA`` and ``pd.NaT``.

    pandas is looked up, not imported: report rendering reads plain JSON and does not pay for
    importing pandas, and when pandas was never imported no pandas value can exist.
    """
    pd = sys.modules.get("pandas")
    return pd is not None and (value is pd.NA or value is pd.NaT)


#: numpy datetime units that carry no time of day.
_DAY_OR_COARSER = frozenset({"Y", "M", "W", "D"})


def finite_or_none(value: Any) -> float | None:
    """The value as a finite Python float, or None when it is not a usable number.

    Parameters
    ----------
    value
        Anything. Python and numpy integers and floats (and other real numbers such as
        ``fractions.Fraction``) count as numbers.

    Returns
    -------
    float or None
        ``float(value)`` when that is finite; None for None, ``pd.NA``, ``pd.NaT``, NaN, plus or
        minus infinity, Python and numpy booleans (a flag is not a quantity), text (even text
        that looks like a number) and every other non-number.

    Examples
    --------
    >>> finite_or_none(np.int64(3)), finite_or_none(float("inf")), finite_or_none(True)
    (3.0, None, None)
    """
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
        return None
    try:
        out = float(value)
    except OverflowError:  # an int too large for a float
        return None
    return out if math.isfinite(out) else None


def json_value(value: Any) -> Any:
    """One scalar made JSON-safe, keeping its kind.

    Parameters
    ----------
    value
        A scalar (containers are returned unchanged; see :func:`json_tree`).

    Returns
    -------
    Any
        None for None, ``pd.NA`` and ``pd.NaT``; ``bool`` for numpy booleans; ``int`` for numpy
        integers; ``float`` for numpy floats; None for NaN and infinities; anything else (Python
        ints, bools, text, ...) unchanged.

    Examples
    --------
    >>> json_value(np.int64(2)), json_value(np.float32(0.5)), json_value(np.nan), json_value("x")
    (2, 0.5, None, 'x')
    """
    if value is None or _pandas_missing(value):
        return None
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        out = float(value)
        return out if math.isfinite(out) else None
    return value


def json_tree(value: Any) -> Any:
    """A nested structure made JSON-safe.

    Parameters
    ----------
    value
        Mappings, lists and tuples of scalars, to any depth.

    Returns
    -------
    Any
        Mappings become dicts with ``str`` keys, lists and tuples become lists, dates, datetimes
        and ``pd.Timestamp`` become ISO 8601 text (``np.datetime64`` too: a date for day units or
        coarser, a date and time for finer units), ``pd.NaT`` and
        ``np.datetime64("NaT")`` become None, and every other leaf goes through
        :func:`json_value`. Other containers (sets, frames) are left as they are.

    Examples
    --------
    >>> json_tree({1: (np.int64(2), float("nan")), "d": date(2025, 1, 31)})
    {'1': [2, None], 'd': '2025-01-31'}
    """
    if isinstance(value, Mapping):
        return {str(k): json_tree(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_tree(v) for v in value]
    if _pandas_missing(value):  # NaT is a datetime subclass: test it before the date branch
        return None
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, np.datetime64):
        if np.isnat(value):
            return None
        if np.datetime_data(value.dtype)[0] in _DAY_OR_COARSER:
            # A calendar date stays a date, as datetime.date.isoformat() writes it.
            return str(np.datetime_as_string(value, unit="D"))
        import pandas as pd

        return pd.Timestamp(value).isoformat()
    return json_value(value)
