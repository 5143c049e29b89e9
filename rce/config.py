"""The study plan: ``rce.toml`` read into one frozen :class:`Plan`.

Every default of the project lives here, once. A plan file only needs the keys it changes; an
unknown key or a value of the wrong type is a :class:`~rce.errors.PlanError` naming the key.

``rce plan --lock`` pre-registers a plan: it records the sha256 of the file and the time in a lock
file beside it (``rce.toml.lock``). Later runs report whether the plan was locked, when, and
whether it changed since -- the dosage rule and the outcomes must be fixed before outcomes are
seen.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import tomllib
import types
import typing
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from rce.errors import PlanError

PLAN_FILENAME = "rce.toml"
LOCK_SUFFIX = ".lock"

#: Subgroup dimensions analysed by default (canonical roster columns).
DEFAULT_SUBGROUP_DIMENSIONS = ("race_ethnicity", "el_status", "gender", "swd", "econ_disadv")


@dataclass(frozen=True)
class UsageInput:
    """One usage export: a path (or glob) and the product it describes."""

    path: str
    product: str = ""
    #: Layout preset name, or "auto" to detect it from the header.
    layout: str = "auto"
    #: Subject the product serves ("ela", "math", ...), used for redundancy checks.
    subject: str = ""


@dataclass(frozen=True)
class StudyConfig:
    """What is being evaluated."""

    name: str = "Untitled study"
    #: Subject of the outcome measure: "ela" or "math" (i-Ready) or any label for other tests.
    subject: str = "ela"
    academic_year: str = ""
    #: District time zone: UTC timestamps in usage logs are converted to it before dates are taken.
    timezone: str = "America/Los_Angeles"
    #: Product whose use is the treatment; empty means the first usage input.
    product: str = ""


@dataclass(frozen=True)
class InputsConfig:
    """Input files, relative to the plan's folder."""

    roster: tuple[str, ...] = ()
    scores: tuple[str, ...] = ()
    usage: tuple[UsageInput, ...] = ()
    #: Products / costs file for ``rce sustain-report``.
    products: str = ""
    #: Optional ID crosswalk (name + birth date / email) used when plain IDs do not match.
    crosswalk: bool = False


@dataclass(frozen=True)
class OutcomesConfig:
    """Which tests are the baseline and the outcome, and which scores are analysed."""

    #: Outcome measures in order of priority: "percentile", "scale_score", "pct_typical_growth".
    measures: tuple[str, ...] = ("percentile", "scale_score")
    baseline_window: str = "fall"
    #: "spring" for final results; "winter" for interim evidence.
    outcome_window: str = "spring"
    #: Rush-flagged diagnostics are excluded (and counted) by default.
    exclude_rush_flagged: bool = True


@dataclass(frozen=True)
class DosageConfig:
    """The treatment definition. Fix it (``rce plan --lock``) before looking at outcomes."""

    #: "auto" (from the layout), "row" (a row of a session log), "student-day" (distinct
    #: student-days of a lesson or event log) or "provided" (counts in a summary export).
    unit: str = "auto"
    #: A calendar month with at least this many sessions is a habitual month (project default 3).
    min_sessions_per_month: int = 3
    #: A student with at least this many habitual months is a habitual user; fewer, but some use,
    #: is a light user.
    min_habitual_months: int = 1
    #: "baseline-to-outcome": usage between each student's baseline and outcome test counts;
    #: "dates": only usage between window_start and window_end; "all": every row.
    window: str = "baseline-to-outcome"
    window_start: date | None = None
    window_end: date | None = None
    #: Vendor fidelity rule (i-Ready: 30-49 minutes per subject per week, 70% lesson pass rate).
    fidelity_minutes_per_week: float = 30.0
    fidelity_pass_rate: float = 0.70
    #: Sessions per month at which the sensitivity analysis re-runs dose-response.
    sensitivity_thresholds: tuple[int, ...] = (2, 3, 4)


@dataclass(frozen=True)
class SubgroupsConfig:
    """Subgroup dimensions for gap analyses and their reference groups."""

    dimensions: tuple[str, ...] = DEFAULT_SUBGROUP_DIMENSIONS
    #: Reference group per dimension; dimensions not listed use their largest group.
    reference: dict[str, str] = field(default_factory=dict)
    #: Also analyse grade and school as dimensions.
    include_grade_and_school: bool = True


@dataclass(frozen=True)
class PrivacyConfig:
    """Small-cell suppression. States use 5 to 30; 10 is the modal rule (NCES 2011-603)."""

    min_cell_size: int = 10


