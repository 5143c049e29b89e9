"""`rce analyze` end to end on the shipped example district: outputs, truth recovery, privacy,
determinism, inputs left untouched."""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
from pathlib import Path

import pytest
from conftest import EXAMPLE_DIR, assert_matches_shipped, results_differences

from rce.cli import app

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")


def _tree_hashes(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def example_copy(tmp_path_factory) -> Path:
    """A private copy of the example, so runs never write into the repository."""
    dest = tmp_path_factory.mktemp("district") / "sierra-vista"
    shutil.copytree(EXAMPLE_DIR, dest, ignore=shutil.ignore_patterns("rce-report*"))
    return dest


@pytest.fixture(scope="module")
def run(example_copy, tmp_path_factory):
    from typer.testing import CliRunner

    before = _tree_hashes(example_copy)
    out = tmp_path_factory.mktemp("report")
    result = CliRunner().invoke(app, ["analyze", str(example_copy), "--out", str(out)])
    assert result.exit_code == 0, result.output + result.stderr
    return {"out": out, "result": result, "inputs_before": before, "study": example_copy}


@pytest.fixture(scope="module")
def results(run) -> dict:
    return json.loads((run["out"] / "results.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def truth() -> dict:
    return json.loads((EXAMPLE_DIR / "truth.json").read_text(encoding="utf-8"))


def test_writes_every_output(run):
    out = run["out"]
    for name in ("report.html", "report.md", "results.json", "manifest.json"):
        assert (out / name).is_file(), name
    tables = sorted(p.name for p in (out / "tables").glob("*.csv"))
    assert {"gaps.csv", "dose_response.csv", "balance.csv", "usage_by_group.csv"} <= set(tables)
    assert "Report written to" in run["result"].output


def test_results_validate_against_the_shipped_schema(results):
    from rce.report.results import validate_results

    validate_results(results)
    assert results["schema_version"] == "1"
    for key in ("inputs", "join", "dosage", "dose_response", "gaps", "impact", "evidence"):
        assert key in results


def test_planted_dose_response_is_recovered(results, truth):
    product = truth["products"]["i-Ready Personalized Instruction ELA"]
    scale = next(d for d in results["dose_response"] if d["outcome"] == "outcome_scale_score")
    ci = scale["per_month"]
    # The truth is 2.0 points per month up to a plateau at 6 months; a straight line through
    # all months estimates the recorded expected linear slope. Both lie inside the interval.
    assert ci["ci_low"] <= product["beta_per_habitual_month"] <= ci["ci_high"]
    assert ci["ci_low"] <= product["expected_linear_slope_per_habitual_month"] <= ci["ci_high"]
    assert scale["clusters"] == 5
    assert "school" in scale["model"]


def test_naive_estimate_is_biased_in_the_planted_direction(results, truth):
    direction = truth["naive_comparisons"]["i-Ready Personalized Instruction ELA"][
        "spring_percentile_any_use_vs_none"
    ]["direction"]
    assert direction == "upward"
    pct = next(d for d in results["dose_response"] if d["outcome"] == "outcome_percentile")
    assert pct["naive"]["estimate"] > pct["per_month"]["ci_high"]


def test_impact_covers_the_true_effect_with_high_probability(results, truth):
    impact = results["impact"]
    true_effect = truth["naive_comparisons"]["i-Ready Personalized Instruction ELA"][
        "gain_habitual_vs_none"
    ]["true_effect_on_users"]
    assert impact["estimand"].startswith("ATT") or "treated" in impact["estimand"].lower()
    assert impact["ci_low"] <= true_effect <= impact["ci_high"]
    assert impact["probability_positive"] > 0.95


def test_small_cells_are_suppressed(results):
    race = {
        r["group"]: r
        for r in results["usage"]["by_group"]
        if r["dimension"] == "race_ethnicity"
    }
    assert race["American Indian or Alaska Native"]["suppressed"]
    assert race["American Indian or Alaska Native"]["n"] is None
    for row in results["gaps"]:
        if row["suppressed"]:
            assert row["mean"] is None and row["gap"] is None and row["n"] is None


def test_no_student_id_or_name_in_any_output(run):
    roster = run["study"] / "sis" / "students_2024-25.csv"
    with roster.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    needles = set()
    for r in rows:
        for col in ("Student Number", "SSID", "Email"):
            value = (r[col] or "").strip()
            if value:
                needles.add(value)
                needles.add(value.lstrip("0"))
        for col in ("Last Name", "First Name"):
            value = (r[col] or "").strip()
            if len(value) >= 3:
                needles.add(f"{r['Last Name'].strip()}, {r['First Name'].strip()}")
    needles.discard("")
    ids = {n for n in needles if n.isdigit() and len(n) >= 4}
    others = needles - ids
    import re

    for path in run["out"].rglob("*"):
        if not path.is_file():
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        numbers = set(re.findall(r"(?<![\w.])\d{4,10}(?![\w.])", text))
        leaked = numbers & ids
        assert not leaked, f"student IDs in {path.name}: {len(leaked)}"
        for name in others:
            assert name not in text, f"a student name or e-mail in {path.name}"
    assert run["result"].stderr.count("Student") == 0


def test_inputs_are_never_modified(run):
    assert _tree_hashes(run["study"]) == run["inputs_before"]


def test_same_inputs_give_identical_results_and_tables(run, tmp_path):
    from typer.testing import CliRunner

    out2 = tmp_path / "again"
    result = CliRunner().invoke(app, ["analyze", str(run["study"]), "--out", str(out2), "-q"])
    assert result.exit_code == 0, result.stderr
    first, second = _tree_hashes(run["out"]), _tree_hashes(out2)
    assert first.keys() == second.keys()
    differing = {k for k in first if first[k] != second[k]}
    assert differing <= {"manifest.json"}


def test_results_are_the_same_whether_the_helper_process_runs_or_not(run, tmp_path, monkeypatch):
    # The gap tables and half the charts are computed in the helper process when a second
    # core is free; a run on a busy machine computes everything here.
    from typer.testing import CliRunner

    from rce.report import chart_helper

    trees = {}
    for spare in (True, False):
        monkeypatch.setattr(chart_helper, "_spare_core", lambda before, now, s=spare: s)
        sent: list[str] = []
        original = chart_helper.Pending._ask

        def spy(self, helper, name, sent=sent, original=original):
            sent.append(name)
            original(self, helper, name)

        monkeypatch.setattr(chart_helper.Pending, "_ask", spy)
        out = tmp_path / f"helper-{spare}"
        result = CliRunner().invoke(app, ["analyze", str(run["study"]), "--out", str(out), "-q"])
        assert result.exit_code == 0, result.stderr
        monkeypatch.setattr(chart_helper.Pending, "_ask", original)
        assert sent == (["rce.stats.gaps:compute_gaps"] * 2 if spare else [])
        trees[spare] = _tree_hashes(out)
    assert trees[True].keys() == trees[False].keys()
    assert {k for k in trees[True] if trees[True][k] != trees[False][k]} <= {"manifest.json"}
    first = _tree_hashes(run["out"])
    assert {k for k in first if first[k] != trees[True][k]} <= {"manifest.json"}


def test_format_json_prints_results(run, tmp_path):
    from typer.testing import CliRunner

    result = CliRunner().invoke(
        app, ["analyze", str(run["study"]), "--out", str(tmp_path / "j"), "--format", "json"]
    )
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["study"]["product"] == "i-Ready Personalized Instruction ELA"


def test_manifest_records_inputs_and_plan(run):
    manifest = json.loads((run["out"] / "manifest.json").read_text(encoding="utf-8"))
    text = json.dumps(manifest)
    assert "sha256" in text and "pandas" in text
    assert "dosage" in text


def test_min_match_rate_gate_fails_with_exit_1(run, tmp_path):
    from typer.testing import CliRunner

    result = CliRunner().invoke(
        app,
        ["analyze", str(run["study"]), "--out", str(tmp_path / "g"), "--min-match-rate", "0.999",
         "-q"],
    )
    assert result.exit_code == 1
    payload = json.loads((tmp_path / "g" / "results.json").read_text(encoding="utf-8"))
    assert any(w["code"] == "LOW_USAGE_MATCH_RATE" for w in payload["warnings"])


def test_missing_study_folder_is_a_clear_error(tmp_path):
    from typer.testing import CliRunner

    result = CliRunner().invoke(app, ["analyze", str(tmp_path / "nope")])
    assert result.exit_code == 2
    assert "study folder not found" in result.stderr
    assert "Traceback" not in result.output


@pytest.fixture(scope="module")
def shipped_final() -> dict:
    path = EXAMPLE_DIR / "runs" / "2024-25-spring-final" / "results.json"
    return json.loads(path.read_text(encoding="utf-8"))


def test_the_shipped_run_comparison_allows_rounding_only(shipped_final):
    shipped = shipped_final
    est = shipped["dose_response"][0]["per_month"]["estimate"]

    def changed(edit) -> dict:
        doc = json.loads(json.dumps(shipped))
        edit(doc)
        return doc

    def set_estimate(value):
        return lambda d: d["dose_response"][0]["per_month"].__setitem__("estimate", value)

    assert results_differences(shipped, shipped) == []
    assert results_differences(changed(set_estimate(est * (1 + 1e-12))), shipped) == []
    assert results_differences(changed(set_estimate(est * (1 + 1e-5))), shipped) == [
        f"/dose_response[0]/per_month/estimate: {est * (1 + 1e-5)!r}, shipped {est!r}"]
    assert results_differences(changed(lambda d: d["warnings"].pop()), shipped)
    assert results_differences(changed(lambda d: d["study"].pop("interim")), shipped) == [
        "/study/interim: only in shipped"]
    assert results_differences(changed(lambda d: d["study"].__setitem__("extra", 1)), shipped)
    assert results_differences(changed(lambda d: d["study"].__setitem__("name", "x")), shipped)
    assert results_differences(changed(set_estimate(None)), shipped)


def test_final_run_matches_the_shipped_final_run(results, shipped_final):
    assert_matches_shipped(results, shipped_final)


def test_rollout_stages_show_the_planted_pilot_difference(results, truth):
    stages = {s["stage"]: s for s in results["rollout"]["stages"]}
    assert set(truth["rollout_stages"].values()) == set(stages)
    pilot, expansion = stages["pilot"], stages["expansion"]
    assert pilot["share_habitual"] > expansion["share_habitual"]
    assert pilot["mean_habitual_months_users"] > 2 * expansion["mean_habitual_months_users"]
    codes = [w["code"] for w in results["warnings"]]
    assert "SPREAD_WITHOUT_DEPTH" in codes


def test_a_small_district_runs_with_small_counts_hidden(tmp_path):
    from typer.testing import CliRunner

    from rce.sample import generate_sample

    generate_sample(tmp_path / "small", students=400, seed=3)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["analyze", str(tmp_path / "small"), "--out", str(out), "-q"])
    assert result.exit_code == 0, result.stderr
    payload = json.loads((out / "results.json").read_text(encoding="utf-8"))
    for row in payload["usage"]["by_group"]:
        for key in ("n", "users", "habitual_users"):
            assert row[key] is None or row[key] == 0 or row[key] >= 10


def test_a_bad_roster_stops_the_usage_reading_begun_beside_it(example_copy, tmp_path):
    """The usage logs are read on a worker thread while the roster loads; when the roster
    fails, its error is the one reported (exit 2) and no worker is left running."""
    import threading

    from typer.testing import CliRunner

    study = tmp_path / "study"
    shutil.copytree(example_copy, study, ignore=shutil.ignore_patterns("rce-report*"))
    roster = study / "sis" / "students_2024-25.csv"
    roster.write_text("this is not a roster\n1,2,3\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["analyze", str(study), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    assert "roster" in (result.output + result.stderr).lower()
    assert not [t for t in threading.enumerate() if t.name == "rce-dosage"]
    assert not (tmp_path / "out").exists()  # nothing half-written
