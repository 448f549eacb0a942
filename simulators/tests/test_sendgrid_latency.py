"""The simulator's latency knob (issue 19): mean, jitter and per-connection setup, by config, control
endpoint and flag; and the connection count that shows a client's keep-alive."""
from __future__ import annotations

import http.client
import json
import time

import pytest
from django.conf import settings

from simulators.management.commands.sendgrid_simulator import Command
from simulators.sendgrid.config import SimulatorConfig, config_update
from simulators.sendgrid.server import start_simulator

MAIL = json.dumps({"personalizations": [{"to": [{"email": "silent@example.com"}]}],
                   "from": {"email": "rep@seller.example"}, "subject": "s",
                   "content": [{"type": "text/plain", "value": "t"}]})


def _post(conn: http.client.HTTPConnection, path: str, body: str) -> tuple[int, float]:
    started = time.perf_counter()
    conn.request("POST", path, body=body, headers={"Authorization": f"Bearer {settings.SENDGRID_API_KEY}",
                                                   "Content-Type": "application/json"})
    response = conn.getresponse()
    response.read()
    return response.status, time.perf_counter() - started


@pytest.fixture
def sim():
    handle = start_simulator(port=0, seed=3, auto_emit=False)
    yield handle
    handle.stop()


def test_latency_set_through_the_control_endpoint_delays_api_answers_not_control_calls(sim):
    conn = http.client.HTTPConnection(sim.host, sim.port, timeout=5)
    status, _ = _post(conn, "/_sim/config", json.dumps({"latency_ms": 200, "connection_setup_ms": 300}))
    assert status == 200 and sim.sim.config.latency_ms == 200
    fresh = http.client.HTTPConnection(sim.host, sim.port, timeout=5)
    first = _post(fresh, "/v3/mail/send", MAIL)
    second = _post(fresh, "/v3/mail/send", MAIL)  # same connection: no setup cost again
    assert first[0] == second[0] == 202
    assert first[1] >= 0.5 and 0.2 <= second[1] < first[1]
    assert sim.status()["connections_opened"] == 2  # `conn` and `fresh`


def test_jitter_spreads_the_answer_time_around_the_mean():
    config = config_update(SimulatorConfig(), {"latency_ms": 100, "latency_jitter_ms": 50})
    import random
    delays = [config.answer_delay(random.Random(i), first_on_connection=False) for i in range(200)]
    assert 0.05 <= min(delays) < 0.07 and 0.13 < max(delays) <= 0.15
    assert config_update(SimulatorConfig(), {}).answer_delay(random.Random(1), first_on_connection=True) == 0


def test_a_negative_latency_is_refused_naming_the_field(sim):
    conn = http.client.HTTPConnection(sim.host, sim.port, timeout=5)
    conn.request("POST", "/_sim/config", body=json.dumps({"latency_ms": -1}))
    response = conn.getresponse()
    assert response.status == 400 and "latency_ms" in json.loads(response.read())["error"]
    assert sim.sim.config.latency_ms == 0


def test_the_command_flags_set_the_knob():
    parser = Command().create_parser("manage.py", "sendgrid_simulator")
    options = vars(parser.parse_args(["--no-webhooks", "--latency-ms", "150", "--latency-jitter-ms", "30",
                                      "--connection-setup-ms", "40"]))
    config = Command()._config(options)
    assert (config.latency_ms, config.latency_jitter_ms, config.connection_setup_ms) == (150, 30, 40)
