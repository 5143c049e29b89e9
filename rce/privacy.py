"""Small-cell suppression and top/bottom coding (data-formats.md §4).

Rules (defaults from ``Plan.privacy``):

- **Primary suppression**: a cell with fewer than ``min_n`` students is hidden.
- **Complementary suppression**: when a partition whose total is published (e.g. the groups of
  one subgroup dimension, or users + non-users of one group) has exactly one hidden cell, that cell
  could be recovered by subtraction, so the smallest visible cell of the partition is hidden too.
  This is repeated over every partition until nothing changes (hiding a cell in one partition can
  expose another).
- Hidden statistics are removed (NaN / None), never kept beside a flag; the count of a hidden cell
  is removed too ("never publish counts of suppressed cells").
- Percentages of small-but-published groups are top/bottom coded (:func:`top_bottom_code`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from rce.errors import DataError

#: (minimum subgroup size, top code, bottom code) in percent, largest groups first.
#: 40 and above: the district procedure quoted in data-formats.md §4. The 20-39 and 10-19 tiers
#: are not verified in any source (§4 says so); they are this project's conservative choice.
TOP_BOTTOM_TIERS: tuple[tuple[int, float, float], ...] = (
    (300, 99.0, 1.0),
    (100, 98.0, 2.0),
    (40, 95.0, 5.0),
    (20, 90.0, 10.0),
    (0, 80.0, 20.0),
)

Partition = tuple[Sequence[str], str, Sequence[Any]]


def _check_columns(table: pd.DataFrame, cols: Sequence[str]) -> None:
    missing = [c for c in cols if c not in table.columns]
    if missing:
        raise DataError(
            f"the table to suppress has no column {missing[0]!r}",
            where="privacy",
            hint="Name existing columns in partition_cols / value_cols.",
        )


def suppress_cells(
    table: pd.DataFrame,
    *,
    n_col: str = "n",
    partition_cols: Sequence[str] | Sequence[Sequence[str]] = (),
    value_cols: Sequence[str] = (),
    min_n: int,
    nested: Sequence[Partition] = (),
) -> pd.DataFrame:
    """Primary and complementary small-cell suppression.

    Parameters
    ----------
    table
        One row per cell, with a count column.
    n_col
        The count column. Hidden counts become missing (nullable ``Int64``).
    partition_cols
        Columns that identify a partition: all rows sharing their values are cells whose total is
        published (e.g. ``["dimension", "population"]`` makes the groups of a dimension one
        partition). A list of such lists gives several partitionings.
    value_cols
        Statistics to blank in hidden cells.
    min_n
        Smallest count shown.
    nested
        Extra partitions over part of the rows: ``(by_cols, member_col, members)`` -- within
        each combination of ``by_cols``, the rows whose ``member_col`` is in ``members`` form one
        partition (e.g. ``(["dimension", "group"], "population", ["users", "non_users"])`` when
        the "all" row is their published total).

    Returns
    -------
    pandas.DataFrame
        A copy with a boolean ``suppressed`` column and a ``suppression`` column ("primary",
        "complementary" or ""), hidden values set to missing.
    """
    if min_n < 1:
        raise DataError(f"minimum cell size must be at least 1, not {min_n}", where="privacy")
    _check_columns(table, [n_col, *value_cols])
    if partition_cols and isinstance(partition_cols[0], str):
        partitionings: list[list[str]] = [list(partition_cols)]  # type: ignore[arg-type]
    else:
        partitionings = [list(p) for p in partition_cols]  # type: ignore[union-attr]
    for p in partitionings:
        _check_columns(table, p)
    for by, col, _ in nested:
        _check_columns(table, [*by, col])
    out = table.reset_index(drop=True)
    n = pd.to_numeric(out[n_col], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    hidden = np.isnan(n) | (n < min_n)
    reason = np.where(hidden, "primary", "").astype(object)

    # Partition memberships as arrays of row-index groups, computed once.
    groups: list[np.ndarray] = []
    for p in partitionings:
        if p:
            for idx in out.groupby(p, sort=False, dropna=False).indices.values():
                groups.append(np.asarray(idx))
        else:
            groups.append(np.arange(len(out)))
    for by, col, members in nested:
        sub = out[out[col].isin(list(members))]
        if by:
            for idx in sub.groupby(list(by), sort=False, dropna=False).indices.values():
                groups.append(sub.index.to_numpy()[np.asarray(idx)])
        else:
            groups.append(sub.index.to_numpy())

    changed = True
    while changed:
        changed = False
        for idx in groups:
            if len(idx) < 2:
                continue
            h = hidden[idx]
            if h.sum() == 1:
                visible = idx[~h]
                j = visible[np.argmin(n[visible])]
                hidden[j] = True
                reason[j] = "complementary"
                changed = True
    out = out.assign(suppressed=hidden, suppression=reason)
    counts = pd.array(np.where(hidden, np.nan, n), dtype="Float64").round().astype("Int64")
    out[n_col] = counts
    for c in value_cols:
        col = out[c]
        if pd.api.types.is_numeric_dtype(col.dtype) and not pd.api.types.is_bool_dtype(col.dtype):
            out[c] = col.astype(float).where(~hidden)
        else:
            out[c] = col.astype(object).where(~hidden, None)
    return out


def top_bottom_code(
    pct: Any,
    n: Any,
    *,
    min_n: int = 10,
    decimals: int = 0,
    tiers: Sequence[tuple[int, float, float]] = TOP_BOTTOM_TIERS,
) -> pd.Series:
    """Display strings for percentages of subgroups, recoding extremes by subgroup size.

    Parameters
    ----------
    pct
        Percentages in 0-100 (one per subgroup).
    n
        Subgroup sizes.
    min_n
        Groups smaller than this show ``"n<{min_n}"`` and no percentage.
    decimals
        Decimals shown for percentages that are not coded.
    tiers
        (minimum size, top code, bottom code) rows, largest size first.

    Returns
    -------
    pandas.Series of str
        E.g. ``"57%"``, ``">=99%"``, ``"<=5%"``, ``"n<10"``; missing percentages give ``""``.
    """
    p = np.asarray(pct, dtype=float).ravel()
    sizes = np.asarray(n, dtype=float).ravel()
    if p.shape != sizes.shape:
        raise DataError("percentages and group sizes differ in length", where="privacy")
    out: list[str] = []
    for value, size in zip(p, sizes, strict=True):
        if not np.isfinite(size) or size < min_n:
            out.append(f"n<{min_n}")
            continue
        if not np.isfinite(value):
            out.append("")
            continue
        top, bottom = 100.0, 0.0
        for floor, t, b in tiers:
            if size >= floor:
                top, bottom = t, b
                break
        if value >= top:
            out.append(f">={top:g}%")
        elif value <= bottom:
            out.append(f"<={bottom:g}%")
        else:
            out.append(f"{value:.{decimals}f}%")
    return pd.Series(out, dtype="str")
