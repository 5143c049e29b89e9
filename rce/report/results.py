"""The results dict (what ``results.json`` holds): assembling, serialising, checking.

The renderers (HTML, Markdown, tables, workbook) take this dict and nothing else, so nothing
downstream of it can leak a student: it holds counts, means and model estimates only, and small
cells are already suppressed (``suppressed: true`` with null statistics).

Serialisation is deterministic: sorted keys, NaN and infinities become ``null``,
``allow_nan=False``, and ``generated_at`` is null unless ``SOURCE_DATE_EPOCH`` is set -- the run
time belongs in ``manifest.json`` -- so the same inputs and plan give a byte-identical file.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import math
import operator
import os
from collections.abc import Callable, Iterable, Mapping
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from rce.errors import RceError

__all__ = [
    "SCHEMA_VERSION",
    "ResultsError",
    "assemble_results",
    "check_privacy",
    "load_schema",
    "results_to_json",
    "to_jsonable",
    "validate_results",
]

SCHEMA_VERSION = "1"

#: Keys that would identify a student; none may appear anywhere in the results.
_IDENTIFYING_KEYS = frozenset(
    {
        "student_id",
        "student_name",
        "first_name",
        "last_name",
        "name_first",
        "name_last",
        "birth_date",
        "date_of_birth",
        "email",
        "sis_id",
        "state_id",
    }
)
#: Count fields that must respect the small-cell rule when their row is not suppressed.
_COUNT_KEYS = ("n", "students_active", "students_habitual")
#: Numeric fields a suppressed row may keep: they label the cell, they do not describe students.
_LABEL_KEYS = frozenset({"months", "month", "level", "confidence_level", "year", "grade"})


class ResultsError(RceError):
    """The results dict does not match the shipped schema or breaks the privacy rules."""


def to_jsonable(value: Any) -> Any:
    """Convert results (dataclasses, numpy/pandas scalars, dates, NaN) to plain JSON values.

    Objects with a ``to_dict()`` method (the frozen result classes) are converted through it.
    NaN, infinities and pandas' missing markers become None; tuples become lists; dict keys
    become strings.

    Examples
    --------
    >>> to_jsonable({"a": float("nan"), "b": (1, 2.5)})
    {'a': None, 'b': [1, 2.5]}
    """
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if hasattr(value, "to_dict") and callable(value.to_dict) and not isinstance(value, Mapping):
        if not _is_pandas(value):
            return to_jsonable(value.to_dict())
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [to_jsonable(v) for v in value]
        return sorted(items, key=repr) if isinstance(value, set | frozenset) else items
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if type(value).__name__ == "NaTType":  # pandas' missing time is a datetime subclass
        return None
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    return _convert_library_scalar(value)


def _is_pandas(value: Any) -> bool:
    return type(value).__module__.startswith("pandas")


def _convert_library_scalar(value: Any) -> Any:
    import numpy as np
    import pandas as pd

    if isinstance(value, pd.DataFrame):
        frame = value.astype(object).where(value.notna(), None)
        return [to_jsonable(r) for r in frame.to_dict(orient="records")]
    if isinstance(value, pd.Series):
        return to_jsonable(value.astype(object).where(value.notna(), None).tolist())
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, np.generic):
        return to_jsonable(value.item())
    if value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    raise ResultsError(
        f"a value of type {type(value).__name__} cannot be written to results.json",
        hint="Convert it to numbers, text, lists or dicts in the result's to_dict().",
    )


def _generated_at() -> str | None:
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if not epoch:
        return None
    try:
        stamp = dt.datetime.fromtimestamp(int(epoch), tz=dt.UTC)
    except (ValueError, OverflowError, OSError):
        raise ResultsError(
            "SOURCE_DATE_EPOCH is not a whole number of seconds",
            where="environment",
            hint="Unset it, or set it to a Unix time such as 1767225600.",
        ) from None
    return stamp.isoformat().replace("+00:00", "Z")


def assemble_results(
    *,
    study: Mapping[str, Any],
    plan: Mapping[str, Any],
    inputs: Iterable[Any],
    join: Mapping[str, Any],
    dosage: Mapping[str, Any],
    usage: Mapping[str, Any] | None = None,
    dose_response: Iterable[Any] = (),
    gaps: Iterable[Any] = (),
    impact: Any = None,
    impact_reason: str | None = None,
    evidence: Any = None,
    warnings: Iterable[Any] = (),
    definitions: Iterable[Mapping[str, str]] = (),
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Put the pipeline's results together into the ``results.json`` dict and check it.

    Each argument may be a plain dict/list or a result object with ``to_dict()``. The result is
    validated against the shipped schema and the privacy rules (:func:`validate_results`).

    Parameters
    ----------
    study
        ``{name, subject, academic_year, product, outcome_window, interim}``.
    plan
        ``{sha256, locked, locked_at, changed, min_cell_size, ...}`` (see the schema).
    inputs
        ``[{path, sha256, rows, preset}]`` per input file.
    join, dosage, usage, dose_response, gaps, impact, evidence, warnings
        The sections of design.md's results.json. ``impact`` None needs ``impact_reason``.
    definitions
        ``[{term, definition}]`` for the technical appendix.
    extra
        Further top-level keys (must not clash with the ones above).

    Returns
    -------
    dict
        JSON-safe dict with ``schema_version`` and ``rce_version``.
    """
    from rce import __version__

    body: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "rce_version": __version__,
        "generated_at": _generated_at(),
        "study": to_jsonable(study),
        "plan": to_jsonable(plan),
        "inputs": to_jsonable(list(inputs)),
        "join": to_jsonable(join),
        "dosage": to_jsonable(dosage),
        "usage": to_jsonable(usage),
        "dose_response": _as_list(dose_response),
        "gaps": _as_list(gaps),
        "impact": to_jsonable(impact),
        "impact_reason": impact_reason,
        "evidence": to_jsonable(evidence),
        "warnings": _as_list(warnings),
        "definitions": to_jsonable(list(definitions)),
    }
    min_n = (body["plan"] or {}).get("min_cell_size")
    if isinstance(min_n, int) and isinstance(body["usage"], dict):
        body["usage"]["monthly_trend"] = _suppress_trend(
            body["usage"].get("monthly_trend") or [], min_n
        )
    if body["impact"] is None and not impact_reason:
        raise ResultsError(
            "no impact estimate and no reason given",
            where="results.impact",
            hint="Pass impact_reason explaining why no comparison was possible.",
        )
    for key, value in (extra or {}).items():
        if key in body:
            raise ResultsError(f"extra key {key!r} would overwrite a results section")
        body[key] = to_jsonable(value)
    validate_results(body)
    return body


