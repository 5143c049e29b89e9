"""Writing outputs safely: every file is written to a temporary name and renamed into place.

An interrupted or failed run therefore never leaves a half-written report, and the previous
report stays intact until the new one is complete.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


def atomic_write_bytes(path: Path | str, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temp file in the same folder, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp creates 0600; outputs get the ordinary permissions the user's umask allows.
        os.chmod(tmp, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: Path | str, text: str, *, newline: str = "\n") -> None:
    """Write text (UTF-8) atomically; ``newline`` is used for every line break."""
    if newline != "\n":
        text = text.replace("\n", newline)
    atomic_write_bytes(path, text.encode("utf-8"))


@contextlib.contextmanager
def staged_directory(final: Path | str) -> Iterator[Path]:
    """Build an output folder under a temporary name and move it into place only on success.

    Files already in ``final`` that the new run does not write are kept; files it does write
    replace the old ones only once the whole run has succeeded.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".partial", dir=final.parent))
    os.chmod(stage, 0o777 & ~_umask())
    try:
        yield stage
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    final.mkdir(parents=True, exist_ok=True)
    for src in sorted(stage.rglob("*")):
        rel = src.relative_to(stage)
        dst = final / rel
        if src.is_dir():
            dst.mkdir(parents=True, exist_ok=True)
        else:
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.replace(src, dst)
    shutil.rmtree(stage, ignore_errors=True)
