"""Infer a dataset's schema from its data and write it as `src/tabml/schema.py` code to review.

Each column becomes one readable line: its type; a category set when a text column holds few
distinct values; a range from the data widened by a margin (a non-negative column keeps 0 as
its floor); `nullable=True` where the data has gaps. Cross-column rules cannot be inferred:
`ROW_RULES` starts empty.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import pandas as pd

MAX_CATEGORIES = 200  # more distinct values than this: free text, no category set, no feature
MARGIN = 0.1  # ranges are widened by this share of their width on each side


@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # int, float, bool or str
    field: str  # the pa.Field(...) arguments
    note: str  # what the data showed
    free_text: bool = False  # a text column with too many values to be a category


def _number(value: float, kind: str) -> str:
    if kind == "int":
        return str(int(value))
    return repr(float(f"{value:.6g}"))


def _range(series: pd.Series, kind: str) -> list[str]:
    low, high = float(series.min()), float(series.max())
    margin = (high - low) * MARGIN or max(abs(high) * MARGIN, 1.0)
    floor = 0.0 if low >= 0 else low - margin
    ceiling = high + margin
    if kind == "int":
        floor, ceiling = math.floor(floor), math.ceil(ceiling)
    return [f"ge={_number(floor, kind)}", f"le={_number(ceiling, kind)}"]


def infer_column(name: str, series: pd.Series) -> Column:
    """The schema line of one column, from its values."""
    present = series.dropna()
    missing = 1 - len(present) / len(series) if len(series) else 0.0
    args: list[str] = []
    free_text = False
    if pd.api.types.is_bool_dtype(series):
        kind = "bool"
    elif pd.api.types.is_integer_dtype(series):
        kind = "int"
    elif pd.api.types.is_float_dtype(series):
        kind = "float"
    else:
        kind = "str"
    distinct = present.nunique()
    if kind in ("int", "float") and len(present):
        args += _range(present, kind)
    elif kind == "str" and 0 < distinct <= MAX_CATEGORIES:
        values = sorted(str(v) for v in present.unique())
        args.append(f"isin=({', '.join(json.dumps(v) for v in values)},)")
    elif kind == "str":
        free_text = True
    if missing:
        args.append("nullable=True")
    note = f"{distinct:,} distinct" + (f", {missing:.1%} missing" if missing else "")
    if free_text:
        note += ": free text, no feature"
    return Column(name, kind, f"pa.Field({', '.join(args)})", note, free_text)


def infer(frame: pd.DataFrame) -> list[Column]:
    """One `Column` per column of `frame`, in its order."""
    return [infer_column(str(name), frame[name]) for name in frame.columns]


def render(columns: list[Column], about: dict[str, Any]) -> str:
    """The text of `schema.py` for these columns."""
    lines = [
        '"""The dataset\'s own checks, written by `make init`: review every line.',
        "",
        f"Inferred from {about['source']} ({about['rows']:,} rows).",
        "Review every line: the ranges and category sets are what the data showed, widened by a",
        "margin, not what a valid record can hold. Tighten them to the domain of each field, and",
        "add the cross-column rules your data must hold to `ROW_RULES`.",
        "",
        "- `RecordSchema`: every column of a labelled record as ingested. Which column is the",
        "  label, the clock, or no feature is declared in `params.yaml`; the labels are the",
        "  category set of the `base.target` column.",
        "- `ROW_RULES`: cross-column rules that hold on every row.",
        '"""',
        "",
        "from __future__ import annotations",
        "",
        "import pandera.pandas as pa",
        "from pandera.typing import Series",
        "",
        "from tabml.checks import RowRule",
        "",
        "",
        "class RecordSchema(pa.DataFrameModel):",
        '    """One record as ingested."""',
        "",
    ]
    for column in columns:
        lines.append(f"    # {column.note}")
        lines.append(f"    {column.name}: Series[{column.kind}] = {column.field}")
    lines += [
        "",
        "    class Config:",
        "        strict = True",
        "",
        "",
        "# Rules that hold on every row, across columns: RowRule(name, columns, description,",
        "# lambda frame: boolean Series). None is inferred.",
        "ROW_RULES: tuple[RowRule, ...] = ()",
        "",
    ]
    return "\n".join(lines)
