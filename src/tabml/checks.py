"""The measurements behind the batch checks, and the report they feed.

`schema.py` declares every check; this module holds what they compute. Each batch-level rule
measures one number over the whole batch (a share, a count, an AUC, a drift index) with
vectorised pandas and numpy, so that a failure can say what was measured, not only that a
check failed. Nothing here reads files or params.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import pandera.pandas as pa

ERROR, DROPPED, WARNING = "error", "dropped", "warning"
MAX_EXAMPLES = 5
# Reference bins for numeric drift (deciles) and the share floor that keeps PSI finite.
DRIFT_QUANTILES = tuple(q / 10 for q in range(1, 10))
PSI_FLOOR = 1e-4
# Share of an added column's values that must pass a missing column's checks to call it a rename.
RENAME_FIT = 0.99


class Measure(NamedTuple):
    """What a rule measured. `value` None: the rule does not apply (e.g. its column is absent)."""

    value: float | None
    failing: int | None = None
    examples: tuple[str, ...] = ()
    column: str | None = None  # the columns concerned, when only the measurement knows them


@dataclass(frozen=True)
class Rule:
    """A batch-level check: `measure(frame).value` must lie within [low, high]."""

    name: str
    column: str
    text: str
    measure: Callable[[pd.DataFrame], Measure]
    low: float = -math.inf
    high: float = math.inf

    @property
    def key(self) -> str:
        """The unique name pandera reports the check under."""
        return f"{self.name}[{self.column}]"

    def passes(self, frame: pd.DataFrame) -> bool:
        value = self.measure(frame).value
        return value is None or self.low <= value <= self.high

    def check(self) -> pa.Check:
        return pa.Check(self.passes, name=self.key)


@dataclass(frozen=True)
class RowRule:
    """A cross-column rule that every row must satisfy; failing rows can be dropped."""

    name: str
    columns: tuple[str, ...]
    text: str
    holds: Callable[[pd.DataFrame], pd.Series]

    def mask(self, frame: pd.DataFrame) -> pd.Series | bool:
        if not set(self.columns) <= set(frame.columns):
            return True  # the missing column is reported by the schema itself
        try:
            holds = self.holds(frame)
        except TypeError:
            return True  # a column of the wrong type is reported by its dtype check
        return holds | frame[list(self.columns)].isna().any(axis=1)  # nulls: not_nullable

    def check(self) -> pa.Check:
        return pa.Check(self.mask, name=self.name)


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


# Measurements -------------------------------------------------------------------------------


def row_count(frame: pd.DataFrame) -> Measure:
    return Measure(len(frame), None, (f"{len(frame):,} rows",))


def duplicate_share(frame: pd.DataFrame, exclude: Sequence[str]) -> Measure:
    """Share of rows that repeat an earlier row exactly (ignoring `exclude`)."""
    columns = [c for c in frame.columns if c not in exclude]
    if frame.empty or not columns:
        return Measure(None)
    # One 64-bit hash per row, then duplicates of the hashes: much faster than comparing rows.
    hashes = pd.util.hash_pandas_object(frame[columns], index=False)
    repeated = hashes.duplicated()
    count = int(repeated.sum())
    first = frame.index[repeated.to_numpy()][:MAX_EXAMPLES]
    return Measure(count / len(frame), count, tuple(f"row {i}" for i in first))


def label_classes(frame: pd.DataFrame, target: str, labels: Sequence[str]) -> Measure:
    """How many of the expected labels occur."""
    if target not in frame:
        return Measure(None)
    seen = [label for label in labels if (frame[target] == label).any()]
    return Measure(len(seen), None, (f"only {seen}" if seen else "no valid label",))


def positive_rate(
    frame: pd.DataFrame, target: str, positive: str, labels: Sequence[str]
) -> Measure:
    """Share of the positive label among the rows that hold a valid label."""
    if target not in frame:
        return Measure(None)
    valid = frame[target].isin(labels)
    if not valid.any():
        return Measure(None)  # no valid label at all: the category check says so
    rate = float((frame[target][valid] == positive).mean())
    return Measure(rate, None, (f"{rate:.1%} '{positive}'",))


def missing_share(frame: pd.DataFrame, column: str, markers: Sequence[str]) -> Measure:
    """Share of nulls and of the data's own missing markers (e.g. "unknown")."""
    if column not in frame or frame.empty:
        return Measure(None)
    values = frame[column]
    missing = values.isna()
    if markers and not pd.api.types.is_numeric_dtype(values):
        missing |= values.isin(markers)
    count = int(missing.sum())
    found = values[missing].astype(object).fillna("null").astype(str).value_counts()
    shown = tuple(f"{name} x{n}" for name, n in found.head(MAX_EXAMPLES).items())
    return Measure(count / len(frame), count, (f"{count / len(frame):.1%} missing", *shown))


