"""The gate's rules, the report's pieces, and the comment's handling of an untrusted report."""

from __future__ import annotations

import http.server
import json
import sys
import threading
from argparse import Namespace
from pathlib import Path

import pytest

from tabml import comment, gate, report
from tabml.params import GateParams

RULES = GateParams(
    floors={"test.roc_auc": 0.6, "test.brier": 0.3},
    tolerances={"test.roc_auc": 0.01, "test.brier": 0.02},
    lower_is_better=("brier",),
)
BASE = {"test": {"roc_auc": 0.70, "brier": 0.20}}


def verdicts(head: dict, base: dict | None = BASE) -> dict[tuple[str, str], gate.Verdict]:
    return {(v.metric, v.rule): v for v in gate.check(head, base, RULES)}


def test_gate_passes_within_floors_and_tolerances():
    result = verdicts({"test": {"roc_auc": 0.695, "brier": 0.21}})
    assert all(v.passed for v in result.values())


def test_gate_fails_a_fall_beyond_tolerance_and_says_by_how_much():
    result = verdicts({"test": {"roc_auc": 0.68, "brier": 0.20}})
    failed = result[("test.roc_auc", "tolerance")]
    assert not failed.passed and failed.reason == "fell by 0.0200 (allowed 0.01)"
    assert result[("test.roc_auc", "floor")].passed


def test_gate_fails_below_a_floor_even_without_a_base():
    result = verdicts({"test": {"roc_auc": 0.55, "brier": 0.2}}, base=None)
    assert "below the floor 0.6" in result[("test.roc_auc", "floor")].reason
    assert result[("test.roc_auc", "tolerance")].passed  # nothing to compare with


def test_lower_is_better_metrics_fail_on_a_rise_and_above_their_ceiling():
    result = verdicts({"test": {"roc_auc": 0.7, "brier": 0.35}})
    assert "above the ceiling 0.3" in result[("test.brier", "floor")].reason
    assert result[("test.brier", "tolerance")].reason.startswith("rose by 0.1500")


def test_a_missing_metric_fails_its_rules():
    result = verdicts({"test": {"brier": 0.2}})
    assert not result[("test.roc_auc", "floor")].passed
    assert result[("test.roc_auc", "floor")].reason == "missing"


def test_gate_markdown_puts_failures_first():
    text = gate.to_markdown(gate.check({"test": {"roc_auc": 0.5, "brier": 0.2}}, BASE, RULES))
    assert text.startswith("**Gate FAILED**: 2 of 4 rules broken.")
    rows = [line for line in text.splitlines() if line.startswith("| ")][1:]
    assert rows[0].startswith("| **FAIL** |") and rows[-1].startswith("| pass |")


def test_gate_cli_uses_the_base_rules_and_fails_on_a_drop(workspace):
    metrics = workspace.path / "reports/metrics.json"
    cmd = [sys.executable, "-m", "tabml.gate", "--base", "HEAD", "--metrics", str(metrics)]
    assert workspace.run(*cmd).returncode == 0
    values = json.loads(metrics.read_text())
    values["test"]["roc_auc"] -= 0.02
    metrics.write_text(json.dumps(values))
    # Loosening the rules in the same change does not help: the base's rules apply.
    params = workspace.path / "params.yaml"
    params.write_text(params.read_text().replace("test.roc_auc: 0.01", "test.roc_auc: 0.5"))
    done = workspace.run(*cmd, check=False)
    assert done.returncode == gate.EXIT_GATE_FAILED
    assert (
        "ERROR: the gate failed: test.roc_auc (tolerance: fell by 0.0200 (allowed 0.01))."
        in done.stderr
    )


def test_tolerances_compare_only_metrics_of_the_same_rows(workspace):
    metrics = workspace.path / "reports/metrics.json"
    cmd = [sys.executable, "-m", "tabml.gate", "--base", "HEAD", "--metrics", str(metrics)]
    values = json.loads(metrics.read_text())
    values["valid"]["roc_auc"] -= 0.02
    metrics.write_text(json.dumps(values))
    assert workspace.run(*cmd, check=False).returncode == gate.EXIT_GATE_FAILED
    # A moved window (a retraining pull request): the base measured other rows.
    params = workspace.path / "params.yaml"
    params.write_text(params.read_text().replace("  start: 0\n", "  start: 29188\n", 1))
    done = workspace.run(*cmd)
    assert "| pass | `valid.roc_auc` | tolerance 0.01 |" in done.stdout
    assert "not compared: the base measured other rows" in done.stdout
    # Floors still judge it.
    values["valid"]["roc_auc"] = 0.55
    metrics.write_text(json.dumps(values))
    done = workspace.run(*cmd, check=False)
    assert done.returncode == gate.EXIT_GATE_FAILED
    assert "valid.roc_auc (floor: 0.5500 below the floor 0.6)" in done.stderr


def test_an_unknown_base_is_no_base(root, monkeypatch):
    monkeypatch.chdir(root)
    assert gate.resolve("0" * 40) is None  # a first push to a branch
    assert gate.resolve("") is None
    assert len(gate.resolve("HEAD") or "") == 40


def test_report_truncates_at_a_line_with_a_pointer():
    text = "\n".join(f"| row {i} |" for i in range(10_000))
    cut = report.truncate(text, 5_000, "_see the artifact_")
    assert len(cut) <= 5_000 and cut.endswith("_see the artifact_")
    assert cut.split("\n\n")[0].endswith("|")
    assert report.truncate("short", 5_000, "x") == "short"


