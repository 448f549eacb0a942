"""Reply classification time per KB (issue 11): the rule path of `inbound_read`, the function the Inbound
Parse worker runs, on the corpus and on hostile bodies (blank-line runs, quote markers, nested HTML).

Prints ms per KB of input; never passes or fails. The 8 KB of blank lines is the body that cost 34 s with the
old quadratic quote pattern.
"""
from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

from django.test import override_settings

from messaging.inbound.analysis import MailToRead, inbound_read
from messaging.inbound.evaluation import load_corpus, mail_of_case
from messaging.inbound.warm_up import inbound_readers_warm_up

CORPUS = Path(__file__).resolve().parents[1] / "messaging" / "inbound" / "corpus" / "replies.jsonl"
RECEIVED = dt.datetime(2026, 3, 10, 9, 0, tzinfo=dt.UTC)


def _time(mail: MailToRead) -> float:
    started = time.perf_counter()
    inbound_read(mail=mail, tenant=None, received_at=RECEIVED)
    return time.perf_counter() - started


def _mail(text: str = "", html: str = "") -> MailToRead:
    return MailToRead(subject="Re: Quick idea", text=text, html=html, headers={}, from_email="x@acme.example")


def _line(name: str, seconds: float, size: int) -> None:
    kb = max(size, 1) / 1024
    print(f"   {name:<34} {size / 1024:>9.1f} KB {seconds * 1000:>9.1f} ms {seconds * 1000 / kb:>8.2f} ms/KB")


def main() -> None:
    with override_settings(OPENAI_API_KEY=""):
        started = time.perf_counter()
        inbound_readers_warm_up()  # what a worker does at start: models and libraries load once
        print(f"   {'warm-up at worker start':<34} {'':>12} {(time.perf_counter() - started) * 1000:>9.1f} ms")
        mails = [mail_of_case(case) for case in load_corpus(CORPUS)]
        size = sum(len(m.text) + len(m.html) for m in mails)
        _line(f"corpus ({len(mails)} mails)", sum(_time(m) for m in mails), size)
        hostile = {
            "8 KB of blank lines": _mail("\n" * 8192 + "remove me"),
            "1 MB of newlines": _mail("\n" * 1_048_576),
            "1 MB of '>' lines": _mail("> quoted\n" * 116_508),
            "64 KB of prose": _mail(("Sounds good, let's book a call next week. " * 1600)[:65536]),
            "nested HTML (100,000 levels)": _mail(html="<div>" * 100_000 + "x" + "</div>" * 100_000),
        }
        for name, mail in hostile.items():
            _line(name, _time(mail), len(mail.text) + len(mail.html))