@dataclass(frozen=True)
class AnalysisConfig:
    """Model choices shared by the analyses."""

    #: Cluster variable for robust standard errors: "school", "class" or "teacher".
    cluster: str = "school"
    #: Treatment group for the impact analysis: "habitual", "any-use" or "fidelity".
    treatment: str = "habitual"
    #: Exact-match on school as well as grade in the matched comparison.
    match_on_school: bool = False
    #: Caliper in standard deviations of the logit of the propensity score.
    caliper: float = 0.2
    #: Comparison students per treated student.
    match_ratio: int = 1
    match_with_replacement: bool = False
    #: Column holding a randomized assignment (0/1); its presence selects the randomized design.
    assignment_column: str = ""
    #: Regression discontinuity: the column of the running variable (e.g. baseline_scale_score)
    #: and the cutoff by which students were assigned; empty means no cutoff assignment.
    rd_running_variable: str = ""
    rd_cutoff: float | None = None
    #: "below": students under the cutoff got the product; "above": at or over it.
    rd_treated_side: str = "below"
    seed: int = 20250601
    confidence_level: float = 0.95


@dataclass(frozen=True)
class DecisionConfig:
    """The pre-registered decision rule (the RCE Coach's defaults)."""

    #: Smallest effect that matters, in standard deviations of the outcome (Hedges' g).
    meaningful_effect: float = 0.10
    #: Pass when P(effect > meaningful) is at least this.
    pass_probability: float = 0.75
    #: Fail when P(effect > meaningful) is at most this.
    fail_probability: float = 0.50


@dataclass(frozen=True)
class JoinConfig:
    """Joining exports per student."""

    #: Share of usage / score rows that must match the roster.
    min_match_rate: float = 0.90
    #: When True a match rate below the minimum fails the run (exit 1) instead of warning.
    enforce_min_match_rate: bool = False


@dataclass(frozen=True)
class EngineConfig:
    """Where the heavy dosage step runs."""

    name: str = "duckdb"
    #: DuckDB memory limit; spills to a private temporary directory beyond it.
    memory_limit: str = "1GB"
    threads: int = 0
    #: Spark master URL for ``name = "spark"`` ("" = the active session, else ``local[*]``).
    spark_master: str = ""
    #: Extra Spark settings (``spark.executor.memory`` = "8g", ...), applied to a new session.
    spark_conf: dict[str, str] = field(default_factory=dict)
    #: Spark table (or Parquet path) of canonical student-day rows to read instead of the files.
    usage_table: str = ""
    #: The student x month table (DosageResult.monthly) is returned when it has at most this
    #: many rows; above it (a state: 2M students x 11 months) only its per-student sums are kept,
    #: so memory stays bounded. No analysis needs it.
    max_monthly_rows: int = 5_000_000


@dataclass(frozen=True)
class RolloutConfig:
    """Rollout stages: which schools are the pilot, the expansion, the district-wide phase."""

    #: School name (as in the roster) -> stage ("pilot", "expansion", "district-wide", ...).
    stages: dict[str, str] = field(default_factory=dict)
    #: Stage -> date its schools started using the product (YYYY-MM-DD).
    start_dates: dict[str, str] = field(default_factory=dict)
    #: Warn when a later stage's habitual-user share, or its users' mean habitual months, is
    #: below this share of the pilot's.
    min_habitual_ratio: float = 0.5


@dataclass(frozen=True)
class Plan:
    """A study plan. Build with :func:`load_plan` or ``Plan()`` for all defaults."""

    study: StudyConfig = field(default_factory=StudyConfig)
    inputs: InputsConfig = field(default_factory=InputsConfig)
    #: Column mapping for layouts rce does not know: canonical name -> header in the file.
    columns: dict[str, str] = field(default_factory=dict)
    outcomes: OutcomesConfig = field(default_factory=OutcomesConfig)
    dosage: DosageConfig = field(default_factory=DosageConfig)
    subgroups: SubgroupsConfig = field(default_factory=SubgroupsConfig)
    privacy: PrivacyConfig = field(default_factory=PrivacyConfig)
    analysis: AnalysisConfig = field(default_factory=AnalysisConfig)
    decision: DecisionConfig = field(default_factory=DecisionConfig)
    join: JoinConfig = field(default_factory=JoinConfig)
    engine: EngineConfig = field(default_factory=EngineConfig)
    rollout: RolloutConfig = field(default_factory=RolloutConfig)
    #: Thresholds of the sustain-report decision rules (``rce.sustain.SustainRules`` field ->
    #: value); keys not given keep the defaults documented there.
    sustain: dict[str, Any] = field(default_factory=dict)
    #: Folder that relative input paths are resolved against (not a plan key).
    base_dir: Path = field(default=Path("."), compare=False)
    #: The plan file this came from, if any (not a plan key).
    source: Path | None = field(default=None, compare=False)

    def resolve(self, relative: str) -> Path:
        """Resolve an input path given in the plan against the plan's folder."""
        path = Path(relative).expanduser()
        return path if path.is_absolute() else self.base_dir / path

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict of every plan key (as recorded in manifests and results)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            if f.name in ("base_dir", "source"):
                continue
            out[f.name] = _jsonable(getattr(self, f.name))
        return out

    def sha256(self) -> str:
        """Hash of the effective plan (all keys with defaults filled in)."""
        body = json.dumps(self.to_dict(), sort_keys=True).encode()
        return hashlib.sha256(body).hexdigest()


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, date | Path):
        return str(value)
    return value


