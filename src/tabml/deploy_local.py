"""The `local` deploy target: the serving image under podman or Docker on this host.

The image runs with the host network on the environment's 127.0.0.1 port. The release first
runs as a candidate on a side port; only if its smoke test passes, and then the canary analysis
(tabml.canary, when deploy.prometheus_url is set and a release already runs) on replayed
traffic, does it replace the running container, which is kept stopped as
`<prefix>-<env>-previous`. If the swapped-in release then fails its smoke test, the previous
container resumes.
"""

from __future__ import annotations

from pathlib import Path

from tabml import canary, replay, smoke
from tabml.commands import CommandError, run
from tabml.engine import engine
from tabml.params import DeployParams
from tabml.smoke import ReleaseError


def container_image(tool: str, name: str) -> str | None:
    done = run(tool, "container", "inspect", name, "--format", "{{.Config.Image}}", check=False)
    return done.stdout.strip() if done.returncode == 0 else None


def start(tool: str, name: str, image: str, env: str, port: int, logs: Path) -> None:
    run(tool, "rm", "-f", "-t", "0", name, check=False)
    run(
        tool,
        "run",
        "-d",
        "--init",
        "--network=host",
        "--name",
        name,
        "--label",
        f"io.tabml.env={env}",
        "-e",
        "TABML_PREDICTION_LOG=/logs",
        "-v",
        f"{logs.resolve()}:/logs",
        image,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    )


def check_engine(tool: str, image: str, name: str) -> None:
    """Fail before anything starts or stops when the engine cannot run `image` as deploy does.

    podman's `--init` needs its init binary (catatonit), which installs only as a recommended
    package; creating and preparing a container (`podman container init`) finds it missing
    without running anything.
    """
    if run(tool, "image", "inspect", image, check=False).returncode != 0:
        raise CommandError(f"image '{image}' is not in {tool}'s store: run `make image` first.")
    if Path(tool).name != "podman":
        return  # Docker ships its init (docker-init) with the daemon
    probe = f"{name}-preflight"
    run(tool, "rm", "-f", "-t", "0", probe, check=False)
    try:
        done = run(tool, "create", "--init", "--network=host", "--name", probe, image, check=False)
        if done.returncode == 0:
            done = run(tool, "container", "init", probe, check=False)
    finally:
        run(tool, "rm", "-f", "-t", "0", probe, check=False)
    if done.returncode != 0 and "init binary" in done.stderr:
        raise CommandError(
            "podman cannot start containers with --init: its init binary is missing; "
            "install catatonit (apt-get install catatonit) and deploy again."
        )
    if done.returncode != 0:
        raise CommandError(f"podman cannot prepare a container of {image}: {done.stderr.strip()}")


def analyse_canary(env: str, urls: dict[str, str], gold: dict, cfg: DeployParams, logs: Path):
    """Replay recent requests to the canary and the stable, then judge them from Prometheus."""
    if not cfg.prometheus_url:
        print("canary analysis skipped: deploy.prometheus_url is empty", flush=True)
        return None
    records, source = replay.recent_records(logs, gold)
    print(
        f"canary analysis: replaying {source} to canary and stable, "
        f"{cfg.canary_rate:g} requests a second each for {cfg.canary_seconds:g} s",
        flush=True,
    )
    sent = replay.replay(urls, records, cfg.canary_rate, cfg.canary_seconds)
    selectors = {track: canary.selector(env=env, track=track) for track in canary.TRACKS}
    analysis = canary.analyse(cfg.prometheus_url.rstrip("/"), selectors, cfg.canary_seconds, cfg)
    analysis |= {"replayed": source, "answered": sent}
    print(canary.summary(analysis), flush=True)
    return analysis


def deploy_local(
    env: str, image: str, gold: dict, cfg: DeployParams, record: dict | None = None
) -> str:
    """Candidate on a side port, smoke, canary analysis, swap, smoke again; roll back on any
    failure. `record` receives the analysis, for the deploy record."""
    tool, port = engine(), cfg.ports[env]
    name = f"{cfg.container_prefix}-{env}"
    check_engine(tool, image, name)
    candidate, previous = f"{name}-candidate", f"{name}-previous"
    logs = Path(cfg.log_dir) / env
    logs.mkdir(parents=True, exist_ok=True)
    logs.chmod(0o777)  # the service runs as its own user inside the container
    current = container_image(tool, name)
    record = {} if record is None else record
    record["previous"] = current
    urls = {
        "canary": f"http://127.0.0.1:{port + cfg.candidate_port_offset}",
        "stable": f"http://127.0.0.1:{port}",
    }
    start(tool, candidate, image, env, port + cfg.candidate_port_offset, logs)
    try:
        failed = smoke.failures(urls["canary"], gold, cfg)
        if not failed and current:
            record["analysis"] = analyse_canary(env, urls, gold, cfg, logs)
        elif not failed:
            print(f"canary analysis skipped: {env} runs no release to compare with", flush=True)
    finally:
        run(tool, "rm", "-f", "-t", "0", candidate, check=False)
    if failed:
        checks = ", ".join(o.check for o in failed)
        raise ReleaseError(
            f"{image} failed its smoke test as a candidate ({checks}); "
            f"{env} still serves {current or 'nothing'} on port {port}."
        )
    if (record.get("analysis") or {}).get("verdict") == "roll back":
        raise ReleaseError(
            f"canary analysis rolled back {image}: {record['analysis']['failed']}; "
            f"{env} still serves {current} on port {port}."
        )
    if current:
        run(tool, "rm", "-f", "-t", "0", previous, check=False)
        run(tool, "stop", "-t", "10", name)
        run(tool, "rename", name, previous)
    start(tool, name, image, env, port, logs)
    if failed := smoke.failures(f"http://127.0.0.1:{port}", gold, cfg):
        run(tool, "rm", "-f", "-t", "0", name, check=False)
        if current:
            run(tool, "rename", previous, name)
            run(tool, "start", name)
            smoke.wait_ready(f"http://127.0.0.1:{port}", cfg.readiness_seconds)
        raise ReleaseError(
            f"{image} failed its smoke test on port {port}; rolled back: {env} serves "
            f"{current or 'nothing'} again."
        )
    return f"{env} serves {image} on http://127.0.0.1:{port} (previous: {current or 'none'})"


def rollback_local(env: str, cfg: DeployParams) -> str:
    """Put the previous release of `env` back in service."""
    tool, name = engine(), f"{cfg.container_prefix}-{env}"
    previous = f"{name}-previous"
    image = container_image(tool, previous)
    if image is None:
        raise CommandError(f"{env} has no previous release to roll back to.")
    run(tool, "rm", "-f", "-t", "0", name, check=False)
    run(tool, "rename", previous, name)
    run(tool, "start", name)
    smoke.wait_ready(f"http://127.0.0.1:{cfg.ports[env]}", cfg.readiness_seconds)
    return f"{env} serves {image} again"
