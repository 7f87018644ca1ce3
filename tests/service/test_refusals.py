"""Refused requests over real HTTP: a 4xx naming the field or header, one log line without the
request's values and no traceback, and a count by endpoint and reason on /metrics."""

from __future__ import annotations

import json
import time

import joblib
import pandas as pd
import pytest
from testkit.declared import bounded_feature, category_feature

pytestmark = pytest.mark.slow

SECRET_NUMBER = 7_654_321  # far beyond any declared bound, and easy to find in a log
SECRET_TEXT = "zq-client-secret-4711"


@pytest.fixture(scope="module")
def record(pipeline) -> dict:
    """The first record of the test split, the model's features only."""
    features = list(joblib.load(pipeline.path / "models/model.joblib").feature_names_in_)
    test = pd.read_parquet(pipeline.path / "data/processed/test.parquet")
    return json.loads(test[features].head(1).to_json(orient="records"))[0]


def rejected(service, endpoint: str, reason: str) -> float:
    labels = (f'endpoint="{endpoint}"', f'reason="{reason}"')
    for line in service.client.get("/metrics").text.splitlines():
        if line.startswith("tabml_rejected_requests_total{") and all(x in line for x in labels):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def logged(service, wanted: list[str]) -> str:
    """The server's log once it holds every line of `wanted` (workers write it themselves)."""
    deadline = time.monotonic() + 30
    while True:
        text = service.server.log()
        if all(line in text for line in wanted) or time.monotonic() > deadline:
            return text
        time.sleep(0.2)


def test_a_refused_request_is_one_line_without_its_values_and_a_count(service, record, params):
    number = bounded_feature(params)
    category, _ = category_feature(params)
    value = number.high + SECRET_NUMBER
    cases = [  # (body, reason, the line the log must hold)
        ({**record, number.name: value}, "out_of_range", number.name),
        ({**record, category: SECRET_TEXT}, "unknown_category", category),
    ]
    before = {reason: rejected(service, "/score", reason) for _, reason, _ in cases}
    before["malformed_json"] = rejected(service, "/score", "malformed_json")
    wanted = []
    for body, reason, field in cases:
        response = service.post("/score", json={"client": body})
        assert response.status_code == 400, response.text
        assert f"client.{field}" in response.json()["error"]
        wanted.append(f"refused /score (400): {reason}: field 'client.{field}'")
    truncated = json.dumps({"client": {**record, category: SECRET_TEXT}})[:-20].encode()
    response = service.post(
        "/score", content=truncated, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400, response.text
    wanted.append("refused /score (400): malformed_json")
    text = logged(service, wanted)
    for line in wanted:
        assert line in text
    for reason, count in before.items():
        assert rejected(service, "/score", reason) == count + 1, reason
    assert str(value) not in text and SECRET_TEXT not in text
    assert "Traceback" not in text and "input_value" not in text
    assert "[ERROR]" not in text


def test_an_extra_top_level_field_is_refused_and_named(service, record):
    before = rejected(service, "/score", "extra_field")
    response = service.post("/score", json={"client": record, "clinet": record})
    assert response.status_code == 400, response.text
    assert "clinet: Extra inputs are not permitted" in response.json()["error"]
    assert rejected(service, "/score", "extra_field") == before + 1
    before = rejected(service, "/score_batch", "extra_field")
    response = service.post("/score_batch", json={"records": [record], "dry_run": True})
    assert response.status_code == 400, response.text
    assert "dry_run: Extra inputs are not permitted" in response.json()["error"]
    assert rejected(service, "/score_batch", "extra_field") == before + 1
    assert service.post("/score", json={"client": record}).status_code == 200


def test_a_body_without_content_type_is_refused_naming_the_header(service, record):
    before = rejected(service, "/score", "missing_content_type")
    request = service.client.build_request(
        "POST", "/score", content=json.dumps({"client": record}).encode()
    )
    assert "content-type" not in request.headers
    response = service.client.send(request)
    assert response.status_code == 415, response.text
    assert "Content-Type header is missing" in response.json()["error"]
    assert rejected(service, "/score", "missing_content_type") == before + 1
    assert service.post("/identity").status_code == 200  # no body: nothing to type
