"""Bad requests get a 4xx whose message names the field and the problem; the server keeps going."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from bank_client import EXAMPLE_CLIENT

from tabml.params import load_params

pytestmark = [pytest.mark.slow, pytest.mark.example]

ROOT = Path(__file__).resolve().parents[2]
PARAMS = load_params(ROOT / "params.yaml")
FEATURES = [c for c in EXAMPLE_CLIENT if c not in PARAMS.train.drop_columns]
GOOD = {name: EXAMPLE_CLIENT[name] for name in FEATURES}


def client(**changes) -> bytes:
    record = {k: v for k, v in {**GOOD, **changes}.items() if v is not ...}
    return json.dumps({"client": record}).encode()


def raw(field: str, token: str) -> bytes:
    """A body with a bare JSON token (NaN, Infinity) that json.dumps would not write."""
    return client(**{field: "@@"}).replace(b'"@@"', token.encode())


def batch(n: int) -> bytes:
    return json.dumps({"records": [GOOD] * n}).encode()


CASES = {
    # name: (path, body, status, words the error must contain, reason label)
    "malformed JSON": (
        "/score", b'{"client": {"age": 31,', 400, ["Invalid JSON"], "malformed_json"
    ),
    "not an object": ("/score", b"[1, 2]", 400, ["body", "object"], "wrong_type"),
    "missing field": ("/score", client(age=...), 400, ["client.age", "required"], "missing_field"),
    "extra field": (
        "/score", client(duration=100), 400, ["client.duration", "Extra inputs"], "extra_field"
    ),
    "string for int": (
        "/score", client(age="31"), 400, ["client.age", "valid integer"], "wrong_type"
    ),
    "float for int": ("/score", client(age=31.5), 400, ["client.age", "integer"], "wrong_type"),
    "null": ("/score", client(job=None), 400, ["client.job"], "unknown_category"),
    "NaN": ("/score", raw("age", "NaN"), 400, ["client.age"], None),
    "Infinity": ("/score", raw("campaign", "Infinity"), 400, ["client.campaign"], None),
    "out of range": (
        "/score", client(age=200), 400, ["client.age", "less than or equal to 120"], "out_of_range"
    ),
    "unknown category": (
        "/score", client(job="astronaut"), 400, ["client.job", "blue-collar"], "unknown_category"
    ),
    "empty batch": ("/score_batch", batch(0), 400, ["records", "at least 1"], "empty_batch"),
    "over-limit batch": (
        "/score_batch", batch(PARAMS.serve.max_batch + 1), 400,
        ["records", f"at most {PARAMS.serve.max_batch}"], "batch_too_large",
    ),
    "huge body": (
        "/score_batch", b" " * int((PARAMS.serve.max_body_mb + 1) * 2**20), 413, ["limit"],
        "body_too_large",
    ),
}  # fmt: skip


def rejected(service, label: str) -> float:
    """Refusals for `label`, summed over the endpoints."""
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in service.client.get("/metrics").text.splitlines()
        if line.startswith("tabml_rejected_requests_total{") and f'reason="{label}"' in line
    )


def still_answers(service) -> None:
    assert service.post("/score", json={"client": GOOD}).status_code == 200


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_bad_request_gets_a_readable_4xx(service, case):
    path, body, status, words, label = CASES[case]
    before = rejected(service, label) if label else 0
    response = service.post(path, content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == status, response.text[:300]
    message = response.json()["error"]
    for word in words:
        assert word in message, (word, message)
    if label:
        assert rejected(service, label) == before + 1
    still_answers(service)


def test_chunked_body_over_the_limit_is_refused_without_a_length(service):
    chunk = b" " * 2**20
    chunks = int(PARAMS.serve.max_body_mb) + 2

    def body():
        yield from (chunk for _ in range(chunks))

    response = service.post("/score", content=body(), headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    still_answers(service)


def test_other_content_types_are_refused(service):
    for media in ("text/plain", "multipart/form-data", "application/vnd.bentoml+pickle"):
        response = service.post("/score", content=client(), headers={"Content-Type": media})
        assert response.status_code == 415, (media, response.text)
        assert "application/json" in response.json()["error"]
    still_answers(service)


def test_schemathesis_finds_no_server_error(service, tmp_path):
    """Property-based requests from the service's own OpenAPI document: never a 5xx."""
    schemathesis = str(Path(sys.executable).parent / "schemathesis")
    cmd = [
        schemathesis, "run", f"{service.server.url}/docs.json",
        "--checks", "not_a_server_error", "--max-examples", "15", "--max-time", "45",
        "--seed", "7", "--report-dir", str(tmp_path),
    ]  # fmt: skip
    done = subprocess.run(  # in tmp_path: its cache stays out of the project
        cmd, capture_output=True, text=True, timeout=240, check=False, cwd=tmp_path
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "Tested: " in done.stdout
    still_answers(service)
