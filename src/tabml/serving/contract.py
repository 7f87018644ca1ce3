"""The service's request and answer models, built from the pandera schema used in training.

A request field has the type, category set and range of its column in `tabml.schema`, so the
service refuses exactly what `validate` would refuse. Unknown fields are refused too: a client
that sends a field the model does not use has a contract problem worth hearing about.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Literal

import pandera.dtypes as pdt
import pandera.pandas as pa
from pydantic import BaseModel, ConfigDict, Field
from typing_extensions import TypedDict

from tabml.dataset import record_schema

# pandera check name -> pydantic constraint, from the check's statistics.
_BOUNDS = {
    "greater_than": lambda s: {"gt": s["min_value"]},
    "greater_than_or_equal_to": lambda s: {"ge": s["min_value"]},
    "less_than": lambda s: {"lt": s["max_value"]},
    "less_than_or_equal_to": lambda s: {"le": s["max_value"]},
    "in_range": lambda s: {
        ("ge" if s.get("include_min", True) else "gt"): s["min_value"],
        ("le" if s.get("include_max", True) else "lt"): s["max_value"],
    },
    "str_length": lambda s: {
        k: v
        for k, v in (("min_length", s.get("min_value")), ("max_length", s.get("max_value")))
        if v is not None
    },
    "str_matches": lambda s: {"pattern": s["pattern"]},
}
_CATEGORIES = {"isin": "allowed_values", "equal_to": "value"}


def _base_type(column: pa.Column) -> type:
    if pdt.is_bool(column.dtype):
        return bool
    if pdt.is_int(column.dtype) or pdt.is_uint(column.dtype):
        return int
    if pdt.is_float(column.dtype):
        return float
    if pdt.is_string(column.dtype):
        return str
    raise ValueError(f"column '{column.name}': the service has no JSON type for {column.dtype}")


def request_field(column: pa.Column) -> tuple[Any, Any]:
    """The pydantic (type, Field) of one schema column: its type, category set and range."""
    annotation: Any = _base_type(column)
    constraints: dict[str, Any] = {}
    for check in column.checks:
        stats = check.statistics or {}
        if check.name in _CATEGORIES:
            values = stats[_CATEGORIES[check.name]]
            values = tuple(values) if isinstance(values, list | tuple | set) else (values,)
            annotation = Literal[values]
        elif check.name in _BOUNDS:
            constraints.update(_BOUNDS[check.name](stats))
        else:
            raise ValueError(
                f"column '{column.name}': check '{check.name}' has no request equivalent; "
                "add it to tabml.serving.contract so the service enforces it too"
            )
    if annotation is float:
        constraints["allow_inf_nan"] = False
    if column.nullable:  # JSON null, scored as a missing value
        annotation = annotation | None
    return annotation, Field(**constraints)


def request_model(
    features: Sequence[str],
    schema: pa.DataFrameSchema | None = None,
    example: dict[str, Any] | None = None,
) -> type:
    """A strict typed dict of one client: the model's features, typed as in training.

    `example` (a real record, stored with the model) is the one the OpenAPI document shows.

    A TypedDict rather than a BaseModel: pydantic validates it a third faster, and scoring
    reads values by key.
    """
    schema = schema or record_schema()
    missing = [name for name in features if name not in schema.columns]
    if missing:
        raise ValueError(f"features {missing} are not columns of the schema")
    example = {name: example[name] for name in features if name in example} if example else {}
    fields = {}
    for name in features:
        annotation, constraints = request_field(schema.columns[name])
        fields[name] = Annotated[annotation, constraints]
    client = TypedDict("Client", fields)  # type: ignore[misc]
    client.__pydantic_config__ = ConfigDict(  # type: ignore[attr-defined]
        extra="forbid", strict=True, json_schema_extra={"example": example}
    )
    return client


def refused_value(column: pa.Column) -> tuple[Any, str]:
    """A value the column's contract refuses, and why: off its category set or range, else type."""
    for check in column.checks:
        stats = check.statistics or {}
        if check.name in _CATEGORIES:
            return "not-a-category", "unknown category"
        low, high = stats.get("min_value"), stats.get("max_value")
        if check.name in _BOUNDS and isinstance(low, int | float):
            return low - 1, "below the range"
        if check.name in _BOUNDS and isinstance(high, int | float):
            return high + 1, "above the range"
    wrong: Any = 12345 if _base_type(column) is str else "not-a-number"
    return wrong, "wrong type"


def refused_request(
    record: dict[str, Any], schema: pa.DataFrameSchema | None = None
) -> dict[str, Any]:
    """`record` with one field changed to a value the contract refuses; says which and why.

    A field with a category set or range is preferred, so that the refusal tests the contract
    rather than the JSON types alone.
    """
    schema = schema or record_schema()
    names = [name for name in record if name in schema.columns]
    if not names:
        raise ValueError("the record holds no column of the schema")
    checked = [name for name in names if schema.columns[name].checks] or names
    field = checked[0]
    value, why = refused_value(schema.columns[field])
    return {"record": {**record, field: value}, "field": field, "value": value, "why": why}


class Scored(BaseModel):
    """One scored client."""

    probability: float = Field(description="probability of the positive label")
    decision: bool = Field(description="probability >= threshold")


class Prediction(Scored):
    """The answer for one client."""

    model_version: str = Field(description="exact BentoML model tag that scored the request")
    threshold: float


class BatchPrediction(BaseModel):
    """The answers for a batch, as columns in request order (compact, and fast to write)."""

    model_version: str
    threshold: float
    probabilities: list[float]
    decisions: list[bool] = Field(description="probability >= threshold, per record")


class Identity(BaseModel):
    """What the service runs: the model, its run, its code and data, and how good it was."""

    model_name: str
    model_version: str
    model_tag: str
    runtime: str = Field(description="'onnx' (compiled) or 'sklearn'")
    threshold: float
    features: list[str]
    mlflow_run_id: str | None
    git_commit: str | None
    git_dirty: bool | None
    data: dict[str, str] = Field(description="md5 of the data the model was trained on")
    metrics: dict[str, float]
    shadow_model_tag: str | None = Field(None, description="the model scored in shadow, if any")


# pydantic error type -> reason label of the rejected-requests metric.
REASONS = {
    "json_invalid": "malformed_json",
    "json_type": "malformed_json",
    "missing": "missing_field",
    "extra_forbidden": "extra_field",
    "literal_error": "unknown_category",
    "finite_number": "not_finite",
    "too_short": "empty_batch",
    "too_long": "batch_too_large",
}
_RANGE = ("greater_than", "less_than", "string_too", "string_pattern")


def reason(error_type: str) -> str:
    """The metric label for one pydantic error type."""
    if error_type in REASONS:
        return REASONS[error_type]
    if error_type.startswith(_RANGE):
        return "out_of_range"
    if error_type.endswith(("_type", "_parsing", "_from_float", "_attributes_type")):
        return "wrong_type"
    return "invalid"


def describe(errors: Sequence[dict[str, Any]], limit: int = 10) -> str:
    """One readable line naming each failing field and its problem."""
    parts = []
    for error in errors[:limit]:
        where = ".".join(str(p) for p in error.get("loc", ())) or "body"
        parts.append(f"{where}: {error.get('msg', 'invalid')}")
    more = f"; and {len(errors) - limit} more" if len(errors) > limit else ""
    return (
        f"invalid request ({len(errors)} problem{'s' * (len(errors) != 1)}): "
        + "; ".join(parts)
        + more
    )