def time_disorder(frame: pd.DataFrame, column: str) -> Measure:
    """Rows whose time value is not greater than the previous row's."""
    if column not in frame or not pd.api.types.is_numeric_dtype(frame[column]):
        return Measure(None)
    values = frame[column].to_numpy()
    back = np.flatnonzero(values[1:] <= values[:-1]) + 1
    shown = tuple(f"{values[i]} after {values[i - 1]} (row {i})" for i in back[:MAX_EXAMPLES])
    return Measure(len(back), len(back), shown)


def single_feature_auc(values: pd.Series, positive: pd.Series) -> float | None:
    """ROC AUC of one column used alone as a score, in the better of its two directions.

    Numeric columns score by value; categorical ones by each category's positive rate (the best
    any model could do with that column alone). Computed from counts per distinct value, so it
    costs one hash pass, not a sort of every row.
    """
    keep = values.notna().to_numpy()
    codes, uniques = pd.factorize(values[keep], sort=pd.api.types.is_numeric_dtype(values))
    y = positive.to_numpy()[keep].astype(float)
    pos = np.bincount(codes, weights=y, minlength=len(uniques))
    neg = np.bincount(codes, minlength=len(uniques)) - pos
    n_pos, n_neg = pos.sum(), neg.sum()
    if n_pos == 0 or n_neg == 0:
        return None
    if not pd.api.types.is_numeric_dtype(values):
        order = np.argsort(pos / (pos + neg), kind="stable")
        pos, neg = pos[order], neg[order]
    below = np.cumsum(neg) - neg  # negatives scored strictly lower than each value
    auc = float((pos * (below + neg / 2)).sum() / (n_pos * n_neg))
    return max(auc, 1 - auc)


def feature_auc(frame: pd.DataFrame, column: str, target: str, positive: str) -> Measure:
    if column not in frame or target not in frame:
        return Measure(None)
    try:
        auc = single_feature_auc(frame[column], frame[target] == positive)
    except TypeError:
        return Measure(None)  # an unhashable or mixed column: its dtype check reports it
    if auc is None:
        return Measure(None)
    return Measure(auc, None, (f"ROC AUC {auc:.3f} on its own",))


def leaked_feature(
    frame: pd.DataFrame, column: str, features: Sequence[str], target: str, positive: str
) -> Measure:
    """1 if a column known only after the outcome is among the model's features."""
    if column not in features:
        return Measure(0)
    auc = feature_auc(frame, column, target, positive)
    alone = f"; ROC AUC {auc.value:.3f} on its own in this batch" if auc.value else ""
    return Measure(1, None, (f"'{column}' is a model feature{alone}",))


def schema_changes(frame: pd.DataFrame, columns: Mapping[str, pa.Column]) -> Measure:
    """Missing and added columns, pairing each added column with a missing one it could be.

    An added column is "probably renamed" from a missing one when nearly all of its values pass
    the missing column's own checks (type, range, categories); among several such candidates,
    the one with the closest name wins.
    """
    missing = [name for name in columns if name not in frame]
    added = [name for name in frame.columns if name not in columns]
    examples = [f"missing: {name}" for name in missing] + [f"added: {name}" for name in added]
    for new in added:
        fits = {old: _fit(frame[new], columns[old]) for old in missing}
        candidates = [old for old, share in fits.items() if share >= RENAME_FIT]
        if candidates:
            old = max(candidates, key=lambda o: difflib.SequenceMatcher(None, o, new).ratio())
            examples.append(f"probably renamed: {old} -> {new} ({fits[old]:.0%} of values fit)")
    changed = ", ".join([*missing, *added]) or None
    return Measure(len(missing) + len(added), None, tuple(examples), changed)


