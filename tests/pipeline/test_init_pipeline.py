"""`make init` in a copy of the project: the inferred schema validates the data it came from,
and data with gaps goes through the whole pipeline to a model that scores a null."""

from __future__ import annotations

import json
import sys

import pandas as pd
import pytest

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


def test_data_with_gaps_trains_and_its_model_scores_a_null(workspace, params, data):
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
    check = f"""
import json, joblib
from pydantic import TypeAdapter
from tabml.dataset import feature_columns
from tabml.params import load_params
from tabml.serving.contract import request_model
import pandas as pd
params = load_params()
features = feature_columns(params)
row = json.loads(pd.read_parquet("data/processed/test.parquet")[features].head(1)
                 .to_json(orient="records"))[0]
row.update({{c: None for c in {[*numeric, *text]!r} if c in features}})
TypeAdapter(request_model(features)).validate_python(row)
model = joblib.load("models/model.joblib")
p = model.predict_proba(pd.DataFrame([row]))[0, 1]
assert 0 < p < 1, p
print("scored", p)
"""
    assert "scored" in workspace.run("python", "-c", check, env=env).stdout