# --- reading ----------------------------------------------------------------------------------


def load_plan(path: Path | str | None = None, *, directory: Path | str | None = None) -> Plan:
    """Read a plan file, or return the defaults when none is given.

    Parameters
    ----------
    path
        A ``rce.toml`` file. When None, ``directory/rce.toml`` is read if it exists.
    directory
        Study folder; relative input paths resolve against the plan's own folder.

    Examples
    --------
    >>> load_plan().dosage.min_sessions_per_month
    3
    """
    if path is None and directory is not None:
        candidate = Path(directory) / PLAN_FILENAME
        if candidate.is_file():
            path = candidate
    if path is None:
        return Plan(base_dir=(Path(directory) if directory is not None else Path(".")).absolute())
    path = Path(path)
    if path.is_dir():
        raise PlanError(
            "the plan path is a folder, not a file",
            where=str(path),
            hint=f"Pass the plan file itself, e.g. {path / PLAN_FILENAME}.",
        )
    try:
        raw_bytes = path.read_bytes()
    except FileNotFoundError:
        raise PlanError(
            "plan file not found", where=str(path), hint="Create one with `rce plan --out rce.toml`."
        ) from None
    except OSError as exc:
        raise PlanError(
            f"plan file cannot be read ({exc.strerror})", where=str(path), hint=None
        ) from None
    try:
        text = raw_bytes.decode("utf-8-sig")
        raw = tomllib.loads(text)
    except UnicodeDecodeError:
        raise PlanError(
            "plan file is not UTF-8 text", where=str(path), hint="Save it as UTF-8."
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise PlanError(
            f"plan file is not valid TOML: {exc}",
            where=str(path),
            hint="Check quotes, brackets and '=' signs on the line named; `rce plan` writes a "
            "commented template.",
        ) from None
    return plan_from_dict(raw, base_dir=path.parent.absolute(), source=path)


def plan_from_dict(
    raw: dict[str, Any], *, base_dir: Path | str = ".", source: Path | None = None
) -> Plan:
    """Build a :class:`Plan` from a parsed TOML document, checking every key and type."""
    where = str(source) if source is not None else "plan"
    values: dict[str, Any] = {}
    sections = {f.name: f for f in dataclasses.fields(Plan) if f.name not in ("base_dir", "source")}
    for key, value in raw.items():
        if key not in sections:
            raise PlanError(
                f"unknown plan section [{key}]",
                where=where,
                hint=f"Known sections: {', '.join(sorted(sections))}.",
            )
        if key == "columns":
            values[key] = _check_str_map(value, "columns", where)
        elif key == "sustain":
            if not isinstance(value, dict):
                raise PlanError(
                    "[sustain] must be a table of keys", where=where, hint="Write it as `[sustain]`."
                )
            values[key] = dict(value)
        else:
            section_type = _hints(Plan)[key]
            values[key] = _build_section(section_type, value, key, where)
    return Plan(**values, base_dir=Path(base_dir), source=source)


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _build_section(cls: type, raw: Any, name: str, where: str) -> Any:
    if not isinstance(raw, dict):
        raise PlanError(
            f"[{name}] must be a table of keys", where=where, hint=f"Write it as `[{name}]`."
        )
    hints = _hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in known:
            raise PlanError(
                f"unknown plan key {name}.{key}",
                where=where,
                hint=f"Keys allowed in [{name}]: {', '.join(sorted(known))}.",
            )
        kwargs[key] = _coerce(value, hints[key], f"{name}.{key}", where)
    return cls(**kwargs)


_TYPE_WORDS = {str: "text", int: "a whole number", float: "a number", bool: "true or false"}


def _coerce(value: Any, annotation: Any, key: str, where: str) -> Any:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if value is None or value == "":
            if type(None) in args:
                return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(value, inner[0], key, where)
    if annotation is UsageInput:
        return _usage_input(value, key, where)
    if origin is tuple:
        if isinstance(value, str | int | float | dict) and not isinstance(value, bool):
            value = [value]
        if not isinstance(value, list):
            raise _type_error(key, "a list", value, where)
        return tuple(_coerce(v, args[0], key, where) for v in value)
    if origin is dict:
        return _check_str_map(value, key, where)
    if annotation is date:
        if isinstance(value, datetime):
            return value.date()
        if isinstance(value, date):
            return value
        if isinstance(value, str):
            try:
                return date.fromisoformat(value)
            except ValueError:
                pass
        raise _type_error(key, "a date (YYYY-MM-DD)", value, where)
    if annotation is bool:
        if isinstance(value, bool):
            return value
        raise _type_error(key, "true or false", value, where)
    if annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise _type_error(key, "a whole number", value, where)
    if annotation is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        raise _type_error(key, "a number", value, where)
    if annotation is str:
        if isinstance(value, str):
            return value
        raise _type_error(key, "text in quotes", value, where)
    raise _type_error(key, str(annotation), value, where)  # pragma: no cover - plan bug


def _type_error(key: str, expected: str, value: Any, where: str) -> PlanError:
    got = type(value).__name__
    return PlanError(
        f"plan key {key} must be {expected}, not {got}",
        where=where,
        hint=f"Fix the value of `{key.split('.')[-1]}` in its section.",
    )


def _check_str_map(value: Any, key: str, where: str) -> dict[str, str]:
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise PlanError(
            f"[{key}] must map names to text",
            where=where,
            hint='Write entries such as student_id = "StudentID".',
        )
    return dict(value)


def _usage_input(value: Any, key: str, where: str) -> UsageInput:
    if isinstance(value, str):
        return UsageInput(path=value)
    if isinstance(value, dict):
        return _build_section(UsageInput, value, key, where)
    raise _type_error(key, "a path or a table {path = ..., product = ...}", value, where)


# --- validation of values (after types) --------------------------------------------------------


def check_plan(plan: Plan) -> None:
    """Check values that have the right type but an impossible meaning."""
    where = str(plan.source) if plan.source else "plan"
    rules: list[tuple[bool, str, str]] = [
        (plan.dosage.min_sessions_per_month >= 1, "dosage.min_sessions_per_month", "at least 1"),
        (plan.dosage.min_habitual_months >= 1, "dosage.min_habitual_months", "at least 1"),
        (
            plan.dosage.unit in ("auto", "row", "student-day", "provided"),
            "dosage.unit",
            'one of "auto", "row", "student-day", "provided"',
        ),
        (
            plan.dosage.window in ("baseline-to-outcome", "dates", "all"),
            "dosage.window",
            'one of "baseline-to-outcome", "dates", "all"',
        ),
        (5 <= plan.privacy.min_cell_size <= 30, "privacy.min_cell_size", "between 5 and 30"),
        (
            plan.analysis.treatment in ("habitual", "any-use", "fidelity"),
            "analysis.treatment",
            'one of "habitual", "any-use", "fidelity"',
        ),
        (plan.analysis.caliper > 0, "analysis.caliper", "greater than 0"),
        (
            plan.analysis.rd_treated_side in ("below", "above"),
            "analysis.rd_treated_side",
            'one of "below", "above"',
        ),
        (
            not plan.analysis.rd_running_variable or plan.analysis.rd_cutoff is not None,
            "analysis.rd_cutoff",
            "set when rd_running_variable is set",
        ),
        (plan.analysis.match_ratio >= 1, "analysis.match_ratio", "at least 1"),
        (0 < plan.analysis.confidence_level < 1, "analysis.confidence_level", "between 0 and 1"),
        (0 <= plan.join.min_match_rate <= 1, "join.min_match_rate", "between 0 and 1"),
        (
            0 <= plan.decision.fail_probability <= plan.decision.pass_probability <= 1,
            "decision.fail_probability / pass_probability",
            "0 <= fail <= pass <= 1",
        ),
        (plan.decision.meaningful_effect >= 0, "decision.meaningful_effect", "0 or more"),
        (
            plan.outcomes.outcome_window in ("fall", "winter", "spring"),
            "outcomes.outcome_window",
            'one of "fall", "winter", "spring"',
        ),
        (
            plan.outcomes.baseline_window in ("fall", "winter", "spring"),
            "outcomes.baseline_window",
            'one of "fall", "winter", "spring"',
        ),
        (plan.engine.name in ("duckdb", "spark"), "engine.name", 'one of "duckdb", "spark"'),
        (
            0 < plan.rollout.min_habitual_ratio <= 1,
            "rollout.min_habitual_ratio",
            "between 0 and 1",
        ),
    ]
    for stage, when in plan.rollout.start_dates.items():
        try:
            date.fromisoformat(when)
        except ValueError:
            raise PlanError(
                f"plan key rollout.start_dates.{stage} must be a date (YYYY-MM-DD)",
                where=where,
                hint="Write it as 2024-08-12.",
            ) from None
    if plan.dosage.window == "dates":
        rules.append(
            (
                plan.dosage.window_start is not None and plan.dosage.window_end is not None,
                "dosage.window_start / window_end",
                'set when window = "dates"',
            )
        )
    for ok, key, expected in rules:
        if not ok:
            raise PlanError(
                f"plan key {key} must be {expected}", where=where, hint="Correct it in the plan."
            )
    if plan.sustain:
        from rce.sustain import rules_from_mapping

        rules_from_mapping(plan.sustain, where=where)
    try:
        from zoneinfo import ZoneInfo

        ZoneInfo(plan.study.timezone)
    except Exception:
        raise PlanError(
            f"unknown time zone {plan.study.timezone!r} in study.timezone",
            where=where,
            hint='Use an IANA name such as "America/Los_Angeles".',
        ) from None


# --- pre-registration --------------------------------------------------------------------------


@dataclass(frozen=True)
class LockStatus:
    """Whether a plan file was pre-registered and whether it changed since."""

    locked: bool
    locked_at: str | None = None
    locked_sha256: str | None = None
    current_sha256: str | None = None

    @property
    def changed(self) -> bool:
        """True when the plan file differs from the locked version."""
        return self.locked and self.locked_sha256 != self.current_sha256

    def summary(self) -> str:
        """One sentence for reports."""
        if not self.locked:
            return "The plan was not pre-registered (no `rce plan --lock` before the analysis)."
        if self.changed:
            return (
                f"The plan was locked on {self.locked_at} but has changed since; results do not "
                "follow the pre-registered plan."
            )
        return f"The plan was locked on {self.locked_at} and has not changed since."

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return {
            "locked": self.locked,
            "locked_at": self.locked_at,
            "locked_sha256": self.locked_sha256,
            "current_sha256": self.current_sha256,
            "changed": self.changed,
        }


def lock_path(plan_path: Path) -> Path:
    """The lock file that sits beside a plan file."""
    return plan_path.with_name(plan_path.name + LOCK_SUFFIX)


def file_sha256(path: Path) -> str:
    """sha256 of a file's bytes, read in blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def lock_plan(plan_path: Path, *, now: datetime | None = None) -> LockStatus:
    """Pre-register a plan: write its sha256 and the time to the lock file beside it."""
    plan_path = Path(plan_path)
    load_plan(plan_path)  # a plan that does not parse cannot be pre-registered
    when = (now or datetime.now(UTC)).replace(microsecond=0).isoformat()
    sha = file_sha256(plan_path)
    from rce.fileio import atomic_write_text

    atomic_write_text(
        lock_path(plan_path),
        json.dumps({"plan": plan_path.name, "sha256": sha, "locked_at": when}, indent=2) + "\n",
    )
    return LockStatus(locked=True, locked_at=when, locked_sha256=sha, current_sha256=sha)


def plan_lock_status(plan_path: Path | None) -> LockStatus:
    """Read the lock file beside a plan, if any."""
    if plan_path is None or not Path(plan_path).is_file():
        return LockStatus(locked=False)
    current = file_sha256(Path(plan_path))
    lock = lock_path(Path(plan_path))
    if not lock.is_file():
        return LockStatus(locked=False, current_sha256=current)
    try:
        data = json.loads(lock.read_text(encoding="utf-8"))
        return LockStatus(
            locked=True,
            locked_at=str(data["locked_at"]),
            locked_sha256=str(data["sha256"]),
            current_sha256=current,
        )
    except (ValueError, KeyError, TypeError):
        raise PlanError(
            "plan lock file is damaged",
            where=str(lock),
            hint="Delete it and lock the plan again with `rce plan --lock` (say so in the report).",
        ) from None


def plan_template() -> str:
    """The commented plan template that ``rce plan`` writes (every default spelled out)."""
    from importlib.resources import files

    return (files("rce") / "data" / "plan_template.toml").read_text(encoding="utf-8")
