"""One error type for business-rule failures, mapped to a clear 4xx in one place."""
from __future__ import annotations

from typing import Any

from rest_framework import status


class ApplicationError(Exception):
    """A request that the system refuses for a reason the caller can fix.

    `field` names the input at fault (shown to API clients); `status_code` is a 4xx.
    """

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        status_code: int = status.HTTP_400_BAD_REQUEST,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.status_code = status_code
        self.extra = extra or {}

    def as_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"detail": self.message}
        if self.field:
            body["field"] = self.field
        body.update(self.extra)
        return body


class NotFoundError(ApplicationError):
    def __init__(self, message: str = "Not found.") -> None:
        super().__init__(message, status_code=status.HTTP_404_NOT_FOUND)


def api_exception_handler(exc: Exception, context: dict):
    # Imported here: rest_framework.views imports the auth classes, which import this module.
    from rest_framework.response import Response
    from rest_framework.views import exception_handler

    if isinstance(exc, ApplicationError):
        return Response(exc.as_dict(), status=exc.status_code)
    return exception_handler(exc, context)
