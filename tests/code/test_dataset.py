"""The declared dataset: settings that name columns, labels and features, for any schema."""

from __future__ import annotations

import dataclasses

import pytest
import yaml

from tabml import cli, validate
from tabml.dataset import (
    check_settings,
    column_settings,
    dataset_labels,
    feature_columns,
    record_schema,
)
from tabml.io import DataError

MISSING = "no_such_column"


def with_setting(params, key, value):
    section, name = key.split(".")
    return dataclasses.replace(
        params, **{section: dataclasses.replace(getattr(params, section), **{name: value})}
    )


@pytest.mark.parametrize(
    "key",
    ["base.target", "base.time_column", "train.drop_columns", "validate.known_after_outcome",
     "drift.exclude"],
)  # fmt: skip
def test_a_setting_naming_a_missing_column_stops_in_one_line(params, key):
    value = MISSING if key.startswith("base.") else [MISSING]
    wrong = with_setting(params, key, value)
    with pytest.raises(DataError) as caught:
        check_settings(wrong)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"params.yaml: {key} names '{MISSING}'")
    assert all(column in message for column in record_schema().columns)
    with pytest.raises(DataError, match=MISSING):
        feature_columns(wrong)


def test_every_column_setting_is_checked(params):
    check_settings(params)
    assert set(column_settings(params)) == {
        "base.target", "base.time_column", "train.drop_columns",
        "validate.known_after_outcome", "drift.exclude", "ingest.order_by",
    }  # fmt: skip


def test_features_leave_out_the_label_the_clock_and_the_dropped_columns(params):
    features = feature_columns(params)
    assert params.base.target not in features and params.base.time_column not in features
    assert not set(features) & set(params.train.drop_columns)
    rest = set(record_schema().columns) - {params.base.target, params.base.time_column}
    assert set(features) == rest - set(params.train.drop_columns)
    assert features == [name for name in record_schema().columns if name in features]  # order


def test_labels_are_the_target_category_set_and_hold_the_positive_label(params):
    labels = dataset_labels(params)
    assert len(labels) >= 2 and params.base.positive_label in labels
    wrong = with_setting(params, "base.positive_label", "not a label")
    with pytest.raises(
        DataError, match=r"base.positive_label is 'not a label', which is no label"
    ):
        dataset_labels(wrong)


def test_validate_stage_refuses_a_stale_setting_and_writes_nothing(root, tmp_path, capsys):
    raw = yaml.safe_load((root / "params.yaml").read_text())
    raw["train"]["drop_columns"] = [*raw["train"]["drop_columns"], MISSING]
    params_file = tmp_path / "params.yaml"
    params_file.write_text(yaml.safe_dump(raw))
    out = tmp_path / "validated.parquet"
    argv = ["--params", str(params_file), "--data", str(root / "data/interim/none.parquet"),
            "--out", str(out), "--report", str(tmp_path / "r.json"),
            "--summary", str(tmp_path / "r.md")]  # fmt: skip
    with pytest.raises(SystemExit) as stop:
        cli.run(validate.main, argv)
    assert stop.value.code == 1
    err = capsys.readouterr().err.strip()
    assert err == (
        f"ERROR: params.yaml: train.drop_columns names '{MISSING}', which is no column of the "
        f"schema src/tabml/schema.py (RecordSchema: {', '.join(record_schema().columns)}); "
        "correct the name or remove it."
    )
    assert not out.exists() and not (tmp_path / "r.json").exists()
