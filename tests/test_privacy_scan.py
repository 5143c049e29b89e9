"""Nothing leaked: no planted student ID, name or e-mail in any command's stdout, stderr or
output files, on success and on every error path.

The inputs are small exports of eight planted students whose IDs and names cannot occur by
chance (see ``corpus_support``). ``rce analyze`` on the full example district is scanned in
``test_analyze.py``; this file covers ``validate`` (text, JSON, JUnit), ``analyze`` error paths,
``sustain-report``, ``randomize`` and ``trend``, plus the temporary-file hygiene of a run.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from corpus_support import (
    CORPUS,
    IDS,
    NAMES,
    STUDENTS,
    find_pii,
    roster_text,
    scores_text,
    usage_rows,
    usage_text,
)

from rce.cli import app

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")


def _invoke(*args: str):
    from typer.testing import CliRunner

    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        repr(result.exception)
    )
    return result


def _scan_result(result) -> None:
    out = result.stdout + result.stderr
    assert "Traceback" not in out
    assert find_pii(out) == [], out[-2000:]


def _scan_folder(folder: Path, *, allow: set[str] = frozenset()) -> int:
    n = 0
    for p in sorted(folder.rglob("*")):
        if p.is_file() and p.name not in allow:
            n += 1
            if p.suffix == ".xlsx":
                from openpyxl import load_workbook

                wb = load_workbook(p)
                text = "\n".join(str(c.value) for ws in wb.worksheets for row in ws.iter_rows()
                                 for c in row if c.value is not None)
            else:
                text = p.read_text(encoding="utf-8", errors="replace")
            assert find_pii(text) == [], p.name
    return n


@pytest.fixture
def planted(tmp_path) -> dict[str, Path]:
    files = {
        "roster": tmp_path / "roster.csv",
        "scores": tmp_path / "scores.csv",
        "usage": tmp_path / "usage.tsv",
    }
    files["roster"].write_text(roster_text(), encoding="utf-8")
    files["scores"].write_text(scores_text(), encoding="utf-8")
    files["usage"].write_text(usage_text(), encoding="utf-8")
    return files


def test_scan_finds_planted_text():
    """The scanner itself works: it finds every planted form and ignores row numbers."""
    sid, last, _ = STUDENTS[0]
    assert find_pii(f"row {sid}") == [sid]
    assert find_pii(f"id {sid.lstrip('0')}.") == [sid.lstrip("0")]
    assert find_pii(last.upper()) == [last]
    assert find_pii("rows 2, 3, 4 and 7345610 more") == []
    assert len(IDS) == 8 and len(NAMES) == 16


# Bad files whose offending cell holds an ID or a name: the message must point at it, not quote it.
_BAD = {
    "ragged_row_with_name.tsv": lambda: usage_text() .replace(
        "\t22\n", f"\t22\t{STUDENTS[2][1]}\n", 1),
    "headerless.tsv": lambda: "\n".join(usage_text().splitlines()[1:]) + "\n",
    "unclosed_quote_name.csv": lambda: usage_text(delimiter=",") + f'{IDS[1]},"{STUDENTS[1][1]}\n',
    "name_in_minutes.tsv": lambda: usage_text(
        [[r[0], r[1], STUDENTS[k % 8][2] if k % 5 == 0 else r[2]]
         for k, r in enumerate(usage_rows())]),
    "id_in_date.tsv": lambda: usage_text(
        [[r[0], IDS[k % 8] if k % 4 == 0 else r[1], r[2]] for k, r in enumerate(usage_rows())]),
    "name_as_id.tsv": lambda: usage_text(
        [[STUDENTS[k % 8][1] if k % 3 == 0 else r[0], r[1], r[2]]
         for k, r in enumerate(usage_rows())]),
    "emails_as_header.csv": lambda: "\n".join(
        f"{s[2].lower()}.{s[1].lower()}@svusd.example,2024-09-03,20" for s in STUDENTS) + "\n",
}


@pytest.mark.parametrize("fmt", ["text", "json", "junit"])
@pytest.mark.parametrize("bad", sorted(_BAD))
def test_validate_never_echoes_a_student(planted, tmp_path, bad, fmt):
    path = tmp_path / bad
    path.write_text(_BAD[bad](), encoding="utf-8")
    result = _invoke("validate", "--format", fmt, path, planted["roster"])
    assert result.exit_code in (0, 1, 2)
    assert bad in result.stdout + result.stderr
    _scan_result(result)


@pytest.mark.parametrize("fmt", ["text", "json", "junit"])
def test_validate_corpus_of_id_problems(planted, fmt):
    names = ["roster_conflicting_demog.csv", "roster_ids_emails.csv", "roster_ids_scientific.csv",
             "usage_ids_emails.tsv", "usage_ids_punctuated.tsv", "usage_ids_unicode_digits.tsv",
             "usage_other_district.tsv", "scores_conflicting.csv"]
    result = _invoke("validate", "--format", fmt, *(CORPUS / n for n in names), planted["roster"])
    assert result.exit_code in (0, 1)
    _scan_result(result)


def test_analyze_error_paths_never_echo_a_student(planted, tmp_path):
    """Bad roster and bad usage: exit 2 with file and row, no student in the message."""
    bad_usage = tmp_path / "usage_bad.tsv"
    bad_usage.write_text(_BAD["ragged_row_with_name.tsv"](), encoding="utf-8")
    headerless = tmp_path / "roster_headerless.csv"
    headerless.write_text("\n".join(roster_text().splitlines()[1:]) + "\n", encoding="utf-8")
    for fmt in ("text", "json"):
        for roster, usage in ((planted["roster"], bad_usage), (headerless, planted["usage"])):
            out = tmp_path / f"out_{fmt}_{roster.stem}"
            result = _invoke("analyze", "--roster", roster, "--scores", planted["scores"],
                             "--usage", usage, "--out", out, "--format", fmt)
            assert result.exit_code == 2, result.stdout + result.stderr
            assert "row" in result.stderr
            _scan_result(result)
            assert not out.exists()


def test_analyze_on_too_few_students_fails_cleanly(planted, tmp_path, monkeypatch):
    """Eight students load and are measured, then the analysis refuses: no output, no leak, and
    the engine's spill folder was private (0700) and is gone."""
    import stat

    private_tmp = tmp_path / "tmp"
    private_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(private_tmp))
    made: list[tuple[Path, int]] = []
    real_mkdtemp = tempfile.mkdtemp

    def recording_mkdtemp(*args, **kwargs):
        path = real_mkdtemp(*args, **kwargs)
        made.append((Path(path), stat.S_IMODE(Path(path).stat().st_mode)))
        return path

    monkeypatch.setattr(tempfile, "mkdtemp", recording_mkdtemp)
    out = tmp_path / "out"
    result = _invoke("analyze", "--roster", planted["roster"], "--scores", planted["scores"],
                     "--usage", planted["usage"], "--out", out, "--per-student")
    assert result.exit_code == 2, result.stdout + result.stderr
    _scan_result(result)
    assert not out.exists()
    spills = [(p, mode) for p, mode in made if p.name.startswith("rce-duckdb-")]
    assert spills, "the dosage engine made no spill folder"
    for path, mode in spills:
        assert mode & 0o077 == 0, oct(mode)
        assert not path.exists()
    assert list(private_tmp.iterdir()) == []
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".partial")] == []


