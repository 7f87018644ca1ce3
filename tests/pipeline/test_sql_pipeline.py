"""`make init` on an SQL source in a copy of the project: a real PostgreSQL server and DuckDB.

The table holds a sample of the shipped data in shuffled order with a timestamp column; init
writes the query ordered by it, and the pipeline reads the database, not a file."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import sqlalchemy
import yaml
from testkit import postgres

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server():
    if postgres.bindir() is None:
        pytest.skip("PostgreSQL is not installed: make system-packages installs Debian's package")
    with postgres.running() as running:
        yield running


def shuffled_sample(data: pd.DataFrame, params) -> pd.DataFrame:
    frame = data.drop(columns=[params.base.time_column]).iloc[::6].reset_index(drop=True)
    frame["called_at"] = pd.Timestamp("2020-01-01") + pd.to_timedelta(frame.index, "h")
    return frame.sample(frac=1, random_state=0)


def load(url: str, frame: pd.DataFrame) -> None:
    engine = sqlalchemy.create_engine(url)
    with engine.begin() as conn:
        frame.to_sql("calls", conn, index=False)
    engine.dispose()


def init(workspace, params, url: str, env: dict[str, str]) -> None:
    (workspace.path / "calls.sql").write_text("SELECT * FROM calls\n")
    leak = ",".join(params.validate.known_after_outcome)
    workspace.run(
        "python", "-m", "tabml.init", "--source", "calls.sql", "--database", url,
        "--target", params.base.target, "--positive", str(params.base.positive_label),
        "--time", "called_at", *(["--leak", leak] if leak else []), env=env,
    )  # fmt: skip
    workspace.run("python", "-m", "tabml.reference", env=env)


def interim(workspace) -> pd.DataFrame:
    return pd.read_parquet(workspace.path / "data/interim/data.parquet")


def test_postgresql_source_runs_the_pipeline_in_time_order(workspace, params, data, server):
    sample = shuffled_sample(data, params)
    load(server.url().replace("psycopg://tabml@", f"psycopg://tabml:{server.password}@"), sample)
    env = {**workspace.env, "PYTHONPATH": str(workspace.path / "src")}
    env["PGPASSWORD"] = server.password
    init(workspace, params, server.url(), env)
    written = yaml.safe_load((workspace.path / "params.yaml").read_text())["ingest"]
    assert written["source"] == "data/raw/calls.sql" and written["database"] == server.url()
    assert server.password not in (workspace.path / "params.yaml").read_text()
    assert written["order_by"] == "called_at"
    workspace.run("dvc", "repro", env=env)
    rows = interim(workspace)
    assert len(rows) == len(sample)
    assert rows["called_at"].is_monotonic_increasing
    assert rows["called_at"].iloc[0] == pd.Timestamp("2020-01-01").isoformat()
    lock = yaml.safe_load((workspace.path / "dvc.lock").read_text())
    assert "data/raw/calls.sql" in [d["path"] for d in lock["stages"]["ingest"]["deps"]]
    metrics = json.loads((workspace.path / "reports/metrics.json").read_text())
    assert 0 < metrics["test"]["roc_auc"] < 1
    # Without the password: one line naming the database, and the snapshot stays as it was.
    before = (workspace.path / "data/interim/data.parquet").read_bytes()
    env.pop("PGPASSWORD")
    done = workspace.run("python", "-m", "tabml.ingest", "--source", "data/raw/calls.sql",
                         "--out", "data/interim/data.parquet", env=env, check=False)  # fmt: skip
    assert done.returncode == 1 and "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("ERROR")]
    assert len(errors) == 1 and f"ingest.database {server.url()}: cannot connect" in errors[0]
    assert (workspace.path / "data/interim/data.parquet").read_bytes() == before


def test_duckdb_file_is_the_embedded_default(workspace, params, data):
    sample = shuffled_sample(data, params)
    url = "duckdb:///data/raw/calls.duckdb"
    (workspace.path / "data/raw").mkdir(parents=True, exist_ok=True)
    load(f"duckdb:///{workspace.path / 'data/raw/calls.duckdb'}", sample)
    env = {**workspace.env, "PYTHONPATH": str(workspace.path / "src")}
    init(workspace, params, url, env)
    workspace.run("dvc", "repro", "validate", env=env)
    rows = interim(workspace)
    assert len(rows) == len(sample) and rows["called_at"].is_monotonic_increasing
    report = json.loads((workspace.path / "reports/validation.json").read_text())
    assert report["passed"]
