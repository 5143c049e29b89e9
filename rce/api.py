"""One library function per command: paths in, results out.

``rce/cli.py`` calls these and renders what they return; a notebook can call them directly.
Data flows one way: load -> prepare -> dosage -> analyses -> evidence -> report.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from rce.config import Plan, UsageInput, check_plan, load_plan, plan_lock_status
from rce.errors import ExitCode, PlanError, RceError

#: See :data:`rce.pipeline.Progress`: ``progress(stage)`` as each stage starts, and
#: ``progress(stage, fraction)`` during a long one.
Progress = Callable[..., None] | None

DEFAULT_REPORT_DIRNAME = "rce-report"


@dataclass(frozen=True)
class AnalysisOutcome:
    """What ``rce analyze`` produced: where, the headline, and the exit code."""

    out_dir: Path
    title: str
    summary_sentences: tuple[str, ...]
    warnings: tuple[str, ...]
    results: dict[str, Any]
    results_json: str
    files: tuple[Path, ...]
    exit_code: int = ExitCode.OK


def _stage(progress: Progress, text: str) -> None:
    if progress is not None:
        progress(text)


def resolve_plan(
    *,
    study_dir: Path | None,
    config: Path | None,
    scores: Sequence[Path] = (),
    usage: Sequence[Path] = (),
    roster: Sequence[Path] = (),
    outcome_window: str | None = None,
    min_match_rate: float | None = None,
) -> Plan:
    """Read the study plan and apply command-line overrides (input paths, outcome window)."""
    if study_dir is not None and not study_dir.is_dir():
        raise RceError(
            "study folder not found" if not study_dir.exists() else "study path is not a folder",
            where=str(study_dir),
            hint="Pass the folder that holds rce.toml, or name the files with --scores, --usage "
            "and --roster.",
        )
    plan = load_plan(config, directory=study_dir)
    changes: dict[str, Any] = {}
    inputs = plan.inputs
    cwd = Path.cwd()
    if scores:
        inputs = dataclasses.replace(inputs, scores=tuple(str(cwd / p) for p in scores))
    if roster:
        inputs = dataclasses.replace(inputs, roster=tuple(str(cwd / p) for p in roster))
    if usage:
        inputs = dataclasses.replace(
            inputs, usage=tuple(UsageInput(path=str(cwd / p)) for p in usage)
        )
    changes["inputs"] = inputs
    if outcome_window is not None:
        changes["outcomes"] = dataclasses.replace(plan.outcomes, outcome_window=outcome_window)
    if min_match_rate is not None:
        changes["join"] = dataclasses.replace(
            plan.join, min_match_rate=min_match_rate, enforce_min_match_rate=True
        )
    plan = dataclasses.replace(plan, **changes)
    check_plan(plan)
    if not plan.inputs.scores:
        raise PlanError(
            "no score files given",
            where=str(plan.source) if plan.source else "command line",
            hint="List them under [inputs] scores in rce.toml, or pass --scores FILE.",
        )
    if not plan.inputs.roster:
        raise PlanError(
            "no roster given",
            where=str(plan.source) if plan.source else "command line",
            hint="List it under [inputs] roster in rce.toml, or pass --roster FILE.",
        )
    return plan


def analyze(
    *,
    study_dir: Path | None = None,
    scores: Sequence[Path] = (),
    usage: Sequence[Path] = (),
    roster: Sequence[Path] = (),
    config: Path | None = None,
    out: Path | None = None,
    outcome_window: str | None = None,
    min_match_rate: float | None = None,
    per_student: bool = False,
    timestamp: bool = True,
    progress: Progress = None,
) -> AnalysisOutcome:
    """Run the whole evaluation and write the report folder."""
    from rce.report.chart_helper import charts_on_two_cores, start_helper_soon

    plan = resolve_plan(
        study_dir=study_dir,
        config=config,
        scores=scores,
        usage=usage,
        roster=roster,
        outcome_window=outcome_window,
        min_match_rate=min_match_rate,
    )
    lock = plan_lock_status(plan.source)
    if out is None:
        base = study_dir if study_dir is not None else Path.cwd()
        out = base / DEFAULT_REPORT_DIRNAME
    # A helper process (at low priority) computes the gap tables and draws part of the
    # report's charts on the second core. Started first, its imports (about a core-second) run
    # while this process imports its own libraries on one core.
    with charts_on_two_cores():
        start_helper_soon()
        from rce import pipeline

        run = pipeline.run_analysis(plan, lock=lock, progress=progress)
        _stage(progress, "Writing the report")
        files = pipeline.write_outputs(
            run,
            out,
            per_student=per_student,
            generated_at=datetime.now(UTC).replace(microsecond=0).isoformat()
            if timestamp
            else None,
        )
    exit_code = ExitCode.FINDINGS if run.gate_failed else ExitCode.OK
    return AnalysisOutcome(
        out_dir=out,
        title=run.title,
        summary_sentences=tuple(run.summary_sentences),
        warnings=tuple(w["message"] for w in run.results.get("warnings", [])),
        results=run.results,
        results_json=run.results_json,
        files=tuple(files),
        exit_code=exit_code,
    )


def validate(*, files: Sequence[Path], config: Path | None = None, strict: bool = False) -> Any:
    """Check export files for CI (``rce validate``)."""
    from rce.validate import validate_files

    plan = load_plan(config) if config is not None else None
    if plan is not None:
        check_plan(plan)
    return validate_files(list(files), plan=plan, strict=strict)


def power(**kwargs: Any) -> Any:
    """Minimum detectable effect or required sample (``rce power``)."""
    from rce.stats.power import power_analysis

    return power_analysis(**kwargs)


def randomize(
    *,
    roster: Path,
    out: Path,
    unit: str,
    block: tuple[str, ...],
    treated_share: float,
    seed: int,
    config: Path | None,
) -> Any:
    """Blocked random assignment of a roster (``rce randomize``)."""
    from rce.randomize import randomize_roster

    plan = load_plan(config) if config is not None else Plan()
    return randomize_roster(
        roster,
        out=out,
        unit=unit,
        block=block,
        treated_share=treated_share,
        seed=seed,
        plan=plan,
    )


@dataclass(frozen=True)
class SustainOutcome:
    """What ``rce sustain-report`` produced."""

    out_dir: Path
    summary: str
    json_text: str
    files: tuple[Path, ...]


def sustain_report(
    *,
    products: Path | None,
    config: Path | None,
    out: Path | None,
    as_of: str | None,
    evidence: Sequence[Path] = (),
) -> SustainOutcome:
    """Per-product keep / scale / right-size / sunset recommendations (``rce sustain-report``)."""
    from rce.sustain import run_sustain_report

    plan = load_plan(config) if config is not None else Plan()
    check_plan(plan)
    when = _parse_as_of(as_of)
    out_dir = out if out is not None else Path.cwd() / "sustain-report"
    result, files, json_text = run_sustain_report(
        products, plan=plan, out_dir=out_dir, as_of=when, evidence_paths=tuple(evidence)
    )
    return SustainOutcome(
        out_dir=out_dir, summary=result.summary(), json_text=json_text, files=tuple(files)
    )


def _parse_as_of(as_of: str | None) -> date:
    if as_of is None:
        return date.today()
    try:
        return date.fromisoformat(as_of)
    except ValueError:
        raise RceError(
            f"--as-of {as_of!r} is not a date", hint="Write it as YYYY-MM-DD, e.g. 2026-03-01."
        ) from None


def trend(*, results: Sequence[Path], out: Path, labels: Sequence[str] = ()) -> Any:
    """Successive runs side by side (``rce trend``); writes trend.html, trend.md, trend.json."""
    from rce.report.trend import write_trend_report
    from rce.trend import compare_runs

    result = compare_runs(list(results), labels=list(labels) or None)
    write_trend_report(result.to_dict(), out)
    return result