def _suppress_trend(rows: list[dict[str, Any]], min_n: int) -> list[dict[str, Any]]:
    """Hide monthly counts below the cell-size rule (e.g. few habitual users in September).

    Each month's count is its own cell (no total of them is published), so only primary
    suppression applies; the month's other counts stay visible.
    """
    if not rows:
        return rows
    import pandas as pd

    from rce.privacy import suppress_cells

    out = [dict(r) for r in rows]
    for key in ("students_active", "students_habitual"):
        present = [i for i, r in enumerate(out) if r.get(key) is not None]
        if not present:
            continue
        table = pd.DataFrame({"n": [out[i][key] for i in present]})
        hidden = suppress_cells(table, n_col="n", min_n=min_n)["suppressed"].tolist()
        for i, hide in zip(present, hidden, strict=True):
            if hide and out[i][key] != 0:
                out[i][key] = None
                if key == "students_active":
                    out[i]["minutes"] = None
    return out


def _as_list(value: Any) -> list[Any]:
    converted = to_jsonable(value)
    if converted is None:
        return []
    if isinstance(converted, dict):
        # A result object whose to_dict() wraps its rows, e.g. {"kind": ..., "rows": [...]}.
        rows = converted.get("rows")
        return rows if isinstance(rows, list) else [converted]
    return list(converted)


def results_to_json(results: Mapping[str, Any]) -> str:
    """Serialise results deterministically (sorted keys, NaN -> null, two-space indent).

    Examples
    --------
    >>> results_to_json({"b": float("nan"), "a": 1})
    '{\\n  "a": 1,\\n  "b": null\\n}\\n'
    """
    return (
        json.dumps(
            to_jsonable(results), sort_keys=True, indent=2, allow_nan=False, ensure_ascii=False
        )
        + "\n"
    )


@lru_cache(maxsize=1)
def _schema_text() -> str:
    return resources.files("rce").joinpath("data/results.schema.json").read_text("utf-8")


