"""The CLI skeleton: help, version, lazy imports, error translation and exit codes."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import interrupt_when_held

from rce import __version__
from rce.cli import app, translate_errors
from rce.errors import ExitCode, InputFileError, RceError

COMMANDS = ["analyze", "sustain-report", "validate", "sample", "plan", "power", "randomize"]
HEAVY = ["pandas", "numpy", "statsmodels", "scipy", "matplotlib", "duckdb", "pyarrow"]


def test_help_lists_every_command_with_help_text(runner):
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0, result.output
    for command in COMMANDS:
        assert command in result.output
    # each command's first help line is shown, not just its name
    assert "synthetic district" in result.output
    assert "pre-register" in result.output or "study-plan template" in result.output


@pytest.mark.parametrize("command", COMMANDS)
def test_each_command_has_real_help(runner, command):
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0, result.output
    assert len(result.output.strip().splitlines()) > 5


def test_help_imports_no_heavy_module():
    code = (
        "import sys\n"
        "from rce.cli import app\n"
        "try:\n"
        "    app(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        f"print([m for m in {HEAVY!r} if m in sys.modules])\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip().splitlines()[-1] == "[]"


def test_version(runner):
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"rce {__version__}"


def test_python_dash_m_works():
    proc = subprocess.run(
        [sys.executable, "-m", "rce", "--version"], capture_output=True, text=True
    )
    assert proc.returncode == 0
    assert proc.stdout.strip() == f"rce {__version__}"


def test_no_arguments_shows_help_with_exit_2(runner):
    result = runner.invoke(app, [])
    assert result.exit_code == 2
    assert "Usage" in result.output


def test_unknown_command_is_usage_error(runner):
    result = runner.invoke(app, ["analyz"])
    assert result.exit_code == 2


def test_rce_error_becomes_two_lines_and_exit_2(capsys):
    import typer

    with pytest.raises(typer.Exit) as info, translate_errors():
        raise InputFileError("file is empty", where="scores.csv", hint="Export it again.")
    assert info.value.exit_code == ExitCode.INPUT_ERROR
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2
    assert err[0].startswith("error: file is empty") and "scores.csv" in err[0]
    assert err[1] == "hint: Export it again."


def test_rce_error_json_form(capsys):
    import typer

    with pytest.raises(typer.Exit), translate_errors("json"):
        raise RceError("bad", where="x.csv (row 3, column Grade)", hint="fix it")
    payload = json.loads(capsys.readouterr().err)
    assert payload == {
        "error": "RceError",
        "message": "bad",
        "where": "x.csv (row 3, column Grade)",
        "hint": "fix it",
    }


def test_markup_in_messages_is_not_interpreted(capsys):
    import typer

    with pytest.raises(typer.Exit), translate_errors():
        raise RceError("column [bold]x[/] missing", where="[/path]")
    err = capsys.readouterr().err
    assert "[bold]x[/]" in err and "[/path]" in err


def test_exit_codes_are_the_documented_contract():
    assert [int(c) for c in ExitCode] == [0, 1, 2, 130]


def test_interrupt_exits_130(tmp_path):
    code, err = interrupt_when_held(
        "rce.sample:build_sample_files", "sample", "--out", str(tmp_path / "d"), "-n", "300"
    )
    assert code == 130, err
    assert "Traceback" not in err
    assert not (tmp_path / "d").exists()


def test_stage_progress_draws_a_bar_for_a_long_stage_and_closes_it():
    import io

    from rich.console import Console

    from rce.cli import _StageProgress

    out = io.StringIO()
    printer = _StageProgress(Console(file=out, force_terminal=True, width=80))
    printer("Reading the roster")
    printer("Computing dosage", 0.25)
    printer("Computing dosage", 0.75)
    assert printer.bar is not None
    printer("Subgroup gaps")  # the next stage removes the bar
    assert printer.bar is None
    printer.close()
    text = out.getvalue()
    assert "Reading the roster" in text and "Subgroup gaps" in text
