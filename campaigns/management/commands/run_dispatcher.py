"""`python manage.py run_dispatcher`: the dispatcher as a dedicated loop (the beat task does the same per tick).

Any number may run next to each other and next to beat: claims use FOR UPDATE SKIP LOCKED.
SIGINT / SIGTERM finish the current pass and exit 0.

A database or broker outage does not end the loop: the pass's transaction rolled back (nothing was claimed
half-way; a publish lost after commit is re-dispatched by lease recovery), so the loop logs, drops its
database connection (the next pass opens a new one), waits with exponential back-off (`--error-backoff`,
doubling up to 30 s) and tries again until the outage ends. Only `--once` lets the error out (exit 1).
"""
from __future__ import annotations

import logging
import signal
import threading
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import InterfaceError, OperationalError, close_old_connections, connection
from kombu.exceptions import OperationalError as BrokerError
from redis.exceptions import RedisError

from campaigns.dispatcher import DEFAULT_BATCH_SIZE, DispatchStats, dispatch_due

logger = logging.getLogger(__name__)

MAX_ERROR_BACKOFF_SECONDS = 30.0
# What an outage of PostgreSQL or Redis raises out of a pass (psycopg's errors arrive as Django's). Not all of
# DatabaseError: a ProgrammingError or IntegrityError is a bug, which must stop the process, not loop.
OUTAGES = (OperationalError, InterfaceError, BrokerError, RedisError, ConnectionError)


def _drop_connection() -> None:
    """Throw the (probably dead) connection away; Django opens a fresh one on the next query."""
    try:
        connection.close()
    except Exception:  # noqa: BLE001 - closing a broken connection can fail too; it is gone either way
        logger.debug("closing the broken database connection failed", exc_info=True)


class Command(BaseCommand):
    help = "Claim due scheduled actions and hand them to Celery in batches, in a loop."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--interval", type=float, default=1.0,
                            help="seconds (real time) to sleep when nothing was due (default 1)")
        parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE,
                            help=f"rows claimed per transaction (default {DEFAULT_BATCH_SIZE})")
        parser.add_argument("--error-backoff", type=float, default=1.0,
                            help="seconds to wait after a database or broker error, doubling up to "
                                 f"{MAX_ERROR_BACKOFF_SECONDS:.0f} s while it lasts (default 1)")
        parser.add_argument("--once", action="store_true", help="run one pass and exit")

    def _report(self, stats: DispatchStats, verbosity: int) -> None:
        if verbosity >= 2 or (stats.busy and verbosity >= 1):
            self.stdout.write(f"claimed={stats.claimed} held={stats.held} released={stats.released} "
                              f"recovered={stats.recovered} finished={stats.finished} messages={stats.messages}")

    def handle(self, *args: Any, **options: Any) -> None:
        stop = threading.Event()

        def on_signal(signum: int, frame: Any) -> None:
            stop.set()

        previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        failures = 0
        try:
            while not stop.is_set():
                try:
                    stats = dispatch_due(batch_size=options["batch_size"], time_budget=30.0)
                except OUTAGES as exc:
                    if options["once"]:
                        raise
                    failures += 1
                    wait = min(MAX_ERROR_BACKOFF_SECONDS, options["error_backoff"] * 2 ** (failures - 1))
                    logger.warning("dispatcher pass failed (%s: %s); retrying in %.1f s", type(exc).__name__,
                                   exc, wait)
                    _drop_connection()
                    stop.wait(wait)
                    continue
                if failures:
                    logger.warning("dispatcher recovered after %d failed pass(es)", failures)
                    failures = 0
                self._report(stats, options["verbosity"])
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
