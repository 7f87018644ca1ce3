"""dvc.yaml wires every stage to the code it runs: a change to a module it imports re-runs it,
and a change to any other module does not."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src/tabml"
STAGES = yaml.safe_load((ROOT / "dvc.yaml").read_text(encoding="utf-8"))["stages"]


def module_file(name: str) -> Path | None:
    """The file of module `tabml.x.y`, or None when it is not one of ours."""
    parts = name.split(".")
    if parts[0] != "tabml":
        return None
    path = PACKAGE.joinpath(*parts[1:])
    for candidate in (path.with_suffix(".py"), path / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def imports(path: Path) -> set[Path]:
    """The project's modules that `path` imports anywhere in it (lazy imports included)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
        found |= {f for f in map(module_file, names) if f is not None}
    return found


def closure(path: Path) -> set[Path]:
    seen, todo = set(), [path]
    while todo:
        current = todo.pop()
        if current not in seen:
            seen.add(current)
            todo += imports(current)
    return {p for p in seen if p.name != "__init__.py" or p.stat().st_size > 100}


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_stage_deps_list_exactly_the_modules_its_command_imports(stage):
    cmd = " ".join(STAGES[stage]["cmd"].split())
    entry = re.search(r"python -m (tabml[\w.]*)", cmd)
    assert entry, f"stage {stage}: its command is not `python -m tabml...`"
    needed = {str(p.relative_to(ROOT)) for p in closure(module_file(entry.group(1)))}
    deps = {dep for dep in STAGES[stage]["deps"] if dep.startswith("src/")}
    assert needed <= deps, f"stage {stage} misses deps {sorted(needed - deps)}"
    # A module it does not import would re-run it for nothing.
    assert deps <= needed, f"stage {stage} lists deps it does not import {sorted(deps - needed)}"
