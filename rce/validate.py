"""``rce validate``: check export files before an analysis, for people and CI jobs.

:func:`validate_files` reads each file with the same readers as ``rce analyze``, detects its
layout, runs the checks of :mod:`rce.checks`, and, when a roster is among the files, measures
how many rows of every other file match it. The :class:`ValidationReport` renders as text, JSON
and JUnit XML (plain strings; the CLI prints them).

JSON shape (``schema_version`` "1")::

    {"schema_version": "1", "tool": "rce validate", "exit_code": 0, "strict": false,
     "summary": {"files": 2, "errors": 0, "warnings": 1, "info": 3},
     "files": [{"path": ..., "layout": ..., "kind": ..., "rows": ..., "format": ...,
                "encoding": ..., "delimiter": ..., "checks": [...]}],
     "findings": [{"severity": "warning", "code": "DUPLICATE_ROWS", "file": ...,
                   "rows": [12, 40], "count": 2, "column": null, "message": ...,
                   "hint": ...}]}

``rows`` are spreadsheet row numbers (header = row 1), at most five; ``count`` is the total.
Exit code: 0 when no error-level finding, 1 otherwise. A file that cannot be read at all raises
:class:`~rce.errors.InputFileError` (the CLI exits 2).
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from rce.checks import Finding, FileContext, match_rate_finding, run_file_checks
from rce.config import Plan
from rce.errors import LayoutError
from rce.io.load import expand_paths
from rce.io.presets import detect_layout
from rce.io.readers import read_table

SCHEMA_VERSION = "1"


@dataclass(frozen=True)
class FileSummary:
    """One validated file."""

    path: str
    layout: str
    kind: str
    rows: int
    format: str
    encoding: str
    delimiter: str
    checks: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return {
            "path": self.path,
            "layout": self.layout,
            "kind": self.kind,
            "rows": self.rows,
            "format": self.format,
            "encoding": self.encoding or None,
            "delimiter": self.delimiter or None,
            "checks": list(self.checks),
        }


@dataclass(frozen=True)
class ValidationReport:
    """Findings over a set of files.

    Attributes
    ----------
    findings
        Every finding, in file order.
    files
        What each file was recognised as and which checks ran.
    strict
        Warnings were promoted to errors.
    """

    findings: tuple[Finding, ...]
    files: tuple[FileSummary, ...]
    strict: bool = False

    @property
    def errors(self) -> tuple[Finding, ...]:
        """Error-level findings."""
        return tuple(f for f in self.findings if f.severity == "error")

    @property
    def exit_code(self) -> int:
        """0 when there is no error-level finding, 1 otherwise."""
        return 1 if self.errors else 0

    @property
    def failed(self) -> bool:
        """True when ``exit_code`` is 1."""
        return self.exit_code == 1

    def counts(self) -> dict[str, int]:
        """Findings per severity."""
        return {s: sum(f.severity == s for f in self.findings)
                for s in ("error", "warning", "info")}

    def to_dict(self) -> dict[str, Any]:
        """The JSON document (see the module docstring)."""
        c = self.counts()
        return {
            "schema_version": SCHEMA_VERSION,
            "tool": "rce validate",
            "exit_code": self.exit_code,
            "strict": self.strict,
            "summary": {"files": len(self.files), "errors": c["error"],
                        "warnings": c["warning"], "info": c["info"]},
            "files": [f.to_dict() for f in self.files],
            "findings": [f.to_dict() for f in self.findings],
        }

    def to_json(self) -> str:
        """JSON text."""
        return json.dumps(self.to_dict(), indent=2) + "\n"

    def to_frame(self) -> Any:
        """Findings as a table."""
        import pandas as pd

        return pd.DataFrame([f.to_dict() for f in self.findings],
                            columns=["severity", "code", "file", "rows", "count", "column",
                                     "message", "hint"])

    def summary(self) -> str:
        """Same as :meth:`to_text`."""
        return self.to_text()

    def to_text(self) -> str:
        """Readable text: one block per file, one line per finding."""
        lines: list[str] = []
        for f in self.files:
            lines.append(f"{f.path}: {f.layout} ({f.kind}), {f.rows} rows")
            for x in self.findings:
                if x.file != f.path:
                    continue
                where = []
                if x.column:
                    where.append(f"column {x.column!r}")
                if x.rows:
                    more = x.count - len(x.rows)
                    where.append("rows " + ", ".join(map(str, x.rows))
                                 + (f" and {more} more" if more > 0 else ""))
                loc = f" ({'; '.join(where)})" if where else ""
                lines.append(f"  {x.severity.upper():7} {x.code}: {x.message}{loc}")
                if x.hint:
                    lines.append(f"          hint: {x.hint}")
        known = {f.path for f in self.files}
        for x in self.findings:
            if x.file not in known:
                lines.append(f"{x.file}: {x.severity.upper()} {x.code}: {x.message}")
                if x.hint:
                    lines.append(f"  hint: {x.hint}")
        c = self.counts()
        lines.append(f"{len(self.files)} file(s): {c['error']} error(s), {c['warning']} "
                     f"warning(s), {c['info']} note(s)"
                     + (" [strict: warnings count as errors]" if self.strict else ""))
        return "\n".join(lines) + "\n"

    def to_junit(self) -> str:
        """JUnit XML: one testsuite per file, one testcase per check; errors are failures."""
        root = ET.Element("testsuites", name="rce validate")
        total = failures = 0
        for f in self.files:
            suite = ET.SubElement(root, "testsuite", name=f.path)
            n = fails = 0
            codes_by_check = _findings_by_check(self.findings, f.path)
            for check in f.checks:
                n += 1
                case = ET.SubElement(suite, "testcase", classname=f"rce.validate.{_stem(f.path)}",
                                     name=check)
                found = codes_by_check.get(check, [])
                errs = [x for x in found if x.severity == "error"]
                if errs:
                    fails += 1
                    fail = ET.SubElement(case, "failure", message=errs[0].message,
                                         type=errs[0].code)
                    fail.text = "\n".join(_finding_line(x) for x in errs)
                others = [x for x in found if x.severity != "error"]
                if others:
                    out = ET.SubElement(case, "system-out")
                    out.text = "\n".join(_finding_line(x) for x in others)
            suite.set("tests", str(n))
            suite.set("failures", str(fails))
            suite.set("errors", "0")
            suite.set("skipped", "0")
            total += n
            failures += fails
        root.set("tests", str(total))
        root.set("failures", str(failures))
        root.set("errors", "0")
        ET.indent(root)
        return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(
            root, encoding="unicode") + "\n"


def _stem(path: str) -> str:
    return Path(path).name.replace(".", "_")


#: Finding code -> the check (JUnit test case) that produces it.
CHECK_OF_CODE = {
    "NO_ROWS": "rows", "LAYOUT_UNKNOWN": "layout", "LAYOUT_MISMATCH": "layout",
    "ID_BLANK": "ids", "ID_SCIENTIFIC": "ids", "ID_LEADING_ZEROS": "ids", "ID_EMAIL": "ids",
    "ID_PATTERN": "ids", "DUPLICATE_ROWS": "duplicates", "DUPLICATE_STUDENTS": "duplicates",
    "CONFLICTING_SCORES": "duplicates",
    "NOT_NUMERIC": "scores", "SCORE_RANGE": "scores", "SCORE_SENTINEL": "scores",
    "PERCENTILE_RANGE": "scores", "MINUTES_NEGATIVE": "minutes",
    "MINUTES_IMPLAUSIBLE": "minutes", "MINUTES_OUTLIER": "minutes",
    "DATE_UNPARSEABLE": "dates", "DATE_FORMATS_MIXED": "dates", "DATE_OUTSIDE_YEAR": "dates",
    "VOCABULARY": "vocabularies", "TIMESTAMPS_CONVERTED": "timezone",
    "USAGE_ON_WEEKENDS": "weekends",
    "ID_MATCH_RATE": "roster_match",
}


def _findings_by_check(findings: tuple[Finding, ...], path: str) -> dict[str, list[Finding]]:
    out: dict[str, list[Finding]] = {}
    for x in findings:
        if x.file == path:
            check = CHECK_OF_CODE.get(x.code, x.code.lower())
            if x.code == "NOT_NUMERIC" and "score" not in x.message and \
                    "percentile" not in x.message:
                check = "minutes"
            out.setdefault(check, []).append(x)
    return out


def _finding_line(x: Finding) -> str:
    parts = [f"[{x.severity}] {x.code}: {x.message}"]
    if x.column:
        parts.append(f"column {x.column!r}")
    if x.rows:
        more = x.count - len(x.rows)
        parts.append("rows " + ", ".join(map(str, x.rows)) + (f" (+{more} more)" if more > 0
                                                              else ""))
    if x.hint:
        parts.append(f"hint: {x.hint}")
    return " | ".join(parts)


def validate_files(paths: list[str | Path] | tuple[str | Path, ...], plan: Plan | None = None,
                   strict: bool = False) -> ValidationReport:
    """Check export files and report every problem found.

    Parameters
    ----------
    paths
        Files (or globs) to check: rosters, score exports and usage exports, in any order.
    plan
        Study plan (``[columns]`` mapping, academic year, time zone, minimum match rate).
    strict
        Promote warnings to errors (for CI jobs that must stay clean).

    Returns
    -------
    ValidationReport

    Raises
    ------
    InputFileError
        A file cannot be read at all (missing, folder, empty, binary, zip, damaged, ragged or
        duplicated header).
    """
    plan = plan or Plan()
    findings: list[Finding] = []
    files: list[FileSummary] = []
    contexts: list[FileContext] = []
    for path in expand_paths(list(paths)):
        table = read_table(path)
        try:
            layout = detect_layout(table.columns, plan=plan, hint=path.name, where=str(path))
        except LayoutError as exc:
            findings.append(Finding("error", "LAYOUT_UNKNOWN", str(path), exc.message,
                                    exc.hint or "", rows=(1,), count=1))
            files.append(FileSummary(str(path), "unknown", "unknown", len(table.frame),
                                     table.format, table.encoding, table.delimiter, ("layout",)))
            continue
        ctx = run_file_checks(table, layout, plan)
        contexts.append(ctx)
        findings.extend(ctx.findings)
        files.append(FileSummary(str(path), layout.name, layout.kind, len(table.frame),
                                 table.format, table.encoding, table.delimiter,
                                 ("layout", *ctx.checks_run)))
    rosters = [c for c in contexts if c.layout.kind == "roster" and len(c.frame)]
    if rosters:
        import pandas as pd

        from rce.io.normalize import normalize_student_id

        parts = []
        for c in rosters:
            part = pd.DataFrame({"student_id": normalize_student_id(
                c.frame[c.layout.columns["student_id"]])})
            for k in ("ssid", "email"):
                if k in c.layout.columns:
                    part[k] = c.frame[c.layout.columns[k]]
            parts.append(part)
        roster = pd.concat(parts, ignore_index=True)
        if "ssid" in roster:
            roster["ssid"] = normalize_student_id(roster["ssid"])
        for i, c in enumerate(contexts):
            if c.layout.kind == "roster" or not len(c.frame):
                continue
            col = c.layout.columns["student_id"]
            findings.append(match_rate_finding(c.file, col, c.frame[col], roster, plan, strict))
            idx = [f.path for f in files].index(c.file)
            files[idx] = replace(files[idx], checks=(*files[idx].checks, "roster_match"))
            del i
    if strict:
        findings = [replace(f, severity="error") if f.severity == "warning" else f
                    for f in findings]
    return ValidationReport(tuple(findings), tuple(files), strict)
