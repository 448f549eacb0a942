"""How a SendGrid call failed, in the terms delivery needs to decide what to do next.

Four kinds, because they call for four different actions:

- PERMANENT: the request was refused (400/401/403/404/413...). Retrying sends the same
  refusal; the message fails and SendGrid's own words are kept for the operator.
- RATE_LIMITED: 429. Try again at ``reset_at`` (X-RateLimit-Reset), not before.
- TRANSIENT: 5xx, or the connection failed before the whole request was handed to the
  socket (refused, DNS, connect timeout). SendGrid cannot have acted on it: safe to retry.
- AMBIGUOUS: the request was sent but no complete answer came back (read timeout,
  connection dropped or reset while waiting). The mail may have gone out: never resend
  blindly; reconcile from webhook events instead.
"""
from __future__ import annotations

import datetime as dt
from enum import StrEnum


class SendGridErrorKind(StrEnum):
    PERMANENT = "permanent"
    RATE_LIMITED = "rate_limited"
    TRANSIENT = "transient"
    AMBIGUOUS = "ambiguous"


class SendGridError(Exception):
    def __init__(
        self,
        kind: SendGridErrorKind,
        message: str,
        *,
        status_code: int | None = None,
        reset_at: dt.datetime | None = None,
        errors: list[dict] | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.status_code = status_code
        self.reset_at = reset_at
        self.errors = errors or []

    @property
    def field(self) -> str | None:
        for error in self.errors:
            if error.get("field"):
                return str(error["field"])
        return None

    def __str__(self) -> str:
        code = f"HTTP {self.status_code}: " if self.status_code else ""
        return f"{self.kind}: {code}{self.message}"
