"""The monitor's verdict on a window: pure functions on frames and score arrays, no I/O.

A window of production inputs is compared with a reference (the training window's profile and
the model's scores on it) with the measures of `tabml.drift`: PSI of every monitored feature,
PSI of the predicted probability, and, where labels have arrived, the fall of the ROC AUC below
the model's evaluation. `tabml.monitor` (the `make monitor` entry) and `tabml.simulate` both
call `assess`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from tabml.drift import build_profile, column_psi, feature_drift, is_numeric
from tabml.io import DataError
from tabml.params import Params

SCORE = "probability"
TOP = 5  # drifted features named in the one-line verdict


@dataclass(frozen=True)
class Reference:
    """What a window is compared with: feature profiles, score profile, expected ROC AUC."""

    columns: Mapping[str, Any]
    scores: Mapping[str, Any]
    roc_auc: float | None = None


def reference_from(
    frame: pd.DataFrame, scores: np.ndarray, features: Sequence[str], roc_auc: float | None = None
) -> Reference:
    """The reference of a model: the profile of its training rows and its scores on them."""
    return Reference(build_profile(frame[list(features)]), score_profile(scores), roc_auc)


def score_profile(scores: np.ndarray) -> dict[str, Any]:
    """Decile profile of a score array (the same form as a numeric column's profile)."""
    return build_profile(pd.DataFrame({SCORE: np.asarray(scores, dtype=float)}))[SCORE]


def check_window(frame: pd.DataFrame, reference: Reference, features: Sequence[str],
                 min_rows: int) -> None:  # fmt: skip
    """Refuse a window the measures cannot judge, naming what is wrong."""
    missing = [name for name in features if name not in frame.columns]
    if missing:
        raise DataError(f"the window lacks the model feature column(s) {missing}.")
    unknown = [name for name in features if name not in reference.columns]
    if unknown:
        raise DataError(f"the reference profile has no column {unknown}: rewrite it.")
    if len(frame) < min_rows:
        raise DataError(
            f"the window holds {len(frame)} rows; at least monitor.min_rows = {min_rows} are "
            "needed for a verdict (drift measures on fewer rows are noise)."
        )
    for name in features:
        numeric = reference.columns[name]["kind"] == "numeric"
        if numeric != is_numeric(frame[name]) and frame[name].notna().any():
            expected = "numbers" if numeric else "categories"
            raise DataError(
                f"column '{name}' of the window holds {frame[name].dtype}; the reference holds "
                f"{expected}."
            )
        if frame[name].isna().all():
            raise DataError(f"column '{name}' of the window holds only nulls.")


def assess(
    frame: pd.DataFrame,
    scores: np.ndarray,
    y: np.ndarray | None,
    reference: Reference,
    features: Sequence[str],
    params: Params,
) -> dict[str, Any]:
    """The monitor's verdict on one window: drift or not, why, and every measure."""
    cfg, limits = params.monitor, params.drift
    features = [name for name in features if name not in limits.exclude]
    check_window(frame, reference, features, cfg.min_rows)
    drift = feature_drift(frame, reference.columns, features, limits.max_feature_psi)
    reasons = [
        f"feature PSI {row['feature']} {row['psi']:.2f} > {limits.max_feature_psi}"
        for row in drift
        if row["drifted"]
    ]
    score_psi = column_psi(pd.Series(scores, dtype=float), reference.scores) or 0.0
    if score_psi > limits.max_score_psi:
        reasons.append(f"score PSI {score_psi:.2f} > {limits.max_score_psi}")
    performance = None
    if y is not None and len(np.unique(y)) == 2 and reference.roc_auc is not None:
        from sklearn.metrics import average_precision_score, roc_auc_score

        auc = float(roc_auc_score(y, scores))
        drop = reference.roc_auc - auc
        performance = {
            "rows": len(y), "positive_rate": float(np.mean(y)), "roc_auc": auc,
            "pr_auc": float(average_precision_score(y, scores)),
            "expected_roc_auc": reference.roc_auc, "roc_auc_drop": drop,
        }  # fmt: skip
        if drop > cfg.max_auc_drop:
            reasons.append(
                f"ROC AUC {auc:.3f}, {drop:.3f} below the evaluation's {reference.roc_auc:.3f} "
                f"(limit {cfg.max_auc_drop})"
            )
    return {
        "drift": bool(reasons),
        "reasons": reasons,
        "rows": len(frame),
        "drifted_features": [row["feature"] for row in drift if row["drifted"]],
        "features": drift,
        "excluded": list(limits.exclude),
        "score": {
            "psi": score_psi,
            "median": float(np.median(scores)),
            "reference_median": reference.scores["median"],
        },
        "performance": performance,
        "limits": {
            "max_feature_psi": limits.max_feature_psi,
            "max_score_psi": limits.max_score_psi,
            "max_auc_drop": cfg.max_auc_drop,
            "min_rows": cfg.min_rows,
        },
    }


def headline(result: Mapping[str, Any]) -> str:
    """One line: the verdict and the largest drifts."""
    if not result["drift"]:
        top = result["features"][0] if result["features"] else None
        largest = f"; largest feature PSI {top['feature']} {top['psi']:.2f}" if top else ""
        return f"No drift in {result['rows']:,} rows{largest}."
    named = result["drifted_features"][:TOP]
    more = len(result["drifted_features"]) - len(named)
    features = ", ".join(named) + (f" and {more} more" if more > 0 else "")
    parts = [f"drifted features: {features}"] if named else []
    parts += [r for r in result["reasons"] if not r.startswith("feature PSI")]
    return f"DRIFT in {result['rows']:,} rows: " + "; ".join(parts) + "."
