"""The metric gate of a pull request: absolute floors, and the largest allowed fall against base.

    python -m tabml.gate --base REF [--metrics M] --params params.yaml

Rules live in the `gate` section of `params.yaml`, keyed `split.metric`. The rules that judge a
change are those of the base revision when it has them, so that a pull request cannot loosen
the check that judges it; the change shows in the report and applies once merged.

Tolerances compare like with like: when the change moves the evaluated rows (the `ingest` or
`split` section differs from the base's, as in a retraining pull request), the base's metrics
were measured on other rows, so only the floors judge it and the report says why. The metrics
default to params.yaml's `paths.metrics`.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tabml.params import GateParams, load_params

log = logging.getLogger(__name__)

EXIT_GATE_FAILED = 1
EXIT_BAD_BASE = 2
NO_COMMIT = "0" * 40  # GitHub's `before` of a push that creates a branch: there is no base


class UnknownBaseError(Exception):
    """A base revision was named but this clone does not have it."""

    def __init__(self, ref: str) -> None:
        super().__init__(
            f"base revision '{ref}' is not in this clone: fetch it (git fetch origin {ref}) "
            "or name a branch or commit that exists (BASE=main)."
        )


# Sections of params.yaml that decide which rows the metrics are measured on.
ROW_SECTIONS = ("ingest", "split")


@dataclass(frozen=True)
class Verdict:
    """The outcome of one rule on one metric."""

    metric: str
    rule: str  # "floor" or "tolerance"
    limit: float
    head: float | None
    base: float | None
    passed: bool
    reason: str


def lookup(metrics: dict[str, Any] | None, key: str) -> float | None:
    """`test.roc_auc` -> metrics["test"]["roc_auc"], or None where it is missing."""
    value: Any = metrics
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return float(value) if isinstance(value, int | float) else None


def check(
    head: dict, base: dict | None, rules: GateParams, same_rows: bool = True
) -> list[Verdict]:
    """Apply every floor and tolerance; a metric missing from `head` fails its rules.

    With `same_rows` false (base measured on other rows) tolerances are not compared.
    """
    verdicts = []
    for key, floor in rules.floors.items():
        value = lookup(head, key)
        lower = key.rsplit(".", 1)[-1] in rules.lower_is_better
        if value is None:
            verdicts.append(Verdict(key, "floor", floor, None, None, False, "missing"))
            continue
        passed = value <= floor if lower else value >= floor
        if passed:
            reason = f"{value:.4f} {'<=' if lower else '>='} {floor:g}"
        else:
            reason = f"{value:.4f} {'above the ceiling' if lower else 'below the floor'} {floor:g}"
        verdicts.append(Verdict(key, "floor", floor, value, None, passed, reason))
    for key, tolerance in rules.tolerances.items():
        value, before = lookup(head, key), lookup(base, key)
        lower = key.rsplit(".", 1)[-1] in rules.lower_is_better
        if value is None:
            verdicts.append(Verdict(key, "tolerance", tolerance, None, before, False, "missing"))
            continue
        if before is None:
            reason = "no base value to compare with"
            verdicts.append(Verdict(key, "tolerance", tolerance, value, None, True, reason))
            continue
        if not same_rows:
            reason = "not compared: the base measured other rows (ingest or split changed)"
            verdicts.append(Verdict(key, "tolerance", tolerance, value, before, True, reason))
            continue
        worse = value - before if lower else before - value
        passed = worse <= tolerance + 1e-12
        word = "rose" if lower else "fell"
        reason = f"{word} by {max(worse, 0.0):.4f} (allowed {tolerance:g})"
        verdicts.append(Verdict(key, "tolerance", tolerance, value, before, passed, reason))
    return verdicts


def to_markdown(verdicts: list[Verdict]) -> str:
    """One row per rule, failures first, so the reason for a red check is on top."""
    if not verdicts:
        return "No gate rules are set (`gate` in params.yaml).\n"
    failed = [v for v in verdicts if not v.passed]
    head = (
        f"**Gate FAILED**: {len(failed)} of {len(verdicts)} rules broken."
        if failed
        else (f"**Gate passed**: all {len(verdicts)} rules hold.")
    )
    lines = [
        head,
        "",
        "| | metric | rule | base | this change | outcome |",
        "|---|---|---|---:|---:|---|",
    ]

    def cell(value: float | None) -> str:
        return "-" if value is None else f"{value:.4f}"

    for v in sorted(verdicts, key=lambda v: v.passed):
        mark = "pass" if v.passed else "**FAIL**"
        rule = f"{v.rule} {v.limit:g}"
        lines.append(
            f"| {mark} | `{v.metric}` | {rule} | {cell(v.base)} | {cell(v.head)} | {v.reason} |"
        )
    return "\n".join(lines) + "\n"


def git_show(ref: str, path: str) -> str | None:
    """The file's content at `ref`, or None when the revision or the file does not exist."""
    spec = f"{ref}:./{os.path.relpath(path)}"  # `./`: relative to the working directory
    done = subprocess.run(["git", "show", spec], capture_output=True, text=True, check=False)
    return done.stdout if done.returncode == 0 else None


