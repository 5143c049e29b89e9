"""The ``rce analyze`` pipeline: load -> prepare -> dosage -> analyses -> evidence -> results.

Each stage is a library call; this module only sequences them, passes each stage's output to the
next, and assembles the results document that the report renders. Nothing here re-reads a file
that an earlier stage has read, and nothing here knows how a report looks.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import platform
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from rce.config import LockStatus, Plan, file_sha256
from rce.errors import DataError, RceError

#: Told the name of each stage as it starts (``progress(stage)``) and, during a long stage, the
#: share of it done (``progress(stage, fraction)``, fraction in 0..1, possibly from another
#: thread).
Progress = Callable[..., None] | None

#: Outcome measures the analyses understand, with their analysis-frame columns.
MEASURE_COLUMNS = {
    "percentile": ("baseline_percentile", "outcome_percentile"),
    "scale_score": ("baseline_scale_score", "outcome_scale_score"),
    "pct_typical_growth": (None, "pct_typical_growth"),
}


@dataclass(frozen=True)
class AnalysisRun:
    """Everything one run of the pipeline produced, before anything is written."""

    plan: Plan
    results: dict[str, Any]
    results_json: str
    tables: dict[str, pd.DataFrame]
    title: str
    summary_sentences: list[str]
    gate_failed: bool
    inputs: list[dict[str, Any]]
    per_student: pd.DataFrame | None = None
    notes: tuple[str, ...] = field(default=())


def _stage(progress: Progress, text: str) -> None:
    if progress is not None:
        progress(text)


def _display_path(path: Path | str, plan: Plan) -> str:
    """An input path as the user would recognise it: relative to the study folder if inside it."""
    p = Path(path)
    try:
        return p.resolve().relative_to(Path(plan.base_dir).resolve()).as_posix()
    except ValueError:
        return str(path)


def _yield_the_cpu() -> None:
    """Lower CPU priority for the calling thread (Linux): the hashes are not needed before the
    usage summaries, so they take the cycles the stages leave idle instead of competing with
    the roster and score parsing (about 0.3 s of that stage on two busy cores)."""
    import sys

    if not sys.platform.startswith("linux"):
        return  # elsewhere setpriority's "process" would not mean this thread
    # 10, not 19: on a machine saturated by other programs the hashes must still be done by
    # the time the usage summaries need them (about a tenth of a core at nice 10). Where it is
    # not permitted, hashing runs at normal priority.
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)


class _InputHashes:
    """sha256 of the input files, computed on a background thread while the analysis runs.

    Hashing a district's usage logs (about 1 GB) takes a second or two; started first, it
    overlaps with loading the roster and scores (one core) instead of adding to the run.
    """

    def __init__(self, plan: Plan) -> None:
        import glob
        from concurrent.futures import ThreadPoolExecutor

        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rce-sha256",
                                        initializer=_yield_the_cpu)
        self._jobs: dict[str, Any] = {}
        paths = [*plan.inputs.roster, *plan.inputs.scores, *(u.path for u in plan.inputs.usage)]
        for p in paths:
            resolved = str(plan.resolve(p))
            found = sorted(glob.glob(resolved)) if glob.has_magic(resolved) else [resolved]
            for f in found:
                if os.path.isfile(f):
                    self._jobs[os.path.realpath(f)] = self._pool.submit(file_sha256, Path(f))

    def sha256(self, path: str | Path) -> str:
        job = self._jobs.get(os.path.realpath(path))
        # a file changed or unreadable since the start is hashed again, as it is now
        if job is None or job.exception() is not None:
            return file_sha256(Path(path))
        return job.result()

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def _input_records(
    plan: Plan, roster: Any, scores: Any, sources: Sequence[Any], hashes: _InputHashes
) -> list[dict]:
    from rce.dosage import expand_usage_paths

    records: list[dict[str, Any]] = []
    for kind, loaded in (("roster", roster), ("scores", scores)):
        for rep in loaded.files:
            records.append(
                {
                    "path": _display_path(rep.path, plan),
                    "sha256": hashes.sha256(rep.path),
                    "rows": int(rep.rows),
                    "preset": rep.layout,
                    "kind": kind,
                }
            )
    for src in sources:
        for p in expand_usage_paths(src, plan):
            records.append(
                {
                    "path": _display_path(p, plan),
                    "sha256": hashes.sha256(p),
                    "rows": None,
                    "preset": src.layout or src.granularity,
                    "kind": "usage",
                }
            )
    return records




def _treatment_product(plan: Plan, dosage: Any) -> str:
    products = sorted(dosage.per_student["product"].astype(str).unique().tolist())
    if plan.study.product:
        if plan.study.product not in products and products:
            raise RceError(
                f"study.product {plan.study.product!r} is not among the usage products",
                where=str(plan.source) if plan.source else "plan",
                hint="Use one of: " + ", ".join(products) + ".",
            )
        return plan.study.product
    if plan.inputs.usage and plan.inputs.usage[0].product:
        return plan.inputs.usage[0].product
    if not products:
        raise DataError(
            "the usage files hold no usage of any product",
            where="[inputs] usage",
            hint="Check that the usage exports cover the study period.",
        )
    return products[0]


def _primary_measures(plan: Plan, frame: pd.DataFrame) -> list[str]:
    measures = []
    for m in (*plan.outcomes.measures, "pct_typical_growth"):
        if m not in MEASURE_COLUMNS or m in measures:
            continue
        _, out_col = MEASURE_COLUMNS[m]
        if out_col in frame.columns and frame[out_col].notna().sum() > 0:
            measures.append(m)
    if not measures:
        raise DataError(
            "no outcome measure has any values",
            where="[outcomes] measures",
            hint='Use "percentile", "scale_score" or "pct_typical_growth".',
        )
    return measures


def run_analysis(plan: Plan, *, lock: LockStatus, progress: Progress = None) -> AnalysisRun:
    """Run every stage of the evaluation in memory and assemble the results document.

    The models run on one BLAS thread (:mod:`rce._blas`): faster for these sizes, and the same
    digits on every machine.
    """
    from rce._blas import single_thread_blas

    hashes = _InputHashes(plan)
    try:
        with single_thread_blas():
            return _run_stages(plan, lock, progress, hashes)
    finally:
        hashes.close()


#: What the stages after dosage and the report import: statistics (scipy.special), the chart
#: stack (matplotlib), templates and the results schema -- about 1 s of imports.
LATER_MODULES = (
    "rce.stats.gaps",
    "rce.stats.dose_response",
    "rce.stats.impact",
    "rce.evidence",
    "rce.rollout",
    "rce.report.results",
    "jsonschema",
    "rce.report.charts",
    "rce.report.narrative",
    "rce.report.html",
    "rce.report.markdown",
    "rce.report.tables",
    "rce.report.manifest",
)


def _import_in_background(names: Sequence[str]) -> threading.Thread:
    """Import modules on a thread while the dosage step runs; returns the started thread.

    DuckDB releases the GIL while it reads the usage logs and leaves part of the second core
    idle, so the imports cost the run little there instead of about a second after it. Any
    failure is left to the import in the stage that needs the module, which reports it as usual.
    """
    import importlib

    def load() -> None:
        for name in names:
            try:
                importlib.import_module(name)
            except Exception:  # raised again by the stage's own import
                return

    # Not a daemon: an interpreter that exits while a module is half-imported on a daemon
    # thread can crash; the thread ends by itself within about a second.
    thread = threading.Thread(target=load, name="rce-imports")
    thread.start()
    return thread


def _run_stages(
    plan: Plan, lock: LockStatus, progress: Progress, hashes: _InputHashes
) -> AnalysisRun:
    from rce import dosage as dosage_mod
    from rce import io as rio
    from rce.prepare import build_analysis_frame
    from rce.report import chart_helper

    _stage(progress, "Reading the roster and the score files")
    # DuckDB reads the usage logs on a worker thread meanwhile; it waits for the roster (to
    # match IDs) and the test dates (the windows) only after the reading.
    worker = _DosageWorker(plan, progress)
    try:
        roster = rio.load_roster(plan.inputs.roster, plan)
        worker.roster.set_result(roster)
        scores = rio.load_assessments(plan.inputs.scores, plan)
        analysis = build_analysis_frame(roster, scores, plan)
        worker.windows.set_result(analysis.frame[["student_id", "baseline_date", "outcome_date"]])
    except BaseException:
        worker.stop()
        raise

    _stage(progress, DOSAGE_STAGE)
    _import_in_background(LATER_MODULES)
    # Started as analyze began, unless other programs then held the cores; now the machine's
    # use since then decides again (a no-op when the helper runs).
    chart_helper.start_helper()
    sources, dose = worker.result()

    # Imported here, not at the top: the thread above has loaded them while DuckDB read the
    # usage files (an import still under way there is waited for, not run twice).
    from rce.evidence import EvidenceContext, assess_evidence, suspect_warnings
    from rce.report.narrative import executive_summary
    from rce.report.results import assemble_results, results_to_json
    from rce.stats.dose_response import fit_dose_response, sensitivity
    from rce.stats.gaps import compute_gaps
    from rce.stats.impact import estimate_impact

    product = _treatment_product(plan, dose)
    frame = dosage_mod.attach_dosage(analysis.frame, dose, product)

    minimum = 2 * plan.privacy.min_cell_size
    if len(frame) < minimum:
        # Below this every subgroup cell and most comparisons would be suppressed anyway.
        raise DataError(
            f"only {len(frame)} students have both a baseline and an outcome test; at least "
            f"{minimum} are needed for any result that can be published",
            where="score files",
            hint="Check the outcome window and that score IDs match the roster.",
        )
    measures = _primary_measures(plan, frame)
    primary = measures[0]
    warnings: list[dict[str, str]] = [
        {"code": code, "message": message} for code, message in analysis.warnings
    ]
    notes: list[str] = [*analysis.notes, *dose.notes]

    _stage(progress, "Subgroup gaps")
    # The gap tables (about a second) are computed in the chart helper process, when one runs,
    # while this process fits the dose-response and impact models on the other core. They
    # need no student ID, so none is sent.
    gap_frame = frame.drop(columns=["student_id"], errors="ignore")
    pending_gaps = {
        m: chart_helper.call_in_helper(compute_gaps, gap_frame, plan=plan, outcome=m)
        for m in measures
        if MEASURE_COLUMNS[m][0] is not None
    }

    _stage(progress, "Dose-response")
    covariates = _dose_covariates(frame, plan, notes)
    dose_results = []
    for m in measures:
        try:
            dr = fit_dose_response(
                frame, plan=plan, outcome=MEASURE_COLUMNS[m][1], covariates=covariates
            )
        except DataError as exc:
            if frame["habitual_months"].nunique() > 1:
                raise  # too few students, missing columns: the run cannot say anything
            # Everyone has the same dose: no slope, but usage, gaps and impact still stand.
            warnings.append(
                {"code": "DOSE_RESPONSE_NOT_ESTIMABLE", "message": f"{m}: {exc.message}."}
            )
            continue
        dose_results.append(dr)
    sens_frames = {
        f"{t} sessions/month": dosage_mod.attach_dosage(
            analysis.frame, dose, product, min_sessions_per_month=t
        )
        for t in plan.dosage.sensitivity_thresholds
    }
    if frame["met_fidelity"].notna().any():
        fid = frame.assign(
            habitual_months=frame["habitual_months"].where(
                frame["met_fidelity"].fillna(False).astype(bool), 0
            )
        )
        sens_frames["vendor fidelity rule"] = fid
    varied = {k: f for k, f in sens_frames.items() if f["habitual_months"].nunique() > 1}
    for label in sorted(set(sens_frames) - set(varied)):
        notes.append(f"Sensitivity ({label}): every student has the same number of habitual "
                     "months, so no slope can be estimated.")
    sens = (
        sensitivity(varied, plan=plan, outcome=MEASURE_COLUMNS[primary][1], covariates=covariates)
        if varied
        else None
    )

    _stage(progress, "Impact of product use")
    impact_measure = "scale_score" if "scale_score" in measures else primary
    base_col, out_col = MEASURE_COLUMNS[impact_measure]
    rd = None
    if plan.analysis.rd_running_variable:
        from rce.stats.impact import RdSpec

        rd = RdSpec(
            running=plan.analysis.rd_running_variable,
            cutoff=float(plan.analysis.rd_cutoff or 0.0),
            treated_side=plan.analysis.rd_treated_side,
        )
    impact = estimate_impact(
        frame, plan=plan, outcome=out_col, baseline=base_col or out_col, rd=rd
    )
    score_layouts = {rep.layout for rep in scores.files}
    context = EvidenceContext(
        n_districts=1,
        match_rate=_overall_match_rate(analysis.join),
        n_tests=sum(int(rep.rows) for rep in scores.files) or None,
        n_rush_flagged=int(scores_rush(scores)),
        norm_change=any(w["code"] == "NORM_CHANGE" for w in warnings),
        vendor_measure=_vendor_measure(product, score_layouts),
    )
    evidence = assess_evidence(impact, plan=plan, context=context)
    warnings.extend(suspect_warnings(impact, plan=plan, context=context))
    warnings.extend(_plan_warnings(lock))

    from rce.rollout import compare_stages

    rollout = compare_stages(frame, plan=plan, outcome=out_col, baseline=base_col or out_col)
    if rollout is not None:
        warnings.extend(rollout.warnings)

    _stage(progress, "Usage summaries")
    usage_section, usage_tables = _usage_section(frame, dose, product, roster, plan)
    gap_rows: list[dict[str, Any]] = []
    gap_interactions: dict[str, Any] = {}
    for m, pending in pending_gaps.items():
        gap_dict = pending.result().to_dict()
        gap_rows.extend(gap_dict["rows"])
        gap_interactions[m] = gap_dict.get("interactions", [])

    inputs = _input_records(plan, roster, scores, sources, hashes)
    gate_failed = analysis.gate_failed
    dosage_section = _dosage_section(dose, product, frame, plan)
    join_section = _join_section(analysis.join, dose, frame, product)
    usage_rate = join_section["usage_match_rate"]
    if usage_rate is not None and usage_rate < plan.join.min_match_rate:
        warnings.append(
            {
                "code": "LOW_USAGE_MATCH_RATE",
                "message": f"Only {usage_rate:.1%} of usage rows match a student in the roster "
                f"(minimum {plan.join.min_match_rate:.0%}); unmatched rows by reason: "
                + ", ".join(f"{k} {v}" for k, v in dose.rows_unmatched.items() if v)
                + ".",
            }
        )
        gate_failed = gate_failed or plan.join.enforce_min_match_rate
    study = {
        "name": plan.study.name,
        "subject": plan.study.subject,
        "academic_year": analysis.join.get("academic_year") or plan.study.academic_year,
        "product": product,
        "outcome_window": plan.outcomes.outcome_window,
        "interim": plan.outcomes.outcome_window != "spring",
        "primary_outcome": primary,
    }
    plan_section = {
        "sha256": lock.current_sha256 or plan.sha256(),
        "effective_sha256": plan.sha256(),
        "locked": lock.locked,
        "locked_at": lock.locked_at,
        "changed": lock.changed if lock.locked else None,
        "statement": lock.summary(),
        "min_cell_size": plan.privacy.min_cell_size,
        "meaningful_effect": plan.decision.meaningful_effect,
        "pass_probability": plan.decision.pass_probability,
        "fail_probability": plan.decision.fail_probability,
        "confidence_level": plan.analysis.confidence_level,
        "seed": plan.analysis.seed,
    }
    impact_dict = impact.to_dict() if impact.design != "none" else None
    results = assemble_results(
        study=study,
        plan=plan_section,
        inputs=inputs,
        join=join_section,
        dosage=dosage_section,
        usage=usage_section,
        dose_response=[d.to_dict() for d in dose_results],
        gaps=gap_rows,
        impact=impact_dict,
        impact_reason=None if impact_dict else impact.design_choice.reason,
        evidence=evidence,
        warnings=warnings,
        definitions=_definitions(plan, dose, product),
        extra={
            "sensitivity": sens.to_dict() if sens is not None else None,
            "interactions": gap_interactions,
            "notes": notes,
            "rollout": rollout.to_dict() if rollout is not None else None,
        },
    )
    # The helper process starts on the report's charts while this one serialises, tabulates
    # and validates (rce.report.chart_helper).
    from rce.report.narrative import prefetch_charts

    prefetch_charts(results)
    results_json = results_to_json(results)
    tables = {
        "dose_response_bins": _bins_table(dose_results),
        "dose_response_models": pd.concat([d.to_frame() for d in dose_results], ignore_index=True)
        if dose_results
        else pd.DataFrame(),
        "gaps": pd.DataFrame(gap_rows),
        **usage_tables,
    }
    if sens is not None:
        tables["sensitivity"] = sens.to_frame()
    if impact.design != "none":
        tables["impact"] = impact.to_frame()
    if rollout is not None:
        tables["rollout_stages"] = rollout.to_frame()
    tables["evidence_criteria"] = pd.DataFrame(evidence.to_dict().get("criteria", []))
    title = f"{plan.study.name}"
    sentences = executive_summary(results)
    return AnalysisRun(
        plan=plan,
        results=results,
        results_json=results_json,
        tables=tables,
        title=title,
        summary_sentences=list(sentences),
        gate_failed=gate_failed,
        inputs=inputs,
        per_student=frame,
        notes=tuple(notes),
    )


DOSAGE_STAGE = "Computing dosage from the usage files"


class _DosageWorker:
    """The dosage step on a thread, started before the roster and scores are loaded.

    DuckDB releases the GIL while it parses the usage logs, so the roster and score files load
    in this thread at the same time. The step receives the roster and the test-date windows
    through :attr:`roster` and :attr:`windows` (futures the caller fills) and asks for them
    only after the reading. :meth:`stop` interrupts it (the caller failed or was interrupted);
    progress is passed on only once :meth:`result` is called, i.e. once the dosage stage is
    the one shown.
    """

    def __init__(self, plan: Plan, progress: Progress) -> None:
        from concurrent.futures import Future

        self.roster: Future[Any] = Future()
        self.windows: Future[pd.DataFrame] = Future()
        self._cancel = threading.Event()
        self._shown = threading.Event()
        self._outcome: tuple[list[Any], Any] | None = None
        self._error: BaseException | None = None

        def report(done: float) -> None:
            if progress is not None and self._shown.is_set():
                progress(DOSAGE_STAGE, done)

        def run() -> None:
            try:
                self._outcome = _compute_dosage(
                    plan,
                    lambda: self.roster.result(),
                    lambda: self.windows.result(),
                    report if progress is not None else None,
                    self._cancel,
                )
            except BaseException as exc:  # handed to the caller by result()
                self._error = exc

        # Not a daemon: DuckDB must not be torn down mid-statement by the interpreter's exit;
        # stop() ends the statement within a fraction of a second.
        self._thread = threading.Thread(target=run, name="rce-dosage")
        self._thread.start()

    def result(self) -> tuple[list[Any], Any]:
        self._shown.set()
        try:
            self._thread.join()
        except BaseException:  # Ctrl-C reaches this thread, not the worker
            self.stop()
            raise
        if self._error is not None:
            raise self._error
        assert self._outcome is not None
        return self._outcome

    def stop(self) -> None:
        self._cancel.set()
        for future in (self.roster, self.windows):
            if not future.done():
                future.set_exception(RuntimeError("the run stopped before the dosage step"))
        self._thread.join()


def _compute_dosage(
    plan: Plan,
    roster_of: Callable[[], Any],
    windows_of: Callable[[], pd.DataFrame],
    progress: Callable[[float], None] | None = None,
    cancel: Any = None,
) -> tuple[list[Any], Any]:
    """Usage -> dosage on the plan's engine (one definition: rce.dosage.aggregation_sql)."""
    from rce import dosage as dosage_mod
    from rce import io as rio
    from rce.io.normalize import resolve_ids

    if plan.engine.name == "spark" and plan.engine.usage_table:
        # The rows already live in the warehouse as canonical student-day rows.
        from rce.dosage_spark import dosage_from_rows

        return [], dosage_from_rows(None, plan=plan, windows=windows_of())
    if not plan.inputs.usage:
        raise RceError(
            "no usage files given",
            where=str(plan.source) if plan.source else "command line",
            hint="List them under [inputs] usage in rce.toml, or pass --usage FILE.",
        )
    sources = rio.usage_sources(plan)
    if plan.engine.name == "spark":
        id_map = resolve_ids(dosage_mod.distinct_usage_ids(sources, plan), roster_of().frame)
        import tempfile

        from rce.dosage_spark import dosage_from_rows, export_rows

        # Files are parsed by rce's reader; the aggregation (the dosage definition) runs on Spark.
        with tempfile.TemporaryDirectory(prefix="rce-rows-") as tmp:
            rows = Path(tmp) / "rows.parquet"
            facts = export_rows(sources, rows, plan=plan, id_map=id_map)
            return sources, dosage_from_rows(str(rows), plan=plan, windows=windows_of(),
                                             products=facts)
    # The exports' distinct IDs are matched to the roster while DuckDB reads them (one scan).
    return sources, dosage_mod.compute_dosage(
        sources,
        plan=plan,
        windows=windows_of,
        id_map=lambda usage_ids: resolve_ids(usage_ids, roster_of().frame),
        progress=progress,
        cancel=cancel,
    )


