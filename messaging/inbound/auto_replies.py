"""Is a message an automatic reply, and is it an absence? By its headers first, then by unambiguous wording.

Out-of-office only when the message is an auto-reply (RFC 3834 `Auto-Submitted`, `X-Autoreply`,
`X-Autorespond`, Exchange's `X-MS-Exchange-Organization-AutoReply` / `X-Auto-Response-Suppress`, an
"Automatic reply:" subject) or says so in words nobody uses by hand ("This is an automatic reply"). A human
who mentions a vacation and answers is a human reply. `Precedence: bulk` and
`X-MS-Exchange-Inbox-Rules-Loop` are NOT auto-reply signals: people's clients set them on hand-written mail.
"""
from __future__ import annotations

import re

_AUTO_HEADER_NAMES = ("x-autoreply", "x-autorespond", "x-autoresponder", "x-auto-response", "x-mailautoreply",
                      "x-mail-autoreply", "x-autoreply-from", "x-ms-exchange-organization-autoreply",
                      "x-apple-action", "x-vacation")

AUTO_SUBJECT = re.compile(
    r"^\s*(?:automatic reply|auto(?:matic)?[- ]?(?:reply|response)|autoreply|out of (?:the )?office"
    r"|automatische antwort|abwesenheitsnotiz|abwesend|réponse automatique|reponse automatique|absence"
    r"|respuesta automática|respuesta automatica|fuera de la oficina|risposta automatica|fuori sede"
    r"|automatisch antwoord|afwezig|resposta automática|resposta automatica|ausente|ooo)\b",
    re.IGNORECASE,
)
AUTO_WORDING = re.compile(
    r"\bthis is an? (?:automatic|automated|auto-generated|auto)[- ]?(?:reply|response|message)\b"
    r"|\bdies ist eine automatische (?:antwort|nachricht|abwesenheitsnotiz)\b"
    r"|\bceci est (?:une réponse|un message) automatique\b|\besta es una respuesta automática\b"
    r"|\bquesta è una risposta automatica\b|\bdit is een automatisch (?:antwoord|bericht)\b"
    r"|\besta é uma (?:resposta|mensagem) automática\b|\b(?:automatic|automated) out[- ]of[- ]office\b"
    # Fixed phrases of absence templates: nobody answering by hand promises to answer later.
    r"|\bwith (?:limited|no) access to (?:my )?e-?mails?\b"
    r"|\b(?:respond|reply) to (?:your|you) (?:message |e-?mail )?(?:when|after|upon) (?:i|my)"
    r" (?:return|am back|get back)"
    r"|\b(?:reply|respond) as soon as possible after my return\b|\bno longer (?:monitor|check)(?:ing|ed)? this\b",
    re.IGNORECASE,
)
# Words of an absence (an out-of-office), read only once the message is known to be automatic.
ABSENCE_WORDING = re.compile(
    r"\bout of (?:the )?office\b|\bon (?:annual |parental |maternity |paternity |sick |business )?leave\b"
    r"|\bon (?:vacation|holiday|holidays|pto|sabbatical)\b|\baway\b|\btraveling\b|\btravelling\b|\bback on\b"
    r"|\breturn\b|\babwesen|\bnicht im büro\b|\burlaub\b|\bzurück\b|\babsent|\ben congés?\b|\bde retour\b"
    r"|\bvacances\b|\bfuera\b|\bvacaciones\b|\bausente\b|\bassente\b|\bferie\b|\brientr|\bvakantie\b|\bafwezig\b"
    r"|\bno longer (?:monitor|check)|\belternzeit\b|\bwieder erreichbar\b|\bweer aanwezig\b|\bférias\b"
    r"|\bretorno\b|\buntil\b|\bbis\b|\bjusqu'|\bhasta\b|\bfino al\b|\baté\b",
    re.IGNORECASE,
)


def auto_reply_header(headers: dict[str, str]) -> str | None:
    """Name of the header that marks the message as sent by a machine on the person's behalf, or None."""
    auto_submitted = headers.get("auto-submitted", "").strip().lower()
    if auto_submitted and auto_submitted != "no":
        return "auto-submitted"
    if headers.get("precedence", "").strip().lower() in ("auto_reply", "auto-reply"):
        return "precedence"
    for name in _AUTO_HEADER_NAMES:
        if name in headers:
            return name
    if headers.get("x-auto-response-suppress", "").strip():
        return "x-auto-response-suppress"
    return None


def auto_reply_reason(*, headers: dict[str, str], subject: str, text: str) -> str | None:
    """Why the message is an automatic reply (a header name, "subject" or "wording"), or None."""
    header = auto_reply_header(headers)
    if header:
        return header
    if AUTO_SUBJECT.search(subject or ""):
        return "subject"
    if AUTO_WORDING.search(text[:2000]):
        return "wording"
    return None


# Headers that say the automatic reply is an absence, not e.g. a ticket acknowledgement. iCloud's vacation
# responder sends `X-Apple-Action: VACATION` (with `X-Apple-Criteria: {kind=VACATION,...}`) and no RFC 3834
# header. No vendor puts the end date in a header (Exchange's OOF end time stays in the mailbox settings):
# the return date is read from the text (messaging.inbound.return_dates).
_ABSENCE_HEADERS = {"x-apple-action": "vacation"}


def absence_header(headers: dict[str, str]) -> str | None:
    """Name of the header that marks the automatic reply as an absence (out-of-office), or None."""
    for name, value in _ABSENCE_HEADERS.items():
        if headers.get(name, "").strip().lower() == value:
            return name
    return None


def is_absence(*, subject: str, text: str, headers: dict[str, str] | None = None) -> bool:
    """An absence by its headers first (they beat the wording), then by the words of the subject or text."""
    if absence_header(headers or {}):
        return True
    return bool(ABSENCE_WORDING.search(subject or "") or ABSENCE_WORDING.search(text[:4000]))
