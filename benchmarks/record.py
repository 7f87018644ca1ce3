"""Write a benchmark's printed table into its own block of docs/benchmarks.md.

A block sits between `<!-- bench:NAME -->` and `<!-- /bench:NAME -->`. A script wraps its
printing in `recorded(NAME, "make TARGET")`: what it prints still goes to the terminal, and on
success replaces the block's content, headed by the date, the machine and the command. Nothing
else in the page changes, and the page is replaced in one step (a temporary file, then a rename)
so that an interrupted run or two benchmarks finishing together never leave half a page.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import io
import os
import platform
import re
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "benchmarks.md"


class BlockError(Exception):
    """The page has no usable block for a benchmark."""


def markers(name: str) -> tuple[str, str]:
    return f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"


def replace_block(text: str, name: str, body: str) -> str:
    """Return `text` with the content of block `name` replaced by `body`.

    Raises:
        BlockError: the markers are missing, repeated or in the wrong order.
    """
    start, end = markers(name)
    starts = [m.start() for m in re.finditer(re.escape(start), text)]
    ends = [m.start() for m in re.finditer(re.escape(end), text)]
    if len(starts) != 1 or len(ends) != 1:
        raise BlockError(
            f"expected one line {start} and one line {end}, found {len(starts)} and {len(ends)}"
        )
    if ends[0] < starts[0]:
        raise BlockError(f"{end} comes before {start}")
    head = text[: starts[0] + len(start)]
    return f"{head}\n{body.strip()}\n{text[ends[0] :]}"


def check_block(name: str, docs: Path = DOCS) -> None:
    """Fail before a long run, rather than after it, when the page cannot take its table."""
    try:
        replace_block(docs.read_text(encoding="utf-8"), name, "")
    except (OSError, BlockError) as exc:
        raise SystemExit(f"cannot record benchmark {name!r} in {docs}: {exc}") from None


def write_block(name: str, body: str, docs: Path = DOCS) -> None:
    """Replace block `name` of `docs` with `body`, atomically."""
    # The lock is on the directory, which the rename leaves in place (the file's inode changes).
    dir_fd = os.open(docs.parent, os.O_RDONLY)
    try:
        fcntl.flock(dir_fd, fcntl.LOCK_EX)
        new = replace_block(docs.read_text(encoding="utf-8"), name, body)
        fd, tmp = tempfile.mkstemp(dir=docs.parent, prefix=f".{docs.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(new)
            Path(tmp).chmod(docs.stat().st_mode & 0o777)
            Path(tmp).replace(docs)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    finally:
        os.close(dir_fd)


def commit() -> str:
    done = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip() or "unknown"


def heading(target: str | None) -> str:
    """The line above a table: when, where and by which command it was measured."""
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    script = Path(sys.argv[0]).resolve()
    with contextlib.suppress(ValueError):
        script = script.relative_to(ROOT)
    command = shlex.join(["python", str(script), *sys.argv[1:]])
    via = f" (`{target}`)" if target else ""
    return (
        f"Measured {now} by `{command}`{via} at commit {commit()}, on "
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, load average {load} at the end."
    )


class Tee(io.TextIOBase):
    """Writes to the terminal and keeps a copy."""

    def __init__(self, out: TextIO) -> None:
        self.out, self.copy = out, io.StringIO()

    def write(self, text: str) -> int:
        self.copy.write(text)
        return self.out.write(text)

    def flush(self) -> None:
        self.out.flush()


@contextlib.contextmanager
def recorded(name: str, target: str | None = None, docs: Path = DOCS) -> Iterator[None]:
    """Print as usual; on success, write what was printed into block `name` of `docs`."""
    check_block(name, docs)
    tee = Tee(sys.stdout)
    with contextlib.redirect_stdout(tee):
        yield
    write_block(name, f"{heading(target)}\n\n{tee.copy.getvalue().strip()}", docs)
    print(f"recorded in {docs} (block bench:{name})")
