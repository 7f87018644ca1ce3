"""`make registry-login`: log the container engine in to the registry the images go to.

The user and token come from the environment the workflow gave (`REGISTRY_AUTH` says which
variables); the token reaches the engine on its standard input, never as an argument.
"""

from __future__ import annotations

import os
import subprocess

from tabml import commands
from tabml.commands import CommandError
from tabml.engine import engine
from tabml.io import DataError


def credentials(auth: str, env: dict[str, str]) -> tuple[str, str]:
    """The user and token for `REGISTRY_AUTH=auth`, from the environment the workflow gave."""
    if auth == "aws":
        # configure-aws-credentials put the role's session in the environment.
        region = env.get("AWS_REGION", "")
        return "AWS", commands.output("aws", "ecr", "get-login-password", "--region", region)
    sources = {
        "github": ("GITHUB_ACTOR", "GITHUB_TOKEN"),
        "password": ("REGISTRY_USER", "REGISTRY_TOKEN"),
        "gcp": ("", "GCP_ACCESS_TOKEN"),  # the access token google-github-actions/auth made
    }
    if auth not in sources:
        raise DataError(f"REGISTRY_AUTH is '{auth}': use github, aws, gcp, password or none.")
    user_var, token_var = sources[auth]
    user = env.get(user_var, "") if user_var else "oauth2accesstoken"
    token = env.get(token_var, "")
    for name, value in ((user_var, user), (token_var, token)):
        if name and not value:
            raise DataError(f"{name} is empty: REGISTRY_AUTH={auth} logs in with it.")
    return user, token


def login(registry: str, auth: str) -> str:
    """Log the engine in to the registry's host; the token goes through standard input."""
    host = registry.split("/")[0]
    if auth == "none":
        return f"REGISTRY_AUTH=none: no login to {host}."
    user, token = credentials(auth, dict(os.environ))
    tool = engine()
    # commands.run has no standard input to give, and the token must not be an argument.
    try:
        done = subprocess.run(
            [tool, "login", host, "--username", user, "--password-stdin"],
            input=token,
            capture_output=True,
            text=True,
            check=False,
        )
    except FileNotFoundError:
        raise CommandError(f"`{tool}` is not installed (or not on PATH).") from None
    if done.returncode != 0:
        raise CommandError(f"{tool} login {host} failed: {commands.last_line(done)}")
    return f"logged in to {host} as {user} ({auth})."
