"""Validation failures as findings, and the report a reviewer reads.

pandera reports every failure of a lazy validation as one row of `failure_cases`; this module
groups them into one finding per failing (check, column), with counts, example values and the
rule in plain words, and writes the verdict and the markdown table.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import pandera.pandas as pa

from tabml.checks import MAX_EXAMPLES, Measure, RowRule, Rule

ERROR, DROPPED, WARNING = "error", "dropped", "warning"
MAX_CELL = 100


@dataclass
class Finding:
    """One line of the report: a failing (check, column) with counts and example values."""

    check: str
    column: str
    severity: str
    failing: int | None
    examples: list[str]
    rule: str = ""
    rows: pd.Index | None = field(default=None, repr=False)  # failing row labels, if row-level

    def to_dict(self) -> dict[str, Any]:
        keys = ("check", "column", "severity", "failing", "examples", "rule")
        return {key: getattr(self, key) for key in keys}


# Plain words for pandera's built-in checks, so that the report explains itself.
BUILTIN_RULES = {
    "column_in_dataframe": "the column must be present",
    "column_in_schema": "only the schema's columns may be present",
    "not_nullable": "no nulls",
    "isin": "value in the allowed set",
    "greater_than_or_equal_to": "value >= the bound",
    "less_than_or_equal_to": "value <= the bound",
    "greater_than": "value > the bound",
    "dtype": "the column's type",
}


def collect(
    schema: pa.DataFrameSchema,
    frame: pd.DataFrame,
    severity: str,
    rules: Mapping[str, Rule | RowRule],
) -> list[Finding]:
    """Validate lazily and turn every failure into a finding with counts and examples."""
    try:
        # inplace: no coercion is configured, so nothing is changed, and no copy is made.
        schema.validate(frame, lazy=True, inplace=True)
    except pa.errors.SchemaErrors as exc:
        return findings(exc.failure_cases, frame, severity, rules)
    return []


def findings(
    cases: pd.DataFrame, frame: pd.DataFrame, severity: str, rules: Mapping[str, Rule | RowRule]
) -> list[Finding]:
    """One finding per failing (column, check), in the order pandera found them."""
    out: list[Finding] = []
    wrong_type = set(cases.loc[cases["check"].str.startswith("dtype("), "column"])
    table = cases["schema_context"] != "Column"
    for check, group in cases[table].groupby("check", sort=False):
        rule = rules.get(str(check))
        if isinstance(rule, Rule):
            try:
                measured = rule.measure(frame)
            except Exception as exc:  # pandera caught it once already: report, do not crash
                measured = Measure(None, None, (f"{type(exc).__name__}: {exc}",))
            out.append(
                Finding(rule.name, measured.column or rule.column, severity, measured.failing,
                        list(measured.examples), rule.text)
            )  # fmt: skip
        elif isinstance(rule, RowRule):
            rows = pd.Index(group["index"].dropna().unique())
            # Distinct combinations of the rule's columns among the first failing rows.
            shown = frame.loc[rows[: MAX_EXAMPLES * 20], list(rule.columns)].drop_duplicates()
            examples = [
                ", ".join(f"{c}={v}" for c, v in row.items())
                for _, row in shown.head(MAX_EXAMPLES).iterrows()
            ]
            out.append(
                Finding(rule.name, ", ".join(rule.columns), severity, len(rows), examples,
                        rule.text, rows)
            )  # fmt: skip
        else:  # a column missing from the data or not in the schema
            for name in group["failure_case"].astype(str):
                out.append(Finding(str(check), name, severity, None, [], _builtin_rule(check)))
    for (column, check), group in cases[~table].groupby(["column", "check"], sort=False):
        check = str(check)
        if column in wrong_type and not check.startswith("dtype("):
            continue  # range or set checks on a column of the wrong type only repeat the error
        if check.startswith("dtype("):
            failing, examples = _wrong_type(frame[column], check)
            rows = None
        else:
            rows = pd.Index(group["index"].dropna().unique())
            failing = len(rows)
            examples = _shown(group["failure_case"])
        out.append(
            Finding(check, str(column), severity, failing, examples, _builtin_rule(check), rows)
        )
    return out


def _builtin_rule(check: str) -> str:
    return BUILTIN_RULES.get(str(check).split("(", 1)[0], "")


def _shown(values: pd.Series) -> list[str]:
    text = values.astype(object).map(lambda v: "null" if _is_null(v) else str(v))
    return [str(v) for v in pd.unique(text)[:MAX_EXAMPLES]]


def _is_null(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA


def _wrong_type(values: pd.Series, check: str) -> tuple[int, list[str]]:
    """Rows whose value does not fit the expected type, and a few of them."""
    expected = re.sub(r"dtype\('?([^')]*)'?\)", r"\1", check)
    if expected.startswith(("int", "float")):
        numbers = pd.to_numeric(values, errors="coerce")
        bad = numbers.isna()
        if expected.startswith("int"):
            bad |= numbers.notna() & (numbers % 1 != 0)
    else:
        bad = values.notna()  # numbers where text belongs: every value is of the wrong type
    failing = int(bad.sum()) or len(values)
    return failing, [f"found {values.dtype}", *_shown(values[bad] if bad.any() else values)]


def verdict(report: dict[str, Any]) -> str:
    """One line a reviewer can act on."""
    size = f"{report['rows']:,} rows x {report['columns']} columns"
    warned = len(report["warnings"])
    warnings = f"{warned} drift warning(s), which do not stop the pipeline" if warned else ""
    if not report["passed"]:
        extra = f" and {warned} warning(s)" if warned else ""
        return (
            f"Data validation FAILED: {len(report['failures'])} error(s){extra} in {size}. "
            "Nothing was written; the pipeline stops before training."
        )
    notes = [f"{report['rows_dropped']:,} invalid rows dropped"] if report["rows_dropped"] else []
    return "; ".join([f"Data validation passed: {size}", *notes, *filter(None, [warnings])]) + "."


def to_markdown(report: dict[str, Any]) -> str:
    """The report for a terminal and a pull-request comment: verdict, table, how to read it."""
    lines = [f"**{report['verdict']}**", ""]
    findings = report["failures"] + report["dropped"] + report["warnings"]
    if findings:
        lines += [*markdown_table(findings), ""]
    lines.append(
        f"Severity: **{ERROR}** stops the pipeline before training; **{DROPPED}**: rows removed "
        f"(`validate.invalid_rows: drop`); **{WARNING}**: reported only. "
        "Thresholds: sections `validate` (errors) and `drift` (warnings) of `params.yaml`."
    )
    ref = report["reference"]
    if ref:
        lines.append(
            f"Drift reference: rows [{ref['start']}, {ref['stop']}) of `{ref['source']}` "
            f"({ref['rows']:,} rows, the training window)."
        )
    return "\n".join(lines) + "\n"


def markdown_table(findings: Sequence[Mapping[str, Any]]) -> list[str]:
    """Findings as markdown rows: check, column, severity, failing rows, examples, rule."""
    lines = [
        "| check | column | severity | failing rows | examples | rule |",
        "|---|---|---|---:|---|---|",
    ]
    for f in findings:
        failing = "" if f["failing"] is None else f"{f['failing']:,}"
        examples = ", ".join("`" + _cell(e).replace("`", "'") + "`" for e in f["examples"])
        cells = (_cell(f["check"]), _cell(f["column"]), f["severity"], failing, examples)
        lines.append("| " + " | ".join([*cells, _cell(f["rule"])]) + " |")
    return lines


def _cell(text: str) -> str:
    """Text that cannot break a table row, cut to a readable length."""
    text = " ".join(str(text).split()).replace("|", "\\|")
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 3] + "..."
