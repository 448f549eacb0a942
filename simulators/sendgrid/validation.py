"""What SendGrid checks before it accepts a mail, and its Email Address Validation verdicts.

Error messages copy SendGrid's wording where it is known, so that code written
against the simulator keeps the messages a real answer would carry.
"""
from __future__ import annotations

import json
import re
from typing import Any

HELP_MAIL = "http://sendgrid.com/docs/API_Reference/Web_API_v3/Mail/errors.html"
MAX_BODY_BYTES = 30 * 1024 * 1024
MAX_PERSONALIZATIONS = 1000
MAX_RECIPIENTS = 1000
MAX_CATEGORIES = 10
MAX_CUSTOM_ARGS_BYTES = 10_000
MAX_SEND_AT_AHEAD_SECONDS = 72 * 3600
MAX_GROUPS_TO_DISPLAY = 25
IP_POOL_NAME_LENGTH = (2, 64)

# Headers SendGrid refuses to let a sender set (providers.md), compared case-insensitively.
RESERVED_HEADERS = frozenset(
    h.lower()
    for h in (
        "To",
        "From",
        "Subject",
        "Reply-To",
        "CC",
        "BCC",
        "Content-Type",
        "Content-Transfer-Encoding",
        "DKIM-Signature",
        "Received",
        "x-sg-id",
        "x-sg-eid",
    )
)

_EMAIL_RE = re.compile(
    r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$"
)


class MailError(Exception):
    """One SendGrid error answer: status plus the ``{"errors": [...]}`` items."""

    def __init__(self, status: int, message: str, field: str | None = None, help: str | None = None):
        super().__init__(message)
        self.status = status
        self.errors = [{"message": message, "field": field, "help": help}]

    def body(self) -> dict[str, Any]:
        return {"errors": self.errors}


def is_valid_email(value: Any) -> bool:
    return isinstance(value, str) and len(value) <= 320 and bool(_EMAIL_RE.match(value))


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "string"


def _expect(value: Any, kind: type, field: str) -> None:
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        expected = {str: "string", dict: "object", list: "array", int: "integer", bool: "boolean"}[kind]
        raise MailError(400, f"Invalid type. Expected: {expected}, given: {_type_name(value)}.", field, HELP_MAIL)


def _check_email_object(obj: Any, field: str, *, required_message: str | None = None) -> None:
    if not isinstance(obj, dict) or "email" not in obj:
        raise MailError(400, required_message or "The email parameter is required.", f"{field}.email", HELP_MAIL)
    if not is_valid_email(obj.get("email")):
        raise MailError(400, "Does not contain a valid address.", f"{field}.email", HELP_MAIL)
    if "name" in obj and obj["name"] is not None:
        _expect(obj["name"], str, f"{field}.name")


def _check_headers(headers: Any, field: str) -> None:
    _expect(headers, dict, field)
    for name, value in headers.items():
        if name.strip().lower() in RESERVED_HEADERS:
            raise MailError(
                400,
                f"The following header is reserved and cannot be set: {name}. "
                "Please use the appropriate parameter of the request body instead.",
                field,
                f"{HELP_MAIL}#message.headers",
            )
        _expect(value, str, f"{field}.{name}")


def _check_custom_args(args: Any, field: str) -> dict[str, str]:
    _expect(args, dict, field)
    for key, value in args.items():
        _expect(value, str, f"{field}.{key}")
    return args


def validate_mail(body: Any, *, now: float | None = None) -> None:
    """Raise MailError (400) for the first problem SendGrid would report (``now``: the clock ``send_at`` is
    measured against; without one, send_at's horizon is not checked)."""
    if not isinstance(body, dict):
        raise MailError(400, "Bad Request", None, None)
    _validate_structure(body)
    _check_refusals(body, now)


