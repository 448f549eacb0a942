"""Thin wrapper over the official ``sendgrid`` library: one place that builds the client,
sets the timeout, and turns whatever urllib / python_http_client raise into a
:class:`SendGridError` of the right kind.

Timeouts: ``SendGridAPIClient.send()`` takes no timeout, but the underlying
``python_http_client.Client`` does: every verb accepts ``timeout=`` (handed to
``urllib.request.OpenerDirector.open``), and ``Client.timeout`` is the default that
``_build_client`` copies down the attribute chain. We pass it per call.

Where the failure happened matters (see ``errors.py``): urllib wraps every ``OSError``
raised while *sending* the request (connect, write) in ``URLError``; errors raised while
*waiting for the answer* (``getresponse``: read timeout, RemoteDisconnected, reset) come
through unwrapped. Only the first kind proves the request never reached SendGrid whole.
"""
from __future__ import annotations

import datetime as dt
import http.client
import json
import logging
import socket
import urllib.error
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from python_http_client import exceptions as http_exceptions
from sendgrid import SendGridAPIClient

from messaging.sendgrid.errors import SendGridError, SendGridErrorKind
from outreach import clock

logger = logging.getLogger(__name__)

PERMANENT_STATUS_CODES = frozenset({400, 401, 403, 404, 405, 413, 415})
DEFAULT_RATE_LIMIT_WAIT = dt.timedelta(seconds=60)


@dataclass(frozen=True)
class MailSendResult:
    status_code: int
    message_id: str | None
    rate_limit_remaining: int | None


def sendgrid_client(*, api_key: str | None = None) -> SendGridAPIClient:
    return SendGridAPIClient(api_key=api_key or settings.SENDGRID_API_KEY, host=settings.SENDGRID_API_HOST)


def _timeout(timeout: float | None) -> float:
    return float(timeout if timeout is not None else settings.SENDGRID_REQUEST_TIMEOUT_SECONDS)


def _header(headers: Any, name: str) -> str | None:
    if headers is None:
        return None
    try:
        value = headers.get(name)
    except AttributeError:
        return None
    return None if value is None else str(value)


def _parse_errors(body: bytes | str | None) -> tuple[str, list[dict]]:
    """SendGrid's ``{"errors": [{"message", "field", "help"}]}``, kept word for word."""
    if not body:
        return "", []
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)
    try:
        data = json.loads(text)
    except ValueError:
        return text[:2000], []
    errors = data.get("errors") if isinstance(data, dict) else None
    if not isinstance(errors, list):
        return text[:2000], []
    errors = [e for e in errors if isinstance(e, dict)]
    parts = []
    for error in errors:
        message = str(error.get("message") or "").strip()
        field = error.get("field")
        parts.append(f"{field}: {message}" if field else message)
    return "; ".join(p for p in parts if p) or text[:2000], errors


def _reset_at(headers: Any) -> dt.datetime:
    raw = _header(headers, "X-RateLimit-Reset")
    now = clock.now()
    if raw:
        try:
            reset = dt.datetime.fromtimestamp(float(raw), dt.UTC)
        except (ValueError, OverflowError, OSError):
            reset = None
        if reset is not None:
            # A reset in the past (clock skew) still means "not right now".
            return max(reset, now + dt.timedelta(seconds=1))
    return now + DEFAULT_RATE_LIMIT_WAIT