def resolve(ref: str | None) -> str | None:
    """The commit `ref` names; None when none is named (or a push that created its branch).

    Raises:
        UnknownBaseError: a revision was named that this clone does not have.
    """
    if not ref or ref == NO_COMMIT:
        return None
    done = subprocess.run(
        ["git", "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"],
        capture_output=True,
        text=True,
        check=False,
    )
    if not done.stdout.strip():
        raise UnknownBaseError(ref)
    return done.stdout.strip()


def base_rules(base: str | None, params_path: str, fallback: GateParams) -> GateParams:
    """The base revision's gate rules, or `fallback` when the base has none."""
    text = git_show(base, params_path) if base else None
    values = (yaml.safe_load(text) or {}).get("gate") if text else None
    if not values:
        return fallback
    return GateParams(
        floors=dict(values.get("floors") or {}),
        tolerances=dict(values.get("tolerances") or {}),
        lower_is_better=tuple(values.get("lower_is_better") or fallback.lower_is_better),
    )


def same_rows(base: str | None, params_path: str) -> bool:
    """Whether the base's metrics come from the same rows: same `ingest` and `split` params."""
    text = git_show(base, params_path) if base else None
    if not text:
        return True
    before = yaml.safe_load(text) or {}
    with Path(params_path).open(encoding="utf-8") as fh:
        now = yaml.safe_load(fh) or {}
    return all(before.get(section) == now.get(section) for section in ROW_SECTIONS)


def evaluate_gate(
    base: str | None, metrics_path: str, params_path: str
) -> tuple[list[Verdict], GateParams]:
    """Verdicts for the working tree's metrics against `base`, with the rules that applied."""
    rules = base_rules(base, params_path, load_params(params_path).gate)
    with Path(metrics_path).open(encoding="utf-8") as fh:
        head = json.load(fh)
    text = git_show(base, metrics_path) if base else None
    base_metrics = json.loads(text) if text else None
    return check(head, base_metrics, rules, same_rows(base, params_path)), rules


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", default="", help="git revision to compare with (empty: none)")
    ap.add_argument("--metrics", help="default: paths.metrics")
    ap.add_argument("--params", default="params.yaml")
    args = ap.parse_args(argv)
    try:
        base = resolve(args.base)
    except UnknownBaseError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        sys.exit(EXIT_BAD_BASE)
    metrics = args.metrics or load_params(args.params).paths.metrics
    verdicts, _ = evaluate_gate(base, metrics, args.params)
    print(to_markdown(verdicts))
    failed = [v for v in verdicts if not v.passed]
    if failed:
        names = ", ".join(f"{v.metric} ({v.rule}: {v.reason})" for v in failed)
        print(f"ERROR: the gate failed: {names}.", file=sys.stderr)
        sys.exit(EXIT_GATE_FAILED)


if __name__ == "__main__":
    main()