def _validate_structure(body: dict[str, Any]) -> None:
    personalizations = body.get("personalizations")
    if not isinstance(personalizations, list) or not personalizations:
        raise MailError(
            400,
            "The personalizations field is required and must have at least one personalization.",
            "personalizations",
            f"{HELP_MAIL}#-Personalizations-Errors",
        )
    if len(personalizations) > MAX_PERSONALIZATIONS:
        raise MailError(
            400,
            f"The personalizations field must have at most {MAX_PERSONALIZATIONS} items.",
            "personalizations",
            f"{HELP_MAIL}#-Personalizations-Errors",
        )

    _check_email_object(
        body.get("from"),
        "from",
        required_message="The from object must be provided for every email send. It is an object that requires "
        "the email parameter, but may also contain a name parameter.",
    )
    if body.get("reply_to") is not None:
        _check_email_object(body["reply_to"], "reply_to")
    for i, item in enumerate(body.get("reply_to_list") or []):
        _check_email_object(item, f"reply_to_list.{i}")

    top_subject = body.get("subject")
    if top_subject is not None:
        _expect(top_subject, str, "subject")
    if body.get("headers") is not None:
        _check_headers(body["headers"], "headers")
    top_args = _check_custom_args(body["custom_args"], "custom_args") if body.get("custom_args") is not None else {}

    recipients = 0
    for i, p in enumerate(personalizations):
        field = f"personalizations.{i}"
        _expect(p, dict, field)
        to = p.get("to")
        if not isinstance(to, list) or not to:
            raise MailError(
                400,
                "The to array is required for all personalization objects, and must have at least one email "
                "object with a valid email address.",
                f"{field}.to",
                f"{HELP_MAIL}#personalizations.to",
            )
        seen: set[str] = set()
        for kind in ("to", "cc", "bcc"):
            for j, rcpt in enumerate(p.get(kind) or []):
                _check_email_object(rcpt, f"{field}.{kind}.{j}")
                address = rcpt["email"].lower()
                if address in seen:
                    raise MailError(
                        400,
                        "Each email address in the personalization block should be unique between to, cc, and bcc. "
                        "We found the first duplicate instance of [" + address + "] in the personalizations."
                        f"{i}.{kind} field.",
                        f"{field}.{kind}",
                        f"{HELP_MAIL}#-Personalizations-Errors",
                    )
                seen.add(address)
                recipients += 1
        if p.get("subject") is not None:
            _expect(p["subject"], str, f"{field}.subject")
        if not p.get("subject") and not top_subject and not body.get("template_id"):
            raise MailError(
                400,
                "The subject is required. You can get around this requirement if you use a template with a subject "
                "defined or if every personalization has a subject defined.",
                "subject",
                f"{HELP_MAIL}#message.subject",
            )
        if p.get("headers") is not None:
            _check_headers(p["headers"], f"{field}.headers")
        merged = dict(top_args)
        if p.get("custom_args") is not None:
            merged.update(_check_custom_args(p["custom_args"], f"{field}.custom_args"))
        if len(json.dumps(merged, separators=(",", ":")).encode("utf-8")) >= MAX_CUSTOM_ARGS_BYTES:
            raise MailError(
                400,
                "The custom_args parameter may not exceed 10,000 bytes (per personalization, including the "
                "message-level custom_args).",
                "custom_args",
                f"{HELP_MAIL}#message.custom_args",
            )
        if p.get("send_at") is not None:
            _expect(p["send_at"], int, f"{field}.send_at")
    if recipients > MAX_RECIPIENTS:
        raise MailError(
            400,
            f"The total number of recipients must be no more than {MAX_RECIPIENTS}.",
            "personalizations",
            f"{HELP_MAIL}#-Personalizations-Errors",
        )

    _check_content(body)

    categories = body.get("categories")
    if categories is not None:
        _expect(categories, list, "categories")
        if len(categories) > MAX_CATEGORIES:
            raise MailError(
                400, "You may not have more than 10 categories per request.", "categories",
                f"{HELP_MAIL}#message.categories",
            )
        for i, category in enumerate(categories):
            _expect(category, str, f"categories.{i}")
            if len(category) > 255:
                raise MailError(400, "A category cannot be longer than 255 characters.", f"categories.{i}", None)
        if len({c.lower() for c in categories}) != len(categories):
            raise MailError(400, "The categories can not have duplicates.", "categories", None)
    if body.get("send_at") is not None:
        _expect(body["send_at"], int, "send_at")
    asm = body.get("asm")
    if asm is not None:
        _expect(asm, dict, "asm")
        if "group_id" not in asm:
            raise MailError(400, "The asm.group_id is required.", "asm.group_id", None)
        _expect(asm["group_id"], int, "asm.group_id")
    for name in ("tracking_settings", "mail_settings"):
        if body.get(name) is not None:
            _expect(body[name], dict, name)
    for name in ("ip_pool_name", "batch_id", "template_id"):
        if body.get(name) is not None:
            _expect(body[name], str, name)


