"""Measuring the inbound reading on a labelled corpus (messaging/inbound/corpus): `manage.py evaluate_replies`.

Each case is read by `inbound_read`, the function the Inbound Parse worker uses, after the same MIME parsing
(raw cases through `raw_mail_content`). The class compared is one of: positive, negative, neutral (a person's
reply), ooo, auto_reply (an automatic reply that is not an absence), bounce. Stop requests, return dates and
bounce types are scored apart: a stop is orthogonal to the class.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import email.utils
import json
from collections import Counter
from pathlib import Path

from messaging.inbound.analysis import InboundReading, MailToRead, inbound_read
from messaging.inbound.parsing import raw_mail_content

CLASSES = ("positive", "negative", "neutral", "ooo", "auto_reply", "bounce")


@dataclasses.dataclass
class CaseResult:
    case_id: str
    expected: str
    got: str
    stop_expected: bool
    stop_got: bool
    date_expected: str | None
    date_got: str | None
    bounce_expected: str | None
    bounce_got: str | None


@dataclasses.dataclass
class Evaluation:
    results: list[CaseResult]

    @property
    def accuracy(self) -> float:
        return sum(r.expected == r.got for r in self.results) / max(1, len(self.results))

    def precision_recall(self, cls: str) -> tuple[float, float, int]:
        tp = sum(r.expected == cls and r.got == cls for r in self.results)
        predicted = sum(r.got == cls for r in self.results)
        actual = sum(r.expected == cls for r in self.results)
        return (tp / predicted if predicted else 1.0), (tp / actual if actual else 1.0), actual

    def stop_precision_recall(self) -> tuple[float, float, int]:
        tp = sum(r.stop_expected and r.stop_got for r in self.results)
        predicted = sum(r.stop_got for r in self.results)
        actual = sum(r.stop_expected for r in self.results)
        return (tp / predicted if predicted else 1.0), (tp / actual if actual else 1.0), actual

    def stop_misses(self) -> list[str]:
        return [r.case_id for r in self.results if r.stop_expected and not r.stop_got]

    def date_accuracy(self) -> float:
        dated = [r for r in self.results if r.date_expected]
        return sum(r.date_expected == r.date_got for r in dated) / max(1, len(dated))

    def bounce_type_accuracy(self) -> float:
        bounces = [r for r in self.results if r.bounce_expected]
        return sum(r.bounce_expected == r.bounce_got for r in bounces) / max(1, len(bounces))

    def confusion(self) -> Counter[tuple[str, str]]:
        return Counter((r.expected, r.got) for r in self.results)


def expected_class(expected: dict) -> str:
    if expected["kind"] == "bounce":
        return "bounce"
    if expected["kind"] == "auto_reply":
        return "ooo" if expected.get("label") == "ooo" else "auto_reply"
    return str(expected["label"])


def reading_class(reading: InboundReading) -> str:
    if reading.kind == "bounce":
        return "bounce"
    if reading.kind == "auto_reply" or reading.label == "ooo":
        return "ooo" if reading.label == "ooo" else "auto_reply"
    return reading.label or "neutral"


def mail_of_case(case: dict) -> MailToRead:
    """The case as the worker would see it: raw cases through the email package, others as parsed fields."""
    if case.get("raw"):
        content = raw_mail_content(case["raw"].encode("utf-8", "surrogateescape"))
        headers, text, html, subject, message = (content.headers, content.text, content.html, content.subject,
                                                 content.message)
    else:
        headers = {str(k).lower(): str(v) for k, v in (case.get("headers") or {}).items()}
        text, html, subject, message = case.get("text") or "", case.get("html") or "", case.get("subject") or "", None
    from_email = email.utils.parseaddr(headers.get("from") or case.get("from") or "")[1].lower()
    return MailToRead(subject=subject, text=text, html=html, headers=headers, from_email=from_email,
                      message=message, our_outbound_text=case.get("our_outbound_text") or "")


def load_corpus(path: Path) -> list[dict]:
    cases = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            try:
                cases.append(json.loads(line))
            except ValueError as exc:
                raise ValueError(f"line {number}: not JSON ({exc})") from exc
    return cases


def evaluate(cases: list[dict], *, tenant=None) -> Evaluation:  # noqa: ANN001 - a Tenant or None
    results = []
    for case in cases:
        received = dt.datetime.fromisoformat(case["received_at"])
        reading = inbound_read(mail=mail_of_case(case), tenant=tenant, received_at=received)
        expected = case["expected"]
        got_date = reading.classification.return_date if reading.classification else None
        results.append(CaseResult(
            case_id=case["id"], expected=expected_class(expected), got=reading_class(reading),
            stop_expected=bool(expected.get("stop_request")), stop_got=reading.stop_request,
            date_expected=expected.get("return_date"), date_got=got_date.isoformat() if got_date else None,
            bounce_expected=expected.get("bounce_type"),
            bounce_got=reading.bounce.bounce_type if reading.bounce else None,
        ))
    return Evaluation(results)
