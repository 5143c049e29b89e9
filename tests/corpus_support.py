"""Shared helpers for the reliability tests: small planted-identity exports and output scans.

The planted students have IDs and names that cannot occur by chance in a message (row numbers,
counts, percentages), so a scan for them finds real leaks only.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures" / "io"
CORPUS = REPO / "tests" / "corpus"

#: Planted students: (raw ID with leading zero, last name, first name).
STUDENTS = [
    (f"0{734561 + i}", last, first)
    for i, (last, first) in enumerate(
        [
            ("Quorvath", "Zelphine"),
            ("Brindlewick", "Osgarth"),
            ("Vantablest", "Marisolde"),
            ("Thrumbleton", "Ysadora"),
            ("Kestrelmoor", "Pellandro"),
            ("Wyndhallow", "Tamsivere"),
            ("Orrisgate", "Delvanna"),
            ("Plumtrevor", "Caspiane"),
        ]
    )
]
NAMES = [n for _, last, first in STUDENTS for n in (last, first)]
IDS = [sid for sid, _, _ in STUDENTS]

ROSTER_HEADER = (
    "Student Number,SSID,Last Name,First Name,Middle Name,Email,Grade,School Code,School Name,"
    "Gender,Birthdate,Hispanic or Latino,Race 1,Race 2,Race 3,Race 4,Race 5,ELAS,ELAS Start Date,"
    "Primary Language,SPED,Primary Disability,Plan 504,FRPM,SED,Foster,Homeless,Migrant,"
    "Enter Date,Leave Date"
)


def pii_tokens() -> list[str]:
    """Every planted identifier in the forms it could leak: raw, without leading zeros, names."""
    out = set(NAMES)
    for sid in IDS:
        out.add(sid)
        out.add(sid.lstrip("0"))
    return sorted(out)


def find_pii(text: str) -> list[str]:
    """Planted identifiers present in ``text`` (IDs as whole numbers, names as words)."""
    hits = []
    for tok in pii_tokens():
        pattern = rf"(?<![0-9]){re.escape(tok)}(?![0-9])" if tok.isdigit() else re.escape(tok)
        if re.search(pattern, text, flags=re.IGNORECASE):
            hits.append(tok)
    return hits


def roster_rows(school: str = "Oak Elementary") -> list[list[str]]:
    rows = []
    for i, (sid, last, first) in enumerate(STUDENTS):
        rows.append(
            [sid, f"10000{sid}", last, first, "", f"{first.lower()}.{last.lower()}@svusd.example",
             "03" if i % 2 else "04", "1111111", school, "F" if i % 2 else "M", "04/02/2015",
             "Y" if i % 3 == 0 else "N", "700", "", "", "", "", "EO", "08/15/2022", "English",
             "N", "", "N", "F" if i % 2 else "N", "Y" if i % 2 else "N", "N", "N", "N",
             "08/14/2024", ""]
        )
    return rows


def to_csv(header: str | list[str], rows: list[list[str]], delimiter: str = ",") -> str:
    buf = io.StringIO()
    w = csv.writer(buf, delimiter=delimiter, lineterminator="\n")
    w.writerow(header.split(",") if isinstance(header, str) else header)
    w.writerows(rows)
    return buf.getvalue()


def roster_text(school: str = "Oak Elementary") -> str:
    return to_csv(ROSTER_HEADER, roster_rows(school))


def usage_rows(minutes: str = "22") -> list[list[str]]:
    """A generic session log: one session per student per school week in Sept-May."""
    rows = []
    for m, month in enumerate([9, 10, 11, 12, 1, 2, 3, 4, 5]):
        year = 2024 if month >= 8 else 2025
        for day in (3, 10, 17):
            for sid, _, _ in STUDENTS:
                rows.append([sid.lstrip("0"), f"{year}-{month:02d}-{day + m % 2:02d} 08:15:00",
                             minutes])
    return rows


def usage_text(rows: list[list[str]] | None = None, delimiter: str = "\t") -> str:
    return to_csv(["Student ID", "Session Start", "Minutes"], rows or usage_rows(), delimiter)


def scores_text(school: str = "Oak Elementary") -> str:
    """i-Ready diagnostic rows (fall, winter, spring) for the planted students."""
    with (FIXTURES / "diagnostic_results_ela.csv").open(encoding="utf-8", newline="") as fh:
        records = list(csv.reader(fh))
    header, template = records[0], records[1]
    col = {h: i for i, h in enumerate(header)}
    rows = []
    for k, (sid, last, first) in enumerate(STUDENTS):
        for w, (date, base) in enumerate([("9/3/2024", "Y"), ("1/14/2025", "N"),
                                          ("5/12/2025", "N")]):
            r = list(template)
            r[col["Student ID"]] = sid.lstrip("0")
            r[col["Last Name"]] = last
            r[col["First Name"]] = first
            r[col["User Name"]] = f"{first.lower()}{sid}@svusd.example"
            r[col["School"]] = school
            r[col["Start Date"]] = date
            r[col["Completion Date"]] = date
            r[col["Baseline Diagnostic (Y/N)"]] = base
            r[col["Most Recent Diagnostic YTD (Y/N)"]] = "Y" if w == 2 else "N"
            r[col["Overall Scale Score"]] = str(470 + 5 * k + 12 * w)
            r[col["Percentile"]] = str(30 + k + 3 * w)
            rows.append(r)
    return to_csv(header, rows)


#: Input-derived text that would run as script, formula or Markdown if it reached an output raw.
HOSTILE_SCHOOL = (
    '<script>alert("school")</script> =cmd|\' /C calc\'!A0 | **bold** [x](javascript:y)'
)
HOSTILE_PRODUCT = "=HYPERLINK(evil) <img src=x onerror=alert(1)> | *p* @SUM(1)"


def make_hostile_study(example: Path, dest: Path) -> Path:
    """Copy the example district with one school and one product renamed to hostile text."""
    import shutil

    shutil.copytree(example, dest, ignore=shutil.ignore_patterns("rce-report*"))
    for path in sorted(dest.rglob("*.csv")):
        raw = path.read_bytes()
        bom = raw.startswith(b"\xef\xbb\xbf")
        text = raw.decode("utf-8-sig")
        if "Alder Creek Elementary" not in text:
            continue
        newline = "\r\n" if "\r\n" in text else "\n"
        rows = list(csv.reader(io.StringIO(text, newline="")))
        rows = [[HOSTILE_SCHOOL if c == "Alder Creek Elementary" else c for c in r] for r in rows]
        buf = io.StringIO(newline="")
        csv.writer(buf, lineterminator=newline).writerows(rows)
        path.write_bytes(("\ufeff" if bom else "").encode() + buf.getvalue().encode("utf-8"))
    for name in ("rce.toml", "products.toml"):
        p = dest / name
        text = p.read_text(encoding="utf-8")
        p.write_text(text.replace("i-Ready Personalized Instruction ELA", HOSTILE_PRODUCT),
                     encoding="utf-8")
    return dest
