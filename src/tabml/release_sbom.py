"""`make sbom`: a CycloneDX SBOM of the Python environment of each image the release builds.

The serving image's environment is the one the bento pins (its requirements.txt); the pipeline
image's is uv.lock without the dev tools, as the top-level Dockerfile syncs it.
"""

from __future__ import annotations

from pathlib import Path

from tabml import commands


def sbom(bento: str, out: Path) -> list[Path]:
    """CycloneDX SBOMs of the Python environments of both images."""
    out.mkdir(parents=True, exist_ok=True)
    bento_path = Path(commands.output("bentoml", "get", bento, "-o", "path"))
    pipeline_reqs = out / "pipeline-requirements.txt"
    pipeline_reqs.write_text(
        commands.output(
            "uv",
            "export",
            "--frozen",
            "--no-dev",
            "--no-emit-project",
            "--no-hashes",
            "--format",
            "requirements-txt",
        )
    )
    written = []
    for name, reqs in (
        ("service", bento_path / "env/python/requirements.txt"),
        ("pipeline", pipeline_reqs),
    ):
        target = out / f"{name}.cdx.json"
        commands.run(
            "cyclonedx-py",
            "requirements",
            str(reqs),
            "--of",
            "JSON",
            "--output-reproducible",
            "-o",
            str(target),
        )
        written.append(target)
    return written
