"""rce._blas: the statistics run on one OpenBLAS thread and the caller's count comes back."""

from __future__ import annotations

import numpy as np
import pytest

from rce._blas import _loaded_openblas, single_thread_blas


def _counts() -> list[int]:
    return [int(get()) for _set, get in _loaded_openblas()]


def test_numpy_openblas_is_found() -> None:
    cfg = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
    if "openblas" not in str(cfg.get("name", "")).lower():
        pytest.skip("numpy is not built with OpenBLAS here")
    assert _counts(), "numpy's OpenBLAS was not found among the loaded libraries"


def test_one_thread_inside_and_restored_after() -> None:
    libraries = _loaded_openblas()
    if not libraries:
        pytest.skip("no OpenBLAS loaded")
    setter, getter = libraries[0]
    before = int(getter())
    setter(2)
    try:
        with single_thread_blas():
            assert _counts() == [1] * len(libraries)
            x = np.arange(12.0).reshape(4, 3)
            assert (x.T @ x)[0, 0] == 0 + 9 + 36 + 81
        assert int(getter()) == 2
    finally:
        setter(before)


def test_restored_when_the_block_raises() -> None:
    libraries = _loaded_openblas()
    if not libraries:
        pytest.skip("no OpenBLAS loaded")
    before = _counts()
    with pytest.raises(RuntimeError), single_thread_blas():
        raise RuntimeError("stage failed")
    assert _counts() == before
