"""What each key of `params.yaml` may hold beyond its name: type, range, choice, and the rules
between keys. `tabml.params` applies them on every load; each problem is one line naming the
key, the value and what to write instead."""

from __future__ import annotations

import difflib
import math
import types
import typing
from typing import Any

# key: (low, high, low_open, high_open); None is unbounded.
RANGES: dict[str, tuple[float | None, float | None, bool, bool]] = {
    "base.threshold": (0, 1, False, False),
    "ingest.start": (0, None, False, False),
    "ingest.stop": (0, None, True, False),
    "validate.max_invalid_share": (0, 1, False, False),
    "validate.min_rows": (1, None, False, False),
    "validate.max_rows": (1, None, False, False),
    "validate.max_duplicate_share": (0, 1, False, False),
    "validate.min_positive_rate": (0, 1, False, False),
    "validate.max_positive_rate": (0, 1, False, False),
    "validate.max_missing_share": (0, 1, False, False),
    "validate.max_feature_auc": (0.5, 1, False, False),
    "split.valid_size": (0, 1, True, True),
    "split.test_size": (0, 1, True, True),
    "evaluate.top_k": (0, 1, True, False),
    "evaluate.cost_per_action": (0, None, False, False),
    "evaluate.value_per_positive": (0, None, False, False),
    "evaluate.permutation_repeats": (1, None, False, False),
    "evaluate.permutation_max_rows": (100, None, False, False),
    "drift.reference_start": (0, None, False, False),
    "drift.max_feature_psi": (0, None, True, False),
    "drift.max_score_psi": (0, None, True, False),
    "serve.max_batch": (1, None, False, False),
    "serve.max_body_mb": (0, None, True, False),
    "serve.workers": (1, None, False, False),
    "serve.log_rotate_mb": (0, None, True, False),
    "serve.log_rotate_seconds": (0, None, True, False),
    "deploy.readiness_seconds": (0, None, True, False),
    "deploy.latency_budget_ms": (0, None, True, False),
    "deploy.canary_seconds": (0, None, True, False),
    "deploy.canary_rate": (0, None, True, False),
    "deploy.canary_min_requests": (1, None, False, False),
    "deploy.canary_max_error_ratio": (0, 1, False, False),
    "deploy.canary_max_latency_ratio": (1, None, False, False),
    "deploy.canary_latency_slack_ms": (0, None, False, False),
    "monitor.max_auc_drop": (0, 1, False, False),
    "monitor.min_rows": (1, None, False, False),
    "monitor.window_rows": (1, None, False, False),
    "retrain.window_rows": (1, None, False, False),
    "retrain.min_gain": (-1, 1, False, False),
    "simulate.windows": (1, None, False, False),
    "tracking.timeout_seconds": (0, 600, True, False),
    "tracking.max_retries": (0, 10, False, False),
    "tune.folds": (2, None, False, False),
    "tune.trials": (1, None, False, False),
    "tune.seconds": (0, None, True, False),
    "tune.batch": (1, None, False, False),
    "tune.workers": (0, None, False, False),
    "tune.pruner_startup": (0, None, False, False),
    "simulate.retrain_windows": (0, None, False, False),
}

CHOICES: dict[str, tuple[str, ...]] = {
    "validate.invalid_rows": ("fail", "drop"),
    "split.strategy": ("time", "stratified"),
    "train.estimator": ("hist_gradient_boosting", "logistic_regression"),
    "deploy.target": ("local", "k8s"),
    "tune.metric": ("roc_auc", "profit_top_k"),
}


def conforms(value: Any, hint: Any) -> bool:
    """Whether a YAML value fits a field's annotation (a whole number fits a float; no bool
    fits a number; a list fits a tuple)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(conforms(value, arg) for arg in args)
    if hint is type(None):
        return value is None
    if isinstance(value, bool):
        return hint is bool
    if hint is int:
        return isinstance(value, int)
    if hint is float:
        return isinstance(value, int | float) and math.isfinite(value)
    if origin is tuple:
        return isinstance(value, list | tuple) and all(conforms(v, args[0]) for v in value)
    if origin is dict:
        return isinstance(value, dict) and all(
            conforms(k, args[0]) and conforms(v, args[1]) for k, v in value.items()
        )
    return isinstance(value, hint)


def describe(hint: Any) -> str:
    """The annotation in words: `a number or null`."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(describe(arg) for arg in args)
    if origin is tuple:
        return f"a list of {describe(args[0]).removeprefix('a ').removeprefix('an ')}s"
    if origin is dict:
        return f"a mapping of {describe(args[0])} to {describe(args[1])}"
    words = {int: "a whole number", float: "a number", str: "text", bool: "true or false"}
    return words.get(hint, "null" if hint is type(None) else getattr(hint, "__name__", str(hint)))


def near(name: str, known: typing.Iterable[str]) -> str:
    """`; did you mean 'max_depth'?` when a known name is close, else ``."""
    found = difflib.get_close_matches(name, list(known), n=1, cutoff=0.7)
    return f"; did you mean '{found[0]}'?" if found else ""


def range_problem(key: str, value: Any) -> str | None:
    if key in CHOICES and value not in CHOICES[key]:
        shown = ", ".join(CHOICES[key])
        return f"{key} is {value!r}; expected one of: {shown}{near(str(value), CHOICES[key])}."
    if key not in RANGES or not isinstance(value, int | float) or isinstance(value, bool):
        return None
    low, high, low_open, high_open = RANGES[key]
    below = low is not None and (value <= low if low_open else value < low)
    above = high is not None and (value >= high if high_open else value > high)
    if not (below or above):
        return None
    left = "(" if low_open else "["
    right = ")" if high_open else "]"
    span = f"{left}{'-inf' if low is None else low}, {'inf' if high is None else high}{right}"
    return f"{key} is {value!r}, out of its range {span}."


def cross_problems(params: Any) -> list[str]:
    """Rules between keys, on loaded params."""
    found = []
    split, val, drift, ingest = params.split, params.validate, params.drift, params.ingest
    if split.valid_size + split.test_size >= 1:
        found.append(
            f"split.valid_size + split.test_size is {split.valid_size + split.test_size:g}; "
            "they must leave rows to train on (sum below 1)."
        )
    if val.min_positive_rate > val.max_positive_rate:
        found.append("validate.min_positive_rate is above validate.max_positive_rate.")
    if val.max_rows is not None and val.min_rows > val.max_rows:
        found.append("validate.min_rows is above validate.max_rows.")
    if ingest.stop is not None and ingest.stop <= ingest.start:
        found.append(f"ingest.stop ({ingest.stop}) must be above ingest.start ({ingest.start}).")
    if drift.reference_stop is not None and drift.reference_stop <= drift.reference_start:
        found.append(
            f"drift.reference_stop ({drift.reference_stop}) must be above "
            f"drift.reference_start ({drift.reference_start})."
        )
    if params.tune.metric == "profit_top_k" and not params.evaluate.value_per_positive:
        found.append(
            "tune.metric is profit_top_k but evaluate.value_per_positive is 0 (no business "
            "metric): set the value, or tune roc_auc."
        )
    return found
