"""Reading export files into all-text tables.

Every reader returns a :class:`RawTable` whose frame holds every column as text (``str`` dtype,
blank cells missing), so an ID such as ``004512`` keeps its leading zeros until the normaliser
decides what to do with it. Row ``i`` of the frame is spreadsheet row ``i + 2`` (the header is
row 1), the numbering every error message and validate finding uses.

Formats: delimited text (comma, tab, semicolon, pipe; sniffed from the header line), gzip'd
delimited text, Parquet and XLSX. Text encodings are sniffed: UTF-8, UTF-8 with a byte-order mark,
and CP1252 (Windows "ANSI", a superset of Latin-1's printable range) with a Latin-1 fallback.
"""

from __future__ import annotations

import csv
import gzip
import io
import re
import warnings
import zlib
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pandas as pd

from rce.errors import InputFileError

#: Delimiters tried when sniffing, in order of preference on ties.
DELIMITERS = (",", "\t", ";", "|")

_DELIM_NAMES = {",": "comma", "\t": "tab", ";": "semicolon", "|": "pipe"}

#: Bytes read to sniff a file (header, delimiter, encoding of the first rows).
SNIFF_BYTES = 1 << 16


@dataclass(frozen=True)
class RawTable:
    """One export file read as text.

    Attributes
    ----------
    frame
        Every column as text (missing where the cell is blank). Row ``i`` is spreadsheet row
        ``i + 2``.
    path
        The file read.
    encoding
        Text encoding used ("utf-8", "utf-8-sig", "cp1252", "latin-1"; "" for binary formats).
    delimiter
        Field separator for delimited text ("" for Parquet and XLSX).
    format
        "csv", "csv.gz", "parquet" or "xlsx".
    """

    frame: pd.DataFrame
    path: Path
    encoding: str
    delimiter: str
    format: str
    #: Cells already stripped of surrounding whitespace, blanks already missing (done by the
    #: Arrow reader on whole columns); read_table then skips its own pass.
    cells_stripped: bool = field(default=False, repr=False, compare=False)

    @property
    def columns(self) -> list[str]:
        """Header names in file order."""
        return [str(c) for c in self.frame.columns]

    def spreadsheet_row(self, index: int) -> int:
        """Spreadsheet row number (header = 1) of frame row ``index``."""
        return int(index) + 2


@dataclass(frozen=True)
class Sniff:
    """What the first bytes of a delimited text file say about it (no full read)."""

    path: Path
    format: str
    encoding: str
    delimiter: str
    header: tuple[str, ...]
    sample: pd.DataFrame


# --- byte-level checks ------------------------------------------------------------------------

_GZIP_MAGIC = b"\x1f\x8b"
_ZIP_MAGIC = b"PK\x03\x04"
_PARQUET_MAGIC = b"PAR1"
_BINARY_MAGICS = {
    b"%PDF": "a PDF document",
    b"\xd0\xcf\x11\xe0": "an old-style Excel/Office file (.xls)",
    b"\x89PNG": "a PNG image",
    b"\xff\xd8\xff": "a JPEG image",
    b"SQLite format 3": "an SQLite database",
}


def _check_path(path: Path) -> None:
    if not path.exists():
        raise InputFileError(
            "file not found",
            where=str(path),
            hint="Check the path and the spelling; paths in rce.toml are relative to its folder.",
        )
    if path.is_dir():
        raise InputFileError(
            "this is a folder, not a file",
            where=str(path),
            hint="Give the export file itself (for several files, list each one or use a glob).",
        )
    if not path.is_file():
        # A named pipe would block the read forever; a device has no export in it.
        raise InputFileError(
            "this is not a regular file (a named pipe, device or socket)",
            where=str(path),
            hint="Save the export to an ordinary file and give that file.",
        )


