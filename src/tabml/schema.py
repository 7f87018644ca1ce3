"""The data contract of the example use case (UCI Bank Marketing), as pandera models.

Category sets come from `data/raw/bank-additional-names.txt`; numeric ranges are the domain of
each field (what a valid record can hold), not the range seen in one sample. Training data,
the service's requests and the data tests all validate against these classes.
"""

from __future__ import annotations

import copy
from typing import Any

import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

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


def dataset_schema(params: Params) -> pa.DataFrameSchema:
    """`BankSchema` plus the dataset-level checks whose thresholds live in `params.yaml`."""
    schema = copy.deepcopy(BankSchema.to_schema())
    target, min_rows = params.base.target, params.validate.min_rows
    schema.checks = [
        *schema.checks,
        pa.Check(lambda df: len(df) >= min_rows, name="min_rows", error=f">= {min_rows} rows"),
        pa.Check(
            lambda df: target not in df or df[target].nunique() == len(LABELS),
            name="both_labels",
            error=f"both labels {LABELS} present in '{target}'",
        ),
    ]
    return schema


def feature_columns(params: Params) -> list[str]:
    """The model's input columns: client fields minus those excluded in `train.drop_columns`."""
    dropped = set(params.train.drop_columns)
    return [name for name in ClientSchema.to_schema().columns if name not in dropped]


def summarize_failures(failure_cases: pd.DataFrame, max_examples: int = 5) -> list[dict[str, Any]]:
    """One row per (column, check): how many values fail and a few of them."""
    rows = []
    cases = failure_cases.assign(
        column=failure_cases["column"].where(failure_cases["schema_context"] == "Column", "*")
    )
    for (column, check), group in cases.groupby(["column", "check"], sort=False, dropna=False):
        examples = pd.unique(group["failure_case"].astype(str))[:max_examples]
        rows.append(
            {
                "column": str(column),
                "check": str(check),
                "failing": len(group),
                "examples": [str(value) for value in examples],
            }
        )
    return rows
