"""`python manage.py ai_stub [--port N]`: the OpenAI-compatible stub, answering like a model (for the demo).

Point the system at it with OPENAI_BASE_URL=http://127.0.0.1:N/v1 and any OPENAI_API_KEY; see
simulators/openai_stub/responders.py for what it answers. Runs until interrupted.
"""
from __future__ import annotations

import time

from django.core.management.base import BaseCommand

from simulators.openai_stub.responders import demo_responder
from simulators.openai_stub.server import start_stub


class Command(BaseCommand):
    help = "Run the OpenAI-compatible stub server with model-like answers (demo and manual testing)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--port", type=int, default=0, help="port to listen on (0: the OS picks one)")
        parser.add_argument("--host", default="127.0.0.1")

    def handle(self, *args, **options) -> None:
        stub = start_stub(port=options["port"], host=options["host"], responder=demo_responder)
        self.stdout.write(f"OpenAI stub listening; set OPENAI_BASE_URL={stub.base_url}")
        self.stdout.flush()
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            stub.stop()
