"""JSON answers for /api/ requests that never reach a DRF view: unknown paths (a trailing slash included)
and unhandled server errors. Integrators parse one error shape (outreach.errors), never Django's HTML pages.
"""
from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.urls import Resolver404, resolve
from django.views import defaults
from django.views.decorators.csrf import csrf_exempt

from outreach.errors import error_body


@csrf_exempt  # an API client has no CSRF token: a POST to a wrong path is a 404, not Django's HTML 403
def api_not_found(request: HttpRequest, unmatched: str = "") -> JsonResponse:
    """Any /api/v1/ path no route matches: a JSON 404 that says how to fix a trailing slash."""
    message = f"No API endpoint at {request.path}."
    if request.path.endswith("/") and _resolves(request.path.rstrip("/")):
        message += f" API paths have no trailing slash: use {request.path.rstrip('/')}."
    return JsonResponse(error_body(status_code=404, code="not_found", message=message), status=404)


def _resolves(path: str) -> bool:
    try:
        match = resolve(path)
    except Resolver404:
        return False
    return match.func is not api_not_found


def server_error(request: HttpRequest) -> JsonResponse:
    """handler500: JSON under /api/, Django's page elsewhere (the admin)."""
    if request.path.startswith("/api/"):
        body = error_body(status_code=500, code="server_error", message="Internal server error; it was logged.")
        return JsonResponse(body, status=500)
    return defaults.server_error(request)


def not_found(request: HttpRequest, exception: Exception | None = None):
    """handler404: JSON under /api/, Django's page elsewhere."""
    if request.path.startswith("/api/"):
        return api_not_found(request)
    return defaults.page_not_found(request, exception)
