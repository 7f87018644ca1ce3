"""What `make tune` searches and how it scores a candidate: the space, the folds, the objective.

The space is the `tune.<estimator>` block of `params.yaml`, one entry per argument of the
estimator: `{type: int|float, low, high, log, step}` or `{type: categorical, choices: [...]}`.
The folds chain forward through the training window in time order: fold k trains on the first
k of `tune.folds + 1` equal blocks and scores block k + 1, so no fold scores a row earlier than
the rows it trained on, and the valid and test splits are never read.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import TimeSeriesSplit

from tabml.evaluate import profit
from tabml.io import DataError
from tabml.params import Params
from tabml.predict import labels, score
from tabml.train import ESTIMATORS, fit

METRICS = ("roc_auc", "profit_top_k")
KEYS = {
    "int": ({"type", "low", "high"}, {"step", "log"}),
    "float": ({"type", "low", "high"}, {"step", "log"}),
    "categorical": ({"type", "choices"}, set()),
}
SEEDED = "random_state"  # set from base.seed, never searched
Folds = list[tuple[np.ndarray, np.ndarray]]


def check_settings(params: Params) -> None:
    """Stop, in one line, on a `tune` setting the search cannot use."""
    cfg = params.tune
    if cfg.metric not in METRICS:
        raise DataError(f"params.yaml: tune.metric is '{cfg.metric}'; use one of {METRICS}.")
    for key in ("folds", "trials", "batch"):
        if getattr(cfg, key) < (2 if key == "folds" else 1):
            raise DataError(f"params.yaml: tune.{key} is {getattr(cfg, key)}; make it larger.")


def distributions(params: Params) -> dict[str, BaseDistribution]:
    """The Optuna distribution of each parameter the estimator's space declares."""
    name = params.train.estimator
    if name not in ESTIMATORS:
        raise DataError(f"train.estimator is '{name}'; expected one of {sorted(ESTIMATORS)}.")
    estimator = ESTIMATORS[name]
    space = getattr(params.tune, name) or {}
    if not space:
        raise DataError(
            f"params.yaml: tune.{name} declares no parameter to search; declare one of "
            f"{estimator.__name__}'s arguments (docs/tuning.md)."
        )
    known = set(estimator().get_params()) - {SEEDED}
    return {
        key: _distribution(f"tune.{name}.{key}", spec, estimator.__name__, known, key)
        for key, spec in space.items()
    }


def _distribution(where: str, spec: Any, owner: str, known: set[str], key: str):
    if key not in known:
        raise DataError(
            f"params.yaml: {where}: {owner} has no argument '{key}'; use one of "
            f"{sorted(known)} or remove it."
        )
    if not isinstance(spec, dict):
        raise DataError(f"params.yaml: {where} must be a mapping such as {{type: float, ...}}.")
    kind = spec.get("type")
    if kind not in KEYS:
        raise DataError(
            f"params.yaml: {where}: type '{kind}' is no distribution; use one of {sorted(KEYS)}."
        )
    required, optional = KEYS[kind]
    if missing := sorted(required - set(spec)):
        raise DataError(f"params.yaml: {where}: a {kind} needs {missing}.")
    if unknown := sorted(set(spec) - required - optional):
        raise DataError(
            f"params.yaml: {where}: unknown key(s) {unknown}; a {kind} takes "
            f"{sorted(required | optional)}."
        )
    if kind == "categorical":
        if not isinstance(spec["choices"], list) or not spec["choices"]:
            raise DataError(f"params.yaml: {where}: choices must be a non-empty list.")
        return CategoricalDistribution(spec["choices"])
    number = int if kind == "int" else (int, float)
    bounds = {k: spec[k] for k in ("low", "high", "step") if spec.get(k) is not None}
    if not all(isinstance(v, number) and not isinstance(v, bool) for v in bounds.values()):
        raise DataError(f"params.yaml: {where}: low, high and step must be {kind} numbers.")
    if spec["low"] > spec["high"]:
        raise DataError(
            f"params.yaml: {where}: low {spec['low']} is above high {spec['high']}; swap them."
        )
    try:
        cls = IntDistribution if kind == "int" else FloatDistribution
        return cls(log=bool(spec.get("log", False)), **bounds)
    except ValueError as exc:
        raise DataError(f"params.yaml: {where}: {exc}") from None


def with_settings(params: Params, settings: dict[str, Any]) -> Params:
    """`params` with the estimator's arguments in `settings` replacing those of params.yaml."""
    name = params.train.estimator
    merged = {**getattr(params.train, name), **settings}
    return replace(params, train=replace(params.train, **{name: merged}))


def forward_folds(frame: pd.DataFrame, params: Params) -> Folds:
    """Row positions (training, scored) of each forward fold of the training window."""
    folds = params.tune.folds
    if len(frame) < 10 * (folds + 1):
        raise DataError(
            f"the training window has {len(frame)} rows: too few for tune.folds {folds}; "
            "lower tune.folds."
        )
    order = np.argsort(frame[params.base.time_column].to_numpy(), kind="stable")
    y = labels(frame, params).to_numpy()
    result = []
    for k, (fit_rows, scored_rows) in enumerate(TimeSeriesSplit(n_splits=folds).split(order), 1):
        for part, rows in (("trains on", fit_rows), ("scores", scored_rows)):
            if len(np.unique(y[order[rows]])) < 2:
                raise DataError(
                    f"fold {k} of tune.folds {folds} {part} rows of one label only; lower "
                    "tune.folds."
                )
        result.append((order[fit_rows], order[scored_rows]))
    return result


def objective(y: np.ndarray, proba: np.ndarray, params: Params) -> float:
    """The declared metric (`tune.metric`) of scores `proba` against labels `y`."""
    if params.tune.metric == "profit_top_k":
        return profit(y, proba, params)["profit_top_k"]
    return float(roc_auc_score(y, proba))


def fold_scores(
    frame: pd.DataFrame,
    folds: Folds,
    params: Params,
    settings: dict[str, Any],
    stop: Callable[[int, float], bool] | None = None,
) -> list[float]:
    """The metric of `settings` on each fold, in order; `stop(step, mean so far)` may end it."""
    cfg = with_settings(params, settings)
    scores: list[float] = []
    for step, (fit_rows, scored_rows) in enumerate(folds):
        model = fit(frame.iloc[fit_rows], cfg)
        part = frame.iloc[scored_rows]
        scores.append(objective(labels(part, params).to_numpy(), score(model, part), params))
        if stop is not None and stop(step, float(np.mean(scores))):
            break
    return scores
