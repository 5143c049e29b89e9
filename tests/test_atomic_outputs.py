"""Nothing lost, nothing half-written: a failed or interrupted run leaves the previous report as
it was, leaves no temporary folder behind, and never modifies an input."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import EXAMPLE_DIR, interrupt_when_held

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

OLD = {
    "report.html": "<p>previous report</p>",
    "report.md": "# previous report\n",
    "results.json": '{"previous": true}\n',
    "manifest.json": '{"previous": true}\n',
    "tables/usage_by_group.csv": "previous\n",
}


def _hashes(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _previous_report(folder: Path) -> dict[str, str]:
    for rel, text in OLD.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_text(text, encoding="utf-8")
    return _hashes(folder)


def _leftovers(parent: Path) -> list[str]:
    return [p.name for p in parent.iterdir() if p.name.endswith((".partial", ".tmp"))]


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> Path:
    dest = tmp_path_factory.mktemp("district") / "sierra-vista"
    shutil.copytree(EXAMPLE_DIR, dest, ignore=shutil.ignore_patterns("rce-report*"))
    return dest


@pytest.fixture(scope="module")
def analysis(study):
    """One in-memory analysis run; the tests below only vary how its report is written."""
    from rce import api, pipeline

    before = _hashes(study)
    plan = api.resolve_plan(study_dir=study, config=None)
    run = pipeline.run_analysis(plan, lock=api.plan_lock_status(plan.source))
    assert _hashes(study) == before, "analysis modified an input file"
    return run


def test_successful_write_replaces_previous_report(analysis, tmp_path):
    from rce import pipeline

    out = tmp_path / "report"
    out.mkdir()
    old = _previous_report(out)
    files = pipeline.write_outputs(analysis, out)
    new = _hashes(out)
    for name in ("report.html", "report.md", "results.json", "manifest.json"):
        assert new[name] != old[name]
        assert out / name in files
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize(("where", "exc"), [("markdown", RuntimeError("disk full")),
                                            ("tables", KeyboardInterrupt())],
                         ids=["error-in-markdown", "interrupt-in-tables"])
def test_failure_midway_keeps_previous_report(analysis, tmp_path, monkeypatch, exc, where):
    """The writer fails after results.json and report.html are already written to the stage."""
    import rce.report.markdown as md
    import rce.report.tables as tables
    from rce import pipeline

    def boom(*args, **kwargs):
        raise exc

    if where == "markdown":
        monkeypatch.setattr(md, "render_markdown", boom)
    else:
        monkeypatch.setattr(tables, "write_tables", boom)
    out = tmp_path / "report"
    out.mkdir()
    old = _previous_report(out)
    with pytest.raises(type(exc)):
        pipeline.write_outputs(analysis, out)
    assert _hashes(out) == old
    assert _leftovers(tmp_path) == []
    assert _leftovers(out) == []


def test_failure_on_first_run_leaves_no_folder(analysis, tmp_path, monkeypatch):
    import rce.report.markdown as md
    from rce import pipeline

    monkeypatch.setattr(md, "render_markdown", lambda *a, **k: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        pipeline.write_outputs(analysis, tmp_path / "report")
    assert not (tmp_path / "report").exists() or list((tmp_path / "report").iterdir()) == []
    assert _leftovers(tmp_path) == []


def _rce(*args: str) -> list[str]:
    return [sys.executable, "-c", "from rce.cli import main; main()", *args]


@pytest.mark.parametrize(
    "hold_at",
    [
        # the main thread reads the roster while DuckDB reads the usage logs on a worker thread
        "rce.io:load_roster",
        # models are fitted while the helper process computes the gap tables
        "rce.stats.impact:estimate_impact",
        # inside the staging folder, with part of the new report written
        "rce.report.markdown:render_markdown",
    ],
)
def test_sigint_during_analyze_keeps_previous_report(study, tmp_path, hold_at):
    """Ctrl-C in the middle of a real `rce analyze`: exit 130, old report intact, inputs intact."""
    out = tmp_path / "report"
    out.mkdir()
    old = _previous_report(out)
    inputs = _hashes(study)
    code, stderr = interrupt_when_held(hold_at, "analyze", str(study), "--out", str(out),
                                       "--quiet")
    assert code == 130, stderr[-2000:]
    assert "Traceback" not in stderr
    assert _hashes(out) == old
    assert _hashes(study) == inputs
    assert _leftovers(tmp_path) == []
    assert _leftovers(out) == []


@pytest.mark.slow
def test_two_concurrent_analyses_into_different_folders(study, tmp_path):
    """Two `rce analyze` processes at once on the same inputs give identical, complete reports."""
    outs = [tmp_path / "a", tmp_path / "b"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    procs = [
        subprocess.Popen(
            _rce("analyze", str(study), "--out", str(o), "--quiet", "--no-timestamp"),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        )
        for o in outs
    ]
    for p in procs:
        _, err = p.communicate(timeout=600)
        assert p.returncode == 0, err[-2000:]
    a, b = (_hashes(o) for o in outs)
    assert set(a) >= {"report.html", "report.md", "results.json", "manifest.json"}
    assert a["results.json"] == b["results.json"]
    assert a.keys() == b.keys()
    assert _leftovers(tmp_path) == []
