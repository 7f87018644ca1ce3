"""`make init` in a copy of the project: the inferred schema validates the data it came from,
and data with gaps goes through the whole pipeline to a served model that scores a null."""

from __future__ import annotations

import json
import re
import sys

import httpx
import pandas as pd
import pytest
from testkit.server import free_port, running

pytestmark = pytest.mark.slow


def in_copy(workspace) -> dict[str, str]:
    """The copy's own code: `make init` rewrites its schema module."""
    return {**workspace.env, "PYTHONPATH": str(workspace.path / "src")}


def adopt(workspace, source: str, params, *extra: str) -> str:
    env = in_copy(workspace)
    leak = ",".join(params.validate.known_after_outcome)
    done = workspace.run(
        "python", "-m", "tabml.init", "--source", source, "--target", params.base.target,
        "--positive", str(params.base.positive_label), *(["--leak", leak] if leak else []),
        *extra, env=env,
    )  # fmt: skip
    workspace.run("python", "-m", "tabml.reference", "--out", "data/reference/profile.json",
                  env=env)  # fmt: skip
    return done.stdout


def test_init_on_the_source_writes_a_schema_that_validates_it(workspace, params):
    out = adopt(workspace, params.ingest.source, params)
    assert "Review, in order:" in out
    env = in_copy(workspace)
    workspace.run("dvc", "repro", "validate", env=env)
    report = json.loads((workspace.path / "reports/validation.json").read_text())
    assert report["passed"] and report["rows"] > 0
    workspace.run(str(sys.executable), "-m", "ruff", "check", "src/tabml/schema.py")
    status = workspace.run("git", "status", "--porcelain").stdout
    assert "src/tabml/schema.py" in status and "params.yaml" in status


def test_data_with_gaps_trains_and_the_service_scores_a_null(workspace, params, data, tmp_path):
    env = in_copy(workspace)
    sample = data.drop(columns=[params.base.time_column]).iloc[::8].reset_index(drop=True)
    features = [c for c in sample.columns if c not in
                {params.base.target, *params.train.drop_columns}]  # fmt: skip
    numeric = [c for c in features if pd.api.types.is_numeric_dtype(sample[c])][:2]
    text = [c for c in features if c not in numeric][:1]
    for i, column in enumerate([*numeric, *text]):
        sample.loc[sample.index[i::7], column] = None
    sample.to_csv(workspace.path / "gappy.csv", index=False)
    adopt(workspace, "gappy.csv", params)
    workspace.run("dvc", "repro", env=env)
    schema = (workspace.path / "src/tabml/schema.py").read_text()
    assert schema.count("nullable=True") >= 3
    env = {**env, "BENTOML_HOME": str(tmp_path / "bentoml")}
    done = workspace.run(
        "python", "-m", "tabml.bento", "--model", "models/model.joblib",
        "--train", "data/processed/train.parquet", "--valid", "data/processed/valid.parquet",
        "--test", "data/processed/test.parquet", "--metrics", "reports/metrics.json", env=env,
    )  # fmt: skip
    tag = re.search(r"^bento: (\S+)$", done.stdout, re.M).group(1)
    test = pd.read_parquet(workspace.path / "data/processed/test.parquet")
    record = json.loads(test.head(1).to_json(orient="records"))[0]
    gaps = [*numeric, *text]
    port = free_port()
    cmd = ["bentoml", "serve", tag, "--host", "127.0.0.1", "--port", str(port)]
    env["TABML_PREDICTION_LOG"] = str(tmp_path / "log")
    with running(cmd, port, tmp_path / "server.log", env=env, cwd=workspace.path) as server:
        features = httpx.post(f"{server.url}/identity", json={}).json()["features"]
        client = {name: record[name] for name in features} | dict.fromkeys(gaps)
        answer = httpx.post(f"{server.url}/score", json={"client": client}, timeout=30)
        assert answer.status_code == 200, answer.text
        assert 0 < answer.json()["probability"] < 1
        # A column the schema does not let be missing still refuses null.
        full = next(name for name in features if name not in gaps)
        refused = httpx.post(f"{server.url}/score", json={"client": {**client, full: None}})
        assert refused.status_code == 400 and full in refused.text
