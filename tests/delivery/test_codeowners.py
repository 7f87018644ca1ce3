"""CODEOWNERS covers every file of the security boundary, and the fork flag reaches the report."""

from __future__ import annotations

import fnmatch
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from tabml import report

ROOT = Path(__file__).resolve().parents[2]
# The files that decide what runs with which token, what gets posted, and what may merge.
BOUNDARY = [
    "Makefile",
    "src/tabml/comment.py",
    "src/tabml/artifact.py",
    "src/tabml/gate.py",
    "params.yaml",
]
OWNER = re.compile(r"^@[\w.-]+(/[\w.-]+)?$|^[^@\s]+@[^@\s]+$")  # @user, @org/team or e-mail


def rules() -> list[tuple[str, list[str]]]:
    lines = (ROOT / ".github/CODEOWNERS").read_text(encoding="utf-8").splitlines()
    return [(parts[0], parts[1:]) for line in lines if (parts := line.split("#", 1)[0].split())]


def matches(pattern: str, path: str) -> bool:
    """GitHub's CODEOWNERS matching (gitignore rules) for the patterns this file uses."""
    anchored = pattern.startswith("/") or "/" in pattern.rstrip("/")
    pattern = pattern.lstrip("/")
    if pattern.endswith("/"):
        return path.startswith(pattern) if anchored else f"/{pattern}" in f"/{path}"
    if anchored:
        return fnmatch.fnmatchcase(path, pattern) or path.startswith(pattern + "/")
    return any(fnmatch.fnmatchcase(part, pattern) for part in path.split("/"))


def owners(path: str) -> list[str]:
    """The owners of `path`: the last matching rule wins, as on GitHub."""
    found: list[str] = []
    for pattern, names in rules():
        if matches(pattern, path):
            found = names
    return found


def boundary() -> list[str]:
    tracked = subprocess.run(
        ["git", "ls-files", ".github"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    return sorted({*BOUNDARY, *tracked, ".github/workflows/new.yml", ".github/CODEOWNERS"})


@pytest.mark.parametrize("path", boundary())
def test_every_boundary_file_has_an_owner(path):
    found = owners(path)
    assert found, f"{path} has no code owner in .github/CODEOWNERS"
    assert all(OWNER.match(name) for name in found), found


def test_the_matcher_can_say_no():
    assert not owners("src/tabml/train.py")
    assert not owners("docs/github.md")


def test_the_header_tells_a_fork_to_replace_the_owner():
    head = (ROOT / ".github/CODEOWNERS").read_text(encoding="utf-8").split("\n\n")[0]
    names = {name for _, found in rules() for name in found}
    assert len(names) == 1 and f"replaces {names.pop()}" in head


# --- a fork's pull request: no repository variables, and the report says why ---------------


def test_a_fork_pull_request_says_it_cannot_see_the_tracking_server(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    text = report.production_section({}, "tabml", from_fork=True)
    assert "comes from a fork" in text and "MLFLOW_TRACKING_URI" in text
    assert "No MLflow tracking server is configured" not in text
    same_repo = report.production_section({}, "tabml", from_fork=False)
    assert "No MLflow tracking server is configured" in same_repo and "fork" not in same_repo


@pytest.mark.parametrize(("flag", "passed"), [("true", True), ("false", False), ("", False)])
def test_make_report_passes_the_fork_flag(flag, passed):
    done = subprocess.run(
        ["make", "--no-print-directory", "-n", "report", f"FROM_FORK={flag}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    command = done.stdout[done.stdout.index("tabml.report") :].replace("\\\n", " ")
    command = command.splitlines()[0]
    assert ("--from-fork" in command) == passed, command


def test_ci_tells_the_report_whether_the_pull_request_comes_from_a_fork():
    ci = yaml.safe_load((ROOT / ".github/workflows/ci.yml").read_text(encoding="utf-8"))
    step = next(s for s in ci["jobs"]["report"]["steps"] if s.get("run") == "make report")
    flag = step["env"]["FROM_FORK"]
    # The head repository differs from this one; on a push there is no pull request at all.
    assert "github.event.pull_request.head.repo.full_name != github.repository" in flag
    assert "github.event.pull_request.head.repo.full_name != ''" in flag


# --- monitor.yml and CML ----------------------------------------------------------------------


def test_the_monitor_starts_retraining_on_the_branch_of_its_run():
    text = (ROOT / ".github/workflows/monitor.yml").read_text(encoding="utf-8")
    monitor = yaml.safe_load(text)
    step = next(s for s in monitor["jobs"]["trigger"]["steps"] if "run" in s)
    assert step["env"]["RETRAIN_REF"] == "${{ github.ref_name }}"
    # A scheduled event carries no payload fields (no `repository`): nothing may read one.
    code = "\n".join(line.split("#", 1)[0] for line in text.splitlines())
    assert "github.event." not in code


def test_cml_telemetry_is_off_with_the_variable_cml_reads():
    show = "show-cml-env: ; @echo $$ITERATIVE_DO_NOT_TRACK"
    done = subprocess.run(
        ["make", "--no-print-directory", "-s", "--eval", show, "show-cml-env"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == "1"
    for name in ("retrain.yml",):  # the workflows that run CML through make
        workflow = yaml.safe_load((ROOT / ".github/workflows" / name).read_text("utf-8"))
        assert workflow["env"]["ITERATIVE_DO_NOT_TRACK"] == "1", name
