"""The gate's rules, the report's pieces, and the comment's handling of an untrusted report."""

from __future__ import annotations

import http.server
import json
import struct
import sys
import threading
import zlib
from argparse import Namespace
from pathlib import Path

import pytest

from tabml import comment, gate, report
from tabml.params import GateParams, load_params

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
    params.write_text(params.read_text().replace("  start: 0\n", "  start: 100\n", 1))
    done = workspace.run(*cmd)
    assert "| pass | `valid.roc_auc` | tolerance 0.01 |" in done.stdout
    assert "not compared: the base measured other rows" in done.stdout
    # Floors still judge it.
    floor = load_params(workspace.path / "params.yaml").gate.floors["valid.roc_auc"]
    values["valid"]["roc_auc"] = floor - 0.05
    metrics.write_text(json.dumps(values))
    done = workspace.run(*cmd, check=False)
    assert done.returncode == gate.EXIT_GATE_FAILED
    assert f"valid.roc_auc (floor: {floor - 0.05:.4f} below the floor {floor})" in done.stderr


def test_no_base_only_when_none_is_named_and_an_unknown_one_is_an_error(root, monkeypatch):
    monkeypatch.chdir(root)
    assert gate.resolve("0" * 40) is None  # a push that created its branch
    assert gate.resolve("") is None
    assert len(gate.resolve("HEAD") or "") == 40
    with pytest.raises(gate.UnknownBaseError, match="'no-such-branch' is not in this clone"):
        gate.resolve("no-such-branch")


def test_gate_and_report_on_a_base_that_does_not_resolve(workspace, tmp_path):
    metrics = workspace.path / "reports/metrics.json"
    cmd = [sys.executable, "-m", "tabml.gate", "--base", "no-such-branch", "--metrics"]
    done = workspace.run(*cmd, str(metrics), check=False)
    assert done.returncode == gate.EXIT_BAD_BASE
    errors = [line for line in done.stderr.splitlines() if line.strip()]
    assert errors == [errors[0]] and errors[0].startswith("ERROR: base revision 'no-such-branch'")
    done = workspace.run(
        sys.executable, "-m", "tabml.report", "--base", "no-such-branch", "--out", str(tmp_path),
        "--metrics", str(metrics), "--validation", "reports/validation.json",
        "--summary", "reports/validation.md",
    )  # fmt: skip
    report = (tmp_path / "report.md").read_text(encoding="utf-8")
    warning = "> **Warning:** base revision 'no-such-branch' is not in this clone"
    assert warning in report
    assert report.index(warning) < report.index("- Pipeline") < report.index("### Gate")
    assert "- Gate: **error**: the base revision does not resolve" in report
    assert "No base revision given" not in report
    done = workspace.run(
        sys.executable, "-m", "tabml.report", "--base", "", "--out", str(tmp_path / "none"),
        "--metrics", str(metrics), "--validation", "reports/validation.json",
        "--summary", "reports/validation.md",
    )  # fmt: skip
    report = (tmp_path / "none/report.md").read_text(encoding="utf-8")
    assert "No base revision given" in report and "**Warning:**" not in report


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


def tiny_png(width: int = 1, height: int = 1) -> bytes:
    """A valid PNG: signature, IHDR with its CRC, one IDAT, IEND."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    pixels = zlib.compress(b"".join(b"\0" + b"\x80" * width for _ in range(height)))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", pixels)
        + chunk(b"IEND", b"")
    )


def write_report(directory: Path, text: str) -> Path:
    (directory / "plots").mkdir(parents=True)
    (directory / "plots/roc.png").write_bytes(tiny_png())
    (directory / "report.md").write_text(text)
    return directory


def body_of(folder: Path, copy: Path, publish: bool, run_url: str = "https://run/1") -> str:
    text = (folder / "report.md").read_text()
    copy.mkdir(exist_ok=True)
    left_out = comment.collect(folder, copy, text)
    return comment.comment_body(text, left_out, publish=publish, run_url=run_url)


def test_comment_links_images_to_the_run_unless_published(tmp_path):
    folder = write_report(tmp_path / "r", "![ROC](plots/roc.png)\n![Secret](../../etc/passwd)\n")
    body = body_of(folder, tmp_path / "copy", publish=False)
    assert "[ROC (image in the `report` artifact)](https://run/1)" in body
    assert "image `../../etc/passwd` is not part of the report" in body
    assert (tmp_path / "copy/plots/roc.png").read_bytes() == tiny_png()
    published = body_of(folder, tmp_path / "copy", publish=True)
    assert "![ROC](plots/roc.png)" in published and "passwd)" not in published


def test_comment_leaves_out_what_is_not_a_plain_png_of_the_report(tmp_path):
    folder = write_report(tmp_path / "r", "")
    outside = tmp_path / "outside.png"
    outside.write_bytes(tiny_png())
    (folder / "plots/link.png").symlink_to(outside)
    (folder / "linked").symlink_to(tmp_path)
    (folder / "plots/text.png").write_text("#!/bin/sh\necho not an image\n")
    (folder / "plots/crc.png").write_bytes(tiny_png()[:29] + b"\0\0\0\0" + tiny_png()[33:])
    (folder / "plots/huge.png").write_bytes(tiny_png(20_000, 1))
    (folder / "plots/dir.png").mkdir()
    names = ["link", "text", "crc", "huge", "dir", "missing"]
    text = "".join(f"![{n}](plots/{n}.png)\n" for n in names)
    text += "![up](../outside.png)\n![via](linked/outside.png)\n![abs](/etc/passwd.png)\n"
    text += "![dot](plots/.hidden.png)\n![ok](plots/roc.png)\n"
    left_out = comment.collect(folder, tmp_path / "copy", text)
    assert set(left_out) == {
        *(f"plots/{n}.png" for n in names), "../outside.png", "linked/outside.png",
        "/etc/passwd.png", "plots/.hidden.png",
    }  # fmt: skip
    assert "not a PNG image" in left_out["plots/text.png"]
    assert "IHDR" in left_out["plots/crc.png"]
    assert "20000x1" in left_out["plots/huge.png"]
    assert "not a regular file" in left_out["plots/dir.png"]
    assert [p.name for p in (tmp_path / "copy").rglob("*") if p.is_file()] == ["roc.png"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[a](https://evil.example/x)", "[a\\](https://evil.example/x)"),
        ("![a](/proc/self/environ)", "![a\\](/proc/self/environ)"),
        (
            "[a][ref] and [ref][]\n\n[ref]: /etc/passwd",
            "[a\\][ref] and [ref\\][]\n\n[ref\\]: /etc/passwd",
        ),
        (
            "<https://evil.example> <a@b.c> <img src=x> a <= b",
            "\\<https://evil.example> \\<a@b.c> \\<img src=x> a <= b",
        ),
        ("\\](kept escaped) \\\\](x)", "\\](kept escaped) \\\\\\](x)"),
        ("| a [1, 2] | `x` |", "| a [1, 2] | `x` |"),
    ],
)
def test_links_and_definitions_are_kept_as_text(text, expected):
    assert comment.neutralise(text) == expected


def test_comment_body_stays_under_the_limit():
    body = comment.comment_body("x" * 100_000, {}, publish=False, run_url="https://u")
    assert len(body) < comment.COMMENT_LIMIT and body.endswith("artifact of https://u._")


def test_a_missing_report_is_one_line_naming_the_directory(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        comment.main(
            ["--report-dir", str(tmp_path / "none"), "--head-sha", "beef", "--repo", "o/r"]
        )
    assert exit_.value.code == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "report.md" in err and str(tmp_path / "none") in err


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
