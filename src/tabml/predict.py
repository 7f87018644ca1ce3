"""Scoring in one place: load a model, score a frame, decide with the threshold.

Every stage and tool that scores (evaluate, monitor, retrain, simulate, the smoke test's golden
answers) goes through here, so the columns a model reads, the label it is judged against and the
threshold it decides with cannot part ways. The service scores with the compiled graph of
`tabml.serving.inference`, which is used only where it matches `score` (its parity check).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from tabml.io import DataError

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

    from tabml.params import Params


def load_model(path: str | Path) -> Pipeline:
    """The fitted pipeline that `train` wrote."""
    import joblib

    if not Path(path).is_file():
        raise DataError(f"{path}: no model file; run `make repro` first.")
    return joblib.load(path)


def features(model: Any) -> list[str]:
    """The columns the model reads, in its order."""
    return list(model.feature_names_in_)


def score(model: Any, frame: pd.DataFrame) -> np.ndarray:
    """Probability of the positive label for each row."""
    missing = [name for name in features(model) if name not in frame.columns]
    if missing:
        raise DataError(f"the rows to score lack the model's column(s) {missing}.")
    return model.predict_proba(frame[features(model)])[:, 1]


def decide(scores: np.ndarray, threshold: float) -> np.ndarray:
    """The decision for each score: positive at or above the threshold."""
    return np.asarray(scores) >= threshold


def labels(frame: pd.DataFrame, params: Params) -> pd.Series:
    """The binary target: 1 where the label is the positive one."""
    return (frame[params.base.target] == params.base.positive_label).astype(int)