def classify_exception(exc: BaseException) -> SendGridError:
    """Map anything the library or urllib raised onto one of the four kinds."""
    if isinstance(exc, SendGridError):
        return exc
    if isinstance(exc, http_exceptions.HTTPError):
        status = int(exc.status_code)
        message, errors = _parse_errors(exc.body)
        message = message or str(getattr(exc, "reason", "")) or f"HTTP {status}"
        if status == 429:
            return SendGridError(SendGridErrorKind.RATE_LIMITED, message, status_code=status,
                                 reset_at=_reset_at(exc.headers), errors=errors)
        if status >= 500:
            return SendGridError(SendGridErrorKind.TRANSIENT, message, status_code=status, errors=errors)
        return SendGridError(SendGridErrorKind.PERMANENT, message, status_code=status, errors=errors)
    if isinstance(exc, urllib.error.URLError):
        # Raised around connect/write: the request never reached the server whole.
        return SendGridError(SendGridErrorKind.TRANSIENT, f"request not sent: {exc.reason!r}")
    if isinstance(exc, TimeoutError | socket.timeout):
        return SendGridError(SendGridErrorKind.AMBIGUOUS, "timed out waiting for the answer after the request was sent")
    if isinstance(exc, http.client.HTTPException | ConnectionError):
        return SendGridError(SendGridErrorKind.AMBIGUOUS,
                             f"connection lost after the request was sent: {type(exc).__name__}: {exc}")
    if isinstance(exc, OSError):
        return SendGridError(SendGridErrorKind.AMBIGUOUS, f"I/O error after the request was sent: {exc!r}")
    raise exc


def _call(fn, **kwargs):
    try:
        return fn(**kwargs)
    except (http_exceptions.HTTPError, OSError, http.client.HTTPException) as exc:
        raise classify_exception(exc) from exc


def _json(response) -> Any:
    body = response.body
    if not body:
        return None
    try:
        return json.loads(body.decode("utf-8") if isinstance(body, bytes) else body)
    except ValueError as exc:
        raise SendGridError(SendGridErrorKind.TRANSIENT, f"unreadable answer: {body[:200]!r}",
                            status_code=response.status_code) from exc


def mail_send(*, body: dict, timeout: float | None = None) -> MailSendResult:
    """POST /v3/mail/send. Returns the X-Message-Id; raises SendGridError otherwise."""
    client = sendgrid_client()
    response = _call(client.client.mail.send.post, request_body=body, timeout=_timeout(timeout))
    remaining = _header(response.headers, "X-RateLimit-Remaining")
    return MailSendResult(
        status_code=response.status_code,
        message_id=_header(response.headers, "X-Message-Id"),
        rate_limit_remaining=int(remaining) if remaining and remaining.isdigit() else None,
    )


def verified_sender_create(
    *,
    nickname: str,
    from_email: str,
    from_name: str,
    reply_to: str,
    address: str = "",
    city: str = "",
    country: str = "",
    timeout: float | None = None,
) -> dict:
    """POST /v3/verified_senders (201): answers the sender with ``id``, ``verified``, ``locked``."""
    payload: dict[str, Any] = {"nickname": nickname, "from_email": from_email, "from_name": from_name,
                               "reply_to": reply_to}
    for key, value in (("address", address), ("city", city), ("country", country)):
        if value:
            payload[key] = value
    client = sendgrid_client()
    response = _call(client.client.verified_senders.post, request_body=payload, timeout=_timeout(timeout))
    return _json(response) or {}


def verified_senders_list(*, timeout: float | None = None) -> list[dict]:
    client = sendgrid_client()
    response = _call(client.client.verified_senders.get, timeout=_timeout(timeout))
    data = _json(response) or {}
    results = data.get("results", []) if isinstance(data, dict) else []
    return [r for r in results if isinstance(r, dict)]


def verified_sender_resend(*, sender_id: str, timeout: float | None = None) -> None:
    client = sendgrid_client()
    _call(client.client.verified_senders.resend._(str(sender_id)).post, timeout=_timeout(timeout))


def email_validate(*, email: str, source: str = "", timeout: float | None = None) -> dict:
    """POST /v3/validations/email: the ``result`` object (verdict, score, checks, suggestion)."""
    api_key = settings.SENDGRID_VALIDATION_API_KEY or settings.SENDGRID_API_KEY
    client = sendgrid_client(api_key=api_key)
    payload = {"email": email, **({"source": source} if source else {})}
    response = _call(client.client.validations.email.post, request_body=payload, timeout=_timeout(timeout))
    data = _json(response) or {}
    return data.get("result", {}) if isinstance(data, dict) else {}
