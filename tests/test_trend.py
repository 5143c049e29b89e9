"""`rce trend`: successive runs side by side; changed definitions flagged, never silently compared."""

from __future__ import annotations

import json
import shutil

import pytest
from conftest import EXAMPLE_DIR, assert_matches_shipped

from rce.cli import app
from rce.report.trend import validate_trend
from rce.trend import compare_runs

RUNS = EXAMPLE_DIR / "runs"
INTERIM = RUNS / "2024-25-winter-interim"
FINAL = RUNS / "2024-25-spring-final"


def _copy(src, dest, **changes):
    data = json.loads((src / "results.json").read_text(encoding="utf-8"))
    for dotted, value in changes.items():
        node = data
        *parents, leaf = dotted.split(".")
        for p in parents:
            node = node[p]
        node[leaf] = value
    dest.mkdir(parents=True)
    (dest / "results.json").write_text(json.dumps(data), encoding="utf-8")
    return dest


def test_interim_and_final_runs_line_up(runner, tmp_path):
    out = tmp_path / "trend"
    result = runner.invoke(
        app, ["trend", str(INTERIM), str(FINAL), "--label", "winter", "--label", "spring",
              "--out", str(out)],
    )
    assert result.exit_code == 0, result.output + result.stderr
    for name in ("trend.html", "trend.md", "trend.json"):
        assert (out / name).is_file()
    trend = json.loads((out / "trend.json").read_text(encoding="utf-8"))
    validate_trend(trend)
    assert trend["comparable"] and trend["flags"] == []
    winter, spring = trend["cycles"]
    assert winter["interim"] and not spring["interim"]
    assert winter["outcome_window"] == "winter" and spring["outcome_window"] == "spring"
    assert spring["students_scored"] > 0 and spring["dose_response"]["estimate"] > 0
    assert "interim" in (out / "trend.md").read_text(encoding="utf-8")
    html = (out / "trend.html").read_text(encoding="utf-8")
    assert html.count("<svg") >= 3 and "<script" not in html


def test_changed_dosage_definition_is_flagged_with_exit_1(runner, tmp_path):
    changed = _copy(FINAL, tmp_path / "b", **{"dosage.definition.min_sessions_per_month": 2})
    result = runner.invoke(app, ["trend", str(INTERIM), str(changed), "--out",
                                 str(tmp_path / "t")])
    assert result.exit_code == 1
    trend = json.loads((tmp_path / "t" / "trend.json").read_text(encoding="utf-8"))
    assert not trend["comparable"]
    (flag,) = trend["flags"]
    assert flag["code"] == "DEFINITION_CHANGED"
    assert "min_sessions_per_month 3 -> 2" in flag["message"]
    assert "Definitions changed" in (tmp_path / "t" / "trend.html").read_text(encoding="utf-8")


def test_changed_product_is_flagged(tmp_path):
    other = _copy(FINAL, tmp_path / "p", **{"study.product": "Lexia Core5 Reading"})
    result = compare_runs([INTERIM, other])
    assert not result.comparable
    assert "product changed" in result.flags[0]["message"]


def test_plan_edit_without_definition_change_is_noted(tmp_path):
    other = _copy(FINAL, tmp_path / "c", **{"plan.sha256": "0" * 64})
    result = compare_runs([FINAL, other])
    assert result.comparable
    assert [f["code"] for f in result.flags] == ["PLAN_CHANGED"]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: d / "missing.json", "not found"),
        (lambda d: (d / "x.json").write_text("{not json") and d / "x.json", "not a JSON"),
        (lambda d: (d / "y.json").write_text('{"a": 1}') and d / "y.json", "no schema_version"),
        (lambda d: d, "no results.json"),
    ],
)
def test_bad_inputs_are_clear_errors(runner, tmp_path, make, message):
    path = make(tmp_path)
    result = runner.invoke(app, ["trend", str(path), "--out", str(tmp_path / "t")])
    assert result.exit_code == 2
    assert message in result.stderr
    assert "Traceback" not in result.output


def test_shipped_runs_match_a_fresh_analysis(runner, tmp_path):
    study = tmp_path / "sv"
    shutil.copytree(EXAMPLE_DIR, study, ignore=shutil.ignore_patterns("rce-report*", "runs"))
    out = tmp_path / "interim"
    result = runner.invoke(app, ["analyze", str(study), "--outcome-window", "winter",
                                 "--out", str(out), "-q"])
    assert result.exit_code == 0, result.stderr
    fresh = json.loads((out / "results.json").read_text(encoding="utf-8"))
    shipped = json.loads((INTERIM / "results.json").read_text(encoding="utf-8"))
    assert_matches_shipped(fresh, shipped)
    assert fresh["study"]["interim"] is True
    assert "Interim" in (out / "report.html").read_text(encoding="utf-8")
