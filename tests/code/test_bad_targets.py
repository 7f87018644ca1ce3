"""The make targets a user types, each with a bad argument: a non-zero exit, one line of error
naming the argument and what to do, no traceback, and nothing changed in the working tree."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

CASES = {
    # name: (make arguments, extra environment, words the one error line must hold)
    "gate, unknown base": (["gate", "BASE=no-such-branch"], {}, ["'no-such-branch'", "git fetch"]),
    "monitor, missing log directory": (
        ["monitor", "PREDICTION_LOG=no/such/dir"], {},
        ["directory no/such/dir does not exist", "PREDICTION_LOG"],
    ),
    "monitor, log is a file": (
        ["monitor", "PREDICTION_LOG=README.md"], {}, ["README.md is not a directory"],
    ),
    "shadow-report, missing log directory": (
        ["shadow-report", "PREDICTION_LOG=no/such/dir"], {},
        ["no/such/dir: no such prediction log directory", "PREDICTION_LOG="],
    ),
    "shadow-report, bad window": (
        ["shadow-report", "PREDICTION_LOG=no/such/dir", "LOG_LAST=0"], {}, ["LOG_LAST=0"],
    ),
    "serve, port not a number": (["serve", "PORT=30OO"], {}, ["PORT='30OO'", "PORT=3000"]),
    "serve, prediction log is a file": (
        ["serve"], {"TABML_PREDICTION_LOG": "README.md"},
        ["TABML_PREDICTION_LOG=", "README.md is a file, not a directory"],
    ),
    "init, no arguments": (["init"], {}, ["SOURCE=", "TARGET="]),
    "init, no such source": (
        ["init", "SOURCE=no/such.csv", "TARGET=label"], {}, ["SOURCE=no/such.csv: no such file"],
    ),
    "promote, nothing registered": (
        ["promote", "ENV=staging", "BUILD=no/such/build"], {}, ["make register"],
    ),
    "smoke, no golden requests": (
        ["smoke", "URL=http://127.0.0.1:1", "BUILD=no/such/build"], {},
        ["no/such/build/golden.json: no such file"],
    ),
    "deploy, unknown environment": (["deploy", "ENV=prod"], {}, ["--env", "'prod'", "staging"]),
    "rollback, unknown environment": (["rollback", "ENV=prod"], {}, ["--env", "'prod'"]),
    "preflight, unknown job": (["preflight", "JOB=ship"], {}, ["--job", "'ship'", "build"]),
    "check-params, bad file": (
        ["check-params", "PARAMS=README.md"], {}, ["README.md: not valid YAML"],
    ),
}  # fmt: skip


def status() -> str:
    return subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_a_bad_argument_is_one_line_of_error(case):
    args, extra, words = CASES[case]
    before = status()
    done = subprocess.run(
        ["make", "--no-print-directory", *args], cwd=ROOT, env={**os.environ, **extra},
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    output = done.stdout + done.stderr
    assert done.returncode != 0, output
    assert "Traceback" not in output
    # make's own "make: *** [Makefile:N: target] Error 2" closes every failed target
    # ("make[1]: ***" when this suite runs under `make test`).
    errors = [
        line
        for line in output.splitlines()
        if "error" in line.lower() and not re.match(r"make(\[\d+\])?: \*\*\*", line)
    ]
    assert len(errors) == 1, output
    for word in words:
        assert word in errors[0], (word, errors[0])
    assert status() == before
