"""The study plan: defaults in one place, strict keys and types, pre-registration lock."""

from __future__ import annotations

import tomllib
from datetime import UTC, datetime

import pytest

from rce.cli import app
from rce.config import (
    Plan,
    UsageInput,
    check_plan,
    load_plan,
    lock_plan,
    plan_from_dict,
    plan_lock_status,
    plan_template,
)
from rce.errors import PlanError


def test_template_spells_out_exactly_the_defaults():
    plan = plan_from_dict(tomllib.loads(plan_template()))
    assert plan == Plan()
    assert plan.sha256() == Plan().sha256()


def test_defaults():
    plan = Plan()
    assert plan.dosage.min_sessions_per_month == 3
    assert plan.privacy.min_cell_size == 10
    assert plan.decision.pass_probability == 0.75
    assert plan.decision.fail_probability == 0.50
    assert plan.join.min_match_rate == 0.90
    assert plan.analysis.caliper == 0.2


def test_partial_plan_overrides_only_its_keys(tmp_path):
    (tmp_path / "rce.toml").write_text(
        '[dosage]\nmin_sessions_per_month = 4\n[inputs]\nroster = "r.csv"\n'
        'usage = ["a.csv", { path = "b.csv", product = "Lexia" }]\n',
        encoding="utf-8",
    )
    plan = load_plan(directory=tmp_path)
    assert plan.dosage.min_sessions_per_month == 4
    assert plan.dosage.window == "baseline-to-outcome"
    assert plan.inputs.roster == ("r.csv",)
    assert plan.inputs.usage == (UsageInput("a.csv"), UsageInput("b.csv", product="Lexia"))
    assert plan.resolve("r.csv") == tmp_path / "r.csv"


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("[dosage]\nmin_session_per_month = 3\n", "dosage.min_session_per_month"),
        ("[dossage]\nx = 1\n", "[dossage]"),
        ('[dosage]\nmin_sessions_per_month = "3"\n', "dosage.min_sessions_per_month"),
        ("[privacy]\nmin_cell_size = 2.5\n", "privacy.min_cell_size"),
        ("[outcomes]\nexclude_rush_flagged = 1\n", "outcomes.exclude_rush_flagged"),
        ("[inputs]\nusage = [{ paths = 'x' }]\n", "inputs.usage.paths"),
        ("[dosage]\nwindow_start = \"May 1\"\n", "dosage.window_start"),
    ],
)
def test_unknown_keys_and_wrong_types_name_the_key(tmp_path, text, named):
    path = tmp_path / "rce.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(PlanError) as info:
        load_plan(path)
    assert named in info.value.message
    assert info.value.where == str(path)
    assert info.value.hint


def test_invalid_toml_is_a_plan_error(tmp_path):
    path = tmp_path / "rce.toml"
    path.write_text("[dosage\nx=", encoding="utf-8")
    with pytest.raises(PlanError, match="not valid TOML"):
        load_plan(path)


@pytest.mark.parametrize(
    ("section", "key", "value"),
    [
        ("privacy", "min_cell_size", 3),
        ("dosage", "unit", "weeks"),
        ("analysis", "treatment", "everyone"),
        ("decision", "pass_probability", 0.3),
        ("study", "timezone", "Mars/Olympus"),
    ],
)
def test_impossible_values_are_rejected(section, key, value):
    plan = plan_from_dict({section: {key: value}})
    with pytest.raises(PlanError, match=key.split("_")[0]):
        check_plan(plan)


def test_lock_records_hash_and_detects_change(tmp_path):
    path = tmp_path / "rce.toml"
    path.write_text("[dosage]\nmin_sessions_per_month = 3\n", encoding="utf-8")
    assert not plan_lock_status(path).locked
    status = lock_plan(path, now=datetime(2025, 8, 1, 12, 0, tzinfo=UTC))
    assert status.locked and not status.changed
    again = plan_lock_status(path)
    assert again.locked and not again.changed
    assert again.locked_at == "2025-08-01T12:00:00+00:00"
    path.write_text("[dosage]\nmin_sessions_per_month = 2\n", encoding="utf-8")
    changed = plan_lock_status(path)
    assert changed.changed
    assert "changed" in changed.summary()


def test_cli_plan_writes_template_refuses_overwrite_and_locks(runner, tmp_path):
    path = tmp_path / "rce.toml"
    result = runner.invoke(app, ["plan", str(path)])
    assert result.exit_code == 0, result.output
    assert load_plan(path) == Plan()
    result = runner.invoke(app, ["plan", str(path)])
    assert result.exit_code == 2
    assert "already exists" in result.stderr
    result = runner.invoke(app, ["plan", str(path), "--lock"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "rce.toml.lock").is_file()
    result = runner.invoke(app, ["plan", str(path), "--check"])
    assert result.exit_code == 0
    assert "has not changed" in result.output
    path.write_text(
        path.read_text().replace("min_cell_size = 10", "min_cell_size = 11"), encoding="utf-8"
    )
    result = runner.invoke(app, ["plan", str(path), "--check"])
    assert result.exit_code == 1
    assert "changed since" in result.output


def test_cli_plan_check_reports_bad_key_with_exit_2(runner, tmp_path):
    path = tmp_path / "rce.toml"
    path.write_text("[dosage]\nhabitual = 3\n", encoding="utf-8")
    result = runner.invoke(app, ["plan", str(path), "--check"])
    assert result.exit_code == 2
    assert "dosage.habitual" in result.stderr
    assert "Traceback" not in result.output


def test_sustain_thresholds_are_checked_by_name():
    plan = plan_from_dict({"sustain": {"adoption_floor": 0.2}})
    check_plan(plan)
    assert plan.sustain == {"adoption_floor": 0.2}
    with pytest.raises(PlanError, match="adoption_flor"):
        check_plan(plan_from_dict({"sustain": {"adoption_flor": 0.2}}))
