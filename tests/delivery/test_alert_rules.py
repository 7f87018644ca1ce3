"""The alert rules: promtool checks them and runs their unit tests (`make test-rules`), a rule
changed so that it cannot fire fails those tests, the Kubernetes PrometheusRule holds the same
groups, and every alert carries a severity and a runbook section that exists."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy/prometheus/rules.yml"
RULE_TESTS = ROOT / "deploy/prometheus/rules.test.yml"
PROMETHEUS_RULE = ROOT / "deploy/k8s/base/monitoring/prometheusrule.yaml"
RUNBOOK = ROOT / "docs/alerts.md"
SEVERITIES = {"critical", "warning"}

needs_promtool = pytest.mark.skipif(
    shutil.which("promtool") is None,
    reason="promtool is not on PATH (make system-packages installs Debian's prometheus)",
)


def alerts() -> list[dict]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def run(*cmd: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)


@needs_promtool
def test_make_test_rules_passes():
    done = run("make", "--no-print-directory", "test-rules")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


@needs_promtool
def test_a_rule_that_no_longer_fires_fails_its_unit_test(tmp_path: Path):
    shutil.copy(RULE_TESTS, tmp_path / "rules.test.yml")
    text = RULES.read_text()
    assert "ratio_rate5m > 0.05" in text
    (tmp_path / "rules.yml").write_text(text.replace("ratio_rate5m > 0.05", "ratio_rate5m > 0.5"))
    done = run("promtool", "test", "rules", "rules.test.yml", cwd=tmp_path)
    assert done.returncode != 0
    assert "alertname: TabmlHighErrorRatio" in done.stdout + done.stderr


def test_every_alert_has_a_unit_test_group():
    tested = {t["name"] for t in yaml.safe_load(RULE_TESTS.read_text())["tests"]}
    assert tested == {rule["alert"] for rule in alerts()}


def test_every_alert_has_a_severity_summary_and_runbook_section():
    anchors = {
        re.sub(r"[^a-z0-9 -]", "", line[3:].strip().lower()).replace(" ", "-")
        for line in RUNBOOK.read_text().splitlines()
        if line.startswith("## ")
    }
    for rule in alerts():
        name = rule["alert"]
        assert rule["labels"]["severity"] in SEVERITIES, name
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], name
        assert rule["annotations"]["runbook"] == f"docs/alerts.md#{name.lower()}", name
        assert name.lower() in anchors, f"docs/alerts.md has no section '## {name}'"


def test_the_prometheus_rule_holds_the_same_groups():
    resource = yaml.safe_load(PROMETHEUS_RULE.read_text())
    assert resource["kind"] == "PrometheusRule"
    assert resource["spec"]["groups"] == yaml.safe_load(RULES.read_text())["groups"], (
        "deploy/k8s/base/monitoring/prometheusrule.yaml differs from deploy/prometheus/"
        "rules.yml: run `make prometheus-rule`"
    )
