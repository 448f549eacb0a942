"""`python manage.py classify_reply FILE`: classify one reply the way inbound processing does.

FILE is a raw RFC 822 message (headers, blank line, body; MIME is decoded, text/plain preferred) or
plain text; `-` reads standard input. Prints one JSON line:
{"label": ..., "confidence": ..., "stop_request": ..., "return_date": ...}. See docs/ai.md.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from messaging.inbound.classification import classify_reply
from messaging.inbound.reply_source import parse_reply_source


class Command(BaseCommand):
    help = "Classify a reply (raw RFC 822 message or plain text) as positive/negative/neutral/ooo."

    def add_arguments(self, parser) -> None:
        parser.add_argument("file", help="path to the message (.eml or .txt), or - for stdin")
        parser.add_argument("--explain", action="store_true", help="also print the source and the rules that fired")

    def handle(self, *args, **options) -> None:
        name = options["file"]
        if name == "-":
            raw = sys.stdin.buffer.read()
        else:
            path = Path(name)
            if not path.is_file():
                raise CommandError(f"{name}: no such file")
            try:
                raw = path.read_bytes()
            except OSError as exc:
                raise CommandError(f"{name}: cannot read ({exc.strerror})") from exc
        if not raw.strip():
            raise CommandError(f"{name}: the message is empty")
        parsed = parse_reply_source(raw)
        result = classify_reply(tenant=None, subject=parsed.subject, text=parsed.text, headers=parsed.headers)
        out = result.as_dict()
        if options["explain"]:
            out["source"] = result.source
            out["reasons"] = list(result.reasons)
        self.stdout.write(json.dumps(out, ensure_ascii=False))
