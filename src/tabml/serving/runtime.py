"""What the service does per request, kept out of `service.py` so that file stays a summary.

`Settings` are the bento's arguments (`bentoml build/serve --arg key=value`, set from the
`serve` section of `params.yaml` by `python -m tabml.bento`); `Engine` scores, logs and counts,
and hands each scored batch to the shadow model, if there is one (`tabml.serving.shadow`).
"""

from __future__ import annotations

import json
import logging
import operator
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, Field, field_validator

from tabml.serving import observe
from tabml.serving.contract import BatchPrediction, Identity, Prediction, request_model
from tabml.serving.inference import load_scorer
from tabml.serving.predlog import PredictionLog
from tabml.serving.shadow import ShadowQueue

log = logging.getLogger(__name__)

# Where the bento runs decides where its log goes: these override the bento's arguments.
LOG_DIR_ENV = "TABML_PREDICTION_LOG"
LOG_ROTATE_ENV = "TABML_PREDICTION_LOG_ROTATE_SECONDS"
# The shadow model tag where the bento runs: unset or empty keeps the bento's, `none` turns the
# shadow off, a tag must name a model the bento holds.
SHADOW_ENV = "TABML_SHADOW_MODEL"
SHADOW_OFF = "none"


class Settings(BaseModel):
    """The bento's arguments."""

    model_tag: str = Field(description="exact BentoML model tag, name:version")
    max_batch: int = Field(10_000, ge=1)
    max_body_mb: float = Field(16.0, gt=0)
    workers: int = Field(2, ge=1)
    prediction_log: str = "logs/predictions"
    log_rotate_mb: float = Field(64.0, gt=0)
    log_rotate_seconds: float = Field(3600.0, gt=0)
    shadow_model_tag: str = Field("", description="exact tag of a model scored in shadow")
    shadow_queue: int = Field(10_000, ge=1, description="records waiting for the shadow, at most")

    @field_validator("model_tag", "shadow_model_tag")
    @classmethod
    def _exact(cls, tag: str, info: Any) -> str:
        if not tag and info.field_name == "shadow_model_tag":
            return tag
        name, _, version = tag.partition(":")
        if not name or not version or version == "latest":
            raise ValueError(f"{info.field_name} must be an exact 'name:version' tag, not '{tag}'")
        return tag


def shadow_model_tag(settings: Settings) -> str:
    """The shadow model's tag, `TABML_SHADOW_MODEL` overriding the bento's; empty for none."""
    tag = os.environ.get(SHADOW_ENV, "").strip() or settings.shadow_model_tag
    if tag.lower() == SHADOW_OFF:
        return ""
    return Settings(model_tag=settings.model_tag, shadow_model_tag=tag).shadow_model_tag


def stored_model(tag: str) -> Any:
    """The model in the BentoML store, with a message that says how to put it there."""
    import bentoml
    from bentoml.exceptions import NotFound

    try:
        return bentoml.models.get(tag)
    except NotFound:
        raise LookupError(f"model {tag} is not in the BentoML store; run `make bento`") from None


def client_model(tag: str) -> type:
    """The request model of one client, from the features recorded with the model."""
    metadata = stored_model(tag).info.metadata
    example = json.loads(metadata["example"]) if "example" in metadata else None
    return request_model(metadata["features"], example=example)


def closed_input(**fields: Any) -> type:
    """An endpoint's request body with `fields` and no other top-level field.

    BentoML's default body ignores a field it does not know, so `{"client": ..., "clinet": ...}`
    would be scored as if nothing were wrong.
    """
    import bentoml
    from pydantic import ConfigDict, create_model

    class ClosedInput(bentoml.IODescriptor):
        model_config = ConfigDict(extra="forbid")

    return create_model(
        "Input", __base__=ClosedInput, **{name: (kind, ...) for name, kind in fields.items()}
    )


