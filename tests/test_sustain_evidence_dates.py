"""sustain-report uses the latest evidence that existed on its decision date."""

from __future__ import annotations

import json

import pytest

from conftest import EXAMPLE_DIR
from rce.cli import app


@pytest.mark.parametrize(
    ("as_of", "window", "interim"),
    [("2025-04-01", "winter", True), ("2025-07-01", "spring", False)],
)
def test_interim_before_spring_results_exist_final_after(runner, tmp_path, as_of, window, interim):
    result = runner.invoke(
        app,
        ["sustain-report", "--config", str(EXAMPLE_DIR / "rce.toml"), "--out",
         str(tmp_path / "s"), "--as-of", as_of, "--format", "json", "-q"],
    )
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    product = next(p for p in data["products"] if p["product"].startswith("i-Ready"))
    assert product["effect"]["outcome_window"] == window
    assert product["effect"]["interim"] is interim
