"""rce.jsonsafe: the one conversion of numpy/pandas scalars into JSON values."""

from __future__ import annotations

import json
import math
from datetime import date, datetime
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from rce.jsonsafe import finite_or_none, json_tree, json_value

# --- finite_or_none ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (3, 3.0),
        (-2.5, -2.5),
        (np.int64(7), 7.0),
        (np.uint8(255), 255.0),
        (np.float32(0.5), 0.5),
        (np.float64(-1e300), -1e300),
        (Fraction(1, 4), 0.25),
    ],
)
def test_finite_or_none_keeps_finite_numbers_as_python_floats(value, expected):
    out = finite_or_none(value)
    assert out == expected
    assert type(out) is float


@pytest.mark.parametrize(
    "value",
    [
        None, pd.NA, pd.NaT, math.nan, np.float64("nan"), math.inf, -math.inf, np.float32("inf"),
        True, False, np.True_, np.False_, "1.5", "", b"1", [1.0], {"a": 1}, date(2025, 1, 1),
        10**400, object(),
    ],
)  # fmt: skip
def test_finite_or_none_is_none_for_everything_that_is_not_a_usable_number(value):
    assert finite_or_none(value) is None


# --- json_value -------------------------------------------------------------------------------


def test_json_value_converts_numpy_scalars_to_python_types_of_the_same_kind():
    assert json_value(np.int32(-4)) == -4 and type(json_value(np.int32(-4))) is int
    assert json_value(np.uint64(2**64 - 1)) == 2**64 - 1
    assert json_value(np.float16(0.25)) == 0.25 and type(json_value(np.float16(0.25))) is float
    assert json_value(np.True_) is True and json_value(np.False_) is False


@pytest.mark.parametrize(
    "value", [None, pd.NA, pd.NaT, math.nan, np.float32("nan"), math.inf, -np.float64("inf")]
)
def test_json_value_missing_and_non_finite_become_none(value):
    assert json_value(value) is None


@pytest.mark.parametrize("value", [0, 12, True, False, 1.25, "text", "NaN"])
def test_json_value_leaves_python_json_values_unchanged(value):
    out = json_value(value)
    assert out == value and type(out) is type(value)


def test_json_value_leaves_containers_alone():
    leaf = [np.float64("nan")]
    assert json_value(leaf) is leaf


# --- json_tree --------------------------------------------------------------------------------


def test_json_tree_walks_dicts_lists_and_tuples():
    tree = {
        np.int64(1): (np.int64(2), np.float64("nan")),
        "nested": {"flag": np.bool_(True), "rows": [pd.NA, {"x": np.float32(1.5)}]},
    }
    assert json_tree(tree) == {"1": [2, None], "nested": {"flag": True, "rows": [None, {"x": 1.5}]}}


def test_json_tree_writes_dates_as_iso_text():
    assert json_tree(
        [date(2025, 3, 1), datetime(2025, 3, 1, 8, 30), pd.Timestamp("2025-03-01 08:30"),
         np.datetime64("2025-03-01"), np.datetime64("2025-03", "M"),
         np.datetime64("2025-03-01T08:30", "ns"), pd.NaT, np.datetime64("NaT")]
    ) == ["2025-03-01", "2025-03-01T08:30:00", "2025-03-01T08:30:00", "2025-03-01",
          "2025-03-01", "2025-03-01T08:30:00", None, None]  # fmt: skip


# --- property: every tree of numpy/pandas scalars serialises under allow_nan=False -------------

_NUMPY_DTYPES = [
    "bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
    "float16", "float32", "float64", "datetime64[Y]", "datetime64[D]", "datetime64[s]",
    "datetime64[ms]", "datetime64[ns]",
]  # fmt: skip

_numpy_scalars = st.one_of(
    [
        hnp.from_dtype(np.dtype(d)).map(lambda a, d=d: np.array(a, dtype=d)[()])
        for d in _NUMPY_DTYPES
    ]
)
_leaves = st.one_of(
    _numpy_scalars,
    st.sampled_from([None, pd.NA, pd.NaT, math.nan, math.inf, -math.inf]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(),
    st.booleans(),
    st.text(max_size=5),
    st.dates(),
    st.datetimes().map(pd.Timestamp),
)
_keys = st.one_of(st.text(max_size=5), st.integers(), hnp.from_dtype(np.dtype("int64")))
_trees = st.recursive(
    _leaves,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.lists(children, max_size=4).map(tuple),
        st.dictionaries(_keys, children, max_size=4),
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(_trees)
def test_json_tree_output_always_serialises_without_nan(tree):
    out = json_tree(tree)
    text = json.dumps(out, allow_nan=False)
    # Serialising is lossless from here on: the converted tree is already plain JSON.
    assert json.loads(text) == out


@settings(max_examples=200, deadline=None)
@given(_leaves)
def test_finite_or_none_is_always_none_or_a_finite_float(value):
    out = finite_or_none(value)
    assert out is None or (type(out) is float and math.isfinite(out))
    if isinstance(value, bool | np.bool_) or not isinstance(value, int | float | np.number):
        assert out is None
