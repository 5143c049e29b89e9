"""Bad-input corpus: every odd or broken export gives a clear message and a documented exit code.

Each case runs ``rce validate`` in-process (the same code path as the command line) on one bad
file next to a good roster, and checks: the exit code is the documented one (0 clean, 1 findings,
2 cannot read), there is no traceback, an exit-2 message names the file and carries a hint, the
expected finding is reported, and no planted student ID or name appears in stdout or stderr.
Small files are committed under ``tests/corpus/``; big or odd ones (100,000 columns, long lines,
archives, symlinks, FIFOs, files that change while read) are generated in ``tmp_path``.
"""

from __future__ import annotations

import gzip
import os
import threading
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from corpus_support import (
    CORPUS,
    ROSTER_HEADER,
    STUDENTS,
    find_pii,
    roster_rows,
    roster_text,
    to_csv,
    usage_rows,
    usage_text,
)

from rce.cli import app

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")


@dataclass(frozen=True)
class Case:
    name: str
    #: Builds the files to validate; the good roster is added unless ``with_roster`` is False.
    build: Callable[[Path], list[Path]]
    exit_codes: frozenset[int]
    #: Substrings (case-insensitive) the output must contain.
    expect: tuple[str, ...] = ()
    with_roster: bool = True


def _write(folder: Path, name: str, data: bytes | str) -> Path:
    p = folder / name
    p.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return p


def static(name: str) -> Callable[[Path], list[Path]]:
    return lambda tmp: [CORPUS / name]


def gen(name: str, data: Callable[[], bytes | str]) -> Callable[[Path], list[Path]]:
    return lambda tmp: [_write(tmp, name, data())]


ERR = frozenset({2})
FIND = frozenset({1})
OK_OR_FIND = frozenset({0, 1})


# --- generated cases ---------------------------------------------------------------------------


def _wide() -> str:
    cols = ["Student ID", "Session Start", "Minutes"] + [f"extra_{i}" for i in range(100_000)]
    return ",".join(cols) + "\n" + ",".join(["734561", "2024-09-03 08:00", "20"]
                                           + ["x"] * 100_000) + "\n"


def _long_field() -> str:
    rows = usage_rows()
    rows[3][2] = "9" * 2_000_000
    return usage_text(rows)


def _long_line_no_newline() -> bytes:
    return b"Student ID,Session Start,Minutes\n" + b"a," * 3_000_000


def _long_header_cell() -> str:
    return "Student ID\tSession Start\tMinutes\t" + "N" * 500_000 + "\n" + "\n".join(
        "\t".join([*r, ""]) for r in usage_rows()) + "\n"


def _many_blank_lines() -> str:
    return usage_text() + "\n" * 200_000


def _zip_with_csv(tmp: Path) -> list[Path]:
    p = tmp / "usage_export.csv"
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("usage.csv", usage_text(delimiter=","))
    return [p]


def _zip_named_zip(tmp: Path) -> list[Path]:
    p = tmp / "exports.zip"
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("a.csv", usage_text(delimiter=","))
        z.writestr("b.csv", roster_text())
    return [p]


def _gzip_of_binary(tmp: Path) -> list[Path]:
    return [_write(tmp, "usage.csv.gz", gzip.compress(bytes(range(256)) * 50))]


def _gzip_empty(tmp: Path) -> list[Path]:
    return [_write(tmp, "usage.csv.gz", gzip.compress(b""))]


def _symlink_ok(tmp: Path) -> list[Path]:
    target = _write(tmp, "real_usage.tsv", usage_text())
    link = tmp / "usage_link.tsv"
    link.symlink_to(target)
    return [link]


def _symlink_dangling(tmp: Path) -> list[Path]:
    link = tmp / "usage_dangling.tsv"
    link.symlink_to(tmp / "gone.tsv")
    return [link]


