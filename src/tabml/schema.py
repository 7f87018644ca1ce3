"""The dataset's own checks (here the example's, UCI Bank Marketing): the code a fork rewrites.

- `RecordSchema`: every column of a labelled record as ingested, with its type, category set,
  range and whether it may be missing (`nullable=True`). Which column is the label, the clock,
  or no feature is declared in `params.yaml` (`base`, `train.drop_columns`), not here; the
  labels are the category set of the `base.target` column.
  Category sets come from `data/raw/bank-additional-names.txt`; numeric ranges are the domain
  of each field (what a valid record can hold), not the range seen in one sample.
- `ROW_RULES`: cross-column rules that hold on every row of the real data.

`tabml.dataset` builds everything else from these two names: the batch checks, the features,
the service's request contract. Training data, the service's requests and the data tests all
validate against them.
"""

from __future__ import annotations

import pandera.pandas as pa
from pandera.typing import Series

from tabml.checks import RowRule

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
NEVER_CONTACTED = 999  # `pdays` value meaning "not contacted in a previous campaign"


class RecordSchema(pa.DataFrameModel):
    """One call as ingested: what is known of the client before it, its outcome, its place."""

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
    # Row position in the source (base.time_column), written by ingest.
    seq: Series[int] = pa.Field(ge=0)
    # Known only after the call (validate.known_after_outcome; never a feature).
    duration: Series[int] = pa.Field(ge=0, le=86_400)
    # The label (base.target): its category set is the labels.
    y: Series[str] = pa.Field(isin=("no", "yes"))

    class Config:
        strict = True


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