def _dose_covariates(frame: pd.DataFrame, plan: Plan, notes: list[str]) -> list[str]:
    """Demographic controls of the dose-response model, plus the baseline window when mixed.

    Students whose fall test is missing or rush-flagged take a later baseline; their gain covers
    a shorter span and their dose is counted from that later test, so without an indicator the
    shorter span would pass for a dose effect.
    """
    covariates = [c for c in plan.subgroups.dimensions if c in frame.columns]
    windows = frame["baseline_window"].dropna().unique() if "baseline_window" in frame else []
    if len(windows) > 1:
        covariates.append("baseline_window")
        later = int((frame["baseline_window"] != plan.outcomes.baseline_window).sum())
        notes.append(
            f"{later} students have a baseline test from a later window than "
            f"{plan.outcomes.baseline_window}; the dose-response model controls for the "
            "baseline window."
        )
    return covariates


def scores_rush(scores: Any) -> int:
    """Rush-flagged tests counted by the loader across score files."""
    return sum(int(rep.rush_flagged) for rep in scores.files)


def _overall_match_rate(join: dict[str, Any]) -> float | None:
    rows = sum(int(f.get("rows") or 0) for f in join.get("files", []))
    matched = sum(int(f.get("matched") or 0) for f in join.get("files", []))
    return matched / rows if rows else None


