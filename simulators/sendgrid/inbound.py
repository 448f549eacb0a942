"""Replies as SendGrid's Inbound Parse posts them: multipart/form-data, parsed or raw mode."""
from __future__ import annotations

import datetime as dt
import email.utils
import html as html_lib
import json
import random
import uuid
from email.message import EmailMessage
from email.policy import SMTP

from simulators.sendgrid.model import Recipient

REPLY_TEXTS = {
    "positive": [
        "Hi {first},\n\nThanks for reaching out - this is actually timely for us. Could we set up a 30 minute call "
        "next week? Tuesday or Wednesday afternoon works best.\n\nBest,\n{me}",
        "Hello {first},\n\nInteresting, I'd like to learn more. Can you send over some times for a quick demo?\n\n"
        "Thanks,\n{me}",
    ],
    "neutral": [
        "Hi {first},\n\nCan you send me some more information and pricing? I'll share it with the team.\n\n{me}",
    ],
    "negative": [
        "Hi {first},\n\nThanks, but we are not interested at this time.\n\n{me}",
    ],
    "stop": [
        "Please remove me from your mailing list and stop emailing me.\n\n{me}",
        "Unsubscribe. Do not contact me again.",
    ],
    "ooo": [
        "Thank you for your email. I am out of the office until {return_date} with limited access to email. "
        "I will respond to your message when I return. For urgent matters please contact my colleague.\n\n{me}",
        "I'm currently away on vacation and will be back on {return_date}. I will reply as soon as possible "
        "after my return.",
    ],
}


def _first_name(name: str | None, address: str) -> str:
    if name:
        return name.split()[0]
    return address.split("@", 1)[0].split(".")[0].capitalize()


def _format_addr(name: str | None, address: str) -> str:
    return email.utils.formataddr((name, address)) if name else address


def build_reply(
    *, rcpt: Recipient, reply_type: str, now: float, rng: random.Random, raw: bool
) -> tuple[list[tuple[str, str]], dict[str, str]]:
    """The form fields of one Inbound Parse POST, and the reply's headers (for the simulator's log)."""
    domain = rcpt.email.rsplit("@", 1)[-1]
    when = dt.datetime.fromtimestamp(now, dt.UTC)
    return_date = (when + dt.timedelta(days=rng.randint(2, 14))).strftime("%B %d, %Y")
    me = rcpt.name or rcpt.email.split("@", 1)[0]
    body = rng.choice(REPLY_TEXTS[reply_type]).format(
        first=_first_name(rcpt.from_name, rcpt.from_email), me=me, return_date=return_date
    )
    sent = dt.datetime.fromtimestamp(rcpt.sent_at, dt.UTC)
    quoted = "\n".join("> " + line for line in (rcpt.text or "").splitlines())
    if reply_type != "ooo":
        sender = _format_addr(rcpt.from_name, rcpt.from_email)
        body = f"{body}\n\nOn {sent:%a, %b %d, %Y at %H:%M}, {sender} wrote:\n{quoted}"
    html_body = "<div>" + html_lib.escape(body).replace("\n", "<br>\n") + "</div>"
    subject_prefix = "Automatic reply: " if reply_type == "ooo" else "Re: "
    subject = subject_prefix + rcpt.subject if not rcpt.subject.lower().startswith("re:") else rcpt.subject
    references = " ".join(x for x in (rcpt.references, rcpt.message_id_header) if x)

    headers: dict[str, str] = {
        "Received": f"from mail.{domain} (mail.{domain} [203.0.113.25]) by mx.sendgrid.net with ESMTPS id "
        f"{uuid.uuid4().hex[:16]} for <{rcpt.reply_to}>; {email.utils.format_datetime(when)}",
        "MIME-Version": "1.0",
        "From": _format_addr(rcpt.name, rcpt.email),
        "Date": email.utils.format_datetime(when),
        "Message-ID": f"<{uuid.UUID(int=rng.getrandbits(128)).hex}@mail.{domain}>",
        "Subject": subject,
        "To": _format_addr(rcpt.from_name, rcpt.reply_to),
        "In-Reply-To": rcpt.message_id_header,
        "References": references,
    }
    if reply_type == "ooo":
        # Most servers announce themselves (RFC 3834); some only with the older vendor headers.
        if rng.random() < 0.8 or rcpt.email.split("@", 1)[0].startswith("ooo"):
            headers["Auto-Submitted"] = "auto-replied"
            headers["X-Auto-Response-Suppress"] = "All"
        else:
            headers["X-Autoreply"] = "yes"
            headers["Precedence"] = "auto_reply"

    message = EmailMessage(policy=SMTP)
    for name, value in headers.items():
        message[name] = value
    message.set_content(body)
    message.add_alternative(html_body, subtype="html")
    envelope = json.dumps({"to": [rcpt.reply_to], "from": rcpt.email})
    charsets = json.dumps({"to": "UTF-8", "html": "UTF-8", "subject": "UTF-8", "from": "UTF-8", "text": "UTF-8"})
    common = [
        ("to", headers["To"]),
        ("from", headers["From"]),
        ("subject", subject),
        ("envelope", envelope),
        ("charsets", charsets),
        ("dkim", f"{{@{domain} : pass}}"),
        ("SPF", "pass"),
        ("sender_ip", "203.0.113.25"),
        ("spam_score", f"{rng.uniform(0, 1.5):.3f}"),
        ("spam_report", "Spam detection software, running on the system \"mx.sendgrid.net\", has NOT identified "
         "this incoming email as spam.\n"),
    ]
    if raw:
        fields = [("email", message.as_string())] + common
    else:
        # Parsed mode: the raw header block as the receiving MTA saw it, then the decoded parts.
        header_block = "".join(f"{k}: {v}\n" for k, v in message.items())
        fields = [("headers", header_block), ("text", body), ("html", html_body)] + common + [("attachments", "0")]
    return fields, headers


def encode_multipart(fields: list[tuple[str, str]]) -> tuple[bytes, str]:
    boundary = "xYzZY" + uuid.uuid4().hex
    parts: list[bytes] = []
    for name, value in fields:
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n'
            f"Content-Type: text/plain; charset=UTF-8\r\n\r\n".encode()
            + value.encode("utf-8")
            + b"\r\n"
        )
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"
