"""The estimators `train.estimator` can name, each configured by the section of its name."""

from __future__ import annotations

from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression

ESTIMATORS = {
    "hist_gradient_boosting": HistGradientBoostingClassifier,
    "logistic_regression": LogisticRegression,
}

# Estimators that take missing values as they are; the others get an imputer first.
NATIVE_MISSING = {"hist_gradient_boosting"}