def _vendor_measure(product: str, score_layouts: set[str]) -> bool:
    """True when the outcome test is made by the product's vendor (e.g. i-Ready on i-Ready)."""
    name = product.lower().replace("-", "").replace(" ", "")
    return "iready" in name and any("iready" in (lay or "").replace("-", "") for lay in score_layouts)


def _plan_warnings(lock: LockStatus) -> list[dict[str, str]]:
    if not lock.locked:
        return [{"code": "PLAN_NOT_LOCKED", "message": lock.summary()}]
    if lock.changed:
        return [{"code": "PLAN_CHANGED", "message": lock.summary()}]
    return []


def _dosage_section(dose: Any, product: str, frame: pd.DataFrame, plan: Plan) -> dict[str, Any]:
    d = dose.definition
    level = frame["usage_level"]
    return {
        "definition": {
            "unit": d["unit"].get(product),
            "min_sessions_per_month": d["min_sessions_per_month"],
            "min_habitual_months": d["min_habitual_months"],
            "window": d["window"].get("rule") if isinstance(d["window"], dict) else d["window"],
            "partial_months": d.get("partial_months"),
            "timezone": d.get("timezone"),
            "fidelity": d.get("fidelity", {}).get("rule"),
            "cluster_method": d.get("cluster_method"),
            "duplicates": d.get("duplicates"),
        },
        "product": product,
        "students": len(frame),
        "users": int((level != "none").sum()),
        "habitual_users": int((level == "habitual").sum()),
        "light_users": int((level == "light").sum()),
        "non_users": int((level == "none").sum()),
        "met_fidelity": int(frame["met_fidelity"].fillna(False).astype(bool).sum()),
        "products": dose.counts(),
        "rows_read": dose.rows_read,
        "rows_deduplicated": dose.rows_deduplicated,
        "rows_outside_window": dose.rows_outside_window,
        "rows_unmatched": dict(dose.rows_unmatched),
        "rows_bad_date": dose.rows_bad_date,
    }


