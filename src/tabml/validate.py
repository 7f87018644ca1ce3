"""Stage `validate`: check a snapshot against the schema; write it on only if every check passes.

    python -m tabml.validate --data IN.parquet --out OUT.parquet \
        --report reports/validation.json --summary reports/validation.md
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from typing import Any

import pandas as pd
import pandera.pandas as pa

from tabml import cli
from tabml.io import DataError, atomic_open, read_parquet, write_json, write_parquet
from tabml.params import Params, load_params
from tabml.schema import dataset_schema, summarize_failures

log = logging.getLogger(__name__)


def validate(frame: pd.DataFrame, params: Params) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Validate lazily, so that every failing check is reported at once.

    Returns:
        The validated frame and a report: `passed`, `rows`, `columns` and `failures`, one entry
        per failing (column, check) with the number of failing values and examples.
    """
    report: dict[str, Any] = {"passed": True, "rows": len(frame), "columns": len(frame.columns)}
    try:
        validated = dataset_schema(params).validate(frame, lazy=True)
    except pa.errors.SchemaErrors as exc:
        report.update(passed=False, failures=summarize_failures(exc.failure_cases))
        return frame, report
    report["failures"] = []
    return validated, report


def to_markdown(report: dict[str, Any]) -> str:
    """The report as a markdown table: readable in a terminal and in a pull-request comment."""
    status = "passed" if report["passed"] else "FAILED"
    lines = [f"Data validation {status}: {report['rows']} rows, {report['columns']} columns.", ""]
    if report["failures"]:
        lines += ["| column | check | failing | examples |", "|---|---|---:|---|"]
        for row in report["failures"]:
            examples = ", ".join(f"`{value}`" for value in row["examples"])
            lines.append(f"| {row['column']} | {row['check']} | {row['failing']} | {examples} |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> None:
    ap = cli.parser(__doc__)
    ap.add_argument("--data", required=True, help="snapshot to validate")
    ap.add_argument("--out", required=True, help="validated data to write")
    ap.add_argument("--report", required=True, help="JSON report to write")
    ap.add_argument("--summary", required=True, help="markdown summary to write")
    args = ap.parse_args(argv)
    params = load_params(args.params)
    frame = read_parquet(args.data)
    validated, report = validate(frame, params)
    report["data"] = args.data
    write_json(report, args.report)
    summary = to_markdown(report)
    with atomic_open(args.summary) as fh:
        fh.write(summary)
    if not report["passed"]:
        print(summary, file=sys.stderr)
        raise DataError(
            f"{args.data} failed {len(report['failures'])} check(s); nothing was written to "
            f"{args.out}. Details: {args.report}."
        )
    write_parquet(validated, args.out)
    log.info("validated %d rows; wrote %s", len(validated), args.out)


if __name__ == "__main__":
    cli.run(main)
