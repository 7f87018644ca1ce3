"""The declared dataset: its schema (`tabml.schema`) and `params.yaml` together.

Everything the template needs to know of a dataset is built here from the schema's columns and
the declaration in `params.yaml` (`base.target`, `base.positive_label`, `base.time_column`,
`train.drop_columns`, ...):
- `feature_columns`, `feature_schema`: the model's inputs, and the contract of one request;
- `dataset_labels`: the label classes, the category set of the target column;
- `check_settings`: every setting that names a column names one the schema declares;
- `batch_rules`: checks over a whole batch (row count, duplicates, labels, missing values,
  time order, schema changes, leakage), thresholds from `params.yaml`;
- `drift_rules`: distance from the reference profile of the training window (warnings).
`dataset_schema` and `drift_schema` assemble them; the measurements live in `tabml.checks`
and `tabml.drift`.
"""

from __future__ import annotations

import copy
import math
from functools import partial
from typing import Any

import pandas as pd
import pandera.pandas as pa

from tabml.checks import (
    RowRule,
    Rule,
    drift,
    duplicate_share,
    feature_auc,
    label_classes,
    leaked_feature,
    missing_share,
    positive_rate,
    row_count,
    schema_changes,
    time_disorder,
)
from tabml.io import DataError
from tabml.params import Params
from tabml.params_types import near
from tabml.schema import ROW_RULES, RecordSchema

SCHEMA_FILE = "src/tabml/schema.py"


def record_schema() -> pa.DataFrameSchema:
    """Every column of a labelled record as ingested (`tabml.schema.RecordSchema`)."""
    return RecordSchema.to_schema()


def whole_numbers_as_float(frame: pd.DataFrame) -> pd.DataFrame:
    """Integer columns the schema declares as float, as float: a sample whose values happen to
    be whole is valid data. The reverse (a fraction in an int column) stays an error."""
    schema = record_schema()
    whole = [
        name for name, column in schema.columns.items()
        if name in frame.columns and str(column.dtype).startswith("float")
        and pd.api.types.is_integer_dtype(frame[name])
    ]  # fmt: skip
    return frame.astype(dict.fromkeys(whole, "float64")) if whole else frame


def column_settings(params: Params) -> dict[str, list[str]]:
    """Each `params.yaml` setting that names columns, with the columns it names."""
    base = params.base
    return {
        "base.target": [base.target],
        "base.time_column": [base.time_column],
        "train.drop_columns": list(params.train.drop_columns),
        "validate.known_after_outcome": list(params.validate.known_after_outcome),
        "drift.exclude": list(params.drift.exclude),
        "ingest.order_by": [params.ingest.order_by] if params.ingest.order_by else [],
    }


def check_settings(params: Params) -> None:
    """Stop, in one line, on the first setting that names a column or label the data lacks."""
    columns = list(record_schema().columns)
    for key, names in column_settings(params).items():
        for name in names:
            if name not in columns:
                advice = near(name, columns) or (
                    f" (RecordSchema: {', '.join(columns)}); correct the name or remove it."
                )
                raise DataError(
                    f"params.yaml: {key} names '{name}', which is no column of the schema "
                    f"{SCHEMA_FILE}{advice}"
                )
    labels = _labels(params)
    if params.base.positive_label not in labels:
        raise DataError(
            f"params.yaml: base.positive_label is {params.base.positive_label!r}, which is no "
            f"label of '{params.base.target}' ({', '.join(map(repr, labels))}); set it to one "
            "of them."
        )


def dataset_labels(params: Params) -> tuple[Any, ...]:
    """The label classes: the category set (`isin`) the schema gives the `base.target` column."""
    check_settings(params)
    return _labels(params)


def _labels(params: Params) -> tuple[Any, ...]:
    target = params.base.target
    checks = record_schema().columns[target].checks
    found = [c.statistics["allowed_values"] for c in checks if c.name == "isin"]
    if not found:
        raise DataError(
            f"{SCHEMA_FILE}: the label column '{target}' (base.target) has no category set; "
            f"declare its labels, e.g. `{target}: Series[str] = pa.Field(isin=(...))`."
        )
    return tuple(sorted(found[0], key=str))