def _join_section(join: dict[str, Any], dose: Any, frame: pd.DataFrame, product: str) -> dict:
    usage_rows = int(dose.rows_read) - int(dose.rows_deduplicated)
    unmatched = int(sum(dose.rows_unmatched.values()))
    matched = max(usage_rows - unmatched, 0)
    with_usage = int((frame["usage_level"] != "none").sum())
    files = [
        {k: v for k, v in f.items() if k != "path"} | {"path": Path(f["path"]).name}
        for f in join.get("files", [])
    ]
    return {
        "students_scored": int(join.get("students_scored", len(frame))),
        "students_with_usage": with_usage,
        "usage_rows": usage_rows,
        "usage_rows_matched": matched,
        "usage_match_rate": matched / usage_rows if usage_rows else None,
        "usage_rows_unmatched_by_reason": dict(dose.rows_unmatched),
        "score_match_rate": _overall_match_rate(join),
        "score_files": files,
        "students_one_test": join.get("students_one_test"),
        "students_no_outcome_in_window": join.get("students_no_outcome_in_window"),
        "academic_year": join.get("academic_year"),
    }


def _usage_section(
    frame: pd.DataFrame, dose: Any, product: str, roster: Any, plan: Plan
) -> tuple[dict[str, Any], dict[str, pd.DataFrame]]:
    from rce.dosage import usage_by_group

    min_n = plan.privacy.min_cell_size
    trend = dose.trend.loc[dose.trend["product"].astype(str) == product]
    monthly = []
    for r in trend.sort_values("month").itertuples(index=False):
        small = int(r.students_active) < min_n
        monthly.append(
            {
                "month": pd.Timestamp(r.month).strftime("%Y-%m"),
                "students_active": None if small else int(r.students_active),
                "students_habitual": None if small else int(r.students_habitual),
                "minutes": None if small else float(r.minutes),
                "suppressed": small,
            }
        )
    counts = frame["habitual_months"].astype(int).value_counts().sort_index()
    distribution = _suppress_distribution(counts, min_n)
    by_group_rows = []
    tables: dict[str, pd.DataFrame] = {}
    students = frame[["student_id", *[c for c in _group_columns(plan) if c in frame.columns]]]
    per_student = dose.per_student.loc[dose.per_student["product"].astype(str) == product]
    group_tables = []
    for dim in _group_columns(plan):
        if dim not in students.columns:
            continue
        t = usage_by_group(per_student, students.assign(**{dim: students[dim].astype("str")}),
                           dim, min_n)
        t = t.rename(columns={dim: "group"}).assign(dimension=dim)
        group_tables.append(t)
        for r in t.to_dict(orient="records"):
            r = _hide_small_counts(r, min_n)
            by_group_rows.append(
                {
                    "dimension": dim,
                    "group": str(r["group"]),
                    "n": None if r["suppressed"] else _int_or_none(r["n"]),
                    "users": None if r["suppressed"] else _int_or_none(r["active"]),
                    "habitual_users": None if r["suppressed"] else _int_or_none(r["habitual"]),
                    "share_users": None if r["suppressed"] else _float_or_none(r["share_active"]),
                    "share_habitual": None
                    if r["suppressed"]
                    else _float_or_none(r["share_habitual"]),
                    "mean_minutes_active": None
                    if r["suppressed"]
                    else _float_or_none(r.get("mean_minutes_active")),
                    "suppressed": bool(r["suppressed"]),
                }
            )
    if group_tables:
        tables["usage_by_group"] = pd.DataFrame(by_group_rows)
    products = pd.DataFrame([{"product": p, **c} for p, c in dose.counts().items()])
    count_cols = [c for c in products.columns if c != "product"]
    for col in count_cols:
        # Each count is its own cell: a licence count under the minimum is hidden like any other.
        products[col] = products[col].astype("Float64").where(
            ~products[col].between(1, plan.privacy.min_cell_size - 1)
        )
    tables["usage_products"] = products
    section = {
        "product": product,
        "monthly_trend": monthly,
        "habitual_months_distribution": distribution,
        "by_group": by_group_rows,
    }
    return section, tables


