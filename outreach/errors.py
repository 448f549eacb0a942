"""One error type for business-rule failures, and one error shape for every API error.

Every 4xx/5xx of /api/v1/ answers the same JSON body (docs/api.md, "Errors"):

    {"type": "validation_error" | "client_error" | "server_error",
     "code": "invalid" | "not_found" | "conflict" | ...,      # machine-readable, stable
     "message": "Human-readable summary.",
     "errors": [{"field": "contact_ids.0", "code": "min_value", "message": "..."}],  # per field, may be []
     "meta": {...}}                                            # optional, e.g. the existing lead's id
"""
from __future__ import annotations

from typing import Any

from rest_framework import status

STATUS_CODES = {400: "invalid", 401: "not_authenticated", 403: "permission_denied", 404: "not_found",
                405: "method_not_allowed", 406: "not_acceptable", 409: "conflict", 413: "too_large",
                414: "uri_too_long", 415: "unsupported_media_type", 422: "unprocessable", 429: "throttled",
                500: "server_error", 503: "unavailable"}


class ApplicationError(Exception):
    """A request that the system refuses for a reason the caller can fix.

    `field` names the input at fault (shown to API clients); `status_code` is a 4xx; `code` a stable
    machine-readable reason (defaults from the status); `extra` goes to the body's `meta`.
    """

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        status_code: int = status.HTTP_400_BAD_REQUEST,
        extra: dict[str, Any] | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.status_code = status_code
        self.extra = extra or {}
        self.code = code or STATUS_CODES.get(status_code, "error")

    def as_dict(self) -> dict[str, Any]:
        errors = [{"field": self.field, "code": self.code, "message": self.message}] if self.field else []
        return error_body(status_code=self.status_code, code=self.code, message=self.message, errors=errors,
                          meta=self.extra)


class NotFoundError(ApplicationError):
    def __init__(self, message: str = "Not found.") -> None:
        super().__init__(message, status_code=status.HTTP_404_NOT_FOUND)


def error_type(status_code: int, *, has_field_errors: bool = False) -> str:
    if status_code >= 500:
        return "server_error"
    return "validation_error" if has_field_errors and status_code == 400 else "client_error"


def error_body(*, status_code: int, code: str, message: str, errors: list[dict[str, Any]] | None = None,
               meta: dict[str, Any] | None = None) -> dict[str, Any]:
    errors = errors or []
    body: dict[str, Any] = {"type": error_type(status_code, has_field_errors=bool(errors)), "code": code,
                            "message": message, "errors": errors}
    if meta:
        body["meta"] = meta
    return body


def flatten_details(detail: Any, path: str = "") -> list[dict[str, Any]]:
    """DRF's nested error details as a flat list, each with its field path ("plan.nodes.0.id")."""
    if isinstance(detail, dict):
        found: list[dict[str, Any]] = []
        for key, value in detail.items():
            name = "" if key in ("non_field_errors", "__all__") else str(key)
            found += flatten_details(value, f"{path}.{name}" if path and name else (name or path))
        return found
    if isinstance(detail, list):
        if all(not isinstance(item, (dict, list)) for item in detail):
            return [_one(item, path) for item in detail]
        found = []
        for index, item in enumerate(detail):
            found += flatten_details(item, f"{path}.{index}" if path else str(index))
        return found
    return [_one(detail, path)]


def _one(item: Any, path: str) -> dict[str, Any]:
    return {"field": path or None, "code": str(getattr(item, "code", None) or "invalid"), "message": str(item)}


def _validation_message(errors: list[dict[str, Any]]) -> str:
    fields = list(dict.fromkeys(e["field"] for e in errors if e["field"]))
    if not fields:
        return errors[0]["message"] if errors else "Invalid input."
    return f"Invalid input: {', '.join(fields[:10])}."


def api_exception_handler(exc: Exception, context: dict):
    # Imported here: rest_framework.views imports the auth classes, which import this module.
    from rest_framework.exceptions import ValidationError
    from rest_framework.response import Response
    from rest_framework.views import exception_handler

    if isinstance(exc, ApplicationError):
        return Response(exc.as_dict(), status=exc.status_code)
    response = exception_handler(exc, context)  # Http404 / PermissionDenied mapped, auth headers set
    if response is None:
        return None
    if isinstance(exc, ValidationError):
        errors = flatten_details(exc.detail)
        response.data = error_body(status_code=response.status_code, code="invalid",
                                   message=_validation_message(errors), errors=errors)
        return response
    detail = getattr(exc, "detail", None)
    code = getattr(detail, "code", None) or STATUS_CODES.get(response.status_code, "error")
    if isinstance(detail, (dict, list)):
        errors = flatten_details(detail)
        response.data = error_body(status_code=response.status_code, code=str(code),
                                   message=_validation_message(errors), errors=errors)
    else:
        response.data = error_body(status_code=response.status_code, code=str(code),
                                   message=str(detail or "Error."))
    return response
