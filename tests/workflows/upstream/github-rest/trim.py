"""Trim GitHub's REST API description to the operations that `make github-setup` calls.

    python trim.py api.github.com.json --commit SHA > api.github.com.fragment.json

Input: `descriptions/api.github.com/api.github.com.json` of github/rest-api-description.
Rules, applied to each operation in OPERATIONS:
- kept: operationId, requestBody (`required` and the application/json schema), responses (each
  status code and its application/json schema, if any);
- dropped: parameters (the path template names the path ones), summaries, descriptions,
  titles, examples, externalDocs, headers, discriminators, `x-github*` extensions;
- `$ref` to a schema in KEEP_SCHEMAS is resolved in place (recursively); any other `$ref` (a
  large response schema, a shared error response) becomes `{"x-trimmed-ref": ref}`, which
  accepts anything, and a `oneOf` holding such a branch becomes an `anyOf` (two "anything"
  branches could never match exactly one).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

OPERATIONS = [
    ("get", "/users/{username}"),
    ("put", "/repos/{owner}/{repo}/environments/{environment_name}"),
    ("get", "/repos/{owner}/{repo}/environments/{environment_name}/deployment-branch-policies"),
    ("post", "/repos/{owner}/{repo}/environments/{environment_name}/deployment-branch-policies"),
    (
        "delete",
        "/repos/{owner}/{repo}/environments/{environment_name}/deployment-branch-policies/"
        "{branch_policy_id}",
    ),
    ("post", "/repos/{owner}/{repo}/actions/variables"),
    ("get", "/repos/{owner}/{repo}/actions/variables/{name}"),
    ("patch", "/repos/{owner}/{repo}/actions/variables/{name}"),
    ("put", "/repos/{owner}/{repo}/actions/permissions/workflow"),
    ("put", "/repos/{owner}/{repo}/branches/{branch}/protection"),
]
KEEP_SCHEMAS = {
    "actions-can-approve-pull-request-reviews",
    "actions-default-workflow-permissions",
    "actions-set-default-workflow-permissions",
    "actions-variable",
    "deployment-branch-policy",
    "deployment-branch-policy-name-pattern-with-type",
    "deployment-branch-policy-settings",
    "deployment-reviewer-type",
    "empty-object",
    "environment",
    "prevent-self-review",
    "wait-timer",
}
DROP = {"description", "summary", "title", "example", "examples", "externalDocs", "discriminator"}
SCHEMA_PREFIX = "#/components/schemas/"


def resolve(node: Any, doc: dict) -> Any:
    """`node` with kept schema references inlined and every other reference marked trimmed."""
    if isinstance(node, list):
        return [resolve(item, doc) for item in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if ref is not None:
        name = ref.removeprefix(SCHEMA_PREFIX)
        if ref.startswith(SCHEMA_PREFIX) and name in KEEP_SCHEMAS:
            return resolve(doc["components"]["schemas"][name], doc)
        return {"x-trimmed-ref": ref}
    out = {
        key: (
            {name: resolve(schema, doc) for name, schema in value.items()}
            if key == "properties"
            else resolve(value, doc)
        )
        for key, value in node.items()
        if key not in DROP and not key.startswith("x-github")
    }
    if any("x-trimmed-ref" in branch for branch in out.get("oneOf", [])):
        out["anyOf"] = out.pop("oneOf")
    return out


def json_schema(content: dict | None, doc: dict) -> dict:
    """The resolved application/json schema of a request or response, if it has one."""
    media = (content or {}).get("application/json")
    return {"schema": resolve(media["schema"], doc)} if media and "schema" in media else {}


def trim(doc: dict, commit: str) -> dict:
    """The fragment: the source, the rules, and the trimmed operations by path and method."""
    paths: dict[str, dict] = {}
    for method, path in OPERATIONS:
        operation = doc["paths"][path][method]
        trimmed: dict[str, Any] = {"operationId": operation["operationId"]}
        if "requestBody" in operation:
            body = operation["requestBody"]
            trimmed["requestBody"] = {
                "required": body.get("required", False),
                **json_schema(body.get("content"), doc),
            }
        trimmed["responses"] = {
            status: (
                {"x-trimmed-ref": answer["$ref"]}
                if "$ref" in answer
                else json_schema(answer.get("content"), doc)
            )
            for status, answer in operation["responses"].items()
        }
        paths.setdefault(path, {})[method] = trimmed
    return {
        "source": {
            "repository": "github/rest-api-description",
            "path": "descriptions/api.github.com/api.github.com.json",
            "commit": commit,
            "openapi": doc["openapi"],
            "version": doc["info"]["version"],
        },
        "trimmed_by": "tests/workflows/upstream/github-rest/trim.py",
        "paths": paths,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("description", type=Path, help="api.github.com.json")
    parser.add_argument("--commit", required=True, help="the commit the description is from")
    args = parser.parse_args(argv)
    doc = json.loads(args.description.read_text(encoding="utf-8"))
    json.dump(trim(doc, args.commit), sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
