"""manifest.json: what went in (paths, sha256, rows), the plan, package versions, seed, time.

The manifest is the only output that records the run time, so results.json and the tables stay
byte-identical across runs on the same inputs.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import platform
from collections.abc import Iterable, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

from rce.report.results import to_jsonable

__all__ = ["PACKAGES", "build_manifest", "manifest_to_json", "package_versions", "sha256_file"]

#: Packages whose versions can change a number in the report.
PACKAGES = ("rce", "pandas", "numpy", "scipy", "statsmodels", "duckdb", "pyarrow", "matplotlib",
            "jinja2", "xlsxwriter")


def sha256_file(path: Path | str, *, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def package_versions(packages: Iterable[str] = PACKAGES) -> dict[str, str | None]:
    """Installed versions (None when a package is not installed), plus Python's."""
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in packages:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def build_manifest(
    *,
    inputs: Iterable[Path | str | Mapping[str, Any]],
    plan: Any = None,
    seed: int | None = None,
    rows: Mapping[str, int] | None = None,
    timestamp: bool = True,
    started_at: dt.datetime | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Describe a run for manifest.json.

    Parameters
    ----------
    inputs
        Input files (paths are hashed here) or ready ``{path, sha256, rows, ...}`` dicts.
    plan
        The :class:`rce.config.Plan` (recorded in full with its sha256) or a dict.
    seed
        Random seed used (matching ties, bootstrap).
    rows
        Rows read per input path (as given), when ``inputs`` are paths.
    timestamp
        Record the time (``--no-timestamp`` turns it off).
    started_at
        Run start time; default now (UTC).
    extra
        Further keys (e.g. the command line).
    """
    records = []
    for item in inputs:
        if isinstance(item, Mapping):
            records.append(to_jsonable(dict(item)))
            continue
        path = Path(item)
        records.append({
            "path": str(item),
            "sha256": sha256_file(path) if path.is_file() else None,
            "bytes": path.stat().st_size if path.is_file() else None,
            "rows": (rows or {}).get(str(item)),
        })
    manifest: dict[str, Any] = {"inputs": records, "packages": package_versions(), "seed": seed}
    if plan is not None:
        if hasattr(plan, "to_dict"):
            manifest["plan"] = to_jsonable(plan.to_dict())
            manifest["plan_sha256"] = plan.sha256() if hasattr(plan, "sha256") else None
            source = getattr(plan, "source", None)
            manifest["plan_file"] = str(source) if source else None
        else:
            manifest["plan"] = to_jsonable(plan)
    if timestamp:
        now = dt.datetime.now(dt.UTC)
        manifest["started_at"] = (started_at or now).isoformat().replace("+00:00", "Z")
        manifest["finished_at"] = now.isoformat().replace("+00:00", "Z")
    for key, value in (extra or {}).items():
        manifest.setdefault(key, to_jsonable(value))
    return manifest


def manifest_to_json(manifest: Mapping[str, Any]) -> str:
    """Serialise a manifest (sorted keys, NaN -> null)."""
    return json.dumps(to_jsonable(manifest), sort_keys=True, indent=2, allow_nan=False,
                      ensure_ascii=False) + "\n"