# --- what else mail/send refuses with a 400 (issue 12: the simulator used to accept these) ---------------

def _name_problem(obj: Any) -> bool:
    """A display name with `,` or `;` outside an RFC 5322 quoted-string: SendGrid refuses it."""
    name = obj.get("name") if isinstance(obj, dict) else None
    if not isinstance(name, str) or ("," not in name and ";" not in name):
        return False
    return not (len(name) >= 2 and name.startswith('"') and name.endswith('"'))


def _named_objects(body: dict[str, Any]) -> list[tuple[str, Any]]:
    found: list[tuple[str, Any]] = [("from", body.get("from")), ("reply_to", body.get("reply_to"))]
    found += [(f"reply_to_list.{i}", item) for i, item in enumerate(body.get("reply_to_list") or [])]
    for i, p in enumerate(body.get("personalizations") or []):
        for kind in ("to", "cc", "bcc"):
            found += [(f"personalizations.{i}.{kind}.{j}", r) for j, r in enumerate(p.get(kind) or [])]
    return found


def _check_names(body: dict[str, Any]) -> None:
    for field, obj in _named_objects(body):
        if _name_problem(obj):
            raise MailError(400, "Names containing ';' or ',' must be enclosed in double quotes.", f"{field}.name",
                            f"{HELP_MAIL}#message.from")


def _check_send_at(body: dict[str, Any], now: float | None) -> None:
    if now is None:
        return
    stamps = [("send_at", body.get("send_at"))]
    stamps += [(f"personalizations.{i}.send_at", p.get("send_at"))
               for i, p in enumerate(body.get("personalizations") or [])]
    for field, value in stamps:
        if isinstance(value, int) and value > now + MAX_SEND_AT_AHEAD_SECONDS:
            raise MailError(400, "The send_at parameter can't be more than 72 hours in the future.", field,
                            f"{HELP_MAIL}#message.send_at")


def _check_attachments(body: dict[str, Any]) -> None:
    attachments = body.get("attachments")
    if attachments is None:
        return
    _expect(attachments, list, "attachments")
    for i, attachment in enumerate(attachments):
        _expect(attachment, dict, f"attachments.{i}")
        if not attachment.get("filename"):
            raise MailError(400, "The attachment filename parameter is required.", f"attachments.{i}.filename",
                            f"{HELP_MAIL}#message.attachments.filename")
        if not attachment.get("content"):
            raise MailError(400, "The attachment content is required.", f"attachments.{i}.content",
                            f"{HELP_MAIL}#message.attachments.content")


def _check_refusals(body: dict[str, Any], now: float | None) -> None:
    if body.get("reply_to") is not None and body.get("reply_to_list"):
        raise MailError(400, "The reply_to and reply_to_list parameters may not be used together.", "reply_to_list",
                        f"{HELP_MAIL}#message.reply_to_list")
    _check_names(body)
    _check_send_at(body, now)
    pool = body.get("ip_pool_name")
    low, high = IP_POOL_NAME_LENGTH
    if isinstance(pool, str) and not low <= len(pool) <= high:
        raise MailError(400, f"The ip_pool_name must be between {low} and {high} characters.", "ip_pool_name",
                        f"{HELP_MAIL}#message.ip_pool_name")
    _check_attachments(body)
    groups = (body.get("asm") or {}).get("groups_to_display")
    if isinstance(groups, list) and len(groups) > MAX_GROUPS_TO_DISPLAY:
        raise MailError(400, f"The asm.groups_to_display may contain at most {MAX_GROUPS_TO_DISPLAY} group ids.",
                        "asm.groups_to_display", f"{HELP_MAIL}#message.asm.groups_to_display")


