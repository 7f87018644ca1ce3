"""The local stand-ins keep the contract of the actions they replace, at the pinned versions.

`upstream/<owner>/<repo>/[sub/]action.yml` are the real actions' `action.yml` files, taken from
the release tag that `upstream/pins.json` records with the commit it points to. The workflows
must pin exactly those commits; every pinned action must run on a supported Node (GitHub is
retiring node20); every stand-in input must exist upstream with the same default and
requiredness; and every input a workflow passes must be one the stand-in reads.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from harness import ACTIONS, STAND_INS

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
UPSTREAM = HERE / "upstream"
WORKFLOWS = ROOT / ".github" / "workflows"
SUPPORTED_NODE = {"node24"}
USES = re.compile(r"^\s*(?:-\s+)?uses:\s*([\w.-]+/[\w.-]+)((?:/[\w.-]+)*)@([0-9a-f]{40}) # (\S+)")
PINS = json.loads((UPSTREAM / "pins.json").read_text(encoding="utf-8"))


def load(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def workflow_steps() -> list[tuple[str, dict[str, Any]]]:
    """(workflow name, step) for every step that uses an action."""
    steps = []
    for workflow in sorted(WORKFLOWS.glob("*.yml")):
        for job in load(workflow)["jobs"].values():
            steps += [(workflow.name, s) for s in job.get("steps", []) if "uses" in s]
    return steps


def action_path(uses: str) -> tuple[str, str]:
    """`owner/repo[/sub]@sha` -> (`owner/repo`, `sub` or "")."""
    name = uses.split("@", 1)[0]
    owner, repo, *sub = name.split("/")
    return f"{owner}/{repo}", "/".join(sub)


def pinned_actions() -> set[tuple[str, str]]:
    return {action_path(step["uses"]) for _, step in workflow_steps()}


def normalise(value: Any) -> str | None:
    """Inputs reach an action as strings: `true` is "true", and no default is ""."""
    if value is None:
        return ""
    return str(value).lower() if isinstance(value, bool) else str(value)


def test_every_pin_is_the_recorded_release() -> None:
    seen = set()
    for workflow in sorted(WORKFLOWS.glob("*.yml")):
        for line in workflow.read_text(encoding="utf-8").splitlines():
            if "uses:" not in line:
                continue
            match = USES.match(line)
            assert match, f"{workflow.name}: not pinned by SHA with a version comment: {line}"
            repo, _, sha, comment = match.groups()
            assert repo in PINS, f"{workflow.name}: {repo} has no upstream/pins.json entry"
            assert (sha, comment) == (PINS[repo]["sha"], PINS[repo]["tag"]), (
                f"{workflow.name}: {repo}@{sha} # {comment} is not the recorded "
                f"{PINS[repo]['sha']} # {PINS[repo]['tag']}"
            )
            seen.add(repo)
    assert seen == set(PINS), f"pins.json records actions no workflow uses: {set(PINS) - seen}"


@pytest.mark.parametrize("action", sorted(pinned_actions()), ids="/".join)
def test_pinned_action_runs_on_supported_node(action: tuple[str, str]) -> None:
    repo, sub = action
    upstream = UPSTREAM / repo / sub / "action.yml"
    assert upstream.is_file(), f"fetch {repo}'s action.yml at {PINS[repo]['tag']} to {upstream}"
    using = load(upstream)["runs"]["using"]
    assert using in SUPPORTED_NODE, f"{repo}/{sub} {PINS[repo]['tag']} runs on {using}"


@pytest.mark.parametrize("action", sorted(pinned_actions()), ids="/".join)
def test_stand_in_inputs_match_upstream(action: tuple[str, str]) -> None:
    repo, sub = action
    upstream = load(UPSTREAM / repo / sub / "action.yml").get("inputs") or {}
    stand_in = load(ACTIONS / STAND_INS[repo] / sub / "action.yml").get("inputs") or {}
    for name, spec in stand_in.items():
        assert name in upstream, f"stand-in for {repo}/{sub} has input {name}, upstream does not"
        real = upstream[name]
        assert bool(spec.get("required")) == bool(real.get("required")), f"{name}: required"
        assert normalise(spec.get("default")) == normalise(real.get("default")), (
            f"stand-in for {repo}/{sub}: input {name} defaults to {spec.get('default')!r}, "
            f"upstream to {real.get('default')!r}"
        )


def test_workflows_pass_only_inputs_the_stand_ins_read() -> None:
    for workflow, step in workflow_steps():
        repo, sub = action_path(step["uses"])
        stand_in = load(ACTIONS / STAND_INS[repo] / sub / "action.yml").get("inputs") or {}
        for name in step.get("with") or {}:
            assert name in stand_in, f"{workflow}: {repo}/{sub} input {name} has no stand-in"
