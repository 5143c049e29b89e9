"""tables/*.csv: the numbers behind the report, one tidy CSV per table.

:func:`tables_from_results` derives the standard tables from the results dict, so the CSVs can
never disagree with results.json or show more than it does. :func:`write_tables` neutralises
every text cell against spreadsheet formula injection (``= + - @``, tab, CR prefixes) and
refuses tables that would identify a student or show a small cell.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from rce.errors import DataError
from rce.fileio import atomic_write_text
from rce.report.escape import neutralize_frame
from rce.report.results import _IDENTIFYING_KEYS

__all__ = ["check_table_privacy", "tables_from_results", "write_tables"]

#: Columns holding numbers of students: none may show 1 to min_n - 1.
COUNT_COLUMNS = frozenset({
    "n", "students", "students_active", "students_habitual", "users", "habitual_users",
    "light_users", "non_users", "active", "habitual", "met_fidelity", "n_treatment",
    "n_comparison", "n_users", "n_non_users",
})
_NAME = re.compile(r"^[a-z0-9][a-z0-9_\-]{0,63}$")


def _frame(rows: Any, columns: list[str] | None = None) -> pd.DataFrame | None:
    if not rows:
        return None
    records = [dict(r) for r in rows]
    frame = pd.DataFrame(records)
    for col in frame.columns:
        values = [r[col] for r in records if r.get(col) is not None]
        # Counts with suppressed (null) cells would otherwise turn into floats ("260.0").
        if values and all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            frame[col] = frame[col].astype("Int64")
    if columns:
        frame = frame[[c for c in columns if c in frame.columns]
                      + [c for c in frame.columns if c not in columns]]
    return frame


def tables_from_results(results: Mapping[str, Any]) -> dict[str, pd.DataFrame]:
    """The standard tables, derived from the results dict (empty sections are left out).

    Returns
    -------
    dict of str to DataFrame
        ``inputs``, ``usage_monthly``, ``habitual_months``, ``usage_by_group``,
        ``dose_response``, ``dose_response_bins``, ``gaps``, ``impact``, ``balance``,
        ``baseline_equivalence``, ``evidence_criteria``, ``warnings`` -- whichever have rows.
    """
    out: dict[str, pd.DataFrame | None] = {}
    out["inputs"] = _frame(results.get("inputs"), ["path", "kind", "preset", "rows", "sha256"])
    usage = results.get("usage") or {}
    out["usage_monthly"] = _frame(usage.get("monthly_trend"))
    out["habitual_months"] = _frame(usage.get("habitual_months_distribution"))
    out["usage_by_group"] = _frame(usage.get("by_group"), ["dimension", "group", "n"])
    dose_rows, bin_rows = [], []
    for dose in results.get("dose_response") or []:
        pm = dose.get("per_month") or {}
        naive = dose.get("naive") or {}
        dose_rows.append({
            "outcome": dose.get("outcome"), "unit": dose.get("unit"), "n": dose.get("n"),
            "clusters": dose.get("clusters"), "estimate": pm.get("estimate"),
            "se": pm.get("se"), "ci_low": pm.get("ci_low"), "ci_high": pm.get("ci_high"),
            "p_value": pm.get("p_value"), "naive_estimate": naive.get("estimate"),
            "naive_ci_low": naive.get("ci_low"), "naive_ci_high": naive.get("ci_high"),
            "covariates": ";".join(map(str, dose.get("covariates") or [])),
            "model": dose.get("model"),
        })
        bin_rows.extend({"outcome": dose.get("outcome"), **b} for b in dose.get("bins") or [])
    out["dose_response"] = _frame(dose_rows)
    out["dose_response_bins"] = _frame(bin_rows)
    out["gaps"] = _frame(results.get("gaps"), ["dimension", "group", "reference", "window",
                                               "population", "users_only", "n"])
    impact = results.get("impact")
    if impact:
        scalars = {k: v for k, v in impact.items() if not isinstance(v, list | dict)}
        for key in ("worse", "no_change", "better"):
            scalars[f"probability_{key}"] = (impact.get("regions") or {}).get(key)
        scalars["decision"] = (impact.get("decision") or {}).get("verdict")
        out["impact"] = _frame([scalars], ["design", "estimand", "n_treatment", "n_comparison"])
        out["balance"] = _frame(impact.get("balance"))
        out["baseline_equivalence"] = _frame(impact.get("baseline_equivalence"))
    evidence = results.get("evidence") or {}
    out["evidence_criteria"] = _frame(evidence.get("criteria"))
    out["warnings"] = _frame(results.get("warnings"))
    return {k: v for k, v in out.items() if v is not None}


def check_table_privacy(
    name: str, frame: pd.DataFrame, *, min_n: int, allow_student_level: bool = False
) -> None:
    """Refuse a table with a student identifier column or an unsuppressed small count.

    Raises
    ------
    DataError
        Naming the table and column (never a value).
    """
    if not allow_student_level:
        for col in frame.columns:
            if str(col).strip().lower() in _IDENTIFYING_KEYS:
                raise DataError(
                    "a report table contains a student identifier column",
                    where=f"tables/{name}.csv, column {col}",
                    hint="Per-student output needs the explicit per-student option.",
                )
        for col in frame.columns:
            if str(col) not in COUNT_COLUMNS:
                continue
            counts = pd.to_numeric(frame[col], errors="coerce")
            small = (counts.gt(0) & counts.lt(min_n)).fillna(False).astype(bool)
            if bool(small.any()):
                first = int(small.to_numpy().nonzero()[0][0])
                raise DataError(
                    f"a report table shows a count of fewer than {min_n} students",
                    where=f"tables/{name}.csv, row {first + 2}, column {col}",
                    hint="Suppress small cells with rce.privacy.suppress_cells before writing "
                    "tables (set the count to missing).",
                )


def table_csv(frame: pd.DataFrame) -> str:
    """CSV text of a table with formula-injection neutralised (``\\n`` line ends)."""
    return neutralize_frame(frame).to_csv(index=False, lineterminator="\n")


def write_tables(
    tables: Mapping[str, pd.DataFrame],
    out_dir: Path,
    *,
    min_n: int,
    allow_student_level: bool = False,
) -> list[Path]:
    """Write each table to ``out_dir/<name>.csv`` atomically.

    Parameters
    ----------
    tables
        Name (lower-case letters, digits, ``_`` or ``-``) to DataFrame.
    out_dir
        The ``tables`` folder.
    min_n
        Smallest group that may be shown (``plan.privacy.min_cell_size``).
    allow_student_level
        Allow identifier columns (the explicit per-student option).
    """
    paths = []
    for name in sorted(tables):
        if not _NAME.match(name):
            raise DataError(
                f"table name {name!r} is not a safe file name",
                where="tables",
                hint="Use lower-case letters, digits, '_' or '-'.",
            )
        frame = tables[name]
        check_table_privacy(name, frame, min_n=min_n, allow_student_level=allow_student_level)
        path = Path(out_dir) / f"{name}.csv"
        atomic_write_text(path, table_csv(frame))
        paths.append(path)
    return paths
