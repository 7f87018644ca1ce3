"""Drift: one set of measures, for validate's warnings and for the monitor.

A profile describes each column of a reference window: decile edges and the share of rows in
each bin for numbers, the share of each category for the rest, and the share of missing values.
A window is compared with it by the population stability index (PSI) over the same bins or
categories, so a number means the same thing wherever it is reported, and one section of
`params.yaml` (`drift`) holds the limits. Edges are kept exact: a value equal to an edge lands
in the same bin in the reference and in the window, which matters for coarse scores. Nothing
here reads files or params.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

DECILES = tuple(q / 10 for q in range(1, 10))
PSI_FLOOR = 1e-4  # share floor that keeps PSI finite when a bin is empty on one side
SHOWN = 3  # categories named in what moved


def is_numeric(values: pd.Series) -> bool:
    # pandas 3 gives text columns a `str` dtype, not `object`: ask for numbers instead.
    return pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)


def bin_shares(values: pd.Series, edges: Sequence[float]) -> np.ndarray:
    """Share of the non-null values in each bin; bin i holds edges[i-1] <= v < edges[i]."""
    bins = np.searchsorted(np.asarray(edges, dtype=float), values.dropna().to_numpy(), "right")
    counts = np.bincount(bins, minlength=len(edges) + 1)
    return counts / max(counts.sum(), 1)


def profile_column(values: pd.Series) -> dict[str, Any]:
    """The reference description of one column."""
    missing = float(values.isna().mean()) if len(values) else 0.0
    if is_numeric(values):
        present = values.dropna().astype(float)
        edges = np.unique(present.quantile(DECILES).to_numpy()) if len(present) else []
        return {
            "kind": "numeric",
            "edges": [float(e) for e in edges],
            "shares": [float(s) for s in bin_shares(present, edges)],
            "median": float(present.median()) if len(present) else None,
            "missing": missing,
        }
    shares = values.value_counts(normalize=True, sort=False).sort_index()
    return {
        "kind": "categorical",
        "shares": {str(k): float(v) for k, v in shares.items()},
        "missing": missing,
    }


def build_profile(frame: pd.DataFrame, exclude: Sequence[str] = ()) -> dict[str, Any]:
    """The profile of every column of `frame` but `exclude`."""
    return {name: profile_column(frame[name]) for name in frame.columns if name not in exclude}


def psi(actual: np.ndarray, expected: np.ndarray) -> float:
    """Population stability index between two share vectors over the same bins."""
    a, e = np.maximum(actual, PSI_FLOOR), np.maximum(expected, PSI_FLOOR)
    return float(((a - e) * np.log(a / e)).sum())


def category_shares(values: pd.Series, shares: Mapping[str, float]) -> pd.DataFrame:
    """Shares now and in the reference over the categories of both (a new one counts)."""
    now = values.dropna().astype(str).value_counts(normalize=True)
    before = pd.Series(dict(shares), dtype=float)
    categories = before.index.union(now.index)
    return pd.DataFrame(
        {
            "now": now.reindex(categories, fill_value=0.0),
            "before": before.reindex(categories, fill_value=0.0),
        }
    )


def with_missing(shares: np.ndarray, missing: float) -> np.ndarray:
    """Shares of the present values, scaled to all rows, plus the missing share as a bin."""
    return np.append(np.asarray(shares, dtype=float) * (1 - missing), missing)


def column_psi(values: pd.Series, reference: Mapping[str, Any]) -> float | None:
    """PSI of a column against its reference, missing values counted as one more bin.

    None when the column cannot be compared (numbers expected, text found).
    """
    if reference["kind"] == "numeric" and values.notna().any() and not is_numeric(values):
        return None
    missing, before = float(values.isna().mean()), float(reference.get("missing", 0.0))
    if reference["kind"] == "numeric":
        now, then = bin_shares(values, reference["edges"]), np.asarray(reference["shares"])
    else:
        both = category_shares(values, reference["shares"])
        now, then = both["now"].to_numpy(), both["before"].to_numpy()
    if values.notna().sum() == 0:
        now = np.zeros_like(then)
    return psi(with_missing(now, missing), with_missing(then, before))


def moved(values: pd.Series, reference: Mapping[str, Any]) -> list[str]:
    """What moved, in words: the median of a number, the largest share changes of categories."""
    notes = []
    if reference["kind"] == "numeric":
        if is_numeric(values) and values.notna().any() and reference["median"] is not None:
            notes.append(f"median {values.median():.4g} (reference {reference['median']:.4g})")
    else:
        both = category_shares(values, reference["shares"])
        change = (both["now"] - both["before"]).abs().sort_values(ascending=False, kind="stable")
        notes += [
            f"{name}: {both.at[name, 'now']:.1%} (reference {both.at[name, 'before']:.1%})"
            for name in change.index[:SHOWN]
        ]
    missing, before = float(values.isna().mean()), float(reference.get("missing", 0.0))
    if missing or before:
        notes.append(f"missing {missing:.1%} (reference {before:.1%})")
    return notes


def feature_drift(
    frame: pd.DataFrame, profile: Mapping[str, Any], features: Sequence[str], limit: float
) -> list[dict[str, Any]]:
    """PSI of each feature against the profile, largest first, with what moved."""
    rows = []
    for name in features:
        value = column_psi(frame[name], profile[name]) or 0.0
        rows.append(
            {"feature": name, "kind": profile[name]["kind"], "psi": value,
             "drifted": value > limit, "detail": moved(frame[name], profile[name])}
        )  # fmt: skip
    return sorted(rows, key=lambda row: -row["psi"])
