"""Provider webhooks: verify, store raw, acknowledge, process later (architecture rule 6).

Plain Django views (not DRF): they run at thousands of events per second and need the raw
bytes for the signature. CSRF does not apply (no cookies; authenticity comes from the
signature or the secret in the URL).
"""
from __future__ import annotations

import logging

import orjson
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.crypto import constant_time_compare
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from messaging.inbound import inbound_form_problem
from messaging.models import WebhookDelivery
from messaging.webhooks.events import event_batch_problem
from messaging.webhooks.signature import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify_signed_webhook
from messaging.webhooks.store import webhook_delivery_store
from outreach import clock

logger = logging.getLogger(__name__)

EVENTS_MAX_BYTES = 16 * 1024 * 1024  # SendGrid posts ~768 KB batches; far above, but bounded
INBOUND_MAX_BYTES = 40 * 1024 * 1024  # SendGrid caps inbound mail at 30 MB; multipart adds overhead


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
    body = _read_body(request, EVENTS_MAX_BYTES)
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


@csrf_exempt
@require_POST
def sendgrid_inbound(request: HttpRequest, secret: str) -> HttpResponse:
    expected = settings.SENDGRID_INBOUND_SECRET
    if not expected or not constant_time_compare(secret, expected):
        # 404, not 403: do not confirm that the endpoint exists.
        return _error(404, "not found")
    # Mail with attachments is often larger than DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB).
    body = _read_body(request, INBOUND_MAX_BYTES)
    if body is None:
        return _error(413, "message too large")
    content_type = request.META.get("CONTENT_TYPE", "")
    problem = inbound_form_problem(body=body, content_type=content_type)
    if problem:
        return _error(400, problem)
    delivery_id = webhook_delivery_store(
        kind=WebhookDelivery.Kind.SENDGRID_INBOUND,
        body=body,
        headers={"content_type": content_type, "user_agent": request.headers.get("User-Agent", "")},
        signature_valid=None,
        event_count=1,
    )
    return JsonResponse({"status": "duplicate" if delivery_id is None else "accepted"})
