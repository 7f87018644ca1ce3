"""The canary analysis's decision (tabml.canary.judge) on hand-checkable values, and its queries:
one text for the local target and the Kubernetes recording rules, valid PromQL for promtool."""

from __future__ import annotations

import math
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tabml import canary
from tabml.params import DeployParams, load_params

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy/k8s/overlays/production/canary-analysis.yaml"
LOCAL = ROOT / "deploy/prometheus/local.yml"
CFG = DeployParams(
    canary_min_requests=100,
    canary_max_error_ratio=0.01,
    canary_max_latency_ratio=1.5,
    canary_latency_slack_ms=25,
)


def values(canary_errors=0.0, canary_p99=0.010, stable_errors=0.0, stable_p99=0.008, n=300):
    return {
        "canary": {"requests": n, "error_ratio": canary_errors, "p99_seconds": canary_p99},
        "stable": {"requests": n, "error_ratio": stable_errors, "p99_seconds": stable_p99},
    }


def verdicts(checks: list[canary.Check]) -> dict[str, bool]:
    return {c.name: c.passed for c in checks}


def test_a_healthy_canary_passes_every_check():
    checks = canary.judge(values(), CFG)
    assert verdicts(checks) == {"requests": True, "error_ratio": True, "p99_ms": True}
    p99 = checks[2]
    # 1.5 x 8 ms + 25 ms = 37 ms; the canary's 10 ms is under it.
    assert (p99.canary, p99.stable, p99.limit) == pytest.approx((10.0, 8.0, 37.0))


def test_errors_are_judged_against_the_stable_and_zero_is_no_special_case():
    # Stable has no error at all: 0.5% is within 0 + 1%, 50% is not.
    assert canary.judge(values(canary_errors=0.005), CFG)[1].passed
    failed = canary.judge(values(canary_errors=0.5), CFG)[1]
    assert not failed.passed and failed.limit == pytest.approx(0.01)
    assert "canary 0.5, stable 0, limit 0.01" in failed.line()
    # A stable at 3% lets the canary reach 4%, not 4.5%.
    assert canary.judge(values(canary_errors=0.04, stable_errors=0.03), CFG)[1].passed
    assert not canary.judge(values(canary_errors=0.045, stable_errors=0.03), CFG)[1].passed


def test_latency_fails_past_ratio_plus_slack():
    # Limit 1.5 x 20 ms + 25 ms = 55 ms.
    assert canary.judge(values(canary_p99=0.055, stable_p99=0.020), CFG)[2].passed
    assert not canary.judge(values(canary_p99=0.060, stable_p99=0.020), CFG)[2].passed


def test_no_data_or_too_little_traffic_fails():
    assert not canary.judge(values(n=99), CFG)[0].passed
    checks = canary.judge(values(canary_errors=math.nan, canary_p99=math.nan), CFG)
    assert verdicts(checks) == {"requests": True, "error_ratio": False, "p99_ms": False}
    assert not canary.judge(values(stable_p99=math.nan), CFG)[2].passed


def test_render_fills_the_selector_and_window():
    text = canary.render("requests", canary.selector(env="staging", track="canary"), "20s")
    assert text == (
        'sum(increase(bentoml_service_request_total{env="staging",track="canary",'
        'endpoint=~"/score|/score_batch"}[20s]))'
    )
    for name in canary.QUERIES:
        assert "$" not in canary.render(name, 'a="b"', "1m"), name


def test_the_kubernetes_rules_hold_the_same_queries():
    (doc,) = yaml.safe_load_all(RULES.read_text())
    rules = doc["spec"]["groups"][0]["rules"]
    seen = set()
    for rule in rules:
        track = rule["labels"]["track"]
        sel = canary.selector(namespace="tabml-production", track=track)
        name = next(n for n in canary.QUERIES if rule["expr"] == canary.render(n, sel, "5m"))
        seen.add((name, track))
    assert seen == {(name, track) for name in canary.QUERIES for track in canary.TRACKS}
    assert len(rules) == len(seen)


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool (Debian's prometheus)")
def test_promtool_accepts_the_rules_and_the_local_config(tmp_path):
    (doc,) = yaml.safe_load_all(RULES.read_text())
    plain = tmp_path / "rules.yml"
    plain.write_text(yaml.safe_dump(doc["spec"]))
    for cmd in (["check", "rules", str(plain)], ["check", "config", str(LOCAL)]):
        done = subprocess.run(["promtool", *cmd], capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stdout + done.stderr


def test_the_local_scrape_config_labels_each_port_by_env_and_track():
    cfg = load_params(ROOT / "params.yaml").deploy
    (job,) = yaml.safe_load(LOCAL.read_text())["scrape_configs"]
    labelled = {
        (group["labels"]["env"], group["labels"]["track"]): group["targets"]
        for group in job["static_configs"]
    }
    expected = {}
    for env, port in cfg.ports.items():
        expected[(env, "stable")] = [f"127.0.0.1:{port}"]
        expected[(env, "canary")] = [f"127.0.0.1:{port + cfg.candidate_port_offset}"]
    assert labelled == expected


def test_prometheus_url_given_to_deploy_overrides_the_setting(tmp_path, monkeypatch):
    from tabml import deploy

    seen = {}

    def fake_local(env, image, gold, cfg, record):
        seen["url"] = cfg.prometheus_url
        return f"{env} serves {image}"

    monkeypatch.setattr(deploy, "deploy_local", fake_local)
    golden = tmp_path / "golden.json"
    golden.write_text("{}")
    args = ["--env", "staging", "--image", "x/tabml:1", "--target", "local",
            "--golden", str(golden), "--record", str(tmp_path / "record.json"),
            "--params", str(ROOT / "params.yaml")]  # fmt: skip
    deploy.main([*args, "--prometheus-url", "http://127.0.0.1:9"])
    assert seen["url"] == "http://127.0.0.1:9"
    deploy.main(args)
    assert seen["url"] == load_params(ROOT / "params.yaml").deploy.prometheus_url
