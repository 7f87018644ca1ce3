"""Validate the custom resources of rendered manifests against vendored CRD schemas.

    python deploy/k8s/validate_crds.py SCHEMA_DIR MANIFEST.yaml...     (deploy/k8s/validate.sh)

kubernetes-validate knows the built-in kinds only and skips the rest with a warning; this
checks each document whose apiVersion and kind a schema in SCHEMA_DIR declares (the CRD's
openAPIV3Schema), and fails on a kind of an API group the schemas cover but none declares. As
`kubectl apply --validate=strict` does, a field the schema does not name is an error. CEL rules
(`x-kubernetes-validations`) are not evaluated. One line per problem; exit 1 if any.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft7Validator


def strict(schema: Any) -> Any:
    """The schema with unknown fields refused wherever it names an object's properties."""
    if isinstance(schema, list):
        return [strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: strict(v) for k, v in schema.items()}
    open_ended = out.get("x-kubernetes-preserve-unknown-fields") or "additionalProperties" in out
    if "properties" in schema and not open_ended:
        out["additionalProperties"] = False
    return out


def load_schemas(directory: Path) -> dict[tuple[str, str], Draft7Validator]:
    schemas = {}
    for path in sorted(directory.glob("*.yaml")):
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        schemas[doc["apiVersion"], doc["kind"]] = Draft7Validator(strict(doc["openAPIV3Schema"]))
    return schemas


def problems(manifest: Path, schemas: dict[tuple[str, str], Draft7Validator]) -> list[str]:
    groups = {api.split("/")[0] for api, _ in schemas}
    found = []
    for doc in yaml.safe_load_all(manifest.read_text(encoding="utf-8")):
        if not doc:
            continue
        key = (doc.get("apiVersion", ""), doc.get("kind", ""))
        name = f"{manifest}: {key[1]}/{doc.get('metadata', {}).get('name', '?')}"
        if key in schemas:
            for error in sorted(schemas[key].iter_errors(doc), key=lambda e: list(e.path)):
                where = ".".join(str(p) for p in error.path) or "(top)"
                found.append(f"{name}: {where}: {error.message}")
        elif key[0].split("/")[0] in groups:
            found.append(f"{name}: no schema for {key[0]} {key[1]} in the vendored CRDs")
    return found


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(f"usage: {Path(__file__).name} SCHEMA_DIR MANIFEST.yaml...", file=sys.stderr)
        return 2
    schemas = load_schemas(Path(argv[0]))
    found = [line for manifest in argv[1:] for line in problems(Path(manifest), schemas)]
    for line in found:
        print(f"ERROR: {line}", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
