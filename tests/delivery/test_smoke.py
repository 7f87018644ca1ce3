"""The post-deploy smoke test against the session's real service, and what makes it fail."""

from __future__ import annotations

import copy
import json

import pytest

from tabml import smoke

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def gold(pipeline) -> dict:
    return smoke.golden(
        str(pipeline.path / "models/model.joblib"),
        str(pipeline.path / "data/processed/test.parquet"),
        rows=20,
    )


def failing(outcomes: list[smoke.Outcome]) -> list[str]:
    return [o.check for o in outcomes if not o.passed]


def test_golden_rows_span_the_score_range(gold):
    scores = gold["probabilities"]
    assert len(gold["records"]) == len(scores) == 20
    assert scores == sorted(scores) and scores[-1] - scores[0] > 0.3


def test_the_release_that_was_meant_passes_every_check(service, gold):
    outcomes = smoke.check(service.server.url, gold, budget_ms=250, timeout=30)
    assert [o.check for o in outcomes] == [
        "ready",
        "identity",
        "golden",
        "refuses bad input",
        "latency",
    ]
    assert failing(outcomes) == [], smoke.to_text(service.server.url, outcomes)


def test_another_model_fails_identity(service, gold):
    other = {**gold, "model_md5": "0" * 32}
    assert failing(smoke.check(service.server.url, other, 250, 30)) == ["identity"]


def test_wrong_scores_fail_golden(service, gold):
    shifted = copy.deepcopy(gold)
    shifted["probabilities"][7] += 1e-3
    outcomes = smoke.check(service.server.url, shifted, 250, 30)
    assert failing(outcomes) == ["golden"]
    assert "1.00e-03" in next(o.detail for o in outcomes if o.check == "golden")


def test_an_impossible_latency_budget_fails(service, gold):
    assert failing(smoke.check(service.server.url, gold, budget_ms=0.001, timeout=30)) == [
        "latency"
    ]


def test_nothing_listening_fails_readiness_only(gold):
    from testkit.server import free_port

    outcomes = smoke.check(f"http://127.0.0.1:{free_port()}", gold, 250, timeout=1)
    assert failing(outcomes) == ["ready"]


def test_cli_exit_status_and_message(pipeline, service, gold, tmp_path):
    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    good.write_text(json.dumps(gold))
    bad.write_text(json.dumps({**gold, "model_md5": "0" * 32}))
    cmd = ("python", "-m", "tabml.smoke", "check", "--url", service.server.url, "--golden")
    assert "FAIL" not in pipeline.run(*cmd, str(good)).stdout
    done = pipeline.run(*cmd, str(bad), check=False)
    assert done.returncode == 1
    assert "smoke test of" in done.stderr and "failed: identity" in done.stderr


def test_golden_holds_a_request_the_contract_refuses(gold):
    refused = gold["refused"]
    assert refused["record"] == {**gold["records"][0], refused["field"]: refused["value"]}
    assert refused["record"][refused["field"]] != gold["records"][0][refused["field"]]


def test_a_bad_request_that_is_accepted_fails_the_refusal_check(service, gold):
    accepted = {**gold, "refused": {**gold["refused"], "record": gold["records"][0]}}
    outcomes = smoke.check(service.server.url, accepted, 250, 30)
    assert failing(outcomes) == ["refuses bad input"]
    assert f"{gold['refused']['field']} " in next(
        o.detail for o in outcomes if o.check == "refuses bad input"
    )
