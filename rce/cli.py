"""The ``rce`` command line: parse, call one library function, render, exit.

Only this module imports Typer and Rich. Heavy libraries (pandas, statsmodels, scipy, matplotlib,
duckdb) are imported inside commands so that ``rce --help`` and shell completion stay fast.
"""

from __future__ import annotations

import os
import sys
import threading

# One BLAS thread: on small machines shared with other work, multi-threaded BLAS is slower, and a
# fixed thread count makes floating-point sums -- and so results.json -- the same on every machine.
# Set before numpy is first imported (commands import it lazily).
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from rce import __version__
from rce.errors import ExitCode, RceError

app = typer.Typer(
    name="rce",
    help="Rapid-cycle evaluation of K-12 edtech: who uses a product, how much, and whether more "
    "use goes with more growth, from district exports.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
    rich_markup_mode="rich",
)


class TextJson(StrEnum):
    """Terminal text or machine-readable JSON."""

    text = "text"
    json = "json"


class ValidateFormat(StrEnum):
    """Output formats of ``rce validate``."""

    text = "text"
    json = "json"
    junit = "junit"


def _stderr() -> Any:
    # Built per call: a console freezes the terminal width when it is constructed.
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)


def _stdout() -> Any:
    from rich.console import Console

    return Console(highlight=False, soft_wrap=True, markup=False)


@contextmanager
def translate_errors(fmt: str = "text") -> Iterator[None]:
    """Turn user mistakes into a two-line message on stderr and exit code 2."""
    try:
        yield
    except RceError as exc:
        from rich.markup import escape

        if fmt == "json":
            import json

            typer.echo(json.dumps(exc.to_dict(), indent=2), err=True)
        else:
            err = _stderr()
            where = f" [dim]({escape(exc.where)})[/]" if exc.where else ""
            err.print(f"[bold red]error:[/] {escape(exc.message)}{where}")
            if exc.hint:
                err.print(f"[dim]hint:[/] {escape(exc.hint)}")
        raise typer.Exit(ExitCode.INPUT_ERROR) from None


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"rce {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version_callback, is_eager=True, help="Show the version and exit."
        ),
    ] = False,
) -> None:
    """Rapid-cycle evaluation of K-12 edtech from district exports.

    Exit codes: 0 success, 1 ran and found problems, 2 could not run (bad usage or input),
    130 interrupted.
    """


# --- analysis ----------------------------------------------------------------------------------


@app.command(rich_help_panel="Analysis")
def analyze(
    study_dir: Annotated[
        Path | None,
        typer.Argument(
            help="Study folder. Its rce.toml (if present) names the input files and the plan.",
            show_default=False,
        ),
    ] = None,
    scores: Annotated[
        list[Path] | None,
        typer.Option("--scores", help="Benchmark score export (repeatable).", show_default=False),
    ] = None,
    usage: Annotated[
        list[Path] | None,
        typer.Option("--usage", help="Product usage export (repeatable).", show_default=False),
    ] = None,
    roster: Annotated[
        list[Path] | None,
        typer.Option("--roster", help="Student roster export (repeatable).", show_default=False),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", help="Study plan file (default: STUDY_DIR/rce.toml)."),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Output folder (default: STUDY_DIR/rce-report)."),
    ] = None,
    outcome_window: Annotated[
        str | None,
        typer.Option(
            "--outcome-window",
            help="Outcome test window: spring (final) or winter (interim). Overrides the plan.",
        ),
    ] = None,
    min_match_rate: Annotated[
        float | None,
        typer.Option(
            "--min-match-rate",
            help="Fail (exit 1) when fewer rows than this share match the roster.",
        ),
    ] = None,
    per_student: Annotated[
        bool,
        typer.Option(
            "--per-student",
            help="Also write per-student dosage (contains student IDs; handle as a student record).",
            rich_help_panel="Privacy",
        ),
    ] = False,
    fmt: Annotated[
        TextJson, typer.Option("--format", "-f", help="Terminal output: text summary or JSON.")
    ] = TextJson.text,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress or summary.")] = False,
    no_timestamp: Annotated[
        bool, typer.Option("--no-timestamp", help="Leave the run time out of manifest.json.")
    ] = False,
) -> None:
    """Run the whole evaluation and write report.html, report.md, results.json, tables and a manifest."""
    from rce import api

    printer = None if quiet or fmt == TextJson.json else _progress_printer()
    try:
        with translate_errors(fmt.value):
            outcome = api.analyze(
                study_dir=study_dir,
                scores=scores or [],
                usage=usage or [],
                roster=roster or [],
                config=config,
                out=out,
                outcome_window=outcome_window,
                min_match_rate=min_match_rate,
                per_student=per_student,
                timestamp=not no_timestamp,
                progress=printer,
            )
    finally:
        if printer is not None:
            printer.close()
    if per_student:
        _stderr().print(
            "[bold yellow]warning:[/] per-student output written; it identifies students. "
            "Store and share it as a student record."
        )
    if fmt == TextJson.json:
        typer.echo(outcome.results_json, nl=False)
    elif not quiet:
        _print_analysis_summary(outcome)
    raise typer.Exit(outcome.exit_code)


