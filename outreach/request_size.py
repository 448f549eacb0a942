"""Refuse an over-large request body before anything reads it (413), whichever view it is for.

Django streams a multipart upload above FILE_UPLOAD_MAX_MEMORY_SIZE to a temporary file *while parsing*,
so a view's own size check (the 20 MB import limit) came after a 200 MB upload was already on disk. This
middleware runs before any view touches ``request.POST`` / ``FILES`` / ``body`` and compares the declared
Content-Length with the limit of the path; the WSGI stream itself is a ``LimitedStream`` of that length,
so a body without a Content-Length (chunked) reads as empty rather than without end.
"""
from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse


def request_max_bytes(path: str) -> int:
    """The largest body accepted for ``path``: the longest matching prefix of REQUEST_MAX_BYTES_BY_PATH, else
    REQUEST_MAX_BYTES."""
    best = ""
    for prefix in settings.REQUEST_MAX_BYTES_BY_PATH:
        if path.startswith(prefix) and len(prefix) > len(best):
            best = prefix
    return settings.REQUEST_MAX_BYTES_BY_PATH[best] if best else settings.REQUEST_MAX_BYTES


class RequestSizeLimitMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return JsonResponse({"detail": "Content-Length is not a number"}, status=400)
        limit = request_max_bytes(request.path)
        if length > limit:
            # Connection: close, so the server does not read the rest of the body to reuse the connection.
            response = JsonResponse({"detail": f"request body larger than {limit} bytes"}, status=413)
            response["Connection"] = "close"
            return response
        return self.get_response(request)
