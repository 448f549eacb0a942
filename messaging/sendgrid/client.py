"""SendGrid calls: one place that builds the clients, sets the timeouts, and turns whatever the
transport raises into a :class:`SendGridError` of the right kind.

Two transports, on purpose (issue 19, measured in docs/sendgrid.md "The send path"):

- ``mail_send`` (the hot path, up to ~1,000 calls/s a box) posts the body delivery already built as a plain
  dict through one keep-alive ``urllib3.HTTPConnectionPool`` per worker process (``maxsize`` =
  DELIVERY_CONCURRENCY, ``block=True``, ``retries=False``). The official library opens a NEW connection per
  request (urllib, no keep-alive: a TLS handshake each in production), costs 1.1-1.9 ms of CPU a request
  against ~0.6 ms here, and its ``Mail`` helper 160 us a body against 26 us for ``json.dumps``.
- The low-volume calls (verified senders, validations) keep the official library.

Timeouts: ``SendGridAPIClient.send()`` takes no timeout, but the underlying
``python_http_client.Client`` does: every verb accepts ``timeout=`` (handed to
``urllib.request.OpenerDirector.open``), and ``Client.timeout`` is the default that
``_build_client`` copies down the attribute chain. We pass it per call.

Where the failure happened matters (see ``errors.py``). On the pooled path urllib3 (retries off) raises the
same exception types whether a socket failed while the request was written or while the answer was awaited,
so the connection class records, per thread, whether ``request()`` completed (`_PhaseMixin`): not complete =
never reached SendGrid whole (TRANSIENT), complete = may be out (AMBIGUOUS -> `unknown`, never resent). urllib3
retries stay off: a Retry would resend a POST after a read error. On the library path urllib wraps every ``OSError``
raised while *sending* the request (connect, write) in ``URLError``; errors raised while
*waiting for the answer* (``getresponse``: read timeout, RemoteDisconnected, reset) come
through unwrapped. Only the first kind proves the request never reached SendGrid whole.
"""
from __future__ import annotations

import datetime as dt
import http.client
import itertools
import json
import logging
import socket
import threading
import time
import urllib.error
import urllib.parse
from dataclasses import dataclass
from typing import Any

import urllib3
from django.conf import settings
from python_http_client import exceptions as http_exceptions
from sendgrid import SendGridAPIClient
from urllib3 import connection as u3_connection
from urllib3 import exceptions as u3_exceptions

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


def status_error(status: int, body: bytes | str | None, headers: Any, reason: str = "") -> SendGridError:
    """The error an HTTP status other than 2xx stands for (429, 5xx, the rest permanent)."""
    message, errors = _parse_errors(body)
    message = message or reason or f"HTTP {status}"
    if status == 429:
        return SendGridError(SendGridErrorKind.RATE_LIMITED, message, status_code=status,
                             reset_at=_reset_at(headers), errors=errors)
    if status >= 500:
        return SendGridError(SendGridErrorKind.TRANSIENT, message, status_code=status, errors=errors)
    return SendGridError(SendGridErrorKind.PERMANENT, message, status_code=status, errors=errors)


def classify_exception(exc: BaseException) -> SendGridError:
    """Map anything the library or urllib raised onto one of the four kinds."""
    if isinstance(exc, SendGridError):
        return exc
    if isinstance(exc, http_exceptions.HTTPError):
        return status_error(int(exc.status_code), exc.body, exc.headers, str(getattr(exc, "reason", "")))
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


# --- the pooled send path ------------------------------------------------------------------------------

_phase = threading.local()  # per pool thread: did the current request get written whole?
_connections_opened = itertools.count(1)
_opened = 0


class _PhaseMixin:
    """Records whether ``request()`` (connect, headers, body) completed, and counts connections opened."""

    def connect(self) -> None:
        global _opened
        super().connect()  # type: ignore[misc]
        _opened = next(_connections_opened)

    def request(self, *args: Any, **kwargs: Any) -> None:
        _phase.sent = False
        super().request(*args, **kwargs)  # type: ignore[misc]
        _phase.sent = True  # every byte handed to the kernel: SendGrid may act on it from here on


class _PhaseHTTPConnection(_PhaseMixin, u3_connection.HTTPConnection):
    pass


class _PhaseHTTPSConnection(_PhaseMixin, u3_connection.HTTPSConnection):
    pass