@app.command("sustain-report", rich_help_panel="Analysis")
def sustain_report(
    products: Annotated[
        Path | None,
        typer.Option(
            "--products", help="Products and costs file, TOML or CSV (default: from the plan)."
        ),
    ] = None,
    config: Annotated[Path | None, typer.Option("--config", "-c", help="Study plan file.")] = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Output folder (default: sustain-report).")
    ] = None,
    as_of: Annotated[
        str | None,
        typer.Option("--as-of", help="Decision date, YYYY-MM-DD (default: today)."),
    ] = None,
    evidence: Annotated[
        list[Path] | None,
        typer.Option(
            "--evidence",
            help="results.json of an `rce analyze` run (repeatable); matched to products by name.",
            show_default=False,
        ),
    ] = None,
    fmt: Annotated[
        TextJson, typer.Option("--format", "-f", help="Terminal output: text summary or JSON.")
    ] = TextJson.text,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No summary.")] = False,
) -> None:
    """Keep, scale, right-size or drop: utilization, cost per habitual user and evidence per product."""
    from rce import api

    with translate_errors(fmt.value):
        outcome = api.sustain_report(
            products=products, config=config, out=out, as_of=as_of, evidence=evidence or []
        )
    if fmt == TextJson.json:
        typer.echo(outcome.json_text, nl=False)
    elif not quiet:
        _stdout().print(outcome.summary)
    raise typer.Exit(ExitCode.OK)


@app.command(rich_help_panel="Analysis")
def trend(
    results: Annotated[
        list[Path],
        typer.Argument(help="results.json files (or folders of earlier runs) in cycle order."),
    ],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Folder for trend.html, trend.md, trend.json.")
    ] = Path("rce-trend"),
    label: Annotated[
        list[str] | None,
        typer.Option("--label", help="Name of each run, in order (repeatable).", show_default=False),
    ] = None,
    fmt: Annotated[
        TextJson, typer.Option("--format", "-f", help="Terminal output: text summary or JSON.")
    ] = TextJson.text,
) -> None:
    """Line up successive runs of the same study: usage, dose-response and impact per cycle.

    Runs whose product, outcome or dosage definition differ from the first are flagged, not
    silently compared. Exit 1 when any run is not comparable.
    """
    from rce import api

    with translate_errors(fmt.value):
        result = api.trend(results=results, out=out, labels=label or [])
    if fmt == TextJson.json:
        import json

        typer.echo(json.dumps(result.to_dict(), indent=2, sort_keys=True))
    else:
        _stdout().print(result.summary())
        _stdout().print(f"Trend report written to {out}")
    raise typer.Exit(ExitCode.OK if result.comparable else ExitCode.FINDINGS)


# --- checks ------------------------------------------------------------------------------------


