"""`rce analyze` with engine = "spark": the same results as the default DuckDB engine."""

from __future__ import annotations

import json
import shutil

import pytest

from rce.cli import app

pytest.importorskip("pyspark", reason="pyspark is not installed (pip install 'rce[spark]')")
if shutil.which("java") is None:
    pytest.skip("Java is not installed: Spark needs a JVM", allow_module_level=True)


@pytest.mark.slow
def test_spark_engine_gives_the_duckdb_results(tmp_path):
    from typer.testing import CliRunner

    from rce.sample import generate_sample

    study = tmp_path / "d"
    generate_sample(study, students=400, seed=5)
    runner = CliRunner()
    duck = runner.invoke(app, ["analyze", str(study), "--out", str(tmp_path / "duck"), "-q"])
    assert duck.exit_code == 0, duck.stderr
    plan = (study / "rce.toml").read_text(encoding="utf-8")
    (study / "spark.toml").write_text(
        plan + '\n[engine]\nname = "spark"\nspark_master = "local[2]"\n', encoding="utf-8"
    )
    spark = runner.invoke(
        app,
        ["analyze", str(study), "--config", str(study / "spark.toml"),
         "--out", str(tmp_path / "spark"), "-q"],
    )
    assert spark.exit_code == 0, spark.stderr
    a = json.loads((tmp_path / "duck" / "results.json").read_text(encoding="utf-8"))
    b = json.loads((tmp_path / "spark" / "results.json").read_text(encoding="utf-8"))
    for key in ("dosage", "join", "usage", "dose_response", "gaps", "impact"):
        assert a[key] == b[key], key
