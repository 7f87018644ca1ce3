"""Typed view of `params.yaml`: one frozen dataclass per section."""

from __future__ import annotations

import copy
import dataclasses
import typing
from dataclasses import MISSING, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tabml.io import DataError
from tabml.params_types import conforms, cross_problems, describe, near, range_problem

DEFAULT_PATH = "params.yaml"


@dataclass(frozen=True)
class BaseParams:
    seed: int
    target: str
    positive_label: str
    time_column: str
    threshold: float


@dataclass(frozen=True)
class PathsParams:
    """The files the stages exchange: dvc.yaml wires them, every other command defaults to them."""

    interim: str = "data/interim/data.parquet"
    validated: str = "data/validated/data.parquet"
    train: str = "data/processed/train.parquet"
    valid: str = "data/processed/valid.parquet"
    test: str = "data/processed/test.parquet"
    model: str = "models/model.joblib"
    metrics: str = "reports/metrics.json"
    plots: str = "reports/plots"
    validation_report: str = "reports/validation.json"
    validation_summary: str = "reports/validation.md"
    reference: str = "data/reference/profile.json"
    params_check: str = "reports/params-check.txt"


@dataclass(frozen=True)
class IngestParams:
    source: str
    sep: str = ","
    database: str | None = None  # a SQLAlchemy URL: `source` is then a file holding the query
    order_by: str | None = None  # the column that orders rows in time (else: source order)
    start: int = 0
    stop: int | None = None


@dataclass(frozen=True)
class ValidateParams:
    invalid_rows: str = "fail"  # or "drop"
    max_invalid_share: float = 0.01
    min_rows: int = 1
    max_rows: int | None = None
    max_duplicate_share: float = 1.0
    min_positive_rate: float = 0.0
    max_positive_rate: float = 1.0
    missing_values: tuple[str, ...] = ()
    max_missing_share: float = 1.0
    known_after_outcome: tuple[str, ...] = ()
    max_feature_auc: float = 1.0


@dataclass(frozen=True)
class DriftParams:
    """The reference window and the drift limits of validate's warnings and of the monitor."""

    reference_start: int = 0
    reference_stop: int | None = None
    max_feature_psi: float = 0.25
    max_score_psi: float = 0.25
    exclude: tuple[str, ...] = ()


@dataclass(frozen=True)
class SplitParams:
    strategy: str = "time"
    valid_size: float = 0.15
    test_size: float = 0.15


@dataclass(frozen=True)
class TrainParams:
    estimator: str = "hist_gradient_boosting"
    drop_columns: tuple[str, ...] = ()
    hist_gradient_boosting: dict[str, Any] = field(default_factory=dict)
    logistic_regression: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class EvaluateParams:
    top_k: float = 0.2
    cost_per_action: float = 0.0
    value_per_positive: float = 0.0  # 0: no profit metrics
    permutation_repeats: int = 5
    permutation_max_rows: int = 10_000


@dataclass(frozen=True)
class GateParams:
    """Rules a pull request's metrics must meet; keys are `split.metric` (`test.roc_auc`)."""

    floors: dict[str, float] = field(default_factory=dict)
    tolerances: dict[str, float] = field(default_factory=dict)
    lower_is_better: tuple[str, ...] = ("log_loss", "brier")


@dataclass(frozen=True)
class ServeParams:
    model_name: str = "tabml"
    max_batch: int = 10_000
    max_body_mb: float = 16.0
    workers: int = 2
    prediction_log: str = "logs/predictions"
    log_rotate_mb: float = 64.0
    log_rotate_seconds: float = 3600.0
    shadow_model: str = ""


@dataclass(frozen=True)
class DeployParams:
    target: str = "local"
    container_prefix: str = "tabml"
    ports: dict[str, int] = field(default_factory=lambda: {"production": 3100, "staging": 3101})
    candidate_port_offset: int = 100
    readiness_seconds: float = 120.0
    latency_budget_ms: float = 250.0
    log_dir: str = "logs"
    namespace_prefix: str = "tabml-"
    canary_replicas: tuple[int, ...] = (1, 3)
    canary_seconds: float = 300.0
    prometheus_url: str = ""
    canary_rate: float = 20.0
    canary_min_requests: int = 100
    canary_max_error_ratio: float = 0.01
    canary_max_latency_ratio: float = 1.5
    canary_latency_slack_ms: float = 25.0


@dataclass(frozen=True)
class MonitorParams:
    """What `make monitor` judges beyond drift; see params.yaml for what each one measured."""

    max_auc_drop: float = 0.05
    min_rows: int = 200
    window_rows: int = 4000


@dataclass(frozen=True)
class TrackingParams:
    """How long to wait for an MLflow tracking server before stopping with its address."""

    timeout_seconds: float = 5.0
    max_retries: int = 1


@dataclass(frozen=True)
class RetrainParams:
    window_rows: int | None = None
    min_gain: float = 0.01


@dataclass(frozen=True)
class SimulateParams:
    windows: int = 10
    retrain_windows: int = 0


