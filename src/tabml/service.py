"""The scoring service: one client or a batch, with the model's identity, metrics and a log.

make bento                                        # import the model, build the bento
bentoml serve tabml.service:Scorer --arg model_tag=tabml:<md5>   # or serve the bento
    [--arg shadow_model_tag=tabml:<md5>]          # a second model, scored off the request path
"""

import os
from typing import Annotated

import bentoml
from pydantic import Field

from tabml.serving import faults
from tabml.serving.contract import BatchPrediction, Identity, Prediction
from tabml.serving.observe import RequestGuard
from tabml.serving.runtime import Engine, Settings, client_model, closed_input, shadow_model_tag

settings = bentoml.use_arguments(Settings)
shadow_tag = shadow_model_tag(settings)  # empty: no shadow
Client = client_model(settings.model_tag)  # the model's features, typed by the pandera schema
Batch = Annotated[list[Client], Field(min_length=1, max_length=settings.max_batch)]


@bentoml.service(
    workers=settings.workers,
    # BentoML arms a timer per request for `timeout` seconds; at 60 s (the default) a busy
    # worker holds a minute of them in memory. Scoring 10,000 records takes well under 1 s.
    traffic={"timeout": 10},
    # Per-request access lines and unexported trace spans cost more than scoring itself; the
    # prediction log and /metrics record every request. Re-enable both in a deployment's config.
    logging={"access": {"enabled": False}},
    tracing={"excluded_urls": ["/score", "/score_batch"]},
)
class Scorer:
    model = bentoml.models.BentoModel(settings.model_tag)
    shadow = bentoml.models.BentoModel(shadow_tag) if shadow_tag else None

    def __init__(self) -> None:
        self.engine = Engine(self.model, settings, self.shadow)

    @bentoml.api(input_spec=closed_input(client=Client))
    async def score(self, client: Client) -> Prediction:  # type: ignore[valid-type]
        """Probability and decision for one client."""
        return self.engine.score_one(client)

    @bentoml.api(input_spec=closed_input(records=Batch))
    async def score_batch(self, records: Batch) -> BatchPrediction:
        """Probabilities and decisions for a batch of clients, in request order."""
        return self.engine.score_batch(records)

    @bentoml.api
    async def identity(self) -> Identity:
        """The model's name and version, MLflow run, git commit, data hashes and metrics."""
        return self.engine.identity

    @bentoml.on_shutdown
    def close(self) -> None:
        self.engine.close()


Scorer.add_asgi_middleware(
    RequestGuard,
    paths=("/score", "/score_batch", "/identity"),
    max_bytes=int(settings.max_body_mb * (1 << 20)),
)
if injected := faults.from_env(os.environ):  # drills only: see tabml/serving/faults.py
    Scorer.add_asgi_middleware(
        faults.FaultInjector, paths=("/score", "/score_batch"), faults=injected
    )
