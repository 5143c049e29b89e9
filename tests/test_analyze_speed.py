"""Speed-ups of `rce analyze` outside the dosage step give the same values as the code they
replaced (issue #7)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from rce.io.load import _normalize_academic_year, normalize_academic_year

YEAR_LABELS = ["2024-2025", "2024-25", "Academic Year 2024-2025", "2025", None, "", " 2023/24 ",
               "x", "2024\u20132025", "1999-2000", "2024 - 25", "nan", "2024-2025 "]


def test_academic_year_by_distinct_label_equals_row_by_row() -> None:
    rng = np.random.default_rng(7)
    for dtype in ("str", object):
        s = pd.Series(rng.choice(np.array(YEAR_LABELS, dtype=object), 3000), dtype=dtype,
                      index=np.arange(3000) * 2 + 5)
        fast = normalize_academic_year(s)
        assert len(s) > 64  # the per-label path
        pd.testing.assert_series_equal(fast, _normalize_academic_year(s.astype("str")),
                                       check_exact=True)
    numbers = pd.Series([np.nan] * 70 + [2025.0] * 30)
    pd.testing.assert_series_equal(normalize_academic_year(numbers),
                                   _normalize_academic_year(numbers.astype("str")))
    assert normalize_academic_year(pd.Series(["2024-25"] * 100)).unique().tolist() == [
        "2024-2025"]


def test_in_index_equals_isin() -> None:
    from rce.io.normalize import _in_index

    rng = np.random.default_rng(3)
    roster = pd.Series([f"{i:06d}" for i in rng.choice(10**6, 3000, replace=False)], dtype="str")
    index = pd.Index(roster.unique())
    values = pd.Series([*roster.sample(2000, random_state=2), None, "", "x1", "000001"] * 3,
                       dtype="str", index=np.arange(6012) * 3)
    fast = _in_index(values, index)
    assert fast.index.equals(values.index)
    assert fast.tolist() == values.isin(index).tolist()
    assert int(fast.sum()) == 6000


def test_gap_pooling_on_arrays_equals_per_group_frames() -> None:
    from rce.stats.gaps import _pool
    from rce.stats.shrinkage import eb_shrink

    rng = np.random.default_rng(5)
    n_rows = 240
    rows = pd.DataFrame({
        "dimension": rng.choice(["gender", "grade", "school"], n_rows),
        "population": rng.choice(["all", "users", "non_users"], n_rows),
        "measure": rng.choice(["baseline", "outcome", "gain"], n_rows),
        "mean": rng.normal(50, 10, n_rows),
        "sd": np.where(rng.random(n_rows) < 0.05, np.nan, rng.uniform(5, 20, n_rows)),
        "n": rng.integers(0, 400, n_rows),
        "is_reference": False,
    })
    key = ["dimension", "population", "measure"]
    rows.loc[rows.groupby(key).head(1).index, "is_reference"] = True
    expected = np.full(n_rows, np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        for _, idx in rows.groupby(key, sort=False).indices.items():
            sub = rows.iloc[idx]  # the code this replaced
            se = (sub["sd"] / np.sqrt(sub["n"])).to_numpy(dtype=float)
            expected[idx] = eb_shrink(sub["mean"].to_numpy(dtype=float), se).pooled
    got = _pool(rows)["pooled_mean"].to_numpy()
    np.testing.assert_array_equal(got, expected)


def test_arrow_reader_strips_cells_like_the_pandas_pass(tmp_path) -> None:
    from rce.io import readers

    text = ("ID,Name,School,Score\n"
            " 001 , Ana ,\u00a0North\u00a0,  \n"
            "002,\tBo\t,   ,71\n"
            "003,\"  quoted  \",\"\",\"  \"\n"
            "004,\u2003Em\u2003,South,88\n")
    path = tmp_path / "t.csv"
    path.write_text(text, encoding="utf-8")
    fast = readers.read_table(path)
    assert fast.cells_stripped
    slow = readers._text_frame(path, path.read_bytes(), "csv", 10**6)  # the pandas reader
    assert not slow.cells_stripped
    readers._strip_cells(slow)
    pd.testing.assert_frame_equal(fast.frame, slow.frame, check_exact=True)
    assert fast.frame["Name"].tolist()[:2] == ["Ana", "Bo"]
    assert fast.frame["Score"].isna().tolist() == [True, False, True, False]
