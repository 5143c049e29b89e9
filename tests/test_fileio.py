"""Atomic writes: a failed write leaves the previous file intact and no temp file behind."""

from __future__ import annotations

import pytest

from rce.fileio import atomic_write_bytes, atomic_write_text, staged_directory


def test_atomic_write_replaces_and_leaves_no_temp(tmp_path):
    target = tmp_path / "out" / "report.md"
    atomic_write_text(target, "one\n")
    atomic_write_text(target, "two\n")
    assert target.read_text() == "two\n"
    assert sorted(p.name for p in target.parent.iterdir()) == ["report.md"]


def test_failed_write_keeps_previous_content(tmp_path):
    target = tmp_path / "results.json"
    atomic_write_bytes(target, b"old")

    class Boom(bytes):
        pass

    with pytest.raises(TypeError):
        atomic_write_bytes(target, "not bytes")  # type: ignore[arg-type]
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]


def test_staged_directory_is_all_or_nothing(tmp_path):
    final = tmp_path / "report"
    with staged_directory(final) as stage:
        (stage / "a.txt").write_text("1")
    assert (final / "a.txt").read_text() == "1"
    with pytest.raises(RuntimeError), staged_directory(final) as stage:
        (stage / "a.txt").write_text("2")
        (stage / "b.txt").write_text("2")
        raise RuntimeError("crash mid-run")
    assert (final / "a.txt").read_text() == "1"
    assert not (final / "b.txt").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["report"]


def test_outputs_get_umask_permissions_not_0600(tmp_path):
    import os

    old = os.umask(0o022)
    try:
        target = tmp_path / "report.html"
        atomic_write_text(target, "x")
        assert target.stat().st_mode & 0o777 == 0o644
    finally:
        os.umask(old)
