"""SendGrid's API slice under /v3: authentication, rate limits, faults, routing, and mail/send.

``MailApi.handle`` answers one request. A mail that passes validation is recorded and each recipient's
timeline is handed to the timeline; the verified-senders and validation endpoints live in senders.py.
"""
from __future__ import annotations

import base64
import dataclasses
import json
import math
import random
import uuid
from typing import Any

from simulators.sendgrid import validation
from simulators.sendgrid.model import Recipient, extract_links
from simulators.sendgrid.ratelimit import current_rate_headers, rate_check
from simulators.sendgrid.responses import Response, error_response, json_response
from simulators.sendgrid.senders import SenderApi
from simulators.sendgrid.state import SimState
from simulators.sendgrid.timeline import Timeline

_SENDER_NOT_VERIFIED = (
    "The from address does not match a verified Sender Identity. Mail cannot be sent until this "
    "error is resolved. Visit https://sendgrid.com/docs/for-developers/sending-email/sender-identity/"
    " to see the Sender Identity requirements"
)
_BAD_KEY = "The provided authorization grant is invalid, expired, or revoked"


def _new_x_message_id() -> str:
    # SendGrid's ids are 22 characters of URL-safe base64 (16 random bytes).
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode("ascii").rstrip("=")


@dataclasses.dataclass(frozen=True)
class _Mail:
    """What every recipient of one accepted mail shares."""

    x_message_id: str
    smtp_id: str
    ip: str
    from_email: str
    from_name: str | None
    reply_to: str
    text: str
    html: str
    links: list[tuple[str, str, int]]
    headers: dict[str, str]
    custom_args: dict[str, str]
    categories: list[str]
    asm_group_id: int | None
    open_tracking: bool
    click_tracking: bool


def _content(data: dict[str, Any]) -> tuple[str, str]:
    """The first text/plain and the first text/html block."""
    text = html = ""
    for block in data.get("content") or []:
        if block["type"].lower() == "text/plain" and not text:
            text = block["value"]
        elif block["type"].lower() == "text/html" and not html:
            html = block["value"]
    return text, html


def _mail(x_message_id: str, data: dict[str, Any]) -> _Mail:
    tracking = data.get("tracking_settings") or {}
    text, html = _content(data)
    reply_to = (data.get("reply_to") or {}).get("email") or (
        (data.get("reply_to_list") or [{}])[0].get("email") or data["from"]["email"]
    )
    ip_rng = random.Random(x_message_id)
    return _Mail(
        x_message_id=x_message_id,
        smtp_id=f"<{x_message_id}@ismtpd0001p1mdw1.sendgrid.net>",
        ip=f"168.245.{ip_rng.randint(1, 120)}.{ip_rng.randint(2, 250)}",
        from_email=data["from"]["email"],
        from_name=data["from"].get("name"),
        reply_to=reply_to,
        text=text,
        html=html,
        links=extract_links(html, text),
        headers=data.get("headers") or {},
        custom_args=data.get("custom_args") or {},
        categories=list(data.get("categories") or []),
        asm_group_id=(data.get("asm") or {}).get("group_id"),
        open_tracking=(tracking.get("open_tracking") or {}).get("enable", True) is not False,
        click_tracking=(tracking.get("click_tracking") or {}).get("enable", True) is not False,
    )