def _check_content(body: dict[str, Any]) -> None:
    content = body.get("content")
    if content is None and body.get("template_id"):
        return
    if not isinstance(content, list) or not content:
        raise MailError(
            400,
            "Unless a valid template_id is provided, the content parameter is required. There must be at least one "
            "defined content block. We typically suggest both text/plain and text/html blocks are included, but "
            "only one block is required.",
            "content",
            f"{HELP_MAIL}#message.content",
        )
    types = []
    for i, block in enumerate(content):
        _expect(block, dict, f"content.{i}")
        ctype = block.get("type")
        if not isinstance(ctype, str) or not ctype:
            raise MailError(400, "The content type cannot contain ';', or CRLF characters.", f"content.{i}.type", None)
        value = block.get("value")
        if not isinstance(value, str) or not value:
            raise MailError(
                400, "The content value must be a string at least one character in length.", f"content.{i}.value",
                f"{HELP_MAIL}#message.content.value",
            )
        types.append(ctype.lower())
    order_ok = True
    if "text/plain" in types and types.index("text/plain") != 0:
        order_ok = False
    if "text/html" in types:
        html_at = types.index("text/html")
        expected = 1 if "text/plain" in types else 0
        if html_at != expected:
            order_ok = False
    if not order_ok:
        raise MailError(
            400,
            "If present, text/plain content must be first, followed by text/html, followed by any other content.",
            "content",
            f"{HELP_MAIL}#message.content",
        )


# --- Email Address Validation -------------------------------------------------

ROLE_LOCAL_PARTS = frozenset(
    "info sales support admin contact office hello team marketing billing help enquiries inquiries "
    "jobs careers hr webmaster postmaster abuse noreply no-reply".split()
)
DISPOSABLE_DOMAINS = frozenset(
    "mailinator.com guerrillamail.com 10minutemail.com tempmail.com yopmail.com trashmail.com "
    "sharklasers.com getnada.com dispostable.com throwawaymail.com disposable.example".split()
)
_TYPO_DOMAINS = {
    "gmial.com": "gmail.com",
    "gmai.com": "gmail.com",
    "gamil.com": "gmail.com",
    "gmail.co": "gmail.com",
    "hotmial.com": "hotmail.com",
    "yaho.com": "yahoo.com",
    "outlok.com": "outlook.com",
}


def validate_address(email: str, source: str | None = None) -> dict[str, Any]:
    """The ``result`` object of POST /v3/validations/email."""
    raw = email.strip()
    local, _, host = raw.rpartition("@") if "@" in raw else (raw, "", "")
    local_l, host_l = local.lower(), host.lower()
    syntax_ok = is_valid_email(raw)
    domain_ok = syntax_ok and not host_l.endswith(".invalid")
    local_invalid = local_l == "invalid" or local_l.startswith(("invalid+", "invalid."))
    disposable = host_l in DISPOSABLE_DOMAINS
    role = local_l in ROLE_LOCAL_PARTS
    known_bounce = local_l == "bounce" or local_l.startswith(("bounce+", "bounce."))
    if not syntax_ok or not domain_ok or local_invalid:
        verdict, score = "Invalid", 0.01
    elif role or disposable or known_bounce:
        verdict, score = "Risky", 0.45 if role else 0.2
    else:
        verdict, score = "Valid", 0.97
    result: dict[str, Any] = {
        "email": raw,
        "verdict": verdict,
        "score": score,
        "local": local,
        "host": host,
        "checks": {
            "domain": {
                "has_valid_address_syntax": syntax_ok,
                "has_mx_or_a_record": domain_ok,
                "is_suspected_disposable_address": disposable,
            },
            "local_part": {"is_suspected_role_address": role},
            "additional": {"has_known_bounces": known_bounce or local_invalid, "has_suspected_bounces": local_invalid},
        },
        "ip_address": "192.0.2.10",
    }
    if host_l in _TYPO_DOMAINS:
        result["suggestion"] = f"{local}@{_TYPO_DOMAINS[host_l]}"
    if source is not None:
        result["source"] = source
    return result
