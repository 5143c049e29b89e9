"""results.json: schema, privacy rules, deterministic serialisation, assembly."""

from __future__ import annotations

import copy
import json
import math
from dataclasses import dataclass

import jsonschema
import numpy as np
import pytest

from rce.report.results import (
    ResultsError,
    assemble_results,
    load_schema,
    results_to_json,
    to_jsonable,
    validate_results,
)
from report_fixtures import complete_results, variants

DESIGN_KEYS = {
    "": ["schema_version", "rce_version", "generated_at", "inputs", "join", "dosage",
         "dose_response", "gaps", "impact", "evidence", "warnings"],
    "join": ["students_scored", "students_with_usage", "usage_rows", "usage_rows_matched",
             "usage_match_rate"],
    "dosage": ["definition", "users", "habitual_users"],
    "impact": ["design", "estimand", "n_treatment", "n_comparison", "estimate", "se", "ci_low",
               "ci_high", "p_value", "hedges_g", "improvement_index", "probability_positive",
               "probability_meaningful", "baseline_equivalence"],
    "evidence": ["essa_tier", "wwc_rating", "criteria"],
}


def test_schema_is_valid_draft_2020_12():
    schema = load_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)


def test_schema_requires_every_design_md_key():
    schema = load_schema()
    for section, keys in DESIGN_KEYS.items():
        node = schema if not section else schema["properties"][section]
        assert set(keys) <= set(node["required"]), section
    dr = schema["properties"]["dose_response"]["items"]
    assert {"outcome", "unit", "n", "clusters", "per_month", "covariates", "model"} <= set(
        dr["required"])
    gaps = schema["properties"]["gaps"]["items"]
    assert {"dimension", "group", "reference", "users_only", "n", "mean", "gap", "ci_low",
            "ci_high", "p_adjusted", "suppressed"} <= set(gaps["required"])


@pytest.mark.parametrize("name", ["complete", "no_impact", "all_suppressed", "hostile"])
def test_fixtures_validate(name):
    validate_results(variants()[name])


@pytest.mark.parametrize("key", DESIGN_KEYS[""])
def test_missing_top_level_key_is_rejected(key):
    res = complete_results()
    del res[key]
    with pytest.raises(ResultsError, match="schema"):
        validate_results(res)


def test_wrong_type_names_the_path():
    res = complete_results()
    res["gaps"][3]["n"] = "many"
    with pytest.raises(ResultsError) as err:
        validate_results(res)
    assert err.value.where == "results.gaps[3].n"


def test_unsuppressed_small_cell_is_refused():
    res = complete_results()
    res["gaps"][1]["n"] = 7
    with pytest.raises(ResultsError, match="fewer than 10") as err:
        validate_results(res)
    assert "7" not in err.value.message


def test_small_month_in_trend_is_refused():
    res = complete_results()
    res["usage"]["monthly_trend"][0]["students_habitual"] = 3
    with pytest.raises(ResultsError, match="fewer than 10"):
        validate_results(res)


def test_suppressed_cell_with_value_is_refused():
    res = complete_results()
    row = next(g for g in res["gaps"] if g["suppressed"])
    row["mean"] = 12.5
    with pytest.raises(ResultsError, match="suppressed cell"):
        validate_results(res)


def test_min_cell_size_comes_from_the_plan():
    res = complete_results()
    res["plan"]["min_cell_size"] = 5
    res["gaps"][1]["n"] = 7
    validate_results(res)


def test_student_identifier_anywhere_is_refused():
    res = complete_results()
    res["warnings"].append({"code": "x", "message": "y", "student_id": "000123"})
    with pytest.raises(ResultsError, match="identifying") as err:
        validate_results(res)
    assert "000123" not in str(err.value) and "000123" not in (err.value.where or "")


def test_json_is_sorted_nan_free_and_stable():
    res = complete_results()
    res["dose_response"][0]["per_month"]["p_value"] = float("nan")
    res["impact"]["mdes"] = np.float64(0.2)
    text = results_to_json(res)
    assert text == results_to_json(copy.deepcopy(res))
    assert "NaN" not in text and "Infinity" not in text
    data = json.loads(text)
    assert data["dose_response"][0]["per_month"]["p_value"] is None
    assert data["impact"]["mdes"] == 0.2
    assert list(data) == sorted(data)
    assert text.endswith("\n")


def test_to_jsonable_handles_library_types():
    import pandas as pd

    out = to_jsonable({"a": np.int64(3), "b": pd.NA, "c": (1, float("inf")),
                       "d": pd.Timestamp("2026-01-02"), "e": np.array([1.5, np.nan])})
    assert out == {"a": 3, "b": None, "c": [1, None], "d": "2026-01-02T00:00:00",
                   "e": [1.5, None]}


def test_unknown_object_raises_rce_error():
    with pytest.raises(ResultsError, match="cannot be written"):
        to_jsonable({"x": object()})


@dataclass(frozen=True)
class _FakeGaps:
    rows: tuple

    def to_dict(self):
        return {"kind": "gaps", "rows": list(self.rows)}


def test_assemble_results_accepts_result_objects(monkeypatch):
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    base = complete_results()
    res = assemble_results(
        study=base["study"], plan=base["plan"], inputs=base["inputs"], join=base["join"],
        dosage=base["dosage"], usage=base["usage"], dose_response=base["dose_response"],
        gaps=_FakeGaps(tuple(base["gaps"])), impact=base["impact"],
        evidence=base["evidence"], warnings=base["warnings"])
    assert res["schema_version"] == "1"
    assert res["generated_at"] is None
    assert res["gaps"] == base["gaps"]
    assert not math.isnan(res["join"]["usage_match_rate"])


def test_assemble_results_needs_a_reason_without_impact():
    base = complete_results()
    kwargs = {k: base[k] for k in ("study", "plan", "inputs", "join", "dosage")}
    with pytest.raises(ResultsError, match="reason"):
        assemble_results(**kwargs, impact=None)
    res = assemble_results(**kwargs, impact=None, impact_reason="everyone used it")
    assert res["impact"] is None and res["impact_reason"] == "everyone used it"


def test_generated_at_from_source_date_epoch(monkeypatch):
    base = complete_results()
    kwargs = {k: base[k] for k in ("study", "plan", "inputs", "join", "dosage")}
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1767225600")
    res = assemble_results(**kwargs, impact=None, impact_reason="r")
    assert res["generated_at"] == "2026-01-01T00:00:00Z"


def test_missing_time_is_null_not_text():
    import pandas as pd

    from rce.report.results import to_jsonable

    assert to_jsonable({"t": pd.NaT, "d": pd.Timestamp("2025-01-02")}) == {
        "t": None,
        "d": "2025-01-02T00:00:00",
    }
