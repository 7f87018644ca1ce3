"""A real PostgreSQL server (Debian's `postgresql` package) for a test, on 127.0.0.1 only.

`initdb` into a fresh directory with a password-protected superuser, `pg_ctl start` on a free
port with its socket in that directory, `pg_ctl stop` after. PostgreSQL refuses to run as root:
as root, the server runs as the package's `postgres` user.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from testkit.server import HOST, free_port

USER = "tabml"


@dataclass(frozen=True)
class Postgres:
    port: int
    password: str

    def url(self, database: str = "postgres") -> str:
        """The SQLAlchemy URL, without the password (give it as PGPASSWORD)."""
        return f"postgresql+psycopg://{USER}@{HOST}:{self.port}/{database}"


def bindir() -> Path | None:
    """The newest installed server's binaries, or None."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"),
                   key=lambda p: int(p.parent.parent.name))  # fmt: skip
    return found[-1].parent if found else None


@contextlib.contextmanager
def running(password: str = "test-only-secret") -> Iterator[Postgres]:
    bins = bindir()
    if bins is None:
        raise RuntimeError("PostgreSQL is not installed (make system-packages installs it).")
    owner = pwd.getpwnam("postgres") if os.geteuid() == 0 else None
    home = Path(tempfile.mkdtemp(prefix="tabml-pg-"))
    data = home / "data"
    (home / "pw").write_text(password + "\n")
    if owner:
        for path in (home, home / "pw"):
            os.chown(path, owner.pw_uid, owner.pw_gid)
    as_owner = ["runuser", "-u", "postgres", "--"] if owner else []

    def run(*cmd: str) -> None:
        done = subprocess.run([*as_owner, *cmd], capture_output=True, text=True, check=False)
        if done.returncode:
            log = (home / "server.log").read_text() if (home / "server.log").exists() else ""
            raise RuntimeError(f"{cmd[0]} failed: {done.stderr}{done.stdout}{log}")

    port = free_port()
    try:
        run(str(bins / "initdb"), "-D", str(data), "-U", USER, "--auth=scram-sha-256",
            f"--pwfile={home / 'pw'}", "--no-sync")  # fmt: skip
        options = f"-k {home} -h {HOST} -p {port} -c fsync=off"
        run(str(bins / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(home / "server.log"),
            "-w", "start")  # fmt: skip
        try:
            yield Postgres(port, password)
        finally:
            run(str(bins / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop")
    finally:
        shutil.rmtree(home, ignore_errors=True)
