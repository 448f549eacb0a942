"""The OpenAPI schema states every error the API can answer, in its one shape (outreach.errors).

A drf-spectacular post-processing hook: one `Error` component, and on every operation the error
statuses it can give (a documented response without a body, e.g. a view's 409 description, gets the
shape too). Integrators and schemathesis then see the same contract the handler enforces.
"""
from __future__ import annotations

ERROR_COMPONENT = {
    "type": "object",
    "required": ["type", "code", "message", "errors"],
    "properties": {
        "type": {"type": "string", "enum": ["validation_error", "client_error", "server_error"]},
        "code": {"type": "string", "description": "Stable, machine-readable reason (invalid, not_found, ...)"},
        "message": {"type": "string", "description": "Human-readable summary"},
        "errors": {
            "type": "array",
            "description": "Per-field problems; the field is a dotted path (plan.nodes[0].id, contact_ids.3)",
            "items": {
                "type": "object",
                "required": ["field", "code", "message"],
                "properties": {"field": {"type": "string", "nullable": True}, "code": {"type": "string"},
                               "message": {"type": "string"}},
            },
        },
        "meta": {"type": "object", "additionalProperties": True,
                 "description": "Context of some errors, e.g. the existing lead's id on a duplicate domain"},
    },
}

_DESCRIPTIONS = {
    "400": "Invalid input, or an unknown field or query parameter (each named in `errors`)",
    "401": "No or an invalid API key",
    "403": "Your role may not do this",
    "404": "Not found (or another tenant's)",
    "405": "Method not allowed on this path",
    "406": "Only JSON responses can be given",
    "409": "Refused in the current state, or an Idempotency-Key reused for another request",
    "413": "Request body too large",
    "415": "Unsupported request media type",
    "429": "Too many requests",
    "500": "Internal error (logged)",
}
_ALWAYS = ("400", "401", "403", "404", "405", "406", "500")
_WRITES = ("409", "413", "415")


def add_error_responses(result, generator, request, public):
    """drf-spectacular POSTPROCESSING_HOOKS entry."""
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_COMPONENT
    content = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for path, operations in result.get("paths", {}).items():
        if not path.startswith("/api/v1/"):
            continue
        for method, operation in operations.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            codes = (*_ALWAYS, *(_WRITES if method in ("post", "put", "patch", "delete") else ()))
            responses = operation["responses"]
            for code in codes:
                responses.setdefault(code, {"description": _DESCRIPTIONS[code]})
            for code, response in responses.items():
                if code[0] in "45" and "content" not in response:
                    response["content"] = content
    return result