class MailApi:
    def __init__(self, state: SimState, timeline: Timeline, senders: SenderApi) -> None:
        self.state = state
        self.timeline = timeline
        self.senders = senders

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes, too_large: bool) -> Response:
        """One /v3 request, with the configured fault (5xx, 429, slow, dropped answer) applied."""
        fault = self._take_fault(path)
        if fault is not None and fault["mode"] == "5xx":
            status = fault["status"] or (500 if fault["n"] % 2 == 0 else 503)
            message = "Internal Server Error" if status == 500 else "Service Unavailable"
            return error_response(status, message, None, current_rate_headers(self.state))
        if fault is not None and fault["mode"] == "429":
            reset = int(math.ceil(self.state.clock.now() + max(fault["delay_seconds"], 1.0)))
            rate = current_rate_headers(self.state)
            rate.update({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(reset)})
            return error_response(429, "too many requests", None, rate)
        response = self._route(method, path, headers, body, too_large)
        if fault is not None and fault["mode"] == "slow":
            response.delay = fault["delay_seconds"]
        if fault is not None and fault["mode"] == "drop":
            response.drop = True
        return response

    def _take_fault(self, path: str) -> dict[str, Any] | None:
        state = self.state
        with state.lock:
            fault = state.fault
            if fault["mode"] == "none" or not path.startswith(fault.get("path", "/v3/")):
                return None
            if fault["remaining"] is not None:
                fault["remaining"] -= 1
                if fault["remaining"] <= 0:
                    state.fault = {**fault, "mode": "none", "remaining": None}
            hit = {**fault, "path": path, "at": state.clock.now(), "n": len(state.fault_hits)}
            state.fault_hits.append(hit)
            return hit

    def _route(self, method: str, path: str, headers: dict[str, str], body: bytes, too_large: bool) -> Response:
        route = path.split("?", 1)[0].rstrip("/")
        is_validation = route == "/v3/validations/email"
        rate = current_rate_headers(self.state)
        auth_error = self._auth_error(headers, validation=is_validation)
        if auth_error is not None:
            status, message = auth_error
            return error_response(status, message, None, rate)
        if route == "/v3/mail/send":
            if method != "POST":
                return error_response(405, "method not allowed", None, rate)
            return self._mail_send(body, too_large)
        if too_large:
            return error_response(413, "request entity too large", None, rate)
        if route == "/v3/verified_senders":
            if method == "POST":
                return self.senders.create(body, rate)
            if method == "GET":
                return self.senders.list(rate)
        parts = route.split("/")
        if route.startswith("/v3/verified_senders/resend/") and method == "POST" and len(parts) == 5:
            return self.senders.resend(parts[4], rate)
        if route.startswith("/v3/verified_senders/") and method == "DELETE" and len(parts) == 4:
            return self.senders.delete(parts[3], rate)
        if is_validation and method == "POST":
            return self.senders.validate_email(body, rate)
        return error_response(404, "resource not found", None, rate)

    def _auth_error(self, headers: dict[str, str], *, validation: bool) -> tuple[int, str] | None:
        value = headers.get("authorization", "")
        if not value:
            return 401, "authorization required"
        scheme, _, key = value.partition(" ")
        mail_keys = set(self.state.config.api_keys)
        if scheme.lower() != "bearer" or not key:
            return 401, "authorization required"
        validation_keys = self.state.config.validation_api_keys
        if validation and validation_keys is not None:
            if key in validation_keys:
                return None
            return (403, "access forbidden") if key in mail_keys else (401, _BAD_KEY)
        if key not in mail_keys:
            return 401, _BAD_KEY
        return None

    # --- mail/send -----------------------------------------------------------------------------

    def _mail_send(self, body: bytes, too_large: bool) -> Response:
        state = self.state
        with state.lock:
            allowed, rate = rate_check(state, count=True)
        if not allowed:
            state.stats["rate_limited"] += 1
            return error_response(429, "too many requests", None, rate)
        if too_large:
            return error_response(
                413, "The size of the email is too large. Total size of your email must not exceed 30MB.", None, rate
            )
        try:
            data = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            return error_response(400, "Bad Request", None, rate)
        try:
            validation.validate_mail(data, now=self.state.clock.now())
        except validation.MailError as exc:
            state.stats["rejected_400"] += 1
            return json_response(exc.status, exc.body(), rate)
        with state.lock:
            if not self.senders.allowed(data["from"]["email"]):
                state.stats["rejected_403"] += 1
                return error_response(403, _SENDER_NOT_VERIFIED, "from", rate)
            sandbox = ((data.get("mail_settings") or {}).get("sandbox_mode") or {}).get("enable") is True
            if sandbox:
                state.stats["sandbox"] += 1
                return Response(200, b"", rate)
            x_message_id = _new_x_message_id()
            self._accept(x_message_id, data)
        return Response(202, b"", {**rate, "X-Message-Id": x_message_id})

    def _accept(self, x_message_id: str, data: dict[str, Any]) -> None:
        """Record the mail and schedule every recipient's timeline (lock held)."""
        now = self.state.clock.now()
        mail = _mail(x_message_id, data)
        recipients: list[dict[str, Any]] = []
        personalizations_out = []
        for p in data["personalizations"]:
            p_out, scheduled = self._personalization(mail, p, data, now, first_index=len(recipients))
            recipients.extend(scheduled)
            personalizations_out.append(p_out)
        first = personalizations_out[0]
        self.state.messages.append(
            {
                "seq": len(self.state.messages),
                "x_message_id": x_message_id,
                "received_at": now,
                "from": mail.from_email,
                "to": [r["email"] for r in recipients if r["kind"] == "to"],
                "subject": first["subject"],
                "headers": first["headers"],
                "custom_args": first["custom_args"],
                "categories": mail.categories,
                "personalizations": personalizations_out,
                "recipients": recipients,
                "request": data,
            }
        )
        self.state.stats["accepted"] += 1

    def _personalization(
        self, mail: _Mail, p: dict[str, Any], data: dict[str, Any], now: float, *, first_index: int
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """One personalization's recipients, each scheduled: (its summary, the recipients' summaries)."""
        headers = {**mail.headers, **(p.get("headers") or {})}
        args = {**mail.custom_args, **(p.get("custom_args") or {})}
        subject = p.get("subject") or data.get("subject") or ""
        send_at = p.get("send_at") or data.get("send_at")
        sent_at = max(now, float(send_at)) if send_at else now
        lower_headers = {k.lower(): v for k, v in headers.items()}
        p_out: dict[str, Any] = {"to": [], "subject": subject, "headers": headers, "custom_args": args}
        scheduled: list[dict[str, Any]] = []
        for kind in ("to", "cc", "bcc"):
            for item in p.get(kind) or []:
                index = first_index + len(scheduled)
                rcpt = Recipient(
                    email=item["email"],
                    name=item.get("name"),
                    x_message_id=mail.x_message_id,
                    sg_message_id=f"{mail.x_message_id}.filterdrecv-5645d9c87f-7xk2m-1-{int(now):X}-{index}.0",
                    smtp_id=mail.smtp_id,
                    message_id_header=lower_headers.get("message-id") or mail.smtp_id,
                    references=lower_headers.get("references"),
                    subject=subject,
                    from_email=mail.from_email,
                    from_name=mail.from_name,
                    reply_to=mail.reply_to,
                    text=mail.text,
                    html=mail.html,
                    headers=headers,
                    custom_args=args,
                    categories=mail.categories,
                    asm_group_id=mail.asm_group_id,
                    links=mail.links,
                    open_tracking=mail.open_tracking,
                    click_tracking=mail.click_tracking,
                    sent_at=sent_at,
                    ip=mail.ip,
                )
                scheduled.append(self.timeline.schedule_recipient(rcpt, kind))
                p_out.setdefault(kind, []).append(item["email"])
        return p_out, scheduled
