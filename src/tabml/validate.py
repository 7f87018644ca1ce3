"""Stage `validate`: check a snapshot; write it on only if no check fails with severity error.

    python -m tabml.validate --data IN.parquet --reference PROFILE.json --out OUT.parquet \
        --report reports/validation.json --summary reports/validation.md
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import pandas as pd

from tabml import cli
from tabml.dataset import (
    check_settings,
    dataset_schema,
    drift_schema,
    rules_by_key,
    whole_numbers_as_float,
)
from tabml.findings import DROPPED, ERROR, WARNING, Finding, collect, to_markdown, verdict
from tabml.io import DataError, atomic_open, read_json, read_parquet, write_json, write_parquet
from tabml.params import Params, load_params

log = logging.getLogger(__name__)

POLICIES = ("fail", "drop")


def validate(
    frame: pd.DataFrame, params: Params, reference: dict[str, Any] | None = None
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Run every check at once; drop invalid rows if the policy says so.

    Returns:
        The validated frame and the report: `passed`, `verdict`, counts, and the findings
        (`failures`: errors, `dropped`, `warnings`: drift from `reference`, if given).
    """
    cfg = params.validate
    if cfg.invalid_rows not in POLICIES:
        raise DataError(f"validate.invalid_rows is '{cfg.invalid_rows}'; expected {POLICIES}.")
    frame = whole_numbers_as_float(frame.reset_index(drop=True))  # rows reported by position
    rules, schema = rules_by_key(params, reference), dataset_schema(params)
    errors = collect(schema, frame, ERROR, rules)
    kept, dropped = frame, []
    invalid = pd.Index([]).append([f.rows for f in errors if f.rows is not None]).unique()
    if cfg.invalid_rows == "drop" and len(invalid):
        share = len(invalid) / len(frame)
        if share <= cfg.max_invalid_share:
            kept = frame.drop(index=invalid).reset_index(drop=True)
            dropped = [replace(f, severity=DROPPED) for f in errors if f.rows is not None]
            errors = collect(schema, kept, ERROR, rules)
        else:
            errors.append(
                Finding("max_invalid_share", "*", ERROR, len(invalid), [f"{share:.1%} invalid"],
                        f"to drop invalid rows, at most {cfg.max_invalid_share:.1%} may be")
            )  # fmt: skip
    warnings = collect(drift_schema(params, reference), kept, WARNING, rules) if reference else []
    report: dict[str, Any] = {
        "passed": not errors,
        "rows": len(frame),
        "columns": len(frame.columns),
        "invalid_rows": cfg.invalid_rows,
        "rows_dropped": len(frame) - len(kept),
        "reference": {k: v for k, v in (reference or {}).items() if k != "columns"} or None,
        "failures": [f.to_dict() for f in errors],
        "dropped": [f.to_dict() for f in dropped],
        "warnings": [f.to_dict() for f in warnings],
    }
    report["verdict"] = verdict(report)
    return kept, report


def main(argv: Sequence[str] | None = None) -> None:
    ap = cli.parser(__doc__)
    ap.add_argument("--data", required=True, help="snapshot to validate")
    ap.add_argument("--reference", help="reference profile (JSON) for drift warnings")
    ap.add_argument("--out", required=True, help="validated data to write")
    ap.add_argument("--report", required=True, help="JSON report to write")
    ap.add_argument("--summary", required=True, help="markdown summary to write")
    args = ap.parse_args(argv)
    params = load_params(args.params)
    check_settings(params)  # before any data is read: a stale setting is the first thing to fix
    reference = read_reference(args.reference) if args.reference else None
    if reference:
        check_declared(reference, params)
    validated, report = validate(read_parquet(args.data), params, reference)
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
    log.info("%s; wrote %s", report["verdict"], args.out)


def check_declared(profile: dict[str, Any], params: Params) -> None:
    """Refuse a profile of another window than section `drift` declares."""
    start, stop = params.drift.reference_start, params.drift.reference_stop
    found = (profile.get("start"), profile.get("stop"))
    if found[0] != start or (stop is not None and found[1] != stop):
        raise DataError(
            f"the reference profile covers rows [{found[0]}, {found[1]}), but "
            f"drift.reference_start/stop declare [{start}, {stop}): run "
            "`make reference-profile` and commit data/reference/."
        )


def read_reference(path: str) -> dict[str, Any]:
    try:
        return read_json(path)
    except FileNotFoundError:
        raise DataError(
            f"{path}: no reference profile; write it with `make reference-profile`."
        ) from None


if __name__ == "__main__":
    cli.run(main)
