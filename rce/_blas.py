"""Run the statistics on one BLAS thread, whatever the machine's core count.

The models of ``rce analyze`` are many small least-squares fits (a few thousand to a few hundred
thousand rows, a few dozen columns). OpenBLAS splits such products over every core; on two
shared cores its threads wait for each other, and the gaps, dose-response and impact stages took
3-10 times longer with two BLAS threads than with one (benchmarks/README.md). Threads also split
some sums differently, so the last digit of an estimate depended on the core count; on one
thread ``results.json`` is the same on every machine with the same libraries.

OpenBLAS reads ``OPENBLAS_NUM_THREADS`` only when it loads, which numpy does at import, so the
count is changed at run time through OpenBLAS's own setter, found in the libraries this process
has loaded (numpy's and scipy's bundled copies). Where none is found (another BLAS, or no
``/proc``) nothing changes.
"""

from __future__ import annotations

import contextlib
import ctypes
from collections.abc import Iterator

__all__ = ["single_thread_blas"]

#: (setter, getter) symbol names of the OpenBLAS builds numpy and scipy ship, and of a system one.
_SYMBOLS = (
    ("scipy_openblas_set_num_threads64_", "scipy_openblas_get_num_threads64_"),
    ("scipy_openblas_set_num_threads", "scipy_openblas_get_num_threads"),
    ("openblas_set_num_threads", "openblas_get_num_threads"),
)


def _loaded_openblas() -> list[tuple[object, object]]:
    """(set, get) functions of every OpenBLAS library loaded in this process."""
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as fh:
            paths = sorted({
                line.split(None, 5)[5].strip()
                for line in fh
                if "openblas" in line.lower() and len(line.split(None, 5)) == 6
            })
    except OSError:
        return []
    found = []
    for path in paths:
        if ".so" not in path:
            continue
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for set_name, get_name in _SYMBOLS:
            setter = getattr(lib, set_name, None)
            getter = getattr(lib, get_name, None)
            if setter is not None and getter is not None:
                getter.restype = ctypes.c_int
                setter.argtypes = [ctypes.c_int]
                setter.restype = None
                found.append((setter, getter))
                break
    return found


@contextlib.contextmanager
def single_thread_blas() -> Iterator[None]:
    """Inside the block, OpenBLAS (numpy's and scipy's) uses one thread; the count is restored.

    Import numpy before entering: a library not yet loaded is not found. Not meant for use
    from several threads at once (the count is process-wide).
    """
    libraries = _loaded_openblas()
    previous = []
    for setter, getter in libraries:
        previous.append(int(getter()))
        setter(1)
    try:
        yield
    finally:
        for (setter, _getter), count in zip(libraries, previous, strict=True):
            setter(count)
