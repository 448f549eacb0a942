"""Run the SendGrid simulator: `python manage.py sendgrid_simulator --port 8025` (see docs/simulator.md)."""
from __future__ import annotations

import json
import os
import signal
import threading
import urllib.parse
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from outreach import clock
from simulators.sendgrid.clock import SimClock
from simulators.sendgrid.config import BEHAVIOURS, SimulatorConfig, config_update
from simulators.sendgrid.core import Simulator
from simulators.sendgrid.server import serve
from simulators.sendgrid.signing import generate_key_pair, load_private_key, private_key_pem


def _pairs(values: list[str], flag: str) -> dict[str, str]:
    out = {}
    for value in values:
        name, sep, rest = value.partition("=")
        if not sep or not name.strip():
            raise CommandError(f"{flag} expects NAME=VALUE, got {value!r}")
        out[name.strip()] = rest.strip()
    return out


def inbound_parse_url(base: str) -> str:
    """This project's Inbound Parse URL with its basic auth credentials in it, as SendGrid is configured."""
    parts = urllib.parse.urlsplit(f"{base}/webhooks/sendgrid/inbound")
    user = urllib.parse.quote(settings.SENDGRID_INBOUND_USERNAME, safe="")
    secret = urllib.parse.quote(settings.SENDGRID_INBOUND_SECRET, safe="")
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{user}:{secret}@{parts.netloc}"))


