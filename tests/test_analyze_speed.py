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
    from rce.io.normalize import in_index

    rng = np.random.default_rng(3)
    roster = pd.Series([f"{i:06d}" for i in rng.choice(10**6, 3000, replace=False)], dtype="str")
    index = pd.Index(roster.unique())
    values = pd.Series([*roster.sample(2000, random_state=2), None, "", "x1", "000001"] * 3,
                       dtype="str", index=np.arange(6012) * 3)
    fast = in_index(values, index)
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


def _mutations(doc, rng):
    """Paths to every value of a JSON document, and a few ways to break one."""
    paths = []

    def walk(node, path):
        paths.append(path)
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, (*path, k))
        elif isinstance(node, list):
            for i, v in enumerate(node[:3]):
                walk(v, (*path, i))

    walk(doc, ())
    replacements = [None, True, 0, -1, -0.5, 1.5, 10**6, "", "x", "2024-13", [], {}, float("inf"),
                    "fall", "winter", "pass", "primary"]
    for _ in range(400):
        path = paths[rng.integers(len(paths))]
        if not path:
            continue
        import copy

        new = copy.deepcopy(doc)
        parent = new
        for key in path[:-1]:
            parent = parent[key]
        kind = rng.integers(3)
        if kind == 0:
            parent[path[-1]] = replacements[rng.integers(len(replacements))]
        elif kind == 1 and isinstance(parent, dict):
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent["unexpected_key"] = 1
        yield new


def test_fast_schema_check_never_accepts_what_jsonschema_rejects() -> None:
    import jsonschema
    from report_fixtures import complete_results

    from rce.report.results import _fast_schema, load_schema, to_jsonable

    fast = _fast_schema()
    assert fast is not None, "the shipped schema uses a keyword the fast check does not know"
    validator = jsonschema.Draft202012Validator(load_schema())
    doc = to_jsonable(complete_results())
    assert not list(validator.iter_errors(doc)) and fast(doc)
    rng = np.random.default_rng(11)
    rejected = 0
    for bad in _mutations(doc, rng):
        errors = list(validator.iter_errors(bad))
        if errors:
            rejected += 1
            assert not fast(bad), f"fast check accepted: {errors[0].message}"
    assert rejected > 50  # the mutations do break the schema often enough to test something


def test_hash_thread_yields_the_cpu_only_itself() -> None:
    import os
    import sys
    import threading

    from rce.pipeline import _yield_the_cpu

    if not sys.platform.startswith("linux"):
        return
    before = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    seen: list[int] = []

    def run() -> None:
        _yield_the_cpu()
        seen.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))

    t = threading.Thread(target=run)
    t.start()
    t.join()
    assert seen == [max(before, 10)]
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == before
