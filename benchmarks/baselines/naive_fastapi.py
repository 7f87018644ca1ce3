"""Baseline: the usual first service. FastAPI + uvicorn, one worker, the scikit-learn pipeline
called per request on a one-row DataFrame.

    TABML_MODEL=models/model.joblib uvicorn naive_fastapi:app --host 127.0.0.1 --port 8000
"""

import os
from typing import Annotated

import joblib
import pandas as pd
from fastapi import Body, FastAPI
from pydantic import BaseModel

app = FastAPI()
model = joblib.load(os.environ["TABML_MODEL"])
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


@app.post("/score")
def score(client: Annotated[Client, Body(embed=True)]) -> dict:
    p = float(model.predict_proba(pd.DataFrame([client.model_dump()]))[0, 1])
    return {"probability": p, "decision": p >= THRESHOLD}


@app.post("/score_batch")
def score_batch(records: Annotated[list[Client], Body(embed=True)]) -> dict:
    proba = model.predict_proba(pd.DataFrame([r.model_dump() for r in records]))[:, 1]
    return {
        "predictions": [{"probability": p, "decision": p >= THRESHOLD} for p in proba.tolist()]
    }
