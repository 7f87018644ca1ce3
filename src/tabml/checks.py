"""The measurements behind the batch checks.

`schema.py` declares every check; this module holds what they compute. Each batch-level rule
measures one number over the whole batch (a share, a count, an AUC, a drift index) with
vectorised pandas and numpy, so that a failure can say what was measured, not only that a
check failed; `tabml.findings` turns failures into the report. Nothing here reads files or
params.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import pandera.pandas as pa

from tabml.drift import column_psi, moved

MAX_EXAMPLES = 5
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


# Drift against the reference profile (measures in tabml.drift) ----------------------------


def drift(frame: pd.DataFrame, column: str, reference: Mapping[str, Any]) -> Measure:
    """PSI of the column against its reference profile, and what moved."""
    if column not in frame:
        return Measure(None)
    value = column_psi(frame[column], reference)
    if value is None:
        return Measure(None)  # a column of the wrong type: its dtype check reports it
    return Measure(value, None, (f"PSI {value:.2f}", *moved(frame[column], reference)))
