"""dvc.yaml as DVC reads it: `${section.key}` replaced by the value params.yaml gives it."""

from __future__ import annotations

import functools
import re
from pathlib import Path

import yaml

TEMPLATE = re.compile(r"\$\{([\w.]+)\}")


def template_keys(text: str) -> set[str]:
    """The dotted keys (`paths.model`) that `${...}` expressions in `text` use."""
    return set(TEMPLATE.findall(text))


def resolve_templates(root: Path) -> str:
    """The text of `root`/dvc.yaml with each `${a.b}` replaced by params.yaml's value of it."""
    params = yaml.safe_load((root / "params.yaml").read_text(encoding="utf-8"))

    def value(match: re.Match[str]) -> str:
        return str(functools.reduce(lambda d, k: d[k], match.group(1).split("."), params))

    return TEMPLATE.sub(value, (root / "dvc.yaml").read_text(encoding="utf-8"))
