"""Baseline: BentoML's usual way with adaptive batching switched on and nothing else changed:
the scikit-learn pipeline on a DataFrame of the merged batch, default workers, logs and tracing.

    bentoml serve bento_batching:Batched --arg model_path=models/model.joblib
"""

import bentoml
import joblib
import pandas as pd
from pydantic import BaseModel

args = bentoml.use_arguments()
THRESHOLD = 0.1


class Client(BaseModel):
    age: int
    job: str
    marital: str
    education: str
    default: str
    housing: str
    loan: str
    contact: str
    month: str
    day_of_week: str
    campaign: int
    pdays: int
    previous: int
    poutcome: str


@bentoml.service
class Batched:
    def __init__(self) -> None:
        self.model = joblib.load(args.model_path)

    @bentoml.api(batchable=True)  # BentoML defaults: batches of up to 100, 60 s max latency
    def score(self, records: list[Client]) -> list[dict]:
        frame = pd.DataFrame([r.model_dump() for r in records])
        proba = self.model.predict_proba(frame)[:, 1]
        return [{"probability": p, "decision": p >= THRESHOLD} for p in proba.tolist()]
