"""Reports: report.html, report.md, results.json, tables/*.csv and manifest.json.

Every renderer takes the results dict (what ``results.json`` holds) -- never the raw data -- so
nothing downstream of it can show a student. Helpers reused by other reports:
:mod:`rce.report.escape` (HTML / Markdown / CSV / spreadsheet neutralisation),
:mod:`rce.report.charts` (inline SVG charts), :mod:`rce.report.xlsx` (workbooks).

Submodules load on first use (PEP 562) so ``import rce.report.escape`` stays light.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "executive_summary",
    "render_html",
    "render_markdown",
    "results_to_json",
    "validate_results",
    "write_report",
]

_LAZY = {
    "render_html": "rce.report.html",
    "render_markdown": "rce.report.markdown",
    "results_to_json": "rce.report.results",
    "validate_results": "rce.report.results",
    "assemble_results": "rce.report.results",
    "executive_summary": "rce.report.narrative",
    "tables_from_results": "rce.report.tables",
    "build_manifest": "rce.report.manifest",
}

#: Files written by :func:`write_report`, relative to the output folder.
REPORT_FILES = ("report.html", "report.md", "results.json", "manifest.json")


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'rce.report' has no attribute {name!r}")


def write_report(
    results: Mapping[str, Any],
    out_dir: Path | str,
    *,
    tables: Mapping[str, pd.DataFrame] | None = None,
    manifest: Mapping[str, Any],
    allow_student_level: bool = False,
    results_json: str | None = None,
) -> list[Path]:
    """Write the whole report set into ``out_dir``, all or nothing.

    The files are built in a temporary sibling folder and moved into place only when every one
    of them has been written (:func:`rce.fileio.staged_directory`), so a failed run leaves the
    previous report intact.

    Parameters
    ----------
    results
        The results dict; it is validated against the shipped schema and the privacy rules
        first (:func:`validate_results`).
    out_dir
        Output folder (created if needed).
    tables
        Extra tables for ``tables/<name>.csv``, on top of the standard ones derived from the
        results (:func:`rce.report.tables.tables_from_results`); a name given here replaces the
        derived table of that name.
    manifest
        From :func:`rce.report.manifest.build_manifest`.
    allow_student_level
        Allow tables with student identifier columns (the explicit per-student option; the
        caller prints the warning).
    results_json
        ``results_to_json(results)`` when the caller already has it (``rce analyze`` does, for
        the manifest's hash): written as it is instead of serialising the results again.

    Returns
    -------
    list of Path
        Every file written, sorted.
    """
    from rce.fileio import staged_directory
    from rce.report.html import render_html
    from rce.report.manifest import manifest_to_json
    from rce.report.markdown import render_markdown
    from rce.report.results import results_to_json, to_jsonable, validate_results
    from rce.report.tables import tables_from_results, write_tables

    data = to_jsonable(results)
    validate_results(data)
    all_tables = dict(tables_from_results(data))
    all_tables.update(tables or {})
    min_n = int((data.get("plan") or {}).get("min_cell_size") or 0) or _default_min_n()
    out_dir = Path(out_dir)
    from rce.fileio import atomic_write_text

    with staged_directory(out_dir) as stage:
        atomic_write_text(stage / "results.json",
                          results_json if results_json is not None else results_to_json(data))
        atomic_write_text(stage / "report.html", render_html(data))
        atomic_write_text(stage / "report.md", render_markdown(data))
        write_tables(all_tables, stage / "tables", min_n=min_n,
                     allow_student_level=allow_student_level)
        atomic_write_text(stage / "manifest.json", manifest_to_json(manifest))
        written = sorted(p.relative_to(stage) for p in stage.rglob("*") if p.is_file())
    return [out_dir / rel for rel in written]


def _default_min_n() -> int:
    from rce.config import Plan

    return Plan().privacy.min_cell_size
