"""Provider webhooks: verify, store raw, acknowledge, process later (architecture rule 6).

Plain Django views (not DRF): they run at thousands of events per second and need the raw
bytes for the signature. CSRF does not apply (no cookies; authenticity comes from the
signature or the inbound basic auth credentials).
"""
from __future__ import annotations

import base64
import hashlib
import logging

import orjson
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.crypto import constant_time_compare
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from messaging.inbound import inbound_form_problem
from messaging.inbound.stored_form import inbound_form_for_storage
from messaging.models import WebhookDelivery
from messaging.webhooks.events import event_batch_problem
from messaging.webhooks.signature import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify_signed_webhook
from messaging.webhooks.store import webhook_delivery_store
from outreach import clock

logger = logging.getLogger(__name__)



def _error(status: int, reason: str) -> JsonResponse:
    return JsonResponse({"detail": reason}, status=status)


def _read_body(request: HttpRequest, limit: int) -> bytes | None:
    """The raw body, or None when it exceeds ``limit`` bytes."""
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > limit:
        return None
    body = request.read(limit + 1)
    return None if len(body) > limit else body


@csrf_exempt
@require_POST
def sendgrid_events(request: HttpRequest) -> HttpResponse:
    # Read the stream ourselves: request.body refuses anything over DATA_UPLOAD_MAX_MEMORY_SIZE with a
    # 400, and a batch SendGrid can never get accepted is a batch lost after its 24 hours of retries.
    body = _read_body(request, settings.SENDGRID_EVENTS_MAX_BYTES)
    if body is None:
        return _error(413, "body too large")
    check = verify_signed_webhook(
        public_key_b64=settings.SENDGRID_WEBHOOK_PUBLIC_KEY,
        signature_b64=request.headers.get(SIGNATURE_HEADER),
        timestamp=request.headers.get(TIMESTAMP_HEADER),
        body=body,
        now_epoch=clock.now().timestamp(),
        max_age_seconds=settings.SENDGRID_WEBHOOK_MAX_AGE_SECONDS,
        max_future_seconds=settings.SENDGRID_WEBHOOK_MAX_FUTURE_SECONDS,
    )
    if not check.ok:
        logger.warning("sendgrid event webhook rejected: %s", check.reason)
        return _error(403, check.reason)
    try:
        events = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        return _error(400, f"malformed JSON: {exc}")
    # Only a body that is no batch at all is refused: one bad event inside is set aside when the batch is
    # processed (see processing._delivery_events), and the valid ones are not lost with it.
    problem = event_batch_problem(events)
    if problem:
        return _error(400, problem)
    delivery_id = webhook_delivery_store(
        kind=WebhookDelivery.Kind.SENDGRID_EVENTS,
        body=body,
        headers={
            "signature": request.headers.get(SIGNATURE_HEADER, ""),
            "timestamp": request.headers.get(TIMESTAMP_HEADER, ""),
            "content_type": request.content_type or "",
            "user_agent": request.headers.get("User-Agent", ""),
        },
        signature_valid=True,
        event_count=len(events),
    )
    if delivery_id is None:
        return JsonResponse({"status": "duplicate"})
    return JsonResponse({"status": "accepted", "events": len(events)})


def _inbound_credentials_ok(request: HttpRequest) -> bool:
    """HTTP basic auth as Inbound Parse sends it for a ``https://user:pass@host/...`` URL."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "basic" or not token:
        return False
    try:
        username, _, password = base64.b64decode(token, validate=True).decode("utf-8").partition(":")
    except (ValueError, UnicodeDecodeError):
        return False
    expected = settings.SENDGRID_INBOUND_SECRET
    return bool(expected) and constant_time_compare(username, settings.SENDGRID_INBOUND_USERNAME) and \
        constant_time_compare(password, expected)


@csrf_exempt
@require_POST
def sendgrid_inbound(request: HttpRequest) -> HttpResponse:
    if not _inbound_credentials_ok(request):
        response = _error(401, "authentication required")
        response["WWW-Authenticate"] = 'Basic realm="inbound-parse", charset="UTF-8"'
        return response
    return _inbound_accept(request)


@csrf_exempt
@require_POST
def sendgrid_inbound_secret_in_path(request: HttpRequest, secret: str) -> HttpResponse:
    """Deprecated: the secret in the URL path (it lands in every access log). Served only while
    SENDGRID_INBOUND_SECRET_IN_PATH is set, for an Inbound Parse setting not yet moved to basic auth."""
    expected = settings.SENDGRID_INBOUND_SECRET
    if not settings.SENDGRID_INBOUND_SECRET_IN_PATH or not expected or not constant_time_compare(secret, expected):
        # 404, not 403: do not confirm that the endpoint exists.
        return _error(404, "not found")
    logger.warning("inbound mail through the deprecated secret-in-path URL; move Inbound Parse to basic auth")
    return _inbound_accept(request)


def _inbound_accept(request: HttpRequest) -> HttpResponse:
    # Mail with attachments is often larger than DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB).
    body = _read_body(request, settings.SENDGRID_INBOUND_MAX_BYTES)
    if body is None:
        return _error(413, "message too large")
    content_type = request.META.get("CONTENT_TYPE", "")
    problem = inbound_form_problem(body=body, content_type=content_type)
    if problem:
        return _error(400, problem)
    # What is kept is capped (attachments dropped, with a note); the hash stays that of the POST as received,
    # so SendGrid's retry of the same POST is still recognised.
    stored = inbound_form_for_storage(body=body, content_type=content_type,
                                      limit=settings.SENDGRID_INBOUND_STORED_MAX_BYTES)
    headers = {"content_type": stored.content_type, "user_agent": request.headers.get("User-Agent", "")}
    if stored.dropped:
        headers.update(dropped=stored.dropped, received_bytes=len(body))
    delivery_id = webhook_delivery_store(
        kind=WebhookDelivery.Kind.SENDGRID_INBOUND,
        body=stored.body,
        headers=headers,
        signature_valid=None,
        event_count=1,
        payload_hash=hashlib.sha256(body).hexdigest(),
    )
    return JsonResponse({"status": "duplicate" if delivery_id is None else "accepted"})