def load_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) for ``results.json`` shipped inside the package."""
    return json.loads(_schema_text())


def validate_results(results: Mapping[str, Any]) -> None:
    """Check results against the shipped schema and the privacy rules.

    The schema check needs ``jsonschema`` (installed with the test extra); without it only the
    privacy rules are checked.

    Raises
    ------
    ResultsError
        On the first schema mismatch (naming its JSON path) or privacy breach.
    """
    data = to_jsonable(results)
    try:
        import jsonschema
    except ImportError:  # pragma: no cover - jsonschema is a test dependency, not a runtime one
        # The privacy rules never depend on an optional package.
        check_privacy(data)
        return
    # `rce analyze` checks the same document twice (assemble_results, then write_report), and
    # the schema walk costs 1-3 s on a district's results; equal canonical JSON text gives the
    # same verdict, so a document already found valid is not walked again.
    digest = hashlib.sha256(
        json.dumps(data, sort_keys=True, allow_nan=False, ensure_ascii=False).encode()
    ).digest()
    if digest not in _SCHEMA_VALID:
        _schema_check(jsonschema, data)
        if len(_SCHEMA_VALID) >= 16:
            _SCHEMA_VALID.clear()
        _SCHEMA_VALID.add(digest)
    check_privacy(data)


#: SHA-256 of the canonical JSON of documents that passed the schema check in this process.
_SCHEMA_VALID: set[bytes] = set()


def _schema_check(jsonschema: Any, data: Any) -> None:
    check = _fast_schema()
    if check is not None and check(data):
        return
    validator = jsonschema.Draft202012Validator(load_schema())
    errors = sorted(validator.iter_errors(data), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        first = errors[0]
        path = "results" + "".join(
            f"[{p}]" if isinstance(p, int) else f".{p}" for p in first.absolute_path
        )
        raise ResultsError(
            f"results do not match the results.json schema: {first.message}"
            + (f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""),
            where=path,
            hint="See rce/data/results.schema.json.",
        )


# --- a fast yes for the schema check ---------------------------------------------------------
# jsonschema walks a district's results (1 MB, 30,000 values) in about 0.2 s. The shipped schema
# uses a handful of keywords, so it is compiled once into plain Python checks that say "valid"
# only when jsonschema would; on any doubt (a failure, a keyword or type rule they do not
# know) jsonschema runs as before and words the error.

#: Keywords that only annotate.
_ANNOTATIONS = frozenset({"$schema", "$id", "title", "description", "$comment", "examples"})
_TYPE_TESTS: dict[str, Callable[[Any], bool]] = {
    "null": lambda v: v is None,
    "boolean": lambda v: v is True or v is False,
    # JSON Schema 2020-12: 1.0 is an integer too.
    "integer": lambda v: (type(v) is int) or (type(v) is float and v.is_integer()),
    "number": lambda v: type(v) is int or type(v) is float,
    "string": lambda v: type(v) is str,
    "array": lambda v: type(v) is list,
    "object": lambda v: type(v) is dict,
}


class _Unsupported(Exception):
    pass


@lru_cache(maxsize=1)
def _fast_schema() -> Callable[[Any], bool] | None:
    try:
        return _compile(load_schema())
    except _Unsupported:
        return None


def _compile(schema: Any) -> Callable[[Any], bool]:
    """A predicate that is True only for instances valid under ``schema``."""
    import re

    if schema is False:
        return lambda v: False
    if not isinstance(schema, dict):
        raise _Unsupported
    unknown = set(schema) - _ANNOTATIONS - {
        "type", "properties", "required", "additionalProperties", "items", "minimum",
        "maximum", "enum", "const", "pattern"}
    if unknown:
        raise _Unsupported
    tests: list[Callable[[Any], bool]] = []
    if "type" in schema:
        names = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not all(isinstance(n, str) and n in _TYPE_TESTS for n in names):
            raise _Unsupported
        kinds = [_TYPE_TESTS[n] for n in names]
        tests.append(lambda v: any(k(v) for k in kinds))
    for key, op in (("minimum", operator.ge), ("maximum", operator.le)):
        if key in schema:
            bound = schema[key]
            if type(bound) not in (int, float):
                raise _Unsupported
            # Python compares int and float exactly, as jsonschema does.
            tests.append(lambda v, b=bound, op=op: type(v) not in (int, float)
                         or (math.isfinite(v) and op(v, b)))
    for key in ("enum", "const"):
        if key in schema:
            allowed = schema[key] if key == "enum" else [schema[key]]
            if not isinstance(allowed, list) or not all(
                    a is None or type(a) is str for a in allowed):
                raise _Unsupported  # text and null only: no 1 == 1.0 == True questions
            members = frozenset(a for a in allowed if a is not None)
            with_null = None in allowed
            tests.append(lambda v, m=members, n=with_null: (v is None and n)
                         or (type(v) is str and v in m))
    if "pattern" in schema:
        found = re.compile(schema["pattern"]).search
        tests.append(lambda v: type(v) is not str or found(v) is not None)
    if "required" in schema:
        need = tuple(schema["required"])
        tests.append(lambda v: type(v) is not dict or all(k in v for k in need))
    if "properties" in schema or "additionalProperties" in schema:
        props = {k: _compile(sub) for k, sub in (schema.get("properties") or {}).items()}
        extra = schema.get("additionalProperties", True)
        extra_test = None if extra is True else (
            (lambda v: False) if extra is False else _compile(extra))

        def object_test(v: Any) -> bool:
            if type(v) is not dict:
                return True
            for k, item in v.items():
                test = props.get(k)
                if test is None:
                    if extra_test is not None and not extra_test(item):
                        return False
                elif not test(item):
                    return False
            return True

        tests.append(object_test)
    if "items" in schema:
        item_test = _compile(schema["items"])
        tests.append(lambda v: type(v) is not list or all(item_test(x) for x in v))
    # Any value that is not exactly a JSON type (a str or float subclass such as numpy's, an
    # OrderedDict) is left to jsonschema.
    return lambda v: type(v) in _JSON_TYPES and all(t(v) for t in tests)


_JSON_TYPES = frozenset({type(None), bool, int, float, str, list, dict})


def check_privacy(results: Mapping[str, Any]) -> None:
    """Refuse results that identify a student or show a small cell.

    Rules: no identifying key (``student_id``, names, birth dates, e-mail) holding text anywhere
    (a count keyed by ID kind is fine); a row with ``suppressed: true`` has no number other than
    its label (months, grade); a row that is not suppressed has no count between
    1 and ``plan.min_cell_size - 1``.

    Raises
    ------
    ResultsError
        Naming the JSON path of the first breach (never its value).
    """
    plan = results.get("plan") or {}
    min_n = plan.get("min_cell_size") if isinstance(plan, Mapping) else None
    if not isinstance(min_n, int):
        from rce.config import Plan

        min_n = Plan().privacy.min_cell_size
    _walk_privacy(results, "results", min_n)


def _holds_text(value: Any) -> bool:
    if isinstance(value, str):
        return True
    if isinstance(value, list):
        return any(isinstance(v, str) for v in value)
    return False


def _walk_privacy(node: Any, path: str, min_n: int) -> None:
    if isinstance(node, list):
        for i, item in enumerate(node):
            _walk_privacy(item, f"{path}[{i}]", min_n)
        return
    if not isinstance(node, Mapping):
        return
    for key, value in node.items():
        # A count keyed by ID kind ({"state_id": 412}) is fine; identifier values are text.
        if str(key).lower() in _IDENTIFYING_KEYS and _holds_text(value):
            raise ResultsError(
                "results contain a student-identifying field",
                where=f"{path}.{key}",
                hint="Per-student data never goes into results.json; drop the field.",
            )
    if node.get("suppressed") is True:
        for key, value in node.items():
            if key in _LABEL_KEYS or isinstance(value, bool):
                continue
            if isinstance(value, int | float):
                raise ResultsError(
                    "a suppressed cell still carries its value",
                    where=f"{path}.{key}",
                    hint="Suppressed cells must have null statistics (use rce.privacy).",
                )
    elif "suppressed" in node or path.endswith("monthly_trend]") or ".monthly_trend[" in path:
        for key in _COUNT_KEYS:
            value = node.get(key)
            if isinstance(value, int | float) and 0 < value < min_n:
                raise ResultsError(
                    f"a cell with fewer than {min_n} students is not suppressed",
                    where=f"{path}.{key}",
                    hint="Suppress it (and a complementary cell) with rce.privacy.suppress_cells.",
                )
    for key, value in node.items():
        if isinstance(value, Mapping | list):
            _walk_privacy(value, f"{path}.{key}", min_n)
