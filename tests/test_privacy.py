"""Small-cell suppression and top/bottom coding (data-formats.md §4; validation.md §2)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rce.errors import DataError
from rce.privacy import suppress_cells, top_bottom_code

# validation.md §2 / data-formats.md §4: STAR kindergarten ethnicity cells.
STAR_K = {"cauc": 3800, "afam": 1915, "asian": 14, "other": 7, "hispanic": 4, "amindian": 2}


def _eth_table():
    return pd.DataFrame({"dimension": "ethnicity", "group": list(STAR_K),
                         "n": list(STAR_K.values()), "mean": np.arange(6.0) + 900})


def test_star_small_cells_primary():
    out = suppress_cells(_eth_table(), partition_cols=["dimension"], value_cols=["mean"],
                         min_n=10)
    hidden = set(out.loc[out["suppressed"], "group"])
    assert hidden == {"other", "hispanic", "amindian"}
    assert out.loc[out["suppressed"], "mean"].isna().all()
    assert out.loc[out["suppressed"], "n"].isna().all()
    assert (out.loc[~out["suppressed"], "n"] >= 10).all()


def test_single_small_cell_gets_complementary_partner():
    t = _eth_table()
    t = t[~t["group"].isin(["other", "hispanic"])]  # amindian (2) is now the only small cell
    out = suppress_cells(t, partition_cols=["dimension"], value_cols=["mean"], min_n=10)
    by = out.set_index("group")
    assert by.loc["amindian", "suppression"] == "primary"
    assert by.loc["asian", "suppression"] == "complementary"  # next smallest
    assert not by.loc["cauc", "suppressed"]
    assert pd.isna(by.loc["asian", "mean"]) and pd.isna(by.loc["asian", "n"])


def test_nested_partition_users_non_users():
    t = pd.DataFrame({
        "group": ["A", "A", "A", "B", "B", "B"],
        "population": ["all", "users", "non_users"] * 2,
        "n": [50, 44, 6, 80, 40, 40],
        "mean": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
    })
    out = suppress_cells(t, partition_cols=[["population"]], value_cols=["mean"], min_n=10,
                         nested=[(["group"], "population", ["users", "non_users"])])
    hidden = set(map(tuple, out.loc[out["suppressed"], ["group", "population"]].to_numpy()))
    # A non-users is small; A users would reveal it (all - users) -> hidden; then the non_users
    # partition across groups has one hidden cell -> B non_users, and so B users too.
    assert ("A", "non_users") in hidden and ("A", "users") in hidden
    assert ("B", "non_users") in hidden and ("B", "users") in hidden
    assert ("A", "all") not in hidden


def test_bad_arguments():
    with pytest.raises(DataError):
        suppress_cells(_eth_table(), partition_cols=["nope"], min_n=10)
    with pytest.raises(DataError):
        suppress_cells(_eth_table(), partition_cols=["dimension"], min_n=0)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.integers(0, 40), min_size=1, max_size=6), min_size=1, max_size=4),
       st.integers(3, 15))
def test_property_no_small_visible_cell_and_no_lone_hidden_cell(parts, min_n):
    rows = [{"part": i, "cell": j, "n": n, "v": float(n)} for i, p in enumerate(parts)
            for j, n in enumerate(p)]
    t = pd.DataFrame(rows)
    out = suppress_cells(t, partition_cols=[["part"], ["cell"]], value_cols=["v"], min_n=min_n)
    visible = out[~out["suppressed"]]
    assert (visible["n"] >= min_n).all()
    assert out.loc[out["suppressed"], "v"].isna().all()
    for key in ("part", "cell"):
        for _, g in out.groupby(key):
            if len(g) >= 2:
                assert g["suppressed"].sum() != 1


def test_top_bottom_code_tiers():
    pct = [99.5, 0.5, 98.5, 97.0, 96.0, 3.0, 50.0, 50.0]
    n = [400, 400, 150, 150, 60, 60, 60, 5]
    out = top_bottom_code(pct, n, min_n=10).tolist()
    assert out == [">=99%", "<=1%", ">=98%", "97%", ">=95%", "<=5%", "50%", "n<10"]
    assert top_bottom_code([np.nan], [100]).tolist() == [""]
    with pytest.raises(DataError):
        top_bottom_code([1, 2], [100])
