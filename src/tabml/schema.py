"""Every data check of the example use case (UCI Bank Marketing), as pandera schemas.

- `ClientSchema` / `BankSchema`: the record's contract (types, category sets, ranges, no nulls).
  Category sets come from `data/raw/bank-additional-names.txt`; numeric ranges are the domain
  of each field (what a valid record can hold), not the range seen in one sample.
- `ROW_RULES`: cross-column rules that hold on every row of the real data.
- `batch_rules`: checks over a whole batch (row count, duplicates, labels, missing values,
  time order, schema changes, leakage), thresholds from `params.yaml`.
- `drift_rules`: distance from the reference profile of the training window (warnings).

`dataset_schema` and `drift_schema` assemble them; the measurements live in `tabml.checks`
and `tabml.drift`.
Training data, the service's requests and the data tests all validate against these classes.
"""

from __future__ import annotations

import copy
import math
from functools import partial
from typing import Any

import pandera.pandas as pa
from pandera.typing import Series

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
from tabml.params import Params

JOBS = (
    "admin.", "blue-collar", "entrepreneur", "housemaid", "management", "retired",
    "self-employed", "services", "student", "technician", "unemployed", "unknown",
)  # fmt: skip
MARITAL = ("divorced", "married", "single", "unknown")
EDUCATION = (
    "basic.4y", "basic.6y", "basic.9y", "high.school", "illiterate", "professional.course",
    "university.degree", "unknown",
)  # fmt: skip
NO_YES_UNKNOWN = ("no", "yes", "unknown")
CONTACT = ("cellular", "telephone")
MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
DAYS = ("mon", "tue", "wed", "thu", "fri")
POUTCOME = ("failure", "nonexistent", "success")
LABELS = ("no", "yes")
NEVER_CONTACTED = 999  # `pdays` value meaning "not contacted in a previous campaign"


class ClientSchema(pa.DataFrameModel):
    """What is known about a client before the call: the model's possible inputs."""

    age: Series[int] = pa.Field(ge=16, le=120)
    job: Series[str] = pa.Field(isin=JOBS)
    marital: Series[str] = pa.Field(isin=MARITAL)
    education: Series[str] = pa.Field(isin=EDUCATION)
    default: Series[str] = pa.Field(isin=NO_YES_UNKNOWN)
    housing: Series[str] = pa.Field(isin=NO_YES_UNKNOWN)
    loan: Series[str] = pa.Field(isin=NO_YES_UNKNOWN)
    contact: Series[str] = pa.Field(isin=CONTACT)
    month: Series[str] = pa.Field(isin=MONTHS)
    day_of_week: Series[str] = pa.Field(isin=DAYS)
    campaign: Series[int] = pa.Field(ge=1, le=1000)
    pdays: Series[int] = pa.Field(ge=0, le=NEVER_CONTACTED)
    previous: Series[int] = pa.Field(ge=0, le=1000)
    poutcome: Series[str] = pa.Field(isin=POUTCOME)
    emp_var_rate: Series[float] = pa.Field(ge=-20, le=20)
    cons_price_idx: Series[float] = pa.Field(gt=0, le=1000)
    cons_conf_idx: Series[float] = pa.Field(ge=-100, le=100)
    euribor3m: Series[float] = pa.Field(ge=-5, le=25)
    nr_employed: Series[float] = pa.Field(gt=0, le=1e6)

    class Config:
        strict = True


class BankSchema(ClientSchema):
    """A labelled batch as ingested: client fields, the call's outcome and its place in time."""

    seq: Series[int] = pa.Field(ge=0)
    duration: Series[int] = pa.Field(ge=0, le=86_400)
    y: Series[str] = pa.Field(isin=LABELS)


# Rules that hold on every row of the real data, across columns.
ROW_RULES = (
    RowRule(
        "previous_matches_poutcome",
        ("previous", "poutcome"),
        "previous == 0 exactly when poutcome == 'nonexistent'",
        lambda df: (df["previous"] == 0) == (df["poutcome"] == "nonexistent"),
    ),
    RowRule(
        "pdays_needs_previous",
        ("pdays", "previous"),
        f"pdays != {NEVER_CONTACTED} (contacted before) only when previous > 0",
        lambda df: (df["pdays"] == NEVER_CONTACTED) | (df["previous"] > 0),
    ),
    RowRule(
        "zero_duration_means_no",
        ("duration", "y"),
        "a call of duration 0 ends with y == 'no'",
        lambda df: (df["duration"] > 0) | (df["y"] == "no"),
    ),
)


def batch_rules(params: Params) -> list[Rule]:
    """Checks over the whole batch, with the thresholds of `params.yaml` (errors)."""
    base, cfg = params.base, params.validate
    target, positive, time = base.target, base.positive_label, base.time_column
    columns = BankSchema.to_schema().columns
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
        Rule("label_classes", target, f"every label of {list(LABELS)} present",
             partial(label_classes, target=target, labels=LABELS), low=len(LABELS)),
        Rule("positive_rate", target,
             f"share of '{positive}' within [{cfg.min_positive_rate:.1%}, "
             f"{cfg.max_positive_rate:.1%}]",
             partial(positive_rate, target=target, positive=positive, labels=LABELS),
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
             "(features: ClientSchema minus train.drop_columns)",
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
    """The contract of a labelled batch: `BankSchema`, the row rules and the batch rules."""
    schema = copy.deepcopy(BankSchema.to_schema())
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
    """The model's input columns: client fields minus those excluded in `train.drop_columns`."""
    dropped = set(params.train.drop_columns)
    return [name for name in ClientSchema.to_schema().columns if name not in dropped]