def _hide_small_counts(row: dict[str, Any], min_n: int) -> dict[str, Any]:
    """Hide a count of users (and its share) below the minimum inside a published group."""
    row = dict(row)
    for count, share in (("active", "share_active"), ("habitual", "share_habitual")):
        value = row.get(count)
        if value is not None and not pd.isna(value) and 0 < int(value) < min_n:
            row[count] = None
            row[share] = None
    return row


def _group_columns(plan: Plan) -> list[str]:
    cols = list(plan.subgroups.dimensions)
    if plan.subgroups.include_grade_and_school:
        cols += ["grade", "school"]
    return cols


def _suppress_distribution(counts: pd.Series, min_n: int) -> list[dict[str, Any]]:
    """Students by months of habitual use, small cells hidden with complementary suppression."""
    rows = [{"months": int(k), "n": int(v), "suppressed": int(v) < min_n} for k, v in counts.items()]
    hidden = [r for r in rows if r["suppressed"]]
    if len(hidden) == 1 and len(rows) > 1:
        # One hidden cell could be recovered from the published total: hide the next smallest.
        shown = sorted((r for r in rows if not r["suppressed"]), key=lambda r: r["n"])
        shown[0]["suppressed"] = True
    for r in rows:
        if r["suppressed"]:
            r["n"] = None
    return rows