@app.command(rich_help_panel="Checks")
def validate(
    files: Annotated[list[Path], typer.Argument(help="Export files to check.")],
    config: Annotated[Path | None, typer.Option("--config", "-c", help="Study plan file.")] = None,
    fmt: Annotated[
        ValidateFormat, typer.Option("--format", "-f", help="Findings as text, JSON or JUnit XML.")
    ] = ValidateFormat.text,
    strict: Annotated[
        bool, typer.Option("--strict", help="Treat warnings as errors (exit 1).")
    ] = False,
) -> None:
    """Check exports for CI: layout, columns, types, vocabularies, ranges, duplicates, dates, ID match.

    Exit 0 when no error-level finding, 1 when there is one, 2 when a file cannot be read.
    """
    from rce import api

    with translate_errors("json" if fmt == ValidateFormat.json else "text"):
        report = api.validate(files=files, config=config, strict=strict)
    if fmt == ValidateFormat.json:
        typer.echo(report.to_json(), nl=False)
    elif fmt == ValidateFormat.junit:
        typer.echo(report.to_junit(), nl=False)
    else:
        typer.echo(report.to_text(), nl=False)
    raise typer.Exit(report.exit_code)


# --- planning ----------------------------------------------------------------------------------


@app.command(rich_help_panel="Planning")
def sample(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder to write the district into.")],
    students: Annotated[
        int, typer.Option("--students", "-n", help="Number of students.", min=50, max=2_000_000)
    ] = 1500,
    seed: Annotated[int, typer.Option("--seed", help="Random seed; same seed, same bytes.")] = 7,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing.")] = False,
) -> None:
    """Write a realistic, messy synthetic district export set with known planted effects."""
    from rce.sample import generate_sample

    with translate_errors():
        result = generate_sample(out, students=students, seed=seed)
    if not quiet:
        _stdout().print(result.summary())


@app.command(rich_help_panel="Planning")
def plan(
    path: Annotated[
        Path, typer.Argument(help="Plan file to write, lock or check; - prints the template.")
    ] = Path("rce.toml"),
    lock: Annotated[
        bool,
        typer.Option(
            "--lock",
            help="Pre-register the plan: record its sha256 and the time in PATH.lock.",
        ),
    ] = False,
    check: Annotated[
        bool, typer.Option("--check", help="Check the plan and show whether it is locked.")
    ] = False,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing plan.")] = False,
) -> None:
    """Write a commented study-plan template, or lock (pre-register) or check a plan."""
    from rce import config as cfg

    with translate_errors():
        if lock:
            status = cfg.lock_plan(path)
            _stdout().print(f"Locked {path} (sha256 {status.locked_sha256}) at {status.locked_at}.")
            return
        if check:
            loaded = cfg.load_plan(path)
            cfg.check_plan(loaded)
            status = cfg.plan_lock_status(path)
            _stdout().print(f"{path}: valid. {status.summary()}")
            raise typer.Exit(ExitCode.FINDINGS if status.changed else ExitCode.OK)
        text = cfg.plan_template()
        if str(path) == "-":
            typer.echo(text, nl=False)
            return
        if path.exists() and not force:
            raise RceError(
                "plan file already exists",
                where=str(path),
                hint="Use --force to overwrite it, or --check / --lock to use it.",
            )
        from rce.fileio import atomic_write_text

        atomic_write_text(path, text)
        _stdout().print(f"Wrote {path}. Edit it, then pre-register it with `rce plan --lock`.")


