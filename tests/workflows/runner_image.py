"""A runner-like world for `act` in container mode: the image, the engine socket, the downloads.

`runner/build.sh` builds a stand-in for GitHub's ubuntu-24.04 runner from Debian trixie (no
Python 3.11, no uv, an empty tool cache); it is rebuilt only when its inputs change (their hash
is the image's `tabml.runner.inputs` label). The CPython that actions/setup-python would
download is this machine's own 3.11, packed once a session in actions/python-versions' layout;
uv is its PyPI wheel, at this machine's version. `act` drives podman through its Docker API.

act names a job's container after the workflow and the job only, and removes any container of
that name when it starts one: two sessions running the same job on one engine would break each
other's runs. So the runner world keeps its own podman store ($TABML_RUNNER_STORE), with its
own containers, images and act's tool-cache volume.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tarfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
BUILD = HERE / "runner"
IMAGE = "localhost/tabml-runner:ubuntu-24.04"
STORE = Path(os.environ.get("TABML_RUNNER_STORE", "/var/lib/containers/tabml-runner"))
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
BUILD_LOG = Path(os.environ.get("TMPDIR", "/tmp")) / "tabml-runner-build.log"
BUILD_TIMEOUT = 1200  # seconds; debootstrap plus the image build, on a slow mirror
# What a python-versions build holds besides the standard library: pip, and no tests.
KEEP_PACKAGES = ("pip", "pip-")


class RunnerError(RuntimeError):
    """The runner-like world cannot be set up here; the message is one line."""


@dataclass(frozen=True)
class Runner:
    """What `ActRepo.act` needs to run jobs in the runner image instead of on this machine."""

    image: str
    socket: Path
    python_dist: Path
    uv_dist: Path


def storage_conf(store: Path = STORE) -> Path:
    """A containers-storage.conf that puts images, containers and volumes under `store`."""
    conf = store / "storage.conf"
    text = (
        f'[storage]\ndriver = "overlay"\ngraphroot = "{store / "storage"}"\n'
        f'runroot = "/run/{store.name}-storage"\n'
    )
    if not conf.is_file() or conf.read_text(encoding="utf-8") != text:
        store.mkdir(parents=True, exist_ok=True)
        conf.write_text(text, encoding="utf-8")
    return conf


def podman_env(private: bool = True) -> dict[str, str]:
    """The environment of podman commands: this machine's settings, the runner's own store."""
    env = dict(os.environ)
    env.setdefault("CONTAINERS_CONF", str(ROOT / "deploy/podman/containers.conf"))
    if private:
        env["CONTAINERS_STORAGE_CONF"] = str(storage_conf())
    return env


def copy_image(image: str) -> None:
    """Copy `image` from this machine's podman store into the runner's, unless it is there."""
    inspect = ["podman", "image", "inspect", image]
    if subprocess.run(inspect, capture_output=True, env=podman_env(), check=False).returncode == 0:
        return
    save = subprocess.Popen(
        ["podman", "save", image], stdout=subprocess.PIPE, env=podman_env(private=False)
    )
    load = subprocess.run(
        ["podman", "load"], stdin=save.stdout, capture_output=True, text=True, env=podman_env()
    )
    save.wait()
    if save.returncode != 0 or load.returncode != 0:
        raise RunnerError(f"cannot copy {image} into the runner's store: {load.stderr.strip()}")


def inputs_hash() -> str:
    digest = hashlib.sha256()
    for path in [*sorted(BUILD.iterdir()), CA_BUNDLE]:
        if path.is_file():
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def build_image(image: str = IMAGE) -> str:
    """The runner image, built by runner/build.sh unless one from the same inputs is here."""
    if not shutil.which("podman"):
        raise RunnerError("podman is not installed: apt-get install podman (see NOTES.md)")
    wanted = inputs_hash()
    label = '{{index .Config.Labels "tabml.runner.inputs"}}'
    inspect = ["podman", "image", "inspect", "--format", label, image]
    done = subprocess.run(inspect, capture_output=True, text=True, env=podman_env(), check=False)
    if done.returncode == 0 and done.stdout.strip() == wanted:
        return image
    env = podman_env() | {"RUNNER_IMAGE": image, "INPUTS_HASH": wanted}
    log = BUILD_LOG
    with log.open("w", encoding="utf-8") as out:
        built = subprocess.run(
            [str(BUILD / "build.sh")], stdout=out, stderr=subprocess.STDOUT, env=env,
            timeout=BUILD_TIMEOUT, check=False,
        )  # fmt: skip
    if built.returncode != 0:
        last = log.read_text(encoding="utf-8").strip().splitlines()[-1:] or ["no output"]
        raise RunnerError(f"runner image build failed ({last[0]}); full log: {log}")
    return image


def python_member(member: tarfile.TarInfo) -> tarfile.TarInfo | None:
    """Keep the interpreter, the standard library and pip; drop installed packages and tests."""
    parts = Path(member.name).parts
    if "__pycache__" in parts or member.name.endswith(".a"):
        return None
    # Names are "./lib/python3.x/...": Path drops the leading ".".
    if len(parts) < 4 or parts[0] != "lib":
        return member
    if parts[2] == "test" or (
        parts[2] == "site-packages" and not parts[3].startswith(KEEP_PACKAGES)
    ):
        return None
    return member


def host_python(version: str = "3.11") -> tuple[str, str]:
    """(x.y.z, installation prefix) of this machine's CPython `version`, even seen from a venv."""
    exe = shutil.which(f"python{version}")
    if not exe:
        raise RunnerError(
            f"python{version} is not on PATH: it is the tool cache's prebuilt CPython"
        )
    probe = "import platform, sys; print(platform.python_version(), sys.base_prefix)"
    full, prefix = subprocess.check_output([exe, "-c", probe], text=True).split()
    return full, prefix


