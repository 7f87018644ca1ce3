"""The one way the project runs another program (git, dvc, the container engine, kubectl...).

A failure is a `CommandError` whose message names the command and ends with what it printed last,
so that `cli.run` can show it as one readable paragraph. `DataError` stays for bad input data.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from pathlib import Path

TAIL_CHARS = 3000  # how much of a failed command's output the error message keeps


class CommandError(Exception):
    """A program the project drives failed (a build, a push, a deploy); the message says which."""


def run(
    *cmd: str,
    check: bool = True,
    cwd: str | Path | None = None,
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run `cmd` and capture its output; with `check`, a non-zero exit raises `CommandError`."""
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=cwd, env=env)
    except FileNotFoundError:
        raise CommandError(f"`{cmd[0]}` is not installed (or not on PATH).") from None
    if check and done.returncode != 0:
        printed = (done.stdout[-TAIL_CHARS:] + done.stderr[-TAIL_CHARS:]).strip()
        raise CommandError(
            f"`{' '.join(cmd[:4])}{' ...' if len(cmd) > 4 else ''}` failed"
            f" (exit {done.returncode}): {printed or 'no output'}"
        )
    return done


def output(*cmd: str, cwd: str | Path | None = None) -> str:
    """The standard output of `cmd`, stripped; `CommandError` when it fails."""
    return run(*cmd, cwd=cwd).stdout.strip()


def last_line(done: subprocess.CompletedProcess[str]) -> str:
    """The last line a command printed on standard error, for a one-line message."""
    return (done.stderr.strip().splitlines() or ["no output"])[-1]
