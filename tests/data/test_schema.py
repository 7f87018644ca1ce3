"""The schema on the shipped data, and a few corruptions that must fail naming the column."""

import pandas as pd
import pytest

from tabml.schema import BankSchema, ClientSchema, feature_columns
from tabml.validate import validate


def test_shipped_data_passes_the_schema(bank, params):
    _, report = validate(bank, params)
    assert report["passed"], report["failures"]
    assert report["rows"] == 41188


def test_schema_covers_every_source_column(bank):
    assert set(BankSchema.to_schema().columns) == set(bank.columns)
    assert len(bank.columns) == 22  # 21 source columns plus the time column


def test_client_schema_is_what_a_request_can_hold(params):
    assert set(feature_columns(params)) <= set(ClientSchema.to_schema().columns)


def corrupt(frame: pd.DataFrame, kind: str) -> tuple[pd.DataFrame, str]:
    """Return the corrupted frame and the column its failure must name."""
    bad = frame.copy()
    if kind == "missing-column":
        return bad.drop(columns="education"), "education"
    if kind == "text-in-number":
        bad["campaign"] = bad["campaign"].astype(str)
        return bad, "campaign"
    if kind == "out-of-range":
        bad.loc[5, "pdays"] = 5000
        return bad, "pdays"
    if kind == "unknown-category":
        bad.loc[5, "contact"] = "carrier-pigeon"
        return bad, "contact"
    if kind == "null":
        bad["housing"] = bad["housing"].where(bad.index % 50 != 0)
        return bad, "housing"
    if kind == "relabelled-target":
        bad["y"] = bad["y"].map({"yes": "1", "no": "0"})
        return bad, "y"
    raise ValueError(kind)


@pytest.mark.parametrize(
    "kind",
    [
        "missing-column",
        "text-in-number",
        "out-of-range",
        "unknown-category",
        "null",
        "relabelled-target",
    ],
)
def test_corruption_fails_naming_the_column(bank, params, kind):
    bad, column = corrupt(bank.head(2000), kind)
    _, report = validate(bad, params)
    assert not report["passed"]
    named = {row["column"] for row in report["failures"]} | {
        example for row in report["failures"] for example in row["examples"]
    }
    assert column in named, report["failures"]