def batch_rules(params: Params) -> list[Rule]:
    """Checks over the whole batch, with the thresholds of `params.yaml` (errors)."""
    base, cfg = params.base, params.validate
    target, positive, time = base.target, base.positive_label, base.time_column
    columns = record_schema().columns
    labels = dataset_labels(params)
    max_rows = math.inf if cfg.max_rows is None else cfg.max_rows
    rules = [
        Rule("schema_change", "*", "exactly the schema's columns: none missing, none added",
             partial(schema_changes, columns=columns), high=0),
        Rule("row_count", "*", f"between {cfg.min_rows:,} and {max_rows:,} rows",
             row_count, low=cfg.min_rows, high=max_rows),
        Rule("time_order", time, f"'{time}' strictly increasing (row order is time order)",
             partial(time_disorder, column=time), high=0),
        Rule("duplicate_share", "*",
             f"exact duplicate rows ('{time}' aside) <= {cfg.max_duplicate_share:.1%}",
             partial(duplicate_share, exclude=[time]), high=cfg.max_duplicate_share),
        Rule("label_classes", target, f"every label of {list(labels)} present",
             partial(label_classes, target=target, labels=labels), low=len(labels)),
        Rule("positive_rate", target,
             f"share of '{positive}' within [{cfg.min_positive_rate:.1%}, "
             f"{cfg.max_positive_rate:.1%}]",
             partial(positive_rate, target=target, positive=positive, labels=labels),
             low=cfg.min_positive_rate, high=cfg.max_positive_rate),
    ]  # fmt: skip
    markers = " and ".join(["nulls", *(f"'{m}'" for m in cfg.missing_values)])
    rules += [
        Rule("missing_share", name, f"{markers} <= {cfg.max_missing_share:.0%} of the column",
             partial(missing_share, column=name, markers=cfg.missing_values),
             high=cfg.max_missing_share)
        for name in columns
    ]  # fmt: skip
    features = feature_columns(params)
    rules += [
        Rule("known_after_outcome", name,
             f"'{name}' is known only after the outcome, so it is no model feature "
             "(features: the schema's columns minus base.target, base.time_column and "
             "train.drop_columns)",
             partial(leaked_feature, column=name, features=features, target=target,
                     positive=positive), high=0)
        for name in cfg.known_after_outcome
    ]  # fmt: skip
    rules += [
        Rule("feature_auc", name,
             f"a feature alone predicts '{target}' with ROC AUC <= {cfg.max_feature_auc} "
             "(more suggests leakage)",
             partial(feature_auc, column=name, target=target, positive=positive),
             high=cfg.max_feature_auc)
        for name in features
    ]  # fmt: skip
    return rules


def drift_rules(params: Params, profile: dict[str, Any]) -> list[Rule]:
    """Distance of each column from the reference profile (warnings), as the monitor measures."""
    cfg = params.drift
    return [
        Rule("drift_psi", name, f"PSI against the reference <= {cfg.max_feature_psi}",
             partial(drift, column=name, reference=reference), high=cfg.max_feature_psi)
        for name, reference in profile["columns"].items()
        if name not in cfg.exclude
    ]  # fmt: skip


def dataset_schema(params: Params) -> pa.DataFrameSchema:
    """The contract of a labelled batch: `RecordSchema`, the row rules and the batch rules."""
    schema = copy.deepcopy(record_schema())
    extra = [rule.check() for rule in (*ROW_RULES, *batch_rules(params))]
    schema.checks = [*schema.checks, *extra]
    return schema


def drift_schema(params: Params, profile: dict[str, Any]) -> pa.DataFrameSchema:
    """Drift checks against the reference profile; their failures are warnings."""
    checks = [rule.check() for rule in drift_rules(params, profile)]
    return pa.DataFrameSchema(checks=checks, name="drift")


def rules_by_key(params: Params, profile: dict[str, Any] | None) -> dict[str, Rule | RowRule]:
    """Every custom check by the name pandera reports it under."""
    rules: dict[str, Rule | RowRule] = {rule.name: rule for rule in ROW_RULES}
    drift = drift_rules(params, profile) if profile else []
    rules.update({rule.key: rule for rule in (*batch_rules(params), *drift)})
    return rules


def feature_columns(params: Params) -> list[str]:
    """The model's inputs: the schema's columns but label, clock and `train.drop_columns`."""
    check_settings(params)
    base = params.base
    dropped = {base.target, base.time_column, *params.train.drop_columns}
    return [name for name in record_schema().columns if name not in dropped]


def feature_schema(params: Params) -> pa.DataFrameSchema:
    """`RecordSchema` restricted to the model's inputs: what one request must hold."""
    return record_schema().select_columns(feature_columns(params))


def nullable_features(features: list[str]) -> list[str]:
    """The features the schema lets be missing (`nullable=True`): requests may send null."""
    columns = record_schema().columns
    return [name for name in features if columns[name].nullable]
