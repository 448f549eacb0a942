"""`python manage.py run_dispatcher`: the dispatcher as a dedicated loop (the beat task does the same per tick).

Any number may run next to each other and next to beat: claims use FOR UPDATE SKIP LOCKED.
SIGINT / SIGTERM finish the current pass and exit 0.
"""
from __future__ import annotations

import signal
import threading
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import close_old_connections

from campaigns.dispatcher import DEFAULT_BATCH_SIZE, dispatch_due


class Command(BaseCommand):
    help = "Claim due scheduled actions and hand them to Celery in batches, in a loop."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--interval", type=float, default=1.0,
                            help="seconds (real time) to sleep when nothing was due (default 1)")
        parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE,
                            help=f"rows claimed per transaction (default {DEFAULT_BATCH_SIZE})")
        parser.add_argument("--once", action="store_true", help="run one pass and exit")

    def handle(self, *args: Any, **options: Any) -> None:
        stop = threading.Event()

        def on_signal(signum: int, frame: Any) -> None:
            stop.set()

        previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            while not stop.is_set():
                stats = dispatch_due(batch_size=options["batch_size"], time_budget=30.0)
                if options["verbosity"] >= 2 or (stats.busy and options["verbosity"] >= 1):
                    self.stdout.write(f"claimed={stats.claimed} held={stats.held} released={stats.released} "
                                      f"recovered={stats.recovered} finished={stats.finished} "
                                      f"messages={stats.messages}")
                if options["once"]:
                    break
                # A long-lived process: drop a connection the server closed or that outlived CONN_MAX_AGE.
                close_old_connections()
                if not stats.claimed:
                    stop.wait(options["interval"])
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        self.stdout.write("dispatcher stopped")
