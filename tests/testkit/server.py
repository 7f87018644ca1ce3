"""Start a server on 127.0.0.1 for a test or a benchmark, wait until it answers, stop it after."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    """A running server: its base URL, process and how long it took to answer."""

    url: str
    port: int
    process: subprocess.Popen
    startup_seconds: float
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


@contextlib.contextmanager
def running(
    cmd: Sequence[str],
    port: int,
    log_path: Path,
    *,
    ready_path: str = "/readyz",
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 90.0,
) -> Iterator[Server]:
    """Run `cmd` (which must listen on `port`); yield once `ready_path` answers 200."""
    url = f"http://{HOST}:{port}"
    with log_path.open("wb") as log:
        start = time.perf_counter()
        # Own session: stopping the server stops its workers, and nothing else.
        process = subprocess.Popen(
            list(cmd), stdout=log, stderr=subprocess.STDOUT, env=env, cwd=cwd,
            start_new_session=True,
        )  # fmt: skip
        try:
            while not _ready(url + ready_path):
                if process.poll() is not None or time.perf_counter() - start > timeout:
                    raise RuntimeError(
                        f"{' '.join(cmd)} did not answer on {url}{ready_path}:\n"
                        + log_path.read_text(errors="replace")[-4000:]
                    )
                time.sleep(0.1)
            yield Server(url, port, process, time.perf_counter() - start, log_path)
        finally:
            stop(process)


def stop(process: subprocess.Popen, grace: float = 15.0) -> None:
    """SIGTERM the server (it stops its workers gracefully); SIGKILL its group if it lingers."""
    if process.poll() is None:
        process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(grace)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)  # workers left behind, if any
    process.wait()
