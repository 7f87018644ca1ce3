"""Columns of the declared dataset, picked by what a test needs, so template tests name none.

Each helper reads `tabml.dataset` (the schema and `params.yaml`) and skips the calling test,
saying why, when the declared dataset has no column of the kind it needs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from tabml.dataset import dataset_labels, feature_columns, record_schema
from tabml.params import Params


@dataclass(frozen=True)
class Bounded:
    """An integer feature with both bounds declared (`ge=` and `le=`)."""

    name: str
    low: int
    high: int


def checks_of(name: str) -> dict[str, dict[str, Any]]:
    """The column's pandera checks: name -> statistics."""
    return {check.name: check.statistics for check in record_schema().columns[name].checks}


def is_integer(name: str) -> bool:
    return str(record_schema().columns[name].dtype).startswith("int")


def is_numeric(name: str) -> bool:
    return str(record_schema().columns[name].dtype).startswith(("int", "float"))


def _features(params: Params, drifting: bool) -> list[str]:
    names = feature_columns(params)
    return [n for n in names if n not in params.drift.exclude] if drifting else names


def bounded_feature(params: Params, drifting: bool = False) -> Bounded:
    """The first integer feature, not nullable, with a lower and an upper bound."""
    for name in _features(params, drifting):
        stats = checks_of(name)
        column = record_schema().columns[name]
        bounds = ("greater_than_or_equal_to", "less_than_or_equal_to")
        if is_integer(name) and not column.nullable and all(b in stats for b in bounds):
            low = stats["greater_than_or_equal_to"]["min_value"]
            high = stats["less_than_or_equal_to"]["max_value"]
            return Bounded(name, int(low), int(high))
    pytest.skip("the schema declares no integer feature with both bounds (ge=, le=)")


def category_features(params: Params, drifting: bool = False) -> list[tuple[str, tuple]]:
    """Features with a category set (`isin=`), not nullable, with their categories."""
    found = []
    for name in _features(params, drifting):
        stats = checks_of(name)
        if "isin" in stats and not record_schema().columns[name].nullable:
            found.append((name, tuple(sorted(stats["isin"]["allowed_values"], key=str))))
    return found


def category_feature(params: Params, drifting: bool = False) -> tuple[str, tuple]:
    """The first feature with a category set."""
    found = category_features(params, drifting)
    if not found:
        pytest.skip("the schema declares no feature with a category set (isin=)")
    return found[0]


def numeric_feature(params: Params, drifting: bool = False) -> str:
    """The first integer or float feature."""
    for name in _features(params, drifting):
        if is_numeric(name):
            return name
    pytest.skip("the schema declares no numeric feature")


def negative_label(params: Params) -> Any:
    """A label other than `base.positive_label`."""
    return next(label for label in dataset_labels(params) if label != params.base.positive_label)


def unknown_category(categories: tuple) -> str:
    """A text value outside the category set."""
    value = "not-a-category"
    while value in categories:
        value += "-really"
    return value