class Command(BaseCommand):
    help = "Run a local SendGrid (mail/send, verified senders, validation) that plays the recipients."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, default=8025)
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--config", help="JSON file of SimulatorConfig fields (flags given here win)")
        parser.add_argument(
            "--webhook-url", help="event webhook target (default: PUBLIC_BASE_URL/webhooks/sendgrid/events)"
        )
        parser.add_argument(
            "--inbound-url",
            help="Inbound Parse target (default: PUBLIC_BASE_URL/webhooks/sendgrid/inbound with the basic auth "
                 "credentials SENDGRID_INBOUND_USERNAME:SENDGRID_INBOUND_SECRET)",
        )
        parser.add_argument("--no-webhooks", action="store_true", help="post nothing; events stay inspectable")
        parser.add_argument("--inbound-raw", action="store_true", help="Inbound Parse raw mode (field 'email')")
        parser.add_argument("--api-key", action="append", default=[], help="accepted key (repeatable)")
        parser.add_argument("--any-sender", action="store_true", help="accept any from address")
        parser.add_argument("--verify-delay", type=float, default=0.0, help="virtual seconds until a sender verifies")
        parser.add_argument(
            "--clock-speed", type=float, default=None,
            help="virtual seconds per real second (default: settings.CLOCK_SPEED, sharing the demo's clock)",
        )
        parser.add_argument(
            "--time-offsets-scale", type=float, default=1.0,
            help="multiply every recipient delay (0 = all at once)",
        )
        parser.add_argument("--event-timestamps", choices=["timeline", "emitted"], default="timeline")
        parser.add_argument("--private-key-file", help="PEM/DER P-256 key; created if the file does not exist")
        parser.add_argument("--rate", action="append", default=[], help="engagement rate NAME=P (repeatable)")
        parser.add_argument(
            "--override", action="append", default=[],
            help=f"ADDRESS=BEHAVIOUR (repeatable); behaviours: {', '.join(BEHAVIOURS)}",
        )
        parser.add_argument("--rate-limit-per-second", type=int, default=None)
        parser.add_argument("--rate-limit-per-minute", type=int, default=None)
        parser.add_argument("--duplicate-rate", type=float, default=0.02)
        parser.add_argument("--changed-id-rate", type=float, default=0.01)
        parser.add_argument("--out-of-order-rate", type=float, default=0.05)
        parser.add_argument("--async-bounce-rate", type=float, default=0.2)
        parser.add_argument("--batch-max-events", type=int, default=1000)
        parser.add_argument("--flush-interval", type=float, default=1.0, help="real seconds between batches")
        parser.add_argument("--max-attempts", type=int, default=20, help="webhook POST attempts before giving up")
        parser.add_argument("--verbose", action="store_true", help="log every request")
        # The provider's answer time (issue 19): what benchmarks must see. Flags given win over --config.
        parser.add_argument("--latency-ms", type=float, default=None, help="mean added answer time of /v3 calls")
        parser.add_argument("--latency-jitter-ms", type=float, default=None, help="answer time varies by +/- this")
        parser.add_argument("--connection-setup-ms", type=float, default=None,
                            help="added once per new connection, on its first request (a TLS handshake)")

    def handle(self, *args: Any, **options: Any) -> None:
        config = self._config(options)
        stopping = threading.Event()

        def _stop(signum: int, frame: object) -> None:
            stopping.set()

        signal.signal(signal.SIGINT, _stop)
        signal.signal(signal.SIGTERM, _stop)
        sim = Simulator(config=config, clock=self._clock(options["clock_speed"]), private_key=self._key(options))
        try:
            server, thread = serve(sim, host=options["host"], port=options["port"], verbose=options["verbose"])
        except OSError as exc:
            raise CommandError(f"cannot listen on {options['host']}:{options['port']}: {exc}") from exc
        self._announce(sim, server)

        while not stopping.wait(0.5):
            pass
        self.stdout.write("SendGrid simulator stopping")
        server.shutdown()
        server.server_close()
        sim.stop()
        thread.join(timeout=5)

    def _webhook_urls(self, options: dict[str, Any], changes: dict[str, Any]) -> tuple[str | None, str | None]:
        """Where events and replies go: the flags, else the --config file, else this project's own endpoints."""
        if options["no_webhooks"]:
            return None, None
        base = settings.PUBLIC_BASE_URL.rstrip("/")
        webhook_url = options["webhook_url"] or changes.get("webhook_url") or f"{base}/webhooks/sendgrid/events"
        inbound_url = options["inbound_url"] or changes.get("inbound_url") or inbound_parse_url(base)
        return webhook_url, inbound_url

    def _config(self, options: dict[str, Any]) -> SimulatorConfig:
        """The SimulatorConfig from the --config file and the flags (flags win)."""
        changes: dict[str, Any] = {}
        if options["config"]:
            try:
                changes.update(json.loads(Path(options["config"]).read_text()))
            except (OSError, json.JSONDecodeError) as exc:
                raise CommandError(f"--config: {exc}") from exc
        webhook_url, inbound_url = self._webhook_urls(options, changes)
        keys = options["api_key"] or changes.get("api_keys") or [settings.SENDGRID_API_KEY]
        rates = {**changes.get("rates", {}), **{k: float(v) for k, v in _pairs(options["rate"], "--rate").items()}}
        overrides = {**changes.get("overrides", {}), **_pairs(options["override"], "--override")}
        for knob in ("latency_ms", "latency_jitter_ms", "connection_setup_ms"):
            if options.get(knob) is not None:
                changes[knob] = options[knob]
        changes.update(
            {
                "seed": options["seed"],
                "api_keys": keys,
                "any_sender": options["any_sender"] or changes.get("any_sender", False),
                "sender_verify_delay_seconds": options["verify_delay"],
                "webhook_url": webhook_url,
                "inbound_url": inbound_url,
                "inbound_raw": options["inbound_raw"] or changes.get("inbound_raw", False),
                "time_scale": options["time_offsets_scale"],
                "event_timestamps": options["event_timestamps"],
                "rates": rates,
                "overrides": overrides,
                "duplicate_rate": options["duplicate_rate"],
                "changed_id_duplicate_rate": options["changed_id_rate"],
                "out_of_order_rate": options["out_of_order_rate"],
                "async_bounce_rate": options["async_bounce_rate"],
                "batch_max_events": options["batch_max_events"],
                "flush_interval_seconds": options["flush_interval"],
                "webhook_max_attempts": options["max_attempts"],
                "webhook_retry_max_seconds": 60.0,
                "tick_seconds": 0.05,
            }
        )
        for name in ("rate_limit_per_second", "rate_limit_per_minute"):
            if options[name] is not None:
                changes[name] = options[name]
        try:
            return config_update(SimulatorConfig(), changes)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc

    def _announce(self, sim: Simulator, server: Any) -> None:
        config = sim.config
        keys = config.api_keys
        webhook_url, inbound_url = config.webhook_url, config.inbound_url
        host, port = server.server_address[:2]
        url = f"http://{host}:{port}"
        self.stdout.write(f"SendGrid simulator listening on {url} (seed {config.seed}, clock x{sim.clock.speed:g})")
        self.stdout.write(f"  event webhook -> {webhook_url or '(none)'}")
        self.stdout.write(f"  inbound parse -> {inbound_url or '(none)'}{' (raw)' if config.inbound_raw else ''}")
        self.stdout.write(f"  public key: {sim.public_key_b64}")
        self.stdout.write("Environment for the app:")
        self.stdout.write(f"SENDGRID_API_HOST={url}")
        self.stdout.write(f"SENDGRID_API_KEY={keys[0]}")
        self.stdout.write(f"SENDGRID_WEBHOOK_PUBLIC_KEY={sim.public_key_b64}")
        self.stdout.flush()

    def _clock(self, speed: float | None) -> SimClock:
        configured = settings.CLOCK_SPEED
        speed = configured if speed is None else speed
        if speed == 1.0:
            return SimClock()
        if speed == configured:
            # Share the demo's virtual clock (epoch in Redis) so timestamps agree across processes.
            return SimClock(speed=speed, source=lambda: clock.now().timestamp())
        self.stderr.write(
            f"--clock-speed {speed:g} differs from CLOCK_SPEED {configured:g}: using a private virtual clock"
        )
        return SimClock(speed=speed)

    def _key(self, options: dict[str, Any]):
        path = options["private_key_file"]
        if not path:
            return generate_key_pair()[0]
        if os.path.exists(path):
            try:
                return load_private_key(path)
            except ValueError as exc:
                raise CommandError(str(exc)) from exc
        key, _ = generate_key_pair()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(private_key_pem(key))
        self.stdout.write(f"  wrote a new private key to {path}")
        return key