def _fit(values: pd.Series, column: pa.Column) -> float:
    """Share of `values` that pass `column`'s checks (0 if the type differs)."""
    if values.empty:
        return 0.0
    try:
        column.validate(values.rename(column.name).to_frame(), lazy=True)
    except pa.errors.SchemaErrors as exc:
        cases = exc.failure_cases
        if cases["index"].isna().any():
            return 0.0  # a column-wide failure, such as the wrong type
        return 1 - cases["index"].nunique() / len(values)
    return 1.0


# Reference profile and drift ---------------------------------------------------------------


def build_profile(frame: pd.DataFrame, exclude: Sequence[str] = ()) -> dict[str, Any]:
    """Distribution of every column: decile bins for numbers, shares for categories."""
    profile: dict[str, Any] = {}
    for name in frame.columns:
        if name in exclude:
            continue
        values = frame[name]
        if pd.api.types.is_numeric_dtype(values):
            edges = np.unique(values.quantile(DRIFT_QUANTILES).to_numpy())
            profile[name] = {
                "kind": "numeric",
                "edges": [round(float(e), 6) for e in edges],
                "shares": _rounded(_bin_shares(values, edges)),
                "median": round(float(values.median()), 6),
            }
        else:
            shares = values.value_counts(normalize=True, sort=False).sort_index()
            profile[name] = {
                "kind": "categorical",
                "shares": dict(zip(shares.index, _rounded(shares.to_numpy()), strict=True)),
            }
    return profile


def _rounded(values: np.ndarray) -> list[float]:
    return [round(float(v), 6) for v in values]


def _bin_shares(values: pd.Series, edges: np.ndarray) -> np.ndarray:
    bins = np.searchsorted(edges, values.dropna().to_numpy(), side="right")
    counts = np.bincount(bins, minlength=len(edges) + 1)
    return counts / max(counts.sum(), 1)


def psi(actual: np.ndarray, expected: np.ndarray) -> float:
    """Population stability index between two share vectors over the same bins."""
    a, e = np.maximum(actual, PSI_FLOOR), np.maximum(expected, PSI_FLOOR)
    return float(((a - e) * np.log(a / e)).sum())


def numeric_drift(frame: pd.DataFrame, column: str, reference: Mapping[str, Any]) -> Measure:
    """PSI of the column's distribution over the reference deciles."""
    if column not in frame or not pd.api.types.is_numeric_dtype(frame[column]):
        return Measure(None)
    values = frame[column]
    if values.notna().sum() == 0:
        return Measure(None)
    edges = np.asarray(reference["edges"], dtype=float)
    index = psi(_bin_shares(values, edges), np.asarray(reference["shares"]))
    median = f"median {values.median():.4g} (reference {reference['median']:.4g})"
    return Measure(index, None, (f"PSI {index:.2f}", median))


def category_drift(frame: pd.DataFrame, column: str, reference: Mapping[str, Any]) -> Measure:
    """The largest change, in share points, of any category against the reference."""
    if column not in frame or pd.api.types.is_numeric_dtype(frame[column]) or frame.empty:
        return Measure(None)
    now = frame[column].value_counts(normalize=True)
    before = pd.Series(reference["shares"], dtype=float)
    both = pd.concat([now.rename("now"), before.rename("before")], axis=1).fillna(0.0)
    change = (both["now"] - both["before"]).abs().sort_values(ascending=False, kind="stable")
    shown = tuple(
        f"{name}: {both.at[name, 'now']:.1%} (reference {both.at[name, 'before']:.1%})"
        for name in change.index[:3]
    )
    return Measure(float(change.iloc[0]), None, shown)


# Failures to findings ----------------------------------------------------------------------

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


# Report --------------------------------------------------------------------------------------

MAX_CELL = 100


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
        "Thresholds: section `validate` of `params.yaml`."
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