class _IdleDropMixin:
    """Drops a pooled connection idle longer than SENDGRID_POOL_IDLE_SECONDS before reusing it: a server that
    closed it just as we write would turn a request it never saw into an ambiguous (unknown) outcome."""

    def _get_conn(self, timeout: float | None = None) -> Any:
        conn = super()._get_conn(timeout)  # type: ignore[misc]
        last_used = getattr(conn, "last_used", None)
        if last_used is not None and time.monotonic() - last_used > settings.SENDGRID_POOL_IDLE_SECONDS:
            conn.close()  # reconnects on its next request
        return conn

    def _put_conn(self, conn: Any) -> None:
        if conn is not None:
            conn.last_used = time.monotonic()
        super()._put_conn(conn)  # type: ignore[misc]


class _HTTPPool(_IdleDropMixin, urllib3.HTTPConnectionPool):
    ConnectionCls = _PhaseHTTPConnection


class _HTTPSPool(_IdleDropMixin, urllib3.HTTPSConnectionPool):
    ConnectionCls = _PhaseHTTPSConnection


_pools: dict[tuple, urllib3.HTTPConnectionPool] = {}
_pools_lock = threading.Lock()


def send_pool() -> urllib3.HTTPConnectionPool:
    """This process's pool for SENDGRID_API_HOST (one per host and size: tests point the host elsewhere)."""
    parts = urllib.parse.urlsplit(settings.SENDGRID_API_HOST)
    key = (parts.scheme, parts.hostname, parts.port, settings.DELIVERY_CONCURRENCY)
    pool = _pools.get(key)
    if pool is None:
        with _pools_lock:
            pool = _pools.get(key)
            if pool is None:
                cls = _HTTPSPool if parts.scheme == "https" else _HTTPPool
                # block=True: a thread waits for a free connection rather than opening one past maxsize.
                pool = cls(parts.hostname, parts.port, maxsize=settings.DELIVERY_CONCURRENCY, block=True,
                           retries=False)
                _pools[key] = pool
    return pool


def connections_opened() -> int:
    """Provider connections this process opened so far (benchmarks: keep-alive means few)."""
    return _opened


def _pooled_error(exc: Exception) -> SendGridError:
    """urllib3 (retries off) failure -> kind, by whether the request had been written whole."""
    if isinstance(exc, u3_exceptions.ConnectTimeoutError):  # NewConnectionError / NameResolutionError too
        return SendGridError(SendGridErrorKind.TRANSIENT, f"request not sent: {exc!r}")
    if not getattr(_phase, "sent", False):
        # Connect, TLS handshake or write failed: SendGrid never had the whole request.
        return SendGridError(SendGridErrorKind.TRANSIENT, f"request not sent: {exc!r}")
    if isinstance(exc, u3_exceptions.ReadTimeoutError | TimeoutError):
        return SendGridError(SendGridErrorKind.AMBIGUOUS, "timed out waiting for the answer after the request was sent")
    return SendGridError(SendGridErrorKind.AMBIGUOUS,
                         f"connection lost after the request was sent: {type(exc).__name__}: {exc}")


def mail_send(*, body: dict, timeout: float | None = None) -> MailSendResult:
    """POST /v3/mail/send through the pooled keep-alive client. Returns the X-Message-Id; raises
    SendGridError otherwise. Thread-safe: delivery calls it from its pool threads."""
    read = _timeout(timeout)
    pool = send_pool()
    headers = {"Authorization": f"Bearer {settings.SENDGRID_API_KEY}", "Content-Type": "application/json",
               "Accept": "application/json", "User-Agent": "outreach"}
    _phase.sent = False
    try:
        response = pool.urlopen("POST", "/v3/mail/send", body=json.dumps(body).encode("utf-8"), headers=headers,
                                retries=False, redirect=False, assert_same_host=False,
                                timeout=urllib3.Timeout(connect=min(read, 5.0), read=read))
    except (u3_exceptions.HTTPError, OSError, http.client.HTTPException) as exc:
        raise _pooled_error(exc) from exc
    if response.status >= 300:
        raise status_error(response.status, response.data, response.headers, response.reason or "")
    remaining = _header(response.headers, "X-RateLimit-Remaining")
    return MailSendResult(
        status_code=response.status,
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