# The search space of each estimator: `type` int, float (with `low`, `high`, optional `log` and
# `step`) or categorical (with `choices`). params.yaml's `tune` section overrides these.
DEFAULT_SPACES: dict[str, dict[str, dict[str, Any]]] = {
    "hist_gradient_boosting": {
        "learning_rate": {"type": "float", "low": 0.01, "high": 0.3, "log": True},
        "max_depth": {"type": "int", "low": 2, "high": 8},
        "min_samples_leaf": {"type": "int", "low": 20, "high": 500, "log": True},
        "max_iter": {"type": "int", "low": 50, "high": 400, "log": True},
        "l2_regularization": {"type": "float", "low": 1e-6, "high": 10.0, "log": True},
    },
    "logistic_regression": {
        "C": {"type": "float", "low": 1e-4, "high": 100.0, "log": True},
    },
}


@dataclass(frozen=True)
class TuneParams:
    """`make tune`: the objective, the forward folds, the budget and each estimator's space."""

    metric: str = "roc_auc"  # or profit_top_k, evaluate's business metric
    folds: int = 4
    trials: int = 20
    seconds: float = 900.0
    # Trials asked of the sampler at once, then run side by side: the search depends on it and
    # on the seed, never on how many workers run it.
    batch: int = 4
    workers: int = 0  # processes; 0: one per core
    pruner_startup: int = 5
    hist_gradient_boosting: dict[str, Any] = field(
        default_factory=lambda: copy.deepcopy(DEFAULT_SPACES["hist_gradient_boosting"])
    )
    logistic_regression: dict[str, Any] = field(
        default_factory=lambda: copy.deepcopy(DEFAULT_SPACES["logistic_regression"])
    )


@dataclass(frozen=True)
class Params:
    base: BaseParams
    ingest: IngestParams
    validate: ValidateParams
    split: SplitParams
    train: TrainParams
    evaluate: EvaluateParams
    paths: PathsParams = field(default_factory=PathsParams)
    drift: DriftParams = field(default_factory=DriftParams)
    gate: GateParams = field(default_factory=GateParams)
    serve: ServeParams = field(default_factory=ServeParams)
    deploy: DeployParams = field(default_factory=DeployParams)
    monitor: MonitorParams = field(default_factory=MonitorParams)
    retrain: RetrainParams = field(default_factory=RetrainParams)
    tracking: TrackingParams = field(default_factory=TrackingParams)
    simulate: SimulateParams = field(default_factory=SimulateParams)
    tune: TuneParams = field(default_factory=TuneParams)


class ParamsError(DataError, ValueError):
    """A params file that breaks its rules: one line per problem, each naming the key."""


def _build(cls: type, values: dict[str, Any] | None, section: str, problems: list[str]) -> Any:
    """The section's dataclass, or None with its problems appended."""
    if values is not None and not isinstance(values, dict):
        problems.append(f"section '{section}' is {values!r}; expected a mapping of keys.")
        return None
    values = dict(values or {})
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for name in sorted(set(values) - set(fields)):
        problems.append(f"unknown key '{section}.{name}'{near(name, fields)}")
    for name, spec in fields.items():
        key = f"{section}.{name}"
        if name not in values:
            if spec.default is MISSING and spec.default_factory is MISSING:
                problems.append(f"{key} is missing; it needs {describe(hints[name])}.")
            continue
        value = values[name]
        if not conforms(value, hints[name]):
            problems.append(f"{key} is {value!r}; expected {describe(hints[name])}.")
            continue
        problem = range_problem(key, value)
        if problem:
            problems.append(problem)
        if isinstance(value, list):
            values[name] = tuple(value)
    if problems:
        return None
    return cls(**values)


_SECTIONS = {
    "base": BaseParams,
    "paths": PathsParams,
    "ingest": IngestParams,
    "validate": ValidateParams,
    "split": SplitParams,
    "train": TrainParams,
    "evaluate": EvaluateParams,
    "drift": DriftParams,
    "gate": GateParams,
    "serve": ServeParams,
    "deploy": DeployParams,
    "monitor": MonitorParams,
    "retrain": RetrainParams,
    "tracking": TrackingParams,
    "simulate": SimulateParams,
    "tune": TuneParams,
}


def parse_params(raw: dict[str, Any], path: str | Path = DEFAULT_PATH) -> Params:
    """`Params` from the parsed YAML mapping; each problem found is one line of the error."""
    if not isinstance(raw, dict):
        raise ParamsError(f"{path}: expected a mapping of sections, found {type(raw).__name__}.")
    problems = [
        f"unknown section '{name}'{near(name, _SECTIONS)}" for name in raw if name not in _SECTIONS
    ]
    for name in ("base", "ingest", "validate", "split", "train", "evaluate"):
        if name not in raw:
            problems.append(f"section '{name}' is missing.")
    built = {name: _build(cls, raw.get(name), name, problems) for name, cls in _SECTIONS.items()}
    if not problems:
        params = Params(**built)
        problems = cross_problems(params)
        if not problems:
            return params
    raise ParamsError("\n".join(f"{path}: {problem}" for problem in problems))


def load_params(path: str | Path = DEFAULT_PATH) -> Params:
    """Read and type-check the parameters file."""
    try:
        with Path(path).open(encoding="utf-8") as fh:
            raw = yaml.safe_load(fh)
    except FileNotFoundError:
        raise ParamsError(f"{path}: the parameters file does not exist.") from None
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" (line {where.line + 1})" if where else ""
        reason = getattr(exc, "problem", None) or exc
        raise ParamsError(f"{path}: not valid YAML{line}: {reason}.") from None
    return parse_params(raw or {}, path)
