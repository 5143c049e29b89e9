"""Small helpers shared by the impact-side result objects (matching, wwc, bayes, power, impact).

Kept private: the public contract is each result's ``to_dict`` / ``to_frame`` / ``summary``.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from rce.jsonsafe import json_tree


def json_safe(value: Any) -> Any:
    """Turn numpy/pandas scalars, NaN and containers into JSON-safe Python values (NaN -> None).

    As :func:`rce.jsonsafe.json_tree`, and frames (also nested ones) become lists of records.
    """
    if isinstance(value, pd.DataFrame):
        value = value.to_dict(orient="records")
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return json_tree(value)


def merge_rare_levels(values: pd.Series, minimum: int) -> pd.Series:
    """A categorical column as text: missing as 'Unknown', levels with fewer than ``minimum``
    rows merged into 'Other' (tiny levels make a logit unstable and the cells identifiable)."""
    text = values.astype("string").fillna("Unknown")
    counts = text.value_counts()
    small = counts.index[counts < minimum]
    if len(small):
        text = text.where(~text.isin(small), "Other")
    return text


def fmt(x: float | None, digits: int = 3) -> str:
    """Render a number for ``summary()`` text; missing values print as 'n/a'."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a"
    return f"{x:.{digits}f}"


def pct(x: float | None, digits: int = 0) -> str:
    """Render a proportion as a percentage."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a"
    return f"{100 * x:.{digits}f}%"