def _int_or_none(v: Any) -> int | None:
    return None if v is None or pd.isna(v) else int(v)


def _float_or_none(v: Any) -> float | None:
    return None if v is None or pd.isna(v) else float(v)


def _bins_table(dose_results: Sequence[Any]) -> pd.DataFrame:
    frames = []
    for d in dose_results:
        bins = d.to_dict().get("bins") or []
        frames.append(pd.DataFrame(bins).assign(outcome=d.to_dict().get("outcome")))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _definitions(plan: Plan, dose: Any, product: str) -> list[dict[str, str]]:
    d = dose.definition
    window = d["window"].get("rule") if isinstance(d["window"], dict) else str(d["window"])
    return [
        {
            "term": "Session",
            "definition": f"For {product}: {d['unit'].get(product, 'see the dosage definition')}.",
        },
        {
            "term": "Habitual month",
            "definition": f"A calendar month with at least {d['min_sessions_per_month']} "
            "sessions inside the student's evaluation window. "
            + str(d.get("partial_months", "")).capitalize()
            + ".",
        },
        {
            "term": "Habitual user",
            "definition": f"A student with at least {d['min_habitual_months']} habitual "
            "month(s); a light user used the product but had fewer.",
        },
        {"term": "Evaluation window", "definition": window},
        {"term": "Vendor fidelity rule", "definition": str(d.get("fidelity", {}).get("rule"))},
        {"term": "Usage cluster", "definition": str(d.get("cluster_method"))},
        {
            "term": "Duplicate usage rows",
            "definition": str(d.get("duplicates", ""))[:1].upper()
            + str(d.get("duplicates", ""))[1:]
            + ".",
        },
        {
            "term": "Suppressed cell",
            "definition": f"A figure for fewer than {plan.privacy.min_cell_size} students, hidden "
            "(with a second cell where needed so it cannot be recovered by subtraction).",
        },
    ]


