"""The SendGrid simulator for tests: one way to start it and point the settings at it."""
from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager

from simulators.sendgrid.server import SimulatorHandle, start_simulator


@contextmanager
def running_simulator(settings, *, seed: int, **options) -> Iterator[SimulatorHandle]:
    """A simulator on a free port (events only on flush: tests decide when), with the API host, key, webhook
    public key and a short request timeout pointed at it for the test's duration."""
    handle = start_simulator(port=0, seed=seed, auto_emit=False, **options)
    settings.SENDGRID_API_HOST = handle.base_url
    settings.SENDGRID_API_KEY = handle.api_keys[0]
    settings.SENDGRID_WEBHOOK_PUBLIC_KEY = handle.public_key_b64
    settings.SENDGRID_REQUEST_TIMEOUT_SECONDS = 3.0
    try:
        yield handle
    finally:
        handle.stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def closed_port_url() -> str:
    """An http URL nothing listens on (connection refused)."""
    return f"http://127.0.0.1:{free_port()}"