def _read_head(path: Path, n: int = SNIFF_BYTES) -> bytes:
    try:
        with path.open("rb") as fh:
            return fh.read(n)
    except PermissionError:
        raise InputFileError(
            "permission denied: the file cannot be opened",
            where=str(path),
            hint="Ask for read access or copy the file somewhere you can read it.",
        ) from None
    except OSError as exc:
        raise InputFileError(
            f"the file cannot be read ({exc.strerror or exc})", where=str(path), hint=None
        ) from None


def detect_format(path: Path | str, head: bytes | None = None) -> str:
    """Container format of a file from its first bytes (not its name).

    Returns "csv", "csv.gz", "parquet" or "xlsx"; raises :class:`InputFileError` for an empty
    file, a zip archive that is not a workbook, or another binary format.
    """
    path = Path(path)
    if head is None:
        _check_path(path)
        head = _read_head(path, 4096)
    if not head:
        raise InputFileError(
            "the file is empty (0 bytes)",
            where=str(path),
            hint="Export the report again; the download may have failed.",
        )
    if head.startswith(_GZIP_MAGIC):
        return "csv.gz"
    if head.startswith(_PARQUET_MAGIC):
        return "parquet"
    if head.startswith(_ZIP_MAGIC):
        if b"[Content_Types].xml" in head or b"xl/" in head or path.suffix.lower() == ".xlsx":
            return "xlsx"
        raise InputFileError(
            "this is a zip archive, not a data file",
            where=str(path),
            hint="Unzip it first and give rce the CSV/XLSX files inside.",
        )
    for magic, what in _BINARY_MAGICS.items():
        if head.startswith(magic):
            raise InputFileError(
                f"this is {what}, not a data export",
                where=str(path),
                hint="Export the data as CSV (or XLSX / Parquet).",
            )
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise InputFileError(
            "the file is UTF-16 text, which rce does not read",
            where=str(path),
            hint='Save it again as "CSV UTF-8" (Excel: File > Save As > CSV UTF-8).',
        )
    if b"\x00" in head[:8192]:
        raise InputFileError(
            "this is a binary file, not a text export",
            where=str(path),
            hint="Export the data as CSV (or XLSX / Parquet).",
        )
    return "csv"


def sniff_encoding(data: bytes) -> str:
    """Text encoding of ``data``: "utf-8-sig" (BOM), "utf-8", "cp1252" or "latin-1"."""
    if data.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig"
    try:
        data.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError as exc:
        # A multi-byte character cut at the end of a sniffed prefix is still UTF-8.
        if exc.start >= len(data) - 3 and exc.reason == "unexpected end of data":
            return "utf-8"
    try:
        data.decode("cp1252")
        return "cp1252"
    except UnicodeDecodeError:
        return "latin-1"


def _first_record(text: str, limit: int = 200_000) -> str:
    """The header record (may span lines when a header cell is quoted with a newline)."""
    in_quotes = False
    for i, ch in enumerate(text[:limit]):
        if ch == '"':
            in_quotes = not in_quotes
        elif ch in "\r\n" and not in_quotes:
            return text[:i]
    return text[:limit]


def sniff_delimiter(header_line: str) -> str:
    """The separator that splits the header line into the most fields (outside quotes)."""
    counts = dict.fromkeys(DELIMITERS, 0)
    in_quotes = False
    for ch in header_line:
        if ch == '"':
            in_quotes = not in_quotes
        elif not in_quotes and ch in counts:
            counts[ch] += 1
    best = max(DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] > 0 else ","


def _parse_header(header_line: str, delimiter: str) -> list[str]:
    row = next(csv.reader([header_line], delimiter=delimiter), [])
    return [c.strip() for c in row]


