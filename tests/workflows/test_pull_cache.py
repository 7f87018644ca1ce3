"""`make pull-cache` with a DVC remote: a fresh clone gets the outputs and retrains nothing.

The remote is a real S3 API (moto's server on 127.0.0.1), filled from the session's reproduced
pipeline, as a push from main would fill it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
import urllib.request

import pytest
from harness import free_port

pytestmark = pytest.mark.slow

S3_ENV = {
    "AWS_ACCESS_KEY_ID": "test",
    "AWS_SECRET_ACCESS_KEY": "test",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@pytest.fixture
def s3(tmp_path):
    """A moto S3 server with an empty bucket `dvc`, stopped after the test."""
    import boto3

    port = free_port()
    moto = shutil.which("moto_server", path=str(sys.executable).rsplit("/", 1)[0])
    proc = subprocess.Popen(
        [moto or "moto_server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(url, timeout=2).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("moto_server did not start") from None
                time.sleep(0.2)
        boto3.client("s3", endpoint_url=url, **_boto_keys()).create_bucket(Bucket="dvc")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _boto_keys() -> dict[str, str]:
    return {
        "aws_access_key_id": S3_ENV["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": S3_ENV["AWS_SECRET_ACCESS_KEY"],
        "region_name": S3_ENV["AWS_DEFAULT_REGION"],
    }


def add_remote(ws, url: str) -> None:
    ws.run("dvc", "remote", "add", "--default", "--local", "store", "s3://dvc/cache")
    ws.run("dvc", "remote", "modify", "--local", "store", "endpointurl", url)


def test_fresh_clone_pulls_the_run_cache_and_does_not_retrain(pipeline, workspace, tmp_path, s3):
    from testkit.workspace import copy_project

    env = {**workspace.env, **S3_ENV}
    # Main's side: the reproduced pipeline's cache, pushed with its run-cache.
    shutil.copytree(pipeline.path / ".dvc/cache", workspace.path / ".dvc/cache")
    add_remote(workspace, s3)
    workspace.run("dvc", "push", "--run-cache", env=env)
    # A fresh clone with the same remote: `make pull-cache`, then `dvc repro`.
    clone = copy_project(workspace.path, tmp_path / "clone")
    add_remote(type(workspace)(clone), s3)

    def run(*cmd: str) -> str:
        done = subprocess.run(cmd, cwd=clone, env=env, capture_output=True, text=True)
        assert done.returncode == 0, f"{cmd}:\n{done.stdout}\n{done.stderr}"
        return done.stdout + done.stderr

    assert "No DVC remote configured" not in run("make", "--no-print-directory", "pull-cache")
    # The pull restored every output: no stage runs, not even validate.
    repro = run("dvc", "repro")
    assert "Running stage" not in repro and "Data and pipelines are up to date." in repro