@app.command(rich_help_panel="Planning")
def power(
    design: Annotated[
        str,
        typer.Option(
            "--design", help="individual (students matched or randomized) or cluster (schools)."
        ),
    ] = "individual",
    n: Annotated[
        int | None, typer.Option("--n", help="Students in the study (gives the MDES).")
    ] = None,
    mdes: Annotated[
        float | None,
        typer.Option("--mdes", help="Effect to detect in SD units (gives the sample size)."),
    ] = None,
    clusters: Annotated[
        int | None, typer.Option("--clusters", help="Number of schools or classes (cluster).")
    ] = None,
    icc: Annotated[
        float, typer.Option("--icc", help="Intraclass correlation (cluster designs).")
    ] = 0.20,
    r2: Annotated[
        float, typer.Option("--r2", help="Share of outcome variance explained by covariates.")
    ] = 0.50,
    treated_share: Annotated[
        float, typer.Option("--treated-share", help="Share of units in the treatment group.")
    ] = 0.5,
    alpha: Annotated[float, typer.Option("--alpha", help="Two-sided significance level.")] = 0.05,
    power_level: Annotated[float, typer.Option("--power", help="Statistical power.")] = 0.80,
    fmt: Annotated[TextJson, typer.Option("--format", "-f", help="Text or JSON.")] = TextJson.text,
) -> None:
    """Minimum detectable effect size, or the sample needed, for matched and clustered designs."""
    from rce import api

    with translate_errors(fmt.value):
        result = api.power(
            design=design,
            n=n,
            mdes=mdes,
            clusters=clusters,
            icc=icc,
            r2=r2,
            treated_share=treated_share,
            alpha=alpha,
            power=power_level,
        )
    if fmt == TextJson.json:
        import json

        typer.echo(json.dumps(result.to_dict(), indent=2, sort_keys=True))
    else:
        _stdout().print(result.summary())


@app.command(rich_help_panel="Planning")
def randomize(
    roster: Annotated[Path, typer.Argument(help="Roster export of the students to assign.")],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Assignment CSV to write (contains student IDs).")
    ],
    unit: Annotated[
        str, typer.Option("--unit", help="student or class: what is assigned.")
    ] = "student",
    block: Annotated[
        list[str] | None,
        typer.Option("--block", help="Block on this roster column (repeatable).", show_default=False),
    ] = None,
    treated_share: Annotated[
        float, typer.Option("--treated-share", help="Share assigned to the product.")
    ] = 0.5,
    seed: Annotated[int, typer.Option("--seed", help="Random seed, recorded with the result.")] = 1,
    config: Annotated[Path | None, typer.Option("--config", "-c", help="Study plan file.")] = None,
) -> None:
    """Assign students or classes to a randomized pilot, blocked, re-randomized until balanced."""
    from rce import api

    with translate_errors():
        result = api.randomize(
            roster=roster,
            out=out,
            unit=unit,
            block=tuple(block) if block else ("school", "grade"),
            treated_share=treated_share,
            seed=seed,
            config=config,
        )
    _stdout().print(result.summary())


# --- rendering helpers -------------------------------------------------------------------------


def _progress_printer() -> Any:
    """A callback that shows one line per pipeline stage on stderr and a bar for a long stage
    (the dosage pass over the usage files), only on a terminal."""
    err = _stderr()
    if not err.is_terminal:
        return None
    return _StageProgress(err)


class _StageProgress:
    """``progress(stage)`` prints the stage; ``progress(stage, fraction)`` draws its bar."""

    def __init__(self, console: Any) -> None:
        self.console = console
        self.bar: Any = None
        self.task: Any = None
        self.lock = threading.Lock()

    def __call__(self, stage: str, fraction: float | None = None) -> None:
        with self.lock:
            if fraction is None:
                self.close()
                self.console.print(f"[dim]… {stage}[/]")
                return
            if self.bar is None:
                from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn

                self.bar = Progress(
                    TextColumn("  {task.description}"),
                    BarColumn(),
                    TaskProgressColumn(),
                    console=self.console,
                    transient=True,
                )
                self.task = self.bar.add_task("usage rows read", total=1.0)
                self.bar.start()
            self.bar.update(self.task, completed=fraction)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None


def _print_analysis_summary(outcome: Any) -> None:
    console = _stdout()
    console.print(outcome.title, style="bold")
    for sentence in outcome.summary_sentences:
        console.print(f"• {sentence}")
    for warning in outcome.warnings:
        console.print(f"warning: {warning}", style="yellow")
    console.print(f"Report written to {outcome.out_dir}")


def main() -> None:
    """Console-script entry point: maps Ctrl-C to exit code 130."""
    try:
        app()
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        sys.exit(ExitCode.INTERRUPTED)
