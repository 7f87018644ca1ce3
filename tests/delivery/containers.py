"""Container clean-up shared by the delivery tests."""

from __future__ import annotations

import subprocess


def remove_ours(tool: str, prefix: str) -> None:
    """Remove the containers and images whose names start with `prefix`."""

    def listed(*cmd: str) -> list[str]:
        return subprocess.run(cmd, capture_output=True, text=True, check=False).stdout.split()

    containers = [
        n for n in listed(tool, "ps", "-a", "--format", "{{.Names}}") if n.startswith(prefix)
    ]
    if containers:
        subprocess.run([tool, "rm", "-f", "-t", "0", *containers], capture_output=True)
    images = listed(tool, "images", "--format", "{{.Repository}}:{{.Tag}}")
    ours = [image for image in images if image.startswith(f"localhost/{prefix}")]
    if ours:
        subprocess.run([tool, "rmi", "-f", *ours], capture_output=True)
