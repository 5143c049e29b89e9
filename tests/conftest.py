"""Shared test setup. Terminal settings must be fixed before Typer's rich helpers are imported."""

from __future__ import annotations

import os

# The same single-threaded BLAS as the CLI (rce/cli.py), so in-process runs give the same bytes.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("TERMINAL_WIDTH", "120")
os.environ.setdefault("_TYPER_FORCE_DISABLE_TERMINAL", "1")
os.environ.pop("GITHUB_ACTIONS", None)
os.environ.pop("FORCE_COLOR", None)
os.environ.pop("PY_COLORS", None)

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
EXAMPLE_DIR = REPO / "examples" / "sierra-vista"
SHARED = REPO.parent / "shared"


@pytest.fixture
def runner():
    """A Typer CliRunner with stdout and stderr captured separately."""
    from typer.testing import CliRunner

    return CliRunner()


def sustain_usage(
    product: str, *, activated: int, active: int, habitual: int, start: int = 0
) -> list:
    """Per-student rows for rce.sustain: `habitual` habitual users, then light users, then
    activated-only (student_id, product, sessions, usage_level)."""
    assert habitual <= active <= activated
    rows = []
    for i in range(activated):
        sid = f"S{start + i:05d}"
        if i < habitual:
            rows.append((sid, product, 12, "habitual"))
        elif i < active:
            rows.append((sid, product, 1, "light"))
        else:
            rows.append((sid, product, 0, "none"))
    return rows


def sustain_frame(*row_lists: list):
    """The per-student frame rce.sustain reads, from lists of :func:`sustain_usage` rows."""
    import pandas as pd

    rows = [r for rl in row_lists for r in rl]
    return pd.DataFrame(rows, columns=["student_id", "product", "sessions", "usage_level"])


def results_differences(fresh, shipped, path: str = "") -> list[str]:
    """Where two results documents differ: every key, length and value, numbers to 1e-7 relative.

    A results.json written on another machine (the shipped example runs) matches a fresh run to
    about 1e-10, not bit for bit: OpenBLAS picks its kernels, and with them the order of its
    sums, by the CPU. Same-machine determinism is checked exactly elsewhere.
    """
    import math

    if isinstance(fresh, dict) and isinstance(shipped, dict):
        out = [f"{path}/{k}: only in {'shipped' if k in shipped else 'fresh'}"
               for k in sorted(set(fresh) ^ set(shipped))]
        for k in sorted(set(fresh) & set(shipped)):
            out += results_differences(fresh[k], shipped[k], f"{path}/{k}")
        return out
    if isinstance(fresh, list) and isinstance(shipped, list):
        if len(fresh) != len(shipped):
            return [f"{path}: {len(fresh)} items, shipped {len(shipped)}"]
        return [d for i, (a, b) in enumerate(zip(fresh, shipped, strict=True))
                for d in results_differences(a, b, f"{path}[{i}]")]
    if (isinstance(fresh, float) and isinstance(shipped, (int, float))
            and not isinstance(shipped, bool)):
        if math.isclose(fresh, shipped, rel_tol=1e-7, abs_tol=1e-12):
            return []
    elif fresh == shipped and type(fresh) is type(shipped):
        return []
    return [f"{path}: {fresh!r}, shipped {shipped!r}"]


def assert_matches_shipped(fresh: dict, shipped: dict) -> None:
    """A fresh results document equals a shipped example run (see :func:`results_differences`)."""
    differences = results_differences(fresh, shipped)
    assert not differences, ("regenerate examples/sierra-vista/runs (see its README): "
                             + "; ".join(differences[:10]))


# A real `rce` command in a child process that stops at a chosen point (a function replaced by one
# that says so on stdout and waits), so Ctrl-C lands there however fast or loaded the machine
# is. A fixed delay lands after the run on a fast machine and in start-up on a loaded one.
_HOLD_AT = """
import importlib, sys, time
module_name, name = sys.argv[1].split(":")
module = importlib.import_module(module_name)
real = getattr(module, name)
def held(*args, **kwargs):
    print("held", flush=True)
    time.sleep(300)
    return real(*args, **kwargs)
setattr(module, name, held)
from rce.cli import main
sys.argv = ["rce", *sys.argv[2:]]
main()
"""


def interrupt_when_held(hold_at: str, *args: str) -> tuple[int, str]:
    """Run ``rce *args``, press Ctrl-C once ``hold_at`` ("module:function") is called; the
    exit code and stderr."""
    import signal
    import subprocess
    import sys

    proc = subprocess.Popen(
        [sys.executable, "-c", _HOLD_AT, hold_at, *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None and proc.stderr is not None
        if proc.stdout.readline().strip() != "held":
            _, stderr = proc.communicate(timeout=120)  # not wait(): a full stderr pipe would hang
            raise AssertionError(f"{hold_at} was never called:\n{stderr[-2000:]}")
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=120)
    finally:
        proc.kill()
    return proc.returncode, stderr