def write_outputs(
    run: AnalysisRun,
    out_dir: Path,
    *,
    per_student: bool = False,
    generated_at: str | None = None,
) -> list[Path]:
    """Write the report folder atomically; the previous report stays until this one is complete."""
    from rce import __version__
    from rce.fileio import staged_directory
    from rce.report import write_report

    manifest = {
        "rce_version": __version__,
        "generated_at": generated_at,
        "python": platform.python_version(),
        "packages": _package_versions(),
        "inputs": run.inputs,
        "plan": run.plan.to_dict(),
        "plan_sha256": run.results.get("plan", {}).get("sha256"),
        "seed": run.plan.analysis.seed,
        "results_sha256": hashlib.sha256(run.results_json.encode()).hexdigest(),
    }
    with staged_directory(out_dir) as stage:
        files = write_report(run.results, stage, tables=run.tables, manifest=manifest,
                             results_json=run.results_json)
        if per_student and run.per_student is not None:
            from rce.fileio import atomic_write_text

            atomic_write_text(
                stage / "per_student" / "dosage.csv", run.per_student.to_csv(index=False)
            )
    return [out_dir / Path(f).relative_to(stage) for f in files]


def _package_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in (
        "pandas",
        "numpy",
        "pyarrow",
        "duckdb",
        "statsmodels",
        "scipy",
        "matplotlib",
        "jinja2",
        "typer",
        "rich",
    ):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            continue
    return out