def _check_header(path: Path, header: list[str], delimiter: str) -> None:
    if not header or all(h == "" for h in header):
        raise InputFileError(
            "the first row (the header) is blank",
            where=f"{path}, row 1",
            hint="The first row must hold the column names; delete any blank or title rows "
            "above it.",
        )
    if _looks_like_data(header):
        # Never echo these cells: in a file without a header row they are a student's record.
        raise InputFileError(
            "the first row looks like data (IDs or e-mail addresses), not column names",
            where=f"{path}, row 1",
            hint="Add a header row with the column names (some SIS exports omit it), or export "
            "the report again with headers.",
        )
    seen: dict[str, int] = {}
    dups: list[str] = []
    for h in header:
        key = h.casefold()
        seen[key] = seen.get(key, 0) + 1
        if seen[key] == 2:
            dups.append(h)
    if dups:
        shown = ", ".join(repr(d) for d in dups[:5])
        raise InputFileError(
            f"duplicate column names in the header: {shown}",
            where=f"{path}, row 1",
            hint="Each column needs a distinct name; rename or delete the repeated columns.",
        )
    blanks = [i + 1 for i, h in enumerate(header) if h == ""]
    if blanks and len(blanks) < len(header):
        # A blank trailing header is a common spreadsheet artefact; it is dropped by the reader.
        inner = [b for b in blanks if b < len(header)]
        if inner:
            raise InputFileError(
                f"column {inner[0]} of the header has no name",
                where=f"{path}, row 1, column {inner[0]}",
                hint="Give every column a name in the header row (or delete the empty column).",
            )


_DATA_CELL = re.compile(r"^(\d{5,}(\.0)?|[^@\s]+@[^@\s]+\.[^@\s]+)$")


def _looks_like_data(header: list[str]) -> bool:
    """True when header cells are student IDs (5+ digits) or e-mail addresses."""
    return any(_DATA_CELL.match(h.strip()) for h in header)


_RAGGED = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")


def _decode_all(path: Path, fmt: str) -> bytes:
    try:
        if fmt == "csv.gz":
            with gzip.open(path, "rb") as fh:
                return fh.read()
        return path.read_bytes()
    except (OSError, EOFError, zlib.error) as exc:
        if isinstance(exc, PermissionError):
            raise InputFileError(
                "permission denied: the file cannot be opened",
                where=str(path),
                hint="Ask for read access or copy the file somewhere you can read it.",
            ) from None
        raise InputFileError(
            "the gzip file is damaged or truncated",
            where=str(path),
            hint="Download or compress the export again.",
        ) from None


def _text_frame(path: Path, data: bytes, fmt: str, nrows: int | None) -> RawTable:
    if fmt == "csv.gz" and b"\x00" in data[:8192]:
        # detect_format saw only the compressed bytes; the content must be text too.
        raise InputFileError(
            "this gzip file holds binary data, not a text export",
            where=str(path),
            hint="Export the data as CSV (or XLSX / Parquet) and compress that.",
        )
    encoding = sniff_encoding(data)
    text_head = data[:SNIFF_BYTES].decode(encoding, errors="replace")
    if text_head.strip() == "":
        raise InputFileError(
            "the file holds only blank lines",
            where=str(path),
            hint="Export the report again; the download may have failed.",
        )
    header_line = _first_record(text_head.lstrip("\ufeff"))
    delimiter = sniff_delimiter(header_line)
    header = _parse_header(header_line, delimiter)
    _check_header(path, header, delimiter)
    _check_first_record(path, text_head.lstrip("\ufeff")[len(header_line):], header, delimiter)
    if nrows is None:
        fast = _arrow_frame(data, encoding, delimiter, header_line)
        if fast is not None:
            fast = _drop_unnamed_trailing(fast, header)
            fast.columns = [str(c).strip() for c in fast.columns]
            return RawTable(fast, path, encoding, delimiter, fmt, cells_stripped=True)
    try:
        with warnings.catch_warnings():
            # index_col=False: without it pandas turns the first cells of rows longer than the
            # header into row labels, silently shifting every value one column to the right.
            # Its warning fires only when those extra cells are empty (the longer-row case with
            # content was refused by _check_first_record), so nothing is lost.
            warnings.simplefilter("ignore", pd.errors.ParserWarning)
            frame = pd.read_csv(
                io.BytesIO(data),
                sep=delimiter,
                dtype="str",
                encoding=encoding,
                keep_default_na=False,
                na_values=[""],
                skip_blank_lines=True,
                engine="c",
                nrows=nrows,
                on_bad_lines="error",
                index_col=False,
            )
    except pd.errors.ParserError as exc:
        m = _RAGGED.search(str(exc))
        if m:
            expected, line, saw = m.groups()
            raise InputFileError(
                f"row {line} has {saw} fields but the header has {expected}",
                where=f"{path}, row {line}",
                hint="A value probably contains the delimiter "
                f"({_DELIM_NAMES.get(delimiter, delimiter)}) without quotes; quote it or "
                "export the file again.",
            ) from None
        raise InputFileError(
            f"the file is not valid delimited text ({str(exc).strip().splitlines()[-1]})",
            where=str(path),
            hint="Check for an unclosed quote; export the file again as CSV.",
        ) from None
    except pd.errors.EmptyDataError:
        raise InputFileError(
            "the file has no header row", where=str(path), hint="Export the report again."
        ) from None
    frame = _drop_unnamed_trailing(frame, header)
    frame.columns = [str(c).strip() for c in frame.columns]
    return RawTable(frame, path, encoding, delimiter, fmt)