def test_sustain_report_outputs_and_messages(planted, tmp_path):
    products = tmp_path / "products.toml"
    products.write_text(
        '[[product]]\nproduct = "Planted Reader"\nsubject = "ela"\nannual_cost = 1000\n'
        f'seats_purchased = 10\nusage = "{planted["usage"].name}"\n', encoding="utf-8")
    out = tmp_path / "sustain"
    for fmt in ("text", "json"):
        result = _invoke("sustain-report", "--products", products, "--out", out,
                         "--as-of", "2025-06-01", "--format", fmt)
        assert result.exit_code in (0, 1), result.stdout + result.stderr
        _scan_result(result)
    assert _scan_folder(out) >= 4
    # Error path: the usage file is a student list keyed by name.
    bad = tmp_path / "name_as_id.tsv"
    bad.write_text(_BAD["name_as_id.tsv"](), encoding="utf-8")
    products.write_text(products.read_text(encoding="utf-8").replace(
        planted["usage"].name, bad.name), encoding="utf-8")
    result = _invoke("sustain-report", "--products", products, "--out", tmp_path / "s2",
                     "--as-of", "2025-06-01")
    assert result.exit_code in (0, 1, 2)
    _scan_result(result)
    if (tmp_path / "s2").exists():
        _scan_folder(tmp_path / "s2")


def test_randomize_prints_no_student(planted, tmp_path):
    """The assignment file holds IDs by design; the terminal output and errors do not."""
    out = tmp_path / "assignment.csv"
    result = _invoke("randomize", planted["roster"], "--out", out)
    assert result.exit_code == 0, result.stdout + result.stderr
    _scan_result(result)
    assert find_pii(out.read_text(encoding="utf-8")), "assignment lists the students"
    for args in (["--block", "Favourite Colour"], ["--treated-share", "1.5"]):
        result = _invoke("randomize", planted["roster"], "--out", tmp_path / "x.csv", *args)
        assert result.exit_code == 2
        _scan_result(result)
    emails = tmp_path / "roster_emails.csv"
    emails.write_bytes((CORPUS / "roster_ids_emails.csv").read_bytes())
    result = _invoke("randomize", emails, "--out", tmp_path / "y.csv")
    assert result.exit_code in (0, 2)
    _scan_result(result)


def test_trend_error_path(tmp_path):
    bogus = tmp_path / "results.json"
    bogus.write_text(f'{{"students": ["{IDS[0]}"]}}', encoding="utf-8")
    result = _invoke("trend", bogus, "--out", tmp_path / "trend")
    assert result.exit_code == 2
    _scan_result(result)
