"""The runner-like image keeps the ubuntu-24.04 contract the workflows rely on, and is strict.

GitHub's ubuntu-24.04 image (runner-images, Ubuntu2404-Readme.md) has a passwordless-sudo
`runner` user, git, make, Node 20, Python 3.12 on PATH and every other Python only in the tool
cache, which only actions/setup-python puts on PATH. The stand-in (Debian trixie, Python 3.13)
must be at least as strict: no Python 3.11 and no uv until the workflow installs them. The
proof: ci.yml's pipeline job without its setup-python step fails in `make setup` as on GitHub.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
from harness import ActRepo, push_event
from runner_image import Runner, podman_env

pytestmark = [pytest.mark.slow, pytest.mark.container]

PROBE = r"""
python3 - <<'EOF'
import json, os, platform, shutil, subprocess
def out(*cmd):
    done = subprocess.run(cmd, capture_output=True, text=True)
    return done.stdout.strip() if done.returncode == 0 else None
print(json.dumps({
    "python3": platform.python_version(),
    "python3.11": shutil.which("python3.11"),
    "uv": shutil.which("uv"),
    "node": out("node", "--version"),
    "git": out("git", "--version"),
    "make": out("make", "--version"),
    "runner": out("id", "-u", "runner"),
    "sudo": out("runuser", "-u", "runner", "--", "sudo", "-n", "true") is not None,
    "tool_cache": os.listdir("/opt/hostedtoolcache"),
    "env": {k: os.environ.get(k) for k in (
        "RUNNER_TOOL_CACHE", "AGENT_TOOLSDIRECTORY", "ImageOS", "ImageVersion")},
    "tabml": out("python3", "-c", "import tabml") is not None,
}))
EOF
"""
MODULES = "ssl, ctypes, sqlite3, lzma, bz2, zlib, readline, uuid, decimal, pip"


def podman_run(image: str, script: str, *volumes: str) -> subprocess.CompletedProcess:
    cmd = ["podman", "run", "--rm", "--network=host"]
    cmd += [arg for volume in volumes for arg in ("-v", volume)]
    return subprocess.run(
        [*cmd, image, "bash", "-c", script], capture_output=True, text=True, env=podman_env()
    )


def test_image_keeps_the_runner_contract_and_has_no_python_311(runner: Runner) -> None:
    done = podman_run(runner.image, PROBE)
    assert done.returncode == 0, done.stderr
    facts = json.loads(done.stdout)
    assert not facts["python3.11"] and not facts["uv"], facts
    assert not facts["python3"].startswith("3.11."), facts["python3"]
    assert facts["node"].startswith("v20."), facts["node"]
    assert facts["git"] and facts["make"], facts
    assert facts["runner"] and facts["runner"] != "0" and facts["sudo"], facts
    assert facts["tool_cache"] == [], "the tool cache must start empty"
    assert (
        facts["env"]
        == {
            "RUNNER_TOOL_CACHE": "/opt/hostedtoolcache",
            "AGENT_TOOLSDIRECTORY": "/opt/hostedtoolcache",
            "ImageOS": "ubuntu24",
            "ImageVersion": facts["env"]["ImageVersion"],
        }
        and facts["env"]["ImageVersion"]
    ), facts["env"]
    assert not facts["tabml"], "no project package may be installed in the image"


def test_packed_cpython_runs_in_the_image(runner: Runner) -> None:
    archive = next(runner.python_dist.glob("python-3.11.*-linux-x64.tar.gz"))
    script = (
        "set -e; d=$(mktemp -d); tar -xzf /dist/" + archive.name + " -C $d; "
        f'LD_LIBRARY_PATH=$d/lib $d/bin/python3 -c "import {MODULES}, sys; print(sys.version)"'
    )
    done = podman_run(runner.image, script, f"{runner.python_dist}:/dist:ro")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("3.11."), done.stdout


def without_setup_python(workflow: Path) -> None:
    """Delete every actions/setup-python step (the `uses:` line and its `with:` block)."""
    text = workflow.read_text(encoding="utf-8")
    step = re.compile(r"^(\s*)- uses: actions/setup-python@.*\n(?:\1  .*\n)*", re.M)
    stripped, count = step.subn("", text)
    assert count, f"{workflow.name} has no setup-python step to remove"
    workflow.write_text(stripped, encoding="utf-8")


def test_pipeline_without_setup_python_fails_in_make_setup(
    root: Path, tmp_path_factory: pytest.TempPathFactory, runner: Runner
) -> None:
    repo = ActRepo(root, tmp_path_factory.mktemp("act-no-setup-python"), runner)
    without_setup_python(repo.path / ".github/workflows/ci.yml")
    head = repo.commit("Drop the setup-python steps")
    run = repo.act("push", push_event("0" * 40, head), "ci.yml", "pipeline")
    log = run.job_log("pipeline")
    assert run.job_result("pipeline") == "failure", log[-3000:]
    assert run.failed_steps("pipeline") == ["Set up the environment"], log[-3000:]
    assert "No interpreter found for Python 3.11" in log, log[-3000:]
