"""The plan's JSON Schema (strict form for structured model output), canonical JSON and the plan hash."""
from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from campaigns.dsl.model import (
    Plan,
)

# --- JSON Schema ------------------------------------------------------------------------------------------------

def plan_json_schema(*, strict: bool = False) -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of the plan.

    `strict=False` (default): the faithful schema; every valid plan validates against it. Hand it to
    OpenAI as `response_format={"type": "json_schema", "json_schema": {"name": "plan", "schema": ...,
    "strict": False}}`. `strict=True`: a variant for OpenAI strict structured outputs, which require
    every property to be listed as required (optional ones become nullable), `anyOf` instead of `oneOf`,
    and no length keywords; `validate_plan` treats those nulls as absent keys. Either way the model's
    answer must still go through `validate_plan`, which checks what a schema cannot (graph, bounds).
    """
    schema = copy.deepcopy(_base_schema())
    if strict:
        schema = _strictify(schema)
        schema.pop("$schema", None)  # OpenAI takes the schema's dialect as given
    return schema


@lru_cache(maxsize=1)
def _base_schema() -> dict[str, Any]:
    schema = Plan.model_json_schema(by_alias=True, mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Campaign plan (DSL 1.0)"
    return schema


_STRICT_DROP = {"minLength", "maxLength", "uniqueItems", "default", "discriminator"}


def _strictify(node: Any) -> Any:
    if isinstance(node, list):
        return [_strictify(item) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _STRICT_DROP:
            continue
        if key == "oneOf":
            out["anyOf"] = _strictify(value)
        elif key == "const":
            out["enum"] = [value]
        elif key in ("properties", "$defs"):
            out[key] = {name: _strictify(sub) for name, sub in value.items()}
        else:
            out[key] = _strictify(value)
    if out.get("type") == "object" and "properties" in out:
        required = set(out.get("required", []))
        for name, sub in out["properties"].items():
            if name not in required and not _allows_null(sub):
                out["properties"][name] = {"anyOf": [sub, {"type": "null"}]}
        out["required"] = list(out["properties"])
        out["additionalProperties"] = False
    return out


def _allows_null(schema: dict[str, Any]) -> bool:
    return schema.get("type") == "null" or any(_allows_null(s) for s in schema.get("anyOf", []) if isinstance(s, dict))


# --- canonical form and hash ------------------------------------------------------------------------------------

def _drop_nulls(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [_drop_nulls(v) for v in value]
    return value


def canonical_json(plan: Mapping[str, Any] | Plan) -> str:
    """Sorted keys, no spaces, UTF-8 text (not \\u-escaped); null-valued keys are dropped (null means absent)."""
    document = plan.to_document() if isinstance(plan, Plan) else plan
    return json.dumps(_drop_nulls(document), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def plan_hash(plan: Mapping[str, Any] | Plan) -> str:
    """SHA-256 hex digest of the UTF-8 canonical JSON."""
    return hashlib.sha256(canonical_json(plan).encode("utf-8")).hexdigest()
