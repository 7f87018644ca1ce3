"""The workflow files: linters, hardening rules, and every `run:` step being one make target."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((ROOT / ".github/workflows").glob("*.yml"))
PINNED = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40} # v\d+(\.\d+)*$")


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def make_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    return set(re.findall(r"^([A-Za-z0-9_-]+):(?!=)", text, flags=re.M))


def steps(workflow: dict):
    for job_id, job in workflow["jobs"].items():
        for step in job.get("steps", []):
            yield job_id, step


def run(*cmd: str) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)


def test_there_are_workflows():
    assert {p.name for p in WORKFLOWS} >= {"ci.yml", "pr-report.yml"}


def test_workflows_and_dependabot_match_their_schemas():
    done = run(
        "check-jsonschema", "--builtin-schema", "vendor.github-workflows", *map(str, WORKFLOWS)
    )
    assert done.returncode == 0, done.stdout + done.stderr
    done = run(
        "check-jsonschema", "--builtin-schema", "vendor.dependabot", ".github/dependabot.yml"
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_actionlint_finds_nothing():
    done = run("actionlint", *map(str, WORKFLOWS))
    assert done.returncode == 0, done.stdout + done.stderr


def test_zizmor_offline_finds_nothing_and_every_ignore_says_why():
    done = run(
        "zizmor",
        "--offline",
        "--pedantic",
        "--no-progress",
        *map(str, WORKFLOWS),
        ".github/dependabot.yml",
    )
    assert done.returncode == 0, done.stdout + done.stderr
    for path in WORKFLOWS:
        for line in path.read_text(encoding="utf-8").splitlines():
            if "zizmor: ignore[" in line:
                reason = line.split("]", 1)[1].strip()
                assert len(reason) > 20, f"{path.name}: an ignore without a reason: {line}"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_every_run_step_is_one_existing_make_target(path):
    targets = make_targets()
    for job_id, step in steps(load(path)):
        if "run" not in step:
            continue
        # One target, with at most fixed variables (`make deploy ENV=staging`).
        match = re.fullmatch(r"make ([A-Za-z0-9_-]+)(?: [A-Z_]+=[\w.-]+)*", step["run"].strip())
        assert match, f"{path.name}/{job_id}: `{step['run']}` is not one make target"
        assert match.group(1) in targets, f"{path.name}/{job_id}: no target {match.group(1)}"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_is_hardened(path):
    text = path.read_text(encoding="utf-8")
    workflow = load(path)
    assert workflow["permissions"] in ({}, {"contents": "read"}), "top-level permissions"
    assert text.startswith("#"), "a header comment says when the workflow runs and why"
    assert "${{ secrets." not in text, "no secret reaches these workflows"
    for job_id, job in workflow["jobs"].items():
        assert isinstance(job.get("timeout-minutes"), int), f"{job_id}: timeout-minutes"
        assert "permissions" in job, f"{job_id}: per-job permissions"
    for line in text.splitlines():
        if re.match(r"^\s*(-\s+)?uses:", line):
            uses = line.split("uses:", 1)[1].strip()
            assert PINNED.match(uses), f"not pinned to a commit with its version: {uses}"
    for job_id, step in steps(workflow):
        if step.get("uses", "").startswith("actions/checkout@"):
            assert step["with"]["persist-credentials"] is False, job_id
            assert "ref" not in step["with"] and "repository" not in step["with"], job_id


def test_pull_request_ci_is_read_only_cancels_stale_runs_and_ends_in_one_required_job():
    workflow = load(ROOT / ".github/workflows/ci.yml")
    assert set(workflow[True]) == {"pull_request", "push"}  # YAML reads `on` as True
    assert workflow["concurrency"]["cancel-in-progress"] is True
    for job_id, job in workflow["jobs"].items():
        assert set(job["permissions"].values()) <= {"read"}, job_id
    final = workflow["jobs"]["all-green"]
    assert set(final["needs"]) == set(workflow["jobs"]) - {"all-green"}
    assert final["if"] == "${{ always() }}"
    for job_id in final["needs"]:
        assert f"{job_id}=${{{{ needs.{job_id}.result }}}}" in final["steps"][-1]["env"]["RESULTS"]


def test_comment_workflow_runs_trusted_code_only():
    workflow = load(ROOT / ".github/workflows/pr-report.yml")
    assert list(workflow[True]) == ["workflow_run"]
    (job,) = workflow["jobs"].values()
    assert job["permissions"] == {
        "actions": "read",
        "contents": "read",
        "pull-requests": "write",
    }
    runs = [step["run"] for step in job["steps"] if "run" in step]
    assert runs == ["make install-cml", "make comment"], "the posting job installs CML and posts"
    # CML is installed before anything the pull request made is on disk, and that lands
    # outside the checkout.
    order = [step.get("run") or step["uses"].split("@")[0] for step in job["steps"]]
    assert order.index("make install-cml") < order.index("actions/download-artifact")
    (download,) = [s for s in job["steps"] if "download-artifact" in s.get("uses", "")]
    assert download["with"]["path"].startswith("${{ runner.temp }}/")


def test_dependabot_watches_actions_and_python():
    config = load(ROOT / ".github/dependabot.yml")
    assert {u["package-ecosystem"] for u in config["updates"]} == {"github-actions", "uv"}


def test_pull_request_template_points_at_the_report():
    text = (ROOT / ".github/pull_request_template.md").read_text(encoding="utf-8")
    assert "tabml report" in text and "make repro" in text


@pytest.mark.parametrize(
    ("results", "ok"),
    [
        ("lint=success tests=success gate=success", True),
        ("lint=success tests=failure gate=success", False),
        ("lint=success tests=skipped", False),
        ("", False),
    ],
)
def test_all_green_target_passes_only_when_every_job_succeeded(results, ok):
    done = run("make", "--no-print-directory", "all-green", f"RESULTS={results}")
    assert (done.returncode == 0) is ok, done.stdout + done.stderr
    if not ok and results:
        assert "did not succeed" in done.stdout + done.stderr
