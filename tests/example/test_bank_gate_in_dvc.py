"""The gate under `dvc repro`, in a fresh copy of the project."""

import json

import pandas as pd
import pytest
import yaml

pytestmark = [pytest.mark.example, pytest.mark.slow]

SOURCE = "data/raw/bank-additional-full.csv.gz"


def corrupt_source(workspace, change) -> int:
    """Rewrite the shipped source through `change`; return the number of rows changed."""
    path = workspace.path / SOURCE
    frame = pd.read_csv(path, sep=";")
    bad = change(frame.copy())
    bad.to_csv(path, sep=";", index=False)
    return int((bad != frame).any(axis=1).sum())


def test_corrupted_batch_stops_dvc_repro_before_train_with_the_table(workspace):
    def change(frame):
        never = frame.index[frame["previous"] == 0][:3]
        frame.loc[never, "poutcome"] = "success"
        frame.loc[[10, 20], "contact"] = "fax"
        return frame

    corrupt_source(workspace, change)
    done = workspace.run("dvc", "repro", check=False)
    assert done.returncode != 0
    assert "failed to reproduce 'validate'" in done.stderr
    assert "**Data validation FAILED: 2 error(s)" in done.stderr
    assert "| check | column | severity | failing rows | examples | rule |" in done.stderr
    assert (
        "| previous_matches_poutcome | previous, poutcome | error | 3 "
        "| `previous=0, poutcome=success` |" in done.stderr
    )
    assert "| contact | error | 2 | `fax` |" in done.stderr
    for path in (
        "data/validated/data.parquet",
        "data/processed/train.parquet",
        "models/model.joblib",
    ):
        assert not (workspace.path / path).exists(), path
    summary = (workspace.path / "reports/validation.md").read_text()
    assert summary.startswith("**Data validation FAILED")
    assert json.loads((workspace.path / "reports/validation.json").read_text())["passed"] is False


def test_drop_policy_lets_dvc_repro_through_with_the_counts(workspace):
    params_file = workspace.path / "params.yaml"
    params = yaml.safe_load(params_file.read_text())
    params["validate"]["invalid_rows"] = "drop"
    params_file.write_text(yaml.safe_dump(params, sort_keys=False))

    def change(frame):
        frame.loc[[5, 6, 7, 8, 9], "age"] = 200
        return frame

    assert corrupt_source(workspace, change) == 5
    workspace.run("dvc", "repro", "validate")
    report = json.loads((workspace.path / "reports/validation.json").read_text())
    assert report["passed"] and report["rows_dropped"] == 5
    assert report["dropped"][0]["column"] == "age" and report["dropped"][0]["failing"] == 5
    validated = pd.read_parquet(workspace.path / "data/validated/data.parquet")
    assert len(validated) == 41188 - 5 and validated["age"].max() <= 120
    summary = (workspace.path / "reports/validation.md").read_text()
    assert "5 invalid rows dropped" in summary.splitlines()[0]
    assert "| less_than_or_equal_to(120) | age | dropped | 5 | `200` |" in summary