def test_diff_tables_get_readable_revisions_or_say_nothing_changed():
    empty = "| Path | Metric | abc123 | workspace | Change |\n|---|---|---|---|---|\n"
    assert report.diff_table(empty, "abc123", "base abc", "Nothing.\n") == "Nothing.\n"
    full = empty + "| m.json | auc | 0.7 | 0.69 | -0.01 |\n"
    assert "| base abc | this change |" in report.diff_table(full, "abc123", "base abc", "-")


def test_validation_section_names_the_failing_checks(tmp_path):
    failures = [{"column": "age", "check": "less_than_or_equal_to(120)", "failing": 3}]
    (tmp_path / "v.json").write_text(json.dumps({"passed": False, "failures": failures}))
    (tmp_path / "v.md").write_text("Data validation FAILED: the table.\n")
    ok, text = report.validation_section(tmp_path / "v.json", tmp_path / "v.md")
    assert not ok
    assert "`age`: `less_than_or_equal_to(120)`" in text and "the table." in text
    ok, text = report.validation_section(tmp_path / "missing.json", tmp_path / "v.md")
    assert not ok and "stopped before it" in text


def test_production_section_says_plainly_when_no_server_is_configured(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert "No MLflow tracking server is configured" in report.production_section({}, "tabml")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///mlflow.db")
    assert "No MLflow tracking server is configured" in report.production_section({}, "tabml")


# --- the comment: the report is untrusted input -------------------------------------------


def write_report(directory: Path, text: str) -> Path:
    (directory / "plots").mkdir(parents=True)
    (directory / "plots/roc.png").write_bytes(b"\x89PNG fake but present")
    (directory / "report.md").write_text(text)
    return directory


def test_comment_links_images_to_the_run_unless_published(tmp_path):
    folder = write_report(tmp_path / "r", "![ROC](plots/roc.png)\n![Secret](../../etc/passwd)\n")
    text = (folder / "report.md").read_text()
    body = comment.comment_body(text, folder, publish=False, run_url="https://run/1")
    assert "[ROC (image in the `report` artifact)](https://run/1)" in body
    assert "image `../../etc/passwd` is not part of the report" in body
    published = comment.comment_body(text, folder, publish=True, run_url="https://run/1")
    assert "![ROC](plots/roc.png)" in published and "passwd)" not in published


def test_comment_body_stays_under_the_limit(tmp_path):
    body = comment.comment_body("x" * 100_000, tmp_path, publish=False, run_url="u")
    assert len(body) < comment.COMMENT_LIMIT and body.endswith("artifact of u._")


class PullRequestApi(http.server.BaseHTTPRequestHandler):
    """A local stand-in of GitHub's `GET /repos/{repo}/pulls/{n}`: pull request 7 only."""

    def do_GET(self):
        if (
            self.path != "/repos/o/r/pulls/7"
            or "Bearer t0ken" not in self.headers["Authorization"]
        ):
            self.send_error(404)
            return
        body = json.dumps({"number": 7, "head": {"sha": "feed"}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def api():
    server = http.server.HTTPServer(("127.0.0.1", 0), PullRequestApi)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def args(api: str, head: str, listed: str = "") -> Namespace:
    return Namespace(
        pr_numbers=listed, repo="o/r", api_url=api, token_env="TEST_TOKEN", head_sha=head
    )


def test_pull_request_comes_from_the_event_when_github_lists_it(tmp_path, api):
    assert comment.resolve_pr(args(api, "feed", listed="12 13"), tmp_path) == 12


def test_fork_pull_request_number_must_have_the_tested_head(tmp_path, api, monkeypatch):
    monkeypatch.setenv("TEST_TOKEN", "t0ken")
    (tmp_path / "pr.json").write_text(json.dumps({"number": 7, "head_sha": "feed"}))
    assert comment.resolve_pr(args(api, "feed"), tmp_path) == 7
    with pytest.raises(comment.CommentError, match="has head feed, not the tested commit beef"):
        comment.resolve_pr(args(api, "beef"), tmp_path)
    (tmp_path / "pr.json").write_text(json.dumps({"number": "7; rm -rf /"}))
    with pytest.raises(comment.CommentError, match="invalid pull request"):
        comment.resolve_pr(args(api, "feed"), tmp_path)


@pytest.mark.slow
def test_report_names_the_failed_rule_notes_edited_rules_and_fits_a_comment(workspace):
    """`tabml.report` in a copy of the project, against its own committed HEAD."""
    metrics = workspace.path / "reports/metrics.json"
    values = json.loads(metrics.read_text())
    values["test"]["roc_auc"] -= 0.02
    metrics.write_text(json.dumps(values))
    params = workspace.path / "params.yaml"
    params.write_text(params.read_text().replace("test.roc_auc: 0.01", "test.roc_auc: 0.5"))
    summary = workspace.path / "reports/validation.md"
    rows = "".join(f"| col{i} | isin | {i} | `x` |\n" for i in range(3_000))
    summary.write_text(summary.read_text() + rows)
    out = workspace.path / "build/report"
    workspace.run(
        sys.executable, "-m", "tabml.report", "--base", "HEAD", "--out", str(out),
        "--metrics", "reports/metrics.json", "--validation", "reports/validation.json",
        "--summary", "reports/validation.md", "--run-url", "https://run/9",
    )  # fmt: skip
    short, full = (out / "report.md").read_text(), (out / "report-full.md").read_text()
    assert "- Gate: **FAILED** (`test.roc_auc` tolerance)" in short
    assert "| **FAIL** | `test.roc_auc` | tolerance 0.01 |" in short
    assert "This change edits the `gate` rules" in short
    assert len(short) <= report.COMMENT_LIMIT - report.MARGIN
    assert short.endswith("in the artifact of [this run](https://run/9)._")
    assert "| col2999 |" in full and "![ROC](plots/roc.png)" in full
    assert (out / "plots/roc.png").stat().st_size > 1000