def pack_python(dest: Path, version: str = "3.11") -> Path:
    """This machine's CPython `version` as python-<x.y.z>-linux-x64.tar.gz, pip but no packages."""
    full, prefix = host_python(version)
    dest.mkdir(parents=True, exist_ok=True)
    archive = dest / f"python-{full}-linux-x64.tar.gz"
    with tarfile.open(archive, "w:gz", compresslevel=1) as tar:
        tar.add(prefix, arcname=".", filter=python_member)
    return archive


def download_uv(dest: Path) -> Path:
    """uv's manylinux x86_64 wheel from PyPI, at the version this machine runs."""
    uv = shutil.which("uv")
    if not uv:
        raise RunnerError("uv is not on PATH: its version is the one the runner gets")
    version = subprocess.check_output([uv, "--version"], text=True).split()[1]
    dest.mkdir(parents=True, exist_ok=True)
    # A venv has no pip; the installation packed for the tool cache has one.
    _, prefix = host_python()
    pip = [f"{prefix}/bin/python3", "-m", "pip", "download", "--quiet", "--no-deps"]
    pip += ["--only-binary=:all:", "--platform=manylinux_2_17_x86_64", f"--dest={dest}"]
    done = subprocess.run([*pip, f"uv=={version}"], capture_output=True, text=True, check=False)
    wheels = sorted(dest.glob(f"uv-{version}-*manylinux*x86_64*.whl"))
    if done.returncode != 0 or not wheels:
        error = (done.stderr.strip().splitlines() or ["no wheel"])[-1]
        raise RunnerError(f"cannot download uv {version}'s wheel from PyPI: {error}")
    return wheels[0]


@contextmanager
def podman_socket(path: Path) -> Iterator[Path]:
    """podman's Docker-compatible API on a unix socket, for as long as the block runs."""
    if not shutil.which("podman"):
        raise RunnerError("podman is not installed: apt-get install podman (see NOTES.md)")
    path.parent.mkdir(parents=True, exist_ok=True)
    service = subprocess.Popen(
        ["podman", "system", "service", "--time=0", f"unix://{path}"],
        env=podman_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while not path.exists():
            if service.poll() is not None or time.monotonic() > deadline:
                error = (service.stderr.read() if service.stderr else "").strip()
                raise RunnerError(f"podman system service did not start: {error or 'timeout'}")
            time.sleep(0.2)
        yield path
    finally:
        service.terminate()
        try:
            service.wait(timeout=10)
        except subprocess.TimeoutExpired:
            service.kill()
            service.wait()


@contextmanager
def runner_world(tmp: Path) -> Iterator[Runner]:
    """The image, the CPython and uv downloads, and the engine socket, for one test session."""
    image = build_image()
    python_dist, uv_dist = tmp / "python-dist", tmp / "uv-dist"
    pack_python(python_dist)
    download_uv(uv_dist)
    with podman_socket(tmp / "podman.sock") as socket:
        yield Runner(image, socket, python_dist, uv_dist)


def act_in_image() -> bool:
    """Whether the workflow tests run their jobs in the runner image (the default).

    TABML_ACT_RUNNER=host runs them on this machine instead: quicker, and it proves less.
    """
    mode = os.environ.get("TABML_ACT_RUNNER", "image")
    if mode not in ("host", "image"):
        raise RunnerError(f"TABML_ACT_RUNNER is '{mode}'; expected 'host' or 'image'.")
    return mode == "image"


@contextmanager
def runner_or_fail(tmp: Path) -> Iterator[Runner]:
    """The runner world for a fixture, or a one-line test failure saying why there is none."""
    import pytest

    if not shutil.which("podman"):
        pytest.skip(
            "no podman: the workflow jobs run in the runner image through podman "
            "(TABML_ACT_RUNNER=host runs them on this machine instead)"
        )
    world = runner_world(tmp)
    try:
        ready = world.__enter__()
    except RunnerError as exc:
        pytest.fail(f"runner-like image unavailable: {exc}", pytrace=False)
    try:
        yield ready
    finally:
        world.__exit__(None, None, None)