def _check_first_record(path: Path, rest: str, header: list[str], delimiter: str) -> None:
    """Refuse a first data record with more filled cells than the header has columns.

    pandas would read such a file with the extra leading cells as row labels (shifting every
    column) and, with many extra cells, takes minutes and gigabytes doing so. ``rest`` is the
    sniffed text after the header record; a record cut at the end of it is a lower bound.
    """
    row_number = 2
    reader = csv.reader(io.StringIO(rest.lstrip("\r\n")), delimiter=delimiter)
    try:
        for row in reader:
            if any(c.strip() for c in row):
                break
            row_number += 1
        else:
            return
    except csv.Error:
        return
    if len(row) > len(header) and any(c.strip() for c in row[len(header):]):
        title = len(header) == 1
        raise InputFileError(
            f"row {row_number} has {'at least ' if len(rest) >= SNIFF_BYTES - 1024 else ''}"
            f"{len(row)} fields but the header has {len(header)}",
            where=f"{path}, row {row_number}",
            hint="The first row looks like a title above the column names; delete it so "
            "that the header is row 1." if title else "A value probably contains the delimiter "
            f"({_DELIM_NAMES.get(delimiter, delimiter)}) without quotes, or the header row is "
            "missing columns; quote the values or export the file again.",
        )


def _arrow_frame(data: bytes, encoding: str, delimiter: str, header_line: str
                 ) -> pd.DataFrame | None:
    """Parse with pyarrow's CSV reader (several times faster than pandas' C engine on large
    logs). Returns None on any parse problem, so the pandas reader runs and reports it with a
    row number -- pyarrow's own messages quote the offending row, which may hold an ID."""
    import pyarrow as pa
    from pyarrow import csv as pacsv

    raw_header = next(csv.reader([header_line], delimiter=delimiter), [])
    if len(set(raw_header)) != len(raw_header):
        return None
    if data.count(b'"') % 2:
        # An unclosed quote: pyarrow would read it to the end of the file as one value.
        return None
    if encoding not in ("utf-8", "utf-8-sig"):
        data = data.decode(encoding).encode("utf-8")
    elif data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        table = pacsv.read_csv(
            io.BytesIO(data),
            read_options=pacsv.ReadOptions(block_size=1 << 24),
            parse_options=pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(
                column_types={h: pa.string() for h in raw_header},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, ValueError):
        return None
    if table.column_names != raw_header:
        return None
    # _strip_cells on whole Arrow columns, before pandas: the same kernel pandas' str.strip
    # uses, blanks to missing; about 1 ms a column less than the per-column pandas pass.
    import pyarrow.compute as pc

    missing = pa.scalar(None, pa.string())
    table = pa.table(
        [pc.if_else(pc.equal(trimmed, ""), missing, trimmed)
         for trimmed in (pc.utf8_trim_whitespace(col) for col in table.columns)],
        names=raw_header,
    )
    frame = table.to_pandas()
    frame.columns = raw_header
    return frame


def _drop_unnamed_trailing(frame: pd.DataFrame, header: list[str]) -> pd.DataFrame:
    # A trailing delimiter on every line yields one extra unnamed, empty column.
    if header and header[-1] == "" and len(frame.columns) == len(header):
        last = frame.columns[-1]
        frame = frame.drop(columns=[last])
    return frame


def _as_text(frame: pd.DataFrame) -> pd.DataFrame:
    """Every column as text; dates as ISO, integral floats without ``.0``, blanks missing."""
    out = {}
    for name in frame.columns:
        s = frame[name]
        if pd.api.types.is_datetime64_any_dtype(s):
            txt = s.dt.strftime("%Y-%m-%d %H:%M:%S").str.replace(" 00:00:00", "", regex=False)
        elif pd.api.types.is_float_dtype(s):
            txt = s.map(lambda v: None if pd.isna(v) else (f"{v:.0f}" if float(v).is_integer()
                                                           else repr(float(v))))
            txt = txt.astype("str")
        elif pd.api.types.is_bool_dtype(s):
            txt = s.astype("str")
        else:
            txt = s.map(_cell_text, na_action="ignore").astype("str")
        txt = txt.str.strip()
        out[str(name).strip()] = txt.where(txt != "")
    return pd.DataFrame(out, index=pd.RangeIndex(len(frame)))


def _cell_text(v: object) -> str:
    if isinstance(v, float) and v.is_integer():
        return f"{v:.0f}"
    if isinstance(v, datetime):
        return v.isoformat(sep=" ").removesuffix(" 00:00:00")
    if hasattr(v, "isoformat"):
        return v.isoformat()  # type: ignore[no-any-return, attr-defined]
    return str(v)


def _read_parquet(path: Path, nrows: int | None) -> RawTable:
    try:
        frame = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several unrelated types for a damaged file
        raise InputFileError(
            f"the Parquet file cannot be read ({type(exc).__name__})",
            where=str(path),
            hint="The file may be truncated; write or download it again.",
        ) from None
    if nrows is not None:
        frame = frame.head(nrows)
    names = [str(c) for c in frame.columns]
    _check_header(path, names, "")
    return RawTable(_as_text(frame), path, "", "", "parquet")


def _read_xlsx(path: Path, nrows: int | None) -> RawTable:
    try:
        frame = pd.read_excel(path, sheet_name=0, dtype=object, engine="openpyxl", nrows=nrows)
    except Exception as exc:  # openpyxl / zipfile raise many types for a damaged workbook
        raise InputFileError(
            f"the Excel workbook cannot be read ({type(exc).__name__})",
            where=str(path),
            hint="Open it in Excel and save it again as .xlsx, or export it as CSV.",
        ) from None
    frame = frame.loc[:, [not str(c).startswith("Unnamed:") for c in frame.columns]]
    names = [str(c) for c in frame.columns]
    if not names:
        raise InputFileError(
            "the first sheet of the workbook is empty",
            where=str(path),
            hint="Put the data on the first sheet, with the column names in row 1.",
        )
    _check_header(path, names, "")
    frame = frame.dropna(how="all")
    frame = frame.reset_index(drop=True)
    return RawTable(_as_text(frame), path, "", "", "xlsx")


def read_table(path: Path | str, *, nrows: int | None = None) -> RawTable:
    """Read one export file with every column as text.

    Parameters
    ----------
    path
        A CSV/TSV/semicolon/pipe-delimited text file (optionally gzip'd), a Parquet file or an
        XLSX workbook (first sheet). The format is taken from the file's bytes, not its name.
    nrows
        Read only the first ``nrows`` data rows (for sniffing).

    Returns
    -------
    RawTable
        Row ``i`` of ``frame`` is spreadsheet row ``i + 2``.

    Raises
    ------
    InputFileError
        The file is missing, a folder, empty, binary, a zip archive, damaged, has no or a
        duplicated header, or a row with more fields than the header.
    """
    path = Path(path)
    _check_path(path)
    head = _read_head(path, 4096)
    fmt = detect_format(path, head)
    if fmt == "parquet":
        table = _read_parquet(path, nrows)
    elif fmt == "xlsx":
        table = _read_xlsx(path, nrows)
    else:
        data = _decode_all(path, fmt)
        if fmt == "csv.gz" and not data:
            raise InputFileError(
                "the gzip file contains an empty file",
                where=str(path),
                hint="Export the report again.",
            )
        try:
            table = _text_frame(path, data, fmt, nrows)
        except UnicodeDecodeError as exc:
            # The sniffed start of the file was valid in one encoding (e.g. a UTF-8 byte-order
            # mark) but a later byte is not: the file mixes encodings.
            raise InputFileError(
                f"the file mixes text encodings: byte {exc.start + 1} is not valid "
                f"{exc.encoding.upper()}",
                where=str(path),
                hint='Open the file in a spreadsheet and save it again as "CSV UTF-8".',
            ) from None
    if not table.cells_stripped:
        _strip_cells(table)
    return table


def _strip_cells(table: RawTable) -> None:
    # Frame columns are mutated in place on a frame this module just built (never the caller's).
    frame = table.frame
    for name in frame.columns:
        s = frame[name]
        stripped = s.str.strip()
        frame[name] = stripped.where(stripped != "")


def sniff(path: Path | str, *, rows: int = 200, whole_file_encoding: bool = True) -> Sniff:
    """Header, delimiter, encoding and a few rows of a file, without reading all of it.

    For Parquet and XLSX the first ``rows`` rows are read through the normal readers.
    ``whole_file_encoding``: a CSV whose head is UTF-8 is checked to the end (one more pass over
    the file); off for usage exports, which DuckDB checks as it reads them (``rce.dosage`` then
    reads a file with a later non-UTF-8 byte as Windows-1252).
    """
    path = Path(path)
    _check_path(path)
    head = _read_head(path, 4096)
    fmt = detect_format(path, head)
    if fmt in ("parquet", "xlsx"):
        t = read_table(path, nrows=rows)
        return Sniff(path, fmt, "", "", tuple(t.columns), t.frame)
    if fmt == "csv.gz":
        try:
            with gzip.open(path, "rb") as fh:
                data = fh.read(SNIFF_BYTES * 16)
        except (OSError, EOFError, zlib.error):
            raise InputFileError(
                "the gzip file is damaged or truncated",
                where=str(path),
                hint="Download or compress the export again.",
            ) from None
    else:
        data = _read_head(path, SNIFF_BYTES * 16)
    # Cut at the last full line so the sample parses.
    cut = data.rfind(b"\n")
    if cut > 0 and len(data) >= SNIFF_BYTES * 16:
        data = data[: cut + 1]
    t = _text_frame(path, data, fmt, rows)
    if t.encoding == "utf-8" and fmt == "csv" and whole_file_encoding:
        # A CP1252 byte further down the file would break a UTF-8 reader: check the whole file
        # cheaply in blocks.
        t = RawTable(t.frame, path, _full_encoding(path), t.delimiter, fmt)
    _strip_cells(t)
    return Sniff(path, fmt, t.encoding, t.delimiter, tuple(t.columns), t.frame)


def _full_encoding(path: Path) -> str:
    import codecs

    dec = codecs.getincrementaldecoder("utf-8")()
    try:
        with path.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 22), b""):
                dec.decode(block)
            dec.decode(b"", final=True)
    except UnicodeDecodeError:
        return "cp1252"
    return "utf-8"