def _symlink_loop(tmp: Path) -> list[Path]:
    a, b = tmp / "loop_a.tsv", tmp / "loop_b.tsv"
    a.symlink_to(b)
    b.symlink_to(a)
    return [a]


def _fifo(tmp: Path) -> list[Path]:
    p = tmp / "usage_pipe.tsv"
    os.mkfifo(p)
    # A writer that never finishes would hang a naive reader; this one unblocks the open after
    # a while so that a regression fails the test instead of hanging the suite.
    def feed() -> None:
        import time

        time.sleep(5)
        try:
            fd = os.open(p, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:
            return
        os.close(fd)

    threading.Thread(target=feed, daemon=True).start()
    return [p]


def _device(tmp: Path) -> list[Path]:
    return [Path("/dev/null")]


def _changes_while_read(tmp: Path) -> list[Path]:
    """The export is rewritten (shorter, different header) between the sniff and the full read."""
    import rce.io.readers as readers

    p = _write(tmp, "usage_growing.tsv", usage_text())
    real = readers._read_head

    def head_then_truncate(path: Path, n: int = readers.SNIFF_BYTES) -> bytes:
        data = real(path, n)
        if Path(path) == p:
            p.write_text("Student ID\n", encoding="utf-8")
        return data

    _changes_while_read.patch = ("_read_head", head_then_truncate)  # type: ignore[attr-defined]
    return [p]


def _xlsx_formulas_and_errors(tmp: Path) -> list[Path]:
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.append(["Student ID", "Session Start", "Minutes"])
    for i, r in enumerate(usage_rows()[:20]):
        ws.append([r[0], r[1], "=1/0" if i % 3 == 0 else "#N/A" if i % 3 == 1 else 22])
    p = tmp / "usage.xlsx"
    wb.save(p)
    return [p]


def _xlsx_empty_first_sheet(tmp: Path) -> list[Path]:
    from openpyxl import Workbook

    wb = Workbook()
    wb.active.title = "Cover"
    ws = wb.create_sheet("Data")
    ws.append(["Student ID", "Session Start", "Minutes"])
    for r in usage_rows()[:10]:
        ws.append(r)
    p = tmp / "usage_cover.xlsx"
    wb.save(p)
    return [p]


def _parquet_float_ids(tmp: Path) -> list[Path]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = usage_rows()
    ids = [float(r[0]) if i % 7 else None for i, r in enumerate(rows)]
    table = pa.table({"Student ID": ids, "Session Start": [r[1] for r in rows],
                      "Minutes": [float(r[2]) for r in rows]})
    p = tmp / "usage.parquet"
    pq.write_table(table, p)
    return [p]


def _parquet_tz_timestamps(tmp: Path) -> list[Path]:
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = usage_rows()
    ts = pd.to_datetime([r[1] for r in rows]).tz_localize("UTC")
    table = pa.table({"Student ID": [int(r[0]) for r in rows], "Session Start": ts,
                      "Minutes": [int(r[2]) for r in rows]})
    p = tmp / "usage_tz.parquet"
    pq.write_table(table, p)
    return [p]


def _parquet_nested(tmp: Path) -> list[Path]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({"Student ID": [[1, 2], [3]], "Session Start": [{"a": 1}, {"a": 2}],
                      "Minutes": [b"\x00\x01", b"\x02"]})
    p = tmp / "usage_nested.parquet"
    pq.write_table(table, p)
    return [p]


def _roster_100k_rows_dupes(tmp: Path) -> list[Path]:
    rows = roster_rows() * 5000
    return [_write(tmp, "roster_dupes.csv", to_csv(ROSTER_HEADER, rows))]


def _hostile_names() -> str:
    rows = roster_rows(school='<script>alert(1)</script> =HYPERLINK("http://x") | **bold**')
    return to_csv(ROSTER_HEADER, rows)


CASES: list[Case] = [
    # committed small files ---------------------------------------------------------------------
    Case("truncated mid-record", static("usage_truncated.csv"), OK_OR_FIND | ERR, ("usage",)),
    Case("truncated inside a quoted field", static("roster_truncated_quote.csv"), ERR,
         ("quote", "row"), with_roster=False),
    Case("mixed UTF-8 and cp1252 in one file", static("roster_mixed_encoding.csv"),
         frozenset({0, 1}), ("roster",), with_roster=False),
    Case("NUL byte inside a field", static("usage_nul_in_field.csv"), ERR, ("binary",)),
    Case("NUL bytes after 8 kB of text", static("usage_nul_late.csv"), ERR | FIND,
         ("usage_nul_late",)),
    Case("duplicate students, conflicting demographics", static("roster_conflicting_demog.csv"),
         OK_OR_FIND, ("DUPLICATE_STUDENTS",), with_roster=False),
    Case("conflicting scores for the same test", static("scores_conflicting.csv"), OK_OR_FIND,
         ("CONFLICTING_SCORES",)),
    Case("IDs in scientific notation (usage)", static("usage_ids_scientific.csv"), OK_OR_FIND,
         ("ID_SCIENTIFIC",)),
    Case("IDs in scientific notation (roster)", static("roster_ids_scientific.csv"), OK_OR_FIND,
         ("ID_SCIENTIFIC",), with_roster=False),
    Case("negative minutes", static("usage_negative_minutes.tsv"), FIND, ("MINUTES_NEGATIVE",)),
    Case("implausible minutes", static("usage_huge_minutes.tsv"), OK_OR_FIND,
         ("MINUTES_IMPLAUSIBLE",)),
    Case("minutes as words, inf, NaN, 1e400", static("usage_minutes_odd_numbers.tsv"),
         OK_OR_FIND, ("NOT_NUMERIC",)),
    Case("dates in the future", static("usage_future_dates.tsv"), OK_OR_FIND,
         ("DATE_OUTSIDE_YEAR",)),
    Case("dates decades ago", static("usage_ancient_dates.tsv"), OK_OR_FIND,
         ("DATE_OUTSIDE_YEAR",)),
    Case("dates at the edge of the calendar (0001, 9999)", static("usage_extreme_dates.tsv"),
         OK_OR_FIND, ("DATE",)),
    Case("impossible dates (Feb 30, month 13, hour 25)", static("usage_impossible_dates.tsv"),
         OK_OR_FIND, ("DATE_UNPARSEABLE",)),
    Case("zone-less timestamps at the spring-forward gap",
         static("usage_dst_spring_forward.tsv"), OK_OR_FIND, ("usage_dst_spring_forward",)),
    Case("zone-less timestamps in the fall-back hour", static("usage_dst_fall_back.tsv"),
         OK_OR_FIND, ("usage_dst_fall_back",)),
    Case("offsets mixed with zone-less timestamps", static("usage_mixed_offsets.tsv"),
         OK_OR_FIND, ("usage_mixed_offsets",)),
    Case("epoch seconds and Excel serials as dates", static("usage_epoch_and_serial.tsv"),
         OK_OR_FIND, ("DATE",)),
    Case("usage log of another district", static("usage_other_district.tsv"), OK_OR_FIND,
         ("ID_MATCH_RATE: 0.5%",)),
    Case("roster whose IDs are all e-mails", static("roster_ids_emails.csv"), OK_OR_FIND,
         ("ID_EMAIL",), with_roster=False),
    Case("usage keyed by e-mail", static("usage_ids_emails.tsv"), OK_OR_FIND, ("ID_EMAIL",)),
    Case("all IDs blank", static("usage_ids_blank.tsv"), OK_OR_FIND, ("ID_BLANK",)),
    Case("IDs with Arabic-Indic and full-width digits", static("usage_ids_unicode_digits.tsv"),
         OK_OR_FIND, ("ID_",)),
    Case("IDs with dashes and spaces", static("usage_ids_punctuated.tsv"), OK_OR_FIND, ("ID_",)),
    Case("old Mac CR-only line endings", static("usage_cr_only.csv"), OK_OR_FIND | ERR,
         ("usage_cr_only",)),
    Case("mixed line endings", static("usage_mixed_line_endings.csv"), OK_OR_FIND,
         ("usage_mixed_line_endings",)),
    Case("a second header row mid-file (two exports pasted)",
         static("usage_header_repeated.csv"), OK_OR_FIND, ("DATE_UNPARSEABLE",)),
    Case("a BOM in the middle of the file", static("usage_bom_mid_file.csv"), OK_OR_FIND,
         ("usage_bom_mid_file",)),
    Case("decimal commas in a semicolon file", static("usage_decimal_comma.csv"), OK_OR_FIND,
         ("usage_decimal_comma",)),
    Case("odd grade values", static("roster_odd_grades.csv"), OK_OR_FIND, ("roster_odd_grades",),
         with_roster=False),
    Case("scores all blank", static("scores_all_blank.csv"), OK_OR_FIND | ERR,
         ("scores_all_blank",)),
    Case("percentiles out of range and fractional", static("scores_bad_percentiles.csv"), FIND,
         ("PERCENTILE_RANGE",)),
    Case("emoji and bidi controls in names", static("roster_bidi_emoji.csv"), OK_OR_FIND,
         ("roster_bidi_emoji",), with_roster=False),
    Case("stray quote inside an unquoted field", static("usage_stray_quote.csv"),
         OK_OR_FIND | ERR, ("usage_stray_quote",)),
    Case("only a title line above the header", static("usage_title_line.csv"), ERR,
         ("row 2", "title")),
    Case("header has trailing spaces and odd case", static("usage_header_spacing.csv"),
         OK_OR_FIND, ("usage_header_spacing",)),
    # generated at test time --------------------------------------------------------------------
    Case("100,000 columns", gen("usage_wide.csv", _wide), OK_OR_FIND | ERR, ("usage_wide",)),
    Case("a 2 MB field", gen("usage_long_field.tsv", _long_field), OK_OR_FIND | ERR,
         ("usage_long_field",)),
    Case("a 6 MB line without a newline", gen("usage_one_line.csv", _long_line_no_newline),
         ERR | FIND, ("usage_one_line",)),
    Case("a 500 kB header cell", gen("usage_long_header.tsv", _long_header_cell),
         OK_OR_FIND | ERR, ("usage_long_header",)),
    Case("200,000 trailing blank lines", gen("usage_blank_tail.tsv", _many_blank_lines),
         OK_OR_FIND, ("usage_blank_tail",)),
    Case("40,000 duplicate roster rows", _roster_100k_rows_dupes, OK_OR_FIND,
         ("DUPLICATE",), with_roster=False),
    Case("hostile school names", gen("roster_hostile.csv", _hostile_names), OK_OR_FIND,
         ("roster_hostile",), with_roster=False),
    Case("zip archive with a .csv name", _zip_with_csv, ERR, ("zip",)),
    Case("zip archive of two exports", _zip_named_zip, ERR, ("zip",)),
    Case("gzip of binary data", _gzip_of_binary, ERR, ("binary",)),
    Case("gzip of nothing", _gzip_empty, ERR, ("empty",)),
    Case("symlink to a good export", _symlink_ok, OK_OR_FIND, ("usage_link",)),
    Case("dangling symlink", _symlink_dangling, ERR, ("not found",)),
    Case("symlink loop", _symlink_loop, ERR, ("loop_a",)),
    Case("named pipe (FIFO)", _fifo, ERR, ("usage_pipe",)),
    Case("a device instead of a file", _device, ERR, ("/dev/null",)),
    Case("file rewritten while being read", _changes_while_read, OK_OR_FIND | ERR,
         ("usage_growing",)),
    Case("xlsx with formula and error cells", _xlsx_formulas_and_errors, OK_OR_FIND,
         ("usage.xlsx",)),
    Case("xlsx whose first sheet is empty", _xlsx_empty_first_sheet, OK_OR_FIND | ERR,
         ("usage_cover",)),
    Case("parquet with float IDs and nulls", _parquet_float_ids, OK_OR_FIND, ("ID_BLANK",)),
    Case("parquet with UTC timestamps", _parquet_tz_timestamps, OK_OR_FIND, ("usage_tz",)),
    Case("parquet with nested columns", _parquet_nested, OK_OR_FIND | ERR, ("usage_nested",)),
]


def test_corpus_is_big_enough():
    committed = [p for p in CORPUS.iterdir() if p.is_file() and p.name != "README.md"]
    assert len(CASES) >= 55
    assert len(committed) >= 35
    used = {c.build(Path("/nonexistent"))[0].name for c in CASES
            if c.build.__name__ == "<lambda>" and c.build.__qualname__.startswith("static")}
    assert used == {p.name for p in committed}, "every committed corpus file has a case"


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_gives_clear_message(case: Case, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    files = case.build(tmp_path)
    patch = getattr(case.build, "patch", None)
    if patch is not None:
        import rce.io.readers as readers

        monkeypatch.setattr(readers, patch[0], patch[1])
    args = ["validate", *map(str, files)]
    if case.with_roster:
        args.append(str(_write(tmp_path, "good_roster.csv", roster_text())))
    result = CliRunner().invoke(app, args)
    out = result.stdout + result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"{type(result.exception).__name__}: {result.exception}"
    )
    assert "Traceback" not in out
    assert result.exit_code in case.exit_codes, out[-3000:]
    if result.exit_code == 2:
        assert "error:" in result.stderr and "hint:" in result.stderr, result.stderr
        assert files[0].name in result.stderr, result.stderr
    low = out.casefold()
    for s in case.expect:
        assert s.casefold() in low, (s, out[-3000:])
    assert find_pii(out) == [], out[-3000:]


def test_unchanged_inputs_and_json_errors(tmp_path):
    """The JSON error form carries where and hint; validating never modifies a file."""
    import hashlib
    import json

    from typer.testing import CliRunner

    bad = CORPUS / "usage_nul_in_field.csv"
    before = hashlib.sha256(bad.read_bytes()).hexdigest()
    result = CliRunner().invoke(app, ["validate", "--format", "json", str(bad)])
    assert result.exit_code == 2
    err = json.loads(result.stderr)
    assert err["where"] and err["hint"] and bad.name in err["where"]
    assert hashlib.sha256(bad.read_bytes()).hexdigest() == before


def test_planted_students_are_distinct():
    assert len({s[0] for s in STUDENTS}) == len(STUDENTS) == 8


def test_rows_longer_than_the_header_never_shift_columns(tmp_path):
    """Regression: pandas read a trailing delimiter on data rows (not on the header) as row
    labels, so 'Student ID' silently held the minutes. Empty extra cells are now dropped; filled
    ones are refused with the row number, quickly even for millions of cells."""
    import time

    from rce.errors import InputFileError
    from rce.io.readers import read_table

    p = _write(tmp_path, "trailing.csv", "Student ID,Minutes\n4512,20,\n4513,30,\n")
    frame = read_table(p).frame
    assert frame["Student ID"].tolist() == ["4512", "4513"]
    assert frame["Minutes"].tolist() == ["20", "30"]
    p = _write(tmp_path, "extra.csv", "Student ID,Minutes\n4512,20,oops\n")
    with pytest.raises(InputFileError, match="row 2 has 3 fields") as info:
        read_table(p)
    assert info.value.where.endswith("row 2")
    start = time.perf_counter()
    with pytest.raises(InputFileError, match="at least"):
        read_table(_write(tmp_path, "one_line.csv", _long_line_no_newline()))
    assert time.perf_counter() - start < 20