class Engine:
    """Scores clients with the stored model, logs each scored record and counts them."""

    def __init__(self, model: Any, settings: Settings, shadow: Any = None) -> None:
        meta = model.info.metadata
        self.tag = str(model.tag)
        self.threshold = float(meta["threshold"])
        self.features: list[str] = list(meta["features"])
        self.scorer = load_scorer(Path(model.path), meta["runtime"])
        observe.quiet_refusals()
        getter = operator.itemgetter(*self.features)
        self._values = getter if len(self.features) > 1 else lambda r: (getter(r),)
        self.identity = Identity(
            model_name=model.tag.name,
            model_version=model.tag.version,
            model_tag=self.tag,
            runtime=self.scorer.runtime,
            threshold=self.threshold,
            features=self.features,
            **{k: meta.get(k) for k in ("mlflow_run_id", "git_commit", "git_dirty")},
            data=meta.get("data", {}),
            metrics=meta.get("metrics", {}),
        )
        metrics = observe.metrics()
        metrics["info"].labels(
            self.tag,
            self.scorer.runtime,
            meta.get("mlflow_run_id") or "",
            meta.get("git_commit") or "",
        ).set(1)
        self.log = PredictionLog(
            os.environ.get(LOG_DIR_ENV, settings.prediction_log),
            self.features,
            rotate_bytes=int(settings.log_rotate_mb * (1 << 20)),
            rotate_seconds=float(os.environ.get(LOG_ROTATE_ENV, settings.log_rotate_seconds)),
            on_drop=metrics["dropped"].inc,
        )
        self.shadow: ShadowQueue | None = None
        if shadow is not None:
            self._start_shadow(shadow, settings.shadow_queue, metrics)

    def _start_shadow(self, model: Any, max_pending: int, metrics: dict[str, Any]) -> None:
        meta = model.info.metadata
        missing = sorted(set(self.features) - set(meta["features"]))
        if missing:
            raise ValueError(f"shadow model {model.tag} lacks the features {missing}")
        self.shadow_tag = str(model.tag)
        self.shadow_threshold = float(meta["threshold"])
        scorer = load_scorer(Path(model.path), meta["runtime"])
        metrics["shadow_info"].labels(self.shadow_tag).set(1)
        self._scored, self._dropped = metrics["shadow_scored"], metrics["shadow_dropped"]
        self._shadow_latency = metrics["shadow_latency"]
        self.shadow = ShadowQueue(scorer.score, self._shadow_done, max_pending=max_pending)
        self.identity.shadow_model_tag = self.shadow_tag
        log.info("shadow model %s scores every record off the request path", self.shadow_tag)

    def _shadow_done(self, item: tuple, probabilities: np.ndarray | None, seconds: float | None):
        stamp, columns, main, decisions, main_seconds = item
        if probabilities is None:
            shadow = (self.shadow_tag, None, None, None)
        else:
            self._scored.inc(len(probabilities))
            self._shadow_latency.observe(seconds)
            shadow = (self.shadow_tag, probabilities, probabilities >= self.shadow_threshold,
                      seconds)  # fmt: skip
        self.log.write(columns, main, decisions, self.tag, seconds=main_seconds, shadow=shadow,
                       stamp=stamp)  # fmt: skip

    def _score(self, records: Sequence[Mapping[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
        # One C-level pass per record, then a transpose: several times faster than a lookup
        # per value in Python.
        rows = map(self._values, records)
        columns = dict(zip(self.features, map(list, zip(*rows, strict=True)), strict=True))
        start = time.perf_counter()
        probabilities = self.scorer.score(columns)
        seconds = time.perf_counter() - start
        decisions = probabilities >= self.threshold
        observe.observe(probabilities, decisions)
        if self.shadow is None:
            self.log.write(columns, probabilities, decisions, self.tag, seconds=seconds)
            return probabilities, decisions
        # The log row waits for the shadow's score; a full queue logs the record without it.
        stamp = time.time_ns() // 1000
        item = (stamp, columns, probabilities, decisions, seconds)
        if not self.shadow.submit(columns, len(probabilities), item):
            self._dropped.inc(len(probabilities))
            self.log.write(columns, probabilities, decisions, self.tag, seconds=seconds,
                           shadow=(self.shadow_tag, None, None, None), stamp=stamp)  # fmt: skip
        return probabilities, decisions

    def score_one(self, record: Mapping[str, Any]) -> Prediction:
        probabilities, decisions = self._score([record])
        return Prediction(
            probability=float(probabilities[0]),
            decision=bool(decisions[0]),
            model_version=self.tag,
            threshold=self.threshold,
        )

    def score_batch(self, records: Sequence[Mapping[str, Any]]) -> BatchPrediction:
        probabilities, decisions = self._score(records)
        return BatchPrediction.model_construct(  # values are ours: skip validation
            model_version=self.tag,
            threshold=self.threshold,
            probabilities=probabilities.tolist(),
            decisions=decisions.tolist(),
        )

    def close(self) -> None:
        if self.shadow is not None:
            self.shadow.close()  # first: its last results go to the log
        self.log.close()
