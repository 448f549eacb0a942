"""`python manage.py ai_stub [--port N] [--model-like [--fault-rate R] [--seed N]]`: the OpenAI-compatible stub.

Point the system at it with OPENAI_BASE_URL=http://127.0.0.1:N/v1 and any OPENAI_API_KEY. By default it
answers with the apps' deterministic components (simulators/openai_stub/responders.py); `--model-like`
writes its own plans with seeded faults (simulators/openai_stub/model_like.py). Runs until interrupted.
"""
from __future__ import annotations

import time

from django.core.management.base import BaseCommand

from simulators.openai_stub.model_like import ModelLikeResponder
from simulators.openai_stub.responders import demo_responder
from simulators.openai_stub.server import start_stub


class Command(BaseCommand):
    help = "Run the OpenAI-compatible stub server with model-like answers (demo and manual testing)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--port", type=int, default=0, help="port to listen on (0: the OS picks one)")
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--model-like", action="store_true", help="write plans like a model, with faults")
        parser.add_argument("--fault-rate", type=float, default=0.0, help="share of faulty first plan answers")
        parser.add_argument("--seed", type=int, default=0)

    def handle(self, *args, **options) -> None:
        responder = ModelLikeResponder(fault_rate=options["fault_rate"], seed=options["seed"]) \
            if options["model_like"] else demo_responder
        stub = start_stub(port=options["port"], host=options["host"], responder=responder)
        self.stdout.write(f"OpenAI stub listening; set OPENAI_BASE_URL={stub.base_url}")
        self.stdout.flush()
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            stub.stop()
