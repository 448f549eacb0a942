"""The SendGrid simulator over real HTTP, driven with the official ``sendgrid`` client.

Webhook POSTs are collected by a tiny HTTP server in the test and every signature
is checked with ``cryptography`` against the public key the simulator publishes.
"""
from __future__ import annotations

import base64
import email
import email.policy
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import sendgrid
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.conf import settings
from python_http_client import exceptions as http_exc

from simulators.sendgrid import generate_key_pair, sign_event_payload, verify_event_payload
from simulators.sendgrid.server import SimulatorHandle, start_simulator

KEY = settings.SENDGRID_API_KEY  # random per run; the simulators started here accept it alone
SIG = "X-Twilio-Email-Event-Webhook-Signature"
TS = "X-Twilio-Email-Event-Webhook-Timestamp"


# --- helpers -------------------------------------------------------------------------------------


class Receiver:
    """Collects POSTs; answers with the queued statuses first, then 200."""

    def __init__(self) -> None:
        self.posts: list[dict[str, Any]] = []
        self.statuses: list[int] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver.lock:
                    receiver.posts.append({"path": self.path, "headers": dict(self.headers.items()), "body": body})
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def event_posts(self) -> list[dict[str, Any]]:
        return [p for p in self.posts if p["path"] == "/events"]

    def events(self, public_key_b64: str) -> list[dict[str, Any]]:
        """Every event received, in arrival order, after checking each batch's signature."""
        out: list[dict[str, Any]] = []
        for post in self.event_posts():
            assert_signed(public_key_b64, post)
            out.extend(json.loads(post["body"]))
        return out


def assert_signed(public_key_b64: str, post: dict[str, Any]) -> None:
    key = serialization.load_der_public_key(base64.b64decode(public_key_b64))
    assert isinstance(key, ec.EllipticCurvePublicKey)
    headers = {k.lower(): v for k, v in post["headers"].items()}
    signed = headers[TS.lower()].encode() + post["body"]
    key.verify(base64.b64decode(headers[SIG.lower()]), signed, ec.ECDSA(hashes.SHA256()))


def form_fields(post: dict[str, Any]) -> dict[str, str]:
    """Parse a multipart/form-data body with the stdlib email parser (what a receiver would see)."""
    ctype = {k.lower(): v for k, v in post["headers"].items()}["content-type"]
    assert ctype.startswith("multipart/form-data")
    message = email.message_from_bytes(
        f"Content-Type: {ctype}\r\n\r\n".encode() + post["body"], policy=email.policy.HTTP
    )
    return {part.get_param("name", header="content-disposition"): part.get_content() for part in message.iter_parts()}


def mail(to: str | list[str], **extra: Any) -> dict[str, Any]:
    recipients = [to] if isinstance(to, str) else to
    body: dict[str, Any] = {
        "personalizations": [
            {
                "to": [{"email": address}],
                "custom_args": {"outbound_message_id": str(i + 1), "tenant_id": "7"},
                "headers": {"Message-ID": f"<om-{i + 1}@seller.example>"},
            }
            for i, address in enumerate(recipients)
        ],
        "from": {"email": "rep@seller.example", "name": "Sam Seller"},
        "subject": "Quick question",
        "content": [
            {"type": "text/plain", "value": "Hello there, see https://seller.example/offer"},
            {
                "type": "text/html",
                "value": '<p>Hello there, see <a href="https://seller.example/offer">our offer</a></p>'
                '<p><a href="https://app.example/u/abc/unsubscribe">unsubscribe</a></p>',
            },
        ],
        "categories": ["outreach"],
    }
    body.update(extra)
    return body


def client(sim: SimulatorHandle, key: str = KEY) -> sendgrid.SendGridAPIClient:
    return sendgrid.SendGridAPIClient(key, host=sim.base_url)


def send(sim: SimulatorHandle, body: dict[str, Any], **kwargs: Any):
    return client(sim).client.mail.send.post(request_body=body, **kwargs)


def sim_http(sim: SimulatorHandle, method: str, path: str, data: Any = None) -> Any:
    raw = None if data is None else json.dumps(data).encode()
    request = urllib.request.Request(sim.base_url + path, data=raw, method=method)
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


class FakeClock:
    """A virtual clock the test moves by hand."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.t = start

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.stop()


@pytest.fixture
def sim(receiver: Receiver) -> Iterator[SimulatorHandle]:
    handle = start_simulator(
        webhook_url=receiver.url + "/events", inbound_url=receiver.url + "/inbound/s3cret", auto_emit=False
    )
    yield handle
    handle.stop()


# --- mail/send ------------------------------------------------------------------------------------


def test_official_client_send_gets_202_message_id_and_rate_headers(sim: SimulatorHandle) -> None:
    response = send(sim, mail("silent@example.com"))

    assert response.status_code == 202
    assert response.body == b""
    message_id = response.headers["X-Message-Id"]
    assert 20 <= len(message_id) <= 24 and "." not in message_id
    assert int(response.headers["X-RateLimit-Limit"]) > 0
    assert int(response.headers["X-RateLimit-Remaining"]) >= 0
    assert int(response.headers["X-RateLimit-Reset"]) >= int(time.time())
    [recorded] = sim_http(sim, "GET", "/_sim/messages")["messages"]
    assert recorded["x_message_id"] == message_id
    assert recorded["to"] == ["silent@example.com"]
    assert recorded["from"] == "rep@seller.example"
    assert recorded["subject"] == "Quick question"
    assert recorded["headers"] == {"Message-ID": "<om-1@seller.example>"}
    assert recorded["custom_args"] == {"outbound_message_id": "1", "tenant_id": "7"}
    assert recorded["request"]["content"][0]["type"] == "text/plain"


def test_message_ids_are_unique_under_concurrent_sends(sim: SimulatorHandle) -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        responses = list(pool.map(lambda i: send(sim, mail(f"silent+{i}@example.com")), range(24)))

    ids = {r.headers["X-Message-Id"] for r in responses}
    assert len(ids) == 24 and all(r.status_code == 202 for r in responses)
    assert len(sim.messages()) == 24


def test_a_simulator_started_without_keys_accepts_only_a_random_key_of_its_run():
    from simulators.sendgrid.config import RUN_API_KEY, SimulatorConfig

    assert SimulatorConfig().api_keys == [RUN_API_KEY] and len(RUN_API_KEY) > 30
    assert KEY not in ("SG.test-key", "SG.local-simulator-key") and len(KEY) > 20


@pytest.mark.parametrize(
    ("key", "message"),
    [
        (None, "authorization required"),
        ("SG.wrong", "The provided authorization grant is invalid, expired, or revoked"),
        # The fixed keys the demo and the tests used before: another instance with default settings.
        ("SG.test-key", "The provided authorization grant is invalid, expired, or revoked"),
        ("SG.local-simulator-key", "The provided authorization grant is invalid, expired, or revoked"),
    ],
)
def test_missing_or_wrong_key_is_401_with_sendgrid_error_shape(sim: SimulatorHandle, key: str | None, message: str):
    api = client(sim, key or "x")
    if key is None:
        api.client.request_headers.pop("Authorization")
    with pytest.raises(http_exc.UnauthorizedError) as caught:
        api.client.mail.send.post(request_body=mail("a@example.com"))

    assert caught.value.to_dict == {"errors": [{"message": message, "field": None, "help": None}]}
    assert caught.value.headers["X-RateLimit-Limit"]
    assert sim.messages() == []


@pytest.mark.parametrize("header", ["To", "reply-to", "DKIM-Signature", "x-sg-id", "Content-Type", "BCC"])
def test_reserved_header_is_400_naming_the_headers_field(sim: SimulatorHandle, header: str) -> None:
    body = mail("a@example.com")
    body["personalizations"][0]["headers"][header] = "x"

    with pytest.raises(http_exc.BadRequestsError) as caught:
        send(sim, body)

    [error] = caught.value.to_dict["errors"]
    assert error["field"] == "personalizations.0.headers"
    assert header in error["message"]


def test_threading_and_list_unsubscribe_headers_are_allowed(sim: SimulatorHandle) -> None:
    body = mail("a@example.com", headers={
        "In-Reply-To": "<om-0@seller.example>",
        "References": "<om-0@seller.example>",
        "List-Unsubscribe": "<https://app.example/u/x>, <mailto:u@app.example>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    })
    assert send(sim, body).status_code == 202


def _without(body: dict[str, Any], key: str) -> dict[str, Any]:
    body.pop(key)
    return body


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (_without(mail("a@example.com"), "personalizations"), "personalizations"),
        (mail("a@example.com", personalizations=[{"to": [{"email": f"r{i}@example.com"}]} for i in range(1001)]),
         "personalizations"),
        (mail("a@example.com", personalizations=[{"subject": "x"}]), "personalizations.0.to"),
        (mail("a@example.com", personalizations=[{"to": [{"email": "not-an-address"}]}]),
         "personalizations.0.to.0.email"),
        (_without(mail("a@example.com"), "from"), "from.email"),
        (_without(mail("a@example.com"), "subject"), "subject"),
        (_without(mail("a@example.com"), "content"), "content"),
        (mail("a@example.com", content=[{"type": "text/html", "value": "<p>x</p>"}, {"type": "text/plain",
                                                                                      "value": "x"}]), "content"),
        (mail("a@example.com", custom_args={"n": 7}), "custom_args.n"),
        (mail("a@example.com", custom_args={"big": "x" * 10_000}), "custom_args"),
        (mail("a@example.com", categories=[f"c{i}" for i in range(11)]), "categories"),
    ],
    ids=["no-personalizations", "1001-personalizations", "no-to", "bad-to", "no-from", "no-subject", "no-content",
         "html-first", "custom-arg-int", "custom-args-10k", "11-categories"],
)
def test_invalid_body_is_400_with_the_field_sendgrid_names(sim: SimulatorHandle, body: dict, field: str) -> None:
    with pytest.raises(http_exc.BadRequestsError) as caught:
        send(sim, body)

    [error] = caught.value.to_dict["errors"]
    assert error["field"] == field
    assert error["message"]
    assert sim.messages() == []


def _to(name: str) -> list[dict[str, Any]]:
    return [{"to": [{"email": "a@example.com", "name": name}]}]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (_without(mail("a@example.com", personalizations=[{"to": [{"email": "a@example.com"}], "subject": ""}]),
                  "subject"), "subject"),
        (mail("a@example.com", send_at=int(time.time()) + 73 * 3600), "send_at"),
        (mail("a@example.com", reply_to={"email": "r@seller.example"}, reply_to_list=[{"email": "s@seller.example"}]),
         "reply_to_list"),
        (mail("a@example.com", personalizations=_to("Smith, Jo")), "personalizations.0.to.0.name"),
        (mail("a@example.com", **{"from": {"email": "rep@seller.example", "name": "Sam; Sales"}}), "from.name"),
        (mail("a@example.com", ip_pool_name="x"), "ip_pool_name"),
        (mail("a@example.com", ip_pool_name="x" * 65), "ip_pool_name"),
        (mail("a@example.com", attachments=[{"content": "aGVsbG8=", "type": "text/plain"}]), "attachments.0.filename"),
        (mail("a@example.com", asm={"group_id": 1, "groups_to_display": list(range(1, 27))}), "asm.groups_to_display"),
    ],
    ids=["empty-personalization-subject", "send-at-73h", "reply-to-and-list", "to-name-comma", "from-name-semicolon",
         "ip-pool-1", "ip-pool-65", "attachment-no-filename", "26-groups-to-display"],
)
def test_requests_the_real_mail_send_refuses_are_400_in_sendgrid_shape(sim: SimulatorHandle, body: dict,
                                                                        field: str) -> None:
    with pytest.raises(http_exc.BadRequestsError) as caught:
        send(sim, body)

    [error] = caught.value.to_dict["errors"]
    assert error["field"] == field and error["message"] and "help" in error
    assert sim.messages() == []


def test_quoted_names_a_near_send_at_and_edge_pool_names_are_accepted(sim: SimulatorHandle) -> None:
    body = mail("a@example.com", personalizations=_to('"Smith, Jo"'), send_at=int(time.time()) + 71 * 3600,
                ip_pool_name="xy", attachments=[{"content": "aGVsbG8=", "filename": "a.txt"}],
                asm={"group_id": 1, "groups_to_display": list(range(1, 26))})
    assert send(sim, body).status_code == 202
    assert send(sim, mail("b@example.com", ip_pool_name="x" * 64)).status_code == 202


def test_thousand_personalizations_and_per_personalization_subject_are_accepted(sim: SimulatorHandle) -> None:
    body = _without(mail("a@example.com"), "subject")
    body["personalizations"] = [{"to": [{"email": f"silent+{i}@example.com"}], "subject": f"S{i}"} for i in range(1000)]

    assert send(sim, body).status_code == 202
    [recorded] = sim.messages()
    assert len(recorded["recipients"]) == 1000
    assert recorded["personalizations"][999]["subject"] == "S999"


def test_body_over_30_mb_is_413(sim: SimulatorHandle) -> None:
    body = mail("a@example.com")
    body["content"][0]["value"] = "x" * (30 * 1024 * 1024 + 10)

    with pytest.raises(http_exc.PayloadTooLargeError) as caught:
        send(sim, body)

    assert caught.value.to_dict["errors"][0]["message"]
    assert sim.messages() == []


def test_sandbox_mode_answers_200_and_sends_nothing(sim: SimulatorHandle) -> None:
    response = send(sim, mail("open@example.com", mail_settings={"sandbox_mode": {"enable": True}}))

    assert response.status_code == 200
    assert sim.messages() == []
    assert sim.flush()["emitted"] == 0


def test_configured_rate_limit_answers_429_until_the_reset_time() -> None:
    clock = FakeClock()
    sim = start_simulator(rate_limit_per_second=2, clock_source=clock)
    try:
        first, second = send(sim, mail("a@example.com")), send(sim, mail("b@example.com"))
        assert [first.headers["X-RateLimit-Remaining"], second.headers["X-RateLimit-Remaining"]] == ["1", "0"]
        assert first.headers["X-RateLimit-Limit"] == "2"

        with pytest.raises(http_exc.TooManyRequestsError) as caught:
            send(sim, mail("c@example.com"))
        assert caught.value.headers["X-RateLimit-Remaining"] == "0"
        assert int(caught.value.headers["X-RateLimit-Reset"]) == int(clock.t) + 1

        clock.t += 1
        assert send(sim, mail("c@example.com")).status_code == 202
        assert [m["to"] for m in sim.messages()] == [["a@example.com"], ["b@example.com"], ["c@example.com"]]
    finally:
        sim.stop()


# --- faults ----------------------------------------------------------------------------------------


def test_5xx_fault_answers_500_then_503_for_count_requests_then_recovers(sim: SimulatorHandle) -> None:
    sim_http(sim, "POST", "/_sim/faults", {"mode": "5xx", "count": 2})

    with pytest.raises(http_exc.InternalServerError):
        send(sim, mail("a@example.com"))
    with pytest.raises(http_exc.ServiceUnavailableError):
        send(sim, mail("a@example.com"))
    assert sim.messages() == []
    assert send(sim, mail("a@example.com")).status_code == 202


def test_429_fault_carries_a_reset_header(sim: SimulatorHandle) -> None:
    sim.set_faults("429", count=1, delay_seconds=30)

    with pytest.raises(http_exc.TooManyRequestsError) as caught:
        send(sim, mail("a@example.com"))

    assert caught.value.headers["X-RateLimit-Remaining"] == "0"
    assert int(caught.value.headers["X-RateLimit-Reset"]) >= int(time.time()) + 29
    assert sim.messages() == []


def test_slow_fault_times_the_client_out_after_the_mail_was_accepted(sim: SimulatorHandle) -> None:
    sim.set_faults("slow", count=1, delay_seconds=1.0)

    with pytest.raises((TimeoutError, urllib.error.URLError)):
        send(sim, mail("a@example.com"), timeout=0.2)

    assert [m["to"] for m in sim.messages()] == [["a@example.com"]]


def test_drop_fault_closes_without_answer_but_the_mail_is_recorded_once(sim: SimulatorHandle) -> None:
    sim_http(sim, "POST", "/_sim/faults", {"mode": "drop", "count": 1})

    with pytest.raises((ConnectionError, urllib.error.URLError)):
        send(sim, mail("silent@example.com"))

    messages = sim_http(sim, "GET", "/_sim/messages")["messages"]
    assert [m["to"] for m in messages] == [["silent@example.com"]]
    assert sim_http(sim, "GET", "/_sim/faults")["mode"] == "none"
    assert send(sim, mail("other@example.com")).status_code == 202


# --- verified senders and validation ---------------------------------------------------------------


def test_unverified_sender_is_403_until_a_verified_sender_exists() -> None:
    clock = FakeClock()
    sim = start_simulator(any_sender=False, sender_verify_delay_seconds=60, clock_source=clock)
    try:
        api = client(sim).client
        with pytest.raises(http_exc.ForbiddenError) as caught:
            send(sim, mail("a@example.com"))
        assert caught.value.to_dict["errors"][0]["field"] == "from"

        created = api.verified_senders.post(
            request_body={"nickname": "Sam", "from_email": "rep@seller.example", "reply_to": "rep@seller.example",
                          "from_name": "Sam Seller", "address": "1 Main St", "city": "Berlin", "country": "DE"}
        )
        sender = json.loads(created.body)
        assert created.status_code == 201
        assert sender["id"] and sender["verified"] is False and sender["locked"] is False
        assert api.verified_senders._("resend")._(sender["id"]).post().status_code == 204

        clock.t += 61
        [listed] = json.loads(api.verified_senders.get().body)["results"]
        assert listed["verified"] is True
        assert send(sim, mail("a@example.com")).status_code == 202
    finally:
        sim.stop()


def test_an_unverified_address_never_verifies_and_bad_requests_name_fields() -> None:
    sim = start_simulator(any_sender=False)
    try:
        api = client(sim).client
        body = {"nickname": "U", "from_email": "unverified@seller.example", "reply_to": "rep@seller.example"}
        assert json.loads(api.verified_senders.post(request_body=body).body)["verified"] is False
        with pytest.raises(http_exc.ForbiddenError):
            send(sim, mail("a@example.com", **{"from": {"email": "unverified@seller.example"}}))
        with pytest.raises(http_exc.BadRequestsError) as caught:
            api.verified_senders.post(request_body={"nickname": "x", "from_email": "a@seller.example"})
        assert caught.value.to_dict["errors"][0]["field"] == "reply_to"
        with pytest.raises(http_exc.NotFoundError):
            api.verified_senders._("resend")._(999).post()
    finally:
        sim.stop()


@pytest.mark.parametrize(
    ("address", "verdict"),
    [
        ("jane.doe@acme.com", "Valid"),
        ("not an address", "Invalid"),
        ("invalid@acme.com", "Invalid"),
        ("jane@acme.invalid", "Invalid"),
        ("info@acme.com", "Risky"),
        ("sales@acme.com", "Risky"),
        ("jane@mailinator.com", "Risky"),
    ],
)
def test_email_validation_verdicts(sim: SimulatorHandle, address: str, verdict: str) -> None:
    response = client(sim).client.validations.email.post(request_body={"email": address, "source": "signup"})

    result = json.loads(response.body)["result"]
    assert result["verdict"] == verdict
    assert result["email"] == address and result["source"] == "signup"
    assert set(result["checks"]) == {"domain", "local_part", "additional"}
    assert set(result["checks"]["domain"]) == {
        "has_valid_address_syntax", "has_mx_or_a_record", "is_suspected_disposable_address"
    }
    assert result["checks"]["local_part"]["is_suspected_role_address"] is address.startswith(("info@", "sales@"))


# --- event webhooks -------------------------------------------------------------------------------


OVERRIDES = ["bounce", "block", "open", "machine", "click", "scanner", "unsub", "spam", "drop", "silent", "defer"]


def _by_email(events: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        out.setdefault(event["email"].split("@")[0], []).append(event)
    return out


def test_override_addresses_produce_their_signed_events(sim: SimulatorHandle, receiver: Receiver) -> None:
    message_id = send(sim, mail([f"{name}@example.com" for name in OVERRIDES])).headers["X-Message-Id"]

    result = sim_http(sim, "POST", "/_sim/flush")

    assert result["delivered"] == result["posts"] >= 1
    events = _by_email(receiver.events(sim.public_key_b64))
    kinds = {name: [e["event"] for e in evs] for name, evs in events.items()}
    assert kinds["bounce"] == ["processed", "bounce"]
    assert events["bounce"][1]["type"] == "bounce" and events["bounce"][1]["status"].startswith("5.")
    assert events["bounce"][1]["bounce_classification"] == "Invalid Address"
    assert kinds["block"] == ["processed", "bounce"] and events["block"][1]["type"] == "blocked"
    assert kinds["open"] == ["processed", "delivered", "open"] and events["open"][2]["sg_machine_open"] is False
    assert kinds["machine"] == ["processed", "delivered", "open"] and events["machine"][2]["sg_machine_open"] is True
    assert kinds["click"] == ["processed", "delivered", "open", "click"]
    assert events["click"][3]["url"] == "https://seller.example/offer"
    assert kinds["unsub"] == ["processed", "delivered", "open", "unsubscribe"]
    assert kinds["spam"] == ["processed", "delivered", "spamreport"]
    assert kinds["drop"] == ["dropped"] and events["drop"][0]["reason"]
    assert kinds["silent"] == ["processed", "delivered"]
    assert kinds["defer"] == ["processed", "deferred", "delivered"] and events["defer"][1]["attempt"] == "1"

    delivered = next(e for e in events["scanner"] if e["event"] == "delivered")
    scans = [e for e in events["scanner"] if e["event"] == "click"]
    assert {e["url"] for e in scans} == {"https://seller.example/offer", "https://app.example/u/abc/unsubscribe"}
    assert all(0 <= e["timestamp"] - delivered["timestamp"] <= 8 for e in scans)
    assert len({e["useragent"] for e in scans}) == 1
    human_click = events["click"][3]
    assert human_click["timestamp"] - events["click"][1]["timestamp"] > 60

    for name, evs in events.items():
        position = OVERRIDES.index(name) + 1
        for event in evs:
            assert event["sg_message_id"].split(".")[0] == message_id
            assert event["smtp-id"] == f"<{message_id}@ismtpd0001p1mdw1.sendgrid.net>"
            assert event["outbound_message_id"] == str(position) and event["tenant_id"] == "7"
            assert event["category"] == "outreach"
            assert isinstance(event["timestamp"], int) and event["sg_event_id"]
    all_ids = [e["sg_event_id"] for evs in events.values() for e in evs]
    assert len(all_ids) == len(set(all_ids))


def test_reserved_event_fields_win_over_custom_args_of_the_same_name(sim: SimulatorHandle, receiver: Receiver):
    body = mail("silent@example.com")
    body["personalizations"][0]["custom_args"] = {"event": "mine", "email": "x", "campaign": "c9"}
    send(sim, body)
    sim.flush()

    delivered = [e for e in receiver.events(sim.public_key_b64) if e["event"] == "delivered"]
    assert delivered and delivered[0]["email"] == "silent@example.com" and delivered[0]["campaign"] == "c9"


def test_random_model_is_reproducible_for_a_seed() -> None:
    def outcomes(seed: int) -> list[list[str]]:
        sim = start_simulator(seed=seed)
        try:
            send(sim, mail([f"person{i}@example.com" for i in range(60)]))
            return [r["planned"] for r in sim.messages()[0]["recipients"]]
        finally:
            sim.stop()

    first = outcomes(1)
    assert first == outcomes(1)
    assert first != outcomes(2)
    assert any("open" in plan for plan in first)


def test_duplicates_and_changed_id_duplicates_arrive_in_later_batches(receiver: Receiver) -> None:
    sim = start_simulator(
        webhook_url=receiver.url + "/events", auto_emit=False, duplicate_rate=1.0, changed_id_duplicate_rate=1.0
    )
    try:
        send(sim, mail("silent@example.com"))
        sim.flush()
        posts = receiver.event_posts()
        batches = [[(e["event"], e["sg_event_id"]) for e in json.loads(p["body"])] for p in posts]
        for post in posts:
            assert_signed(sim.public_key_b64, post)
        logged = [e for e in sim.events() if e["event"]["event"] == "delivered"]
    finally:
        sim.stop()

    # Posters run in parallel, so arrival order may differ; what matters is that copies travel in other POSTs.
    delivered = [(i, ident) for i, batch in enumerate(batches) for kind, ident in batch if kind == "delivered"]
    assert len(delivered) == 3
    assert all(len(batch) == len(set(batch)) for batch in batches), "a duplicate shared a POST with its original"
    [original] = [e for e in logged if e["copy"] == "original"]
    copies = [e for e in logged if e["copy"] != "original"]
    assert sorted(e["copy"] for e in copies) == ["changed_id", "duplicate"]
    assert all(e["delivery_id"] > original["delivery_id"] for e in copies)
    assert {e["event"]["sg_event_id"] == original["event"]["sg_event_id"] for e in copies} == {True, False}
    by_id = [e for p in posts for e in json.loads(p["body"]) if e["event"] == "delivered"]
    assert all({k: v for k, v in e.items() if k != "sg_event_id"} == {
        k: v for k, v in by_id[0].items() if k != "sg_event_id"} for e in by_id)


def test_out_of_order_arrival_posts_open_before_delivered(receiver: Receiver) -> None:
    sim = start_simulator(webhook_url=receiver.url + "/events", auto_emit=False, out_of_order_rate=1.0)
    try:
        send(sim, mail("open@example.com"))
        sim.flush()
        kinds = [e["event"] for e in receiver.events(sim.public_key_b64)]
    finally:
        sim.stop()
    assert kinds.index("open") < kinds.index("delivered")


def test_asynchronous_bounce_lacks_sg_message_id(receiver: Receiver) -> None:
    sim = start_simulator(webhook_url=receiver.url + "/events", auto_emit=False, async_bounce_rate=1.0)
    try:
        send(sim, mail("bounce@example.com"))
        sim.flush()
        events = receiver.events(sim.public_key_b64)
    finally:
        sim.stop()
    assert [e["event"] for e in events] == ["processed", "delivered", "bounce"]
    bounce = events[2]
    assert "sg_message_id" not in bounce and "outbound_message_id" not in bounce
    assert bounce["email"] == "bounce@example.com" and bounce["type"] == "bounce"


def test_failed_webhook_posts_are_retried_with_the_same_body(sim: SimulatorHandle, receiver: Receiver) -> None:
    receiver.statuses = [500, 503]
    send(sim, mail("silent@example.com"))

    sim.flush()
    deadline = time.monotonic() + 5
    while len(receiver.event_posts()) < 3 and time.monotonic() < deadline:
        time.sleep(0.02)

    posts = receiver.event_posts()
    assert len(posts) == 3 and len({p["body"] for p in posts}) == 1
    for post in posts:
        assert_signed(sim.public_key_b64, post)
    time.sleep(0.05)
    events = sim_http(sim, "GET", "/_sim/events")["events"]
    assert {(e["delivery_status"], e["status_code"], e["attempts"]) for e in events} == {("delivered", 200, 3)}


def test_events_flow_on_their_own_without_flush_and_suppress_later_mail(receiver: Receiver) -> None:
    sim = start_simulator(webhook_url=receiver.url + "/events", suppress_after_failure=True)
    try:
        send(sim, mail("bounce@example.com"))
        deadline = time.monotonic() + 5
        while sum(1 for p in receiver.event_posts() for _ in json.loads(p["body"])) < 2:
            assert time.monotonic() < deadline, "events were not posted"
            time.sleep(0.02)
        send(sim, mail("bounce@example.com"))
        sim.flush()
        events = receiver.events(sim.public_key_b64)
    finally:
        sim.stop()
    assert [e["event"] for e in events] == ["processed", "bounce", "dropped"]
    assert events[2]["reason"] == "Bounced Address"


def test_batches_respect_the_configured_size(receiver: Receiver) -> None:
    sim = start_simulator(webhook_url=receiver.url + "/events", auto_emit=False, batch_max_events=3)
    try:
        send(sim, mail([f"silent+{i}@example.com" for i in range(5)]))  # 10 events
        sim.flush()
        sizes = [len(json.loads(p["body"])) for p in receiver.event_posts()]
    finally:
        sim.stop()
    assert sum(sizes) == 10 and max(sizes) == 3


# --- inbound parse --------------------------------------------------------------------------------


def _inbound_posts(receiver: Receiver) -> list[dict[str, Any]]:
    return [p for p in receiver.posts if p["path"] == "/inbound/s3cret"]


def test_reply_is_posted_as_multipart_threaded_to_the_sent_message_id(sim: SimulatorHandle, receiver: Receiver):
    body = mail("reply@example.com", reply_to={"email": "replies+om1@in.seller.example"})
    body["personalizations"][0]["headers"]["References"] = "<om-0@seller.example>"
    send(sim, body)

    sim.flush()

    [post] = _inbound_posts(receiver)
    fields = form_fields(post)
    headers = email.message_from_string(fields["headers"], policy=email.policy.default)
    assert headers["In-Reply-To"] == "<om-1@seller.example>"
    assert headers["References"].split() == ["<om-0@seller.example>", "<om-1@seller.example>"]
    assert headers["Message-ID"] and headers["Message-ID"] != "<om-1@seller.example>"
    assert headers["Auto-Submitted"] is None
    assert fields["from"] == "reply@example.com"
    assert fields["to"] == "Sam Seller <replies+om1@in.seller.example>"
    assert fields["subject"] == "Re: Quick question"
    assert json.loads(fields["envelope"]) == {"to": ["replies+om1@in.seller.example"], "from": "reply@example.com"}
    assert json.loads(fields["charsets"])["text"] == "UTF-8"
    assert fields["SPF"] == "pass" and "dkim" in fields and "spam_score" in fields
    assert fields["text"].startswith(("Hi Sam", "Hello Sam")) and "<div>" in fields["html"]
    assert "> Hello there" in fields["text"]


def test_out_of_office_reply_announces_itself(sim: SimulatorHandle, receiver: Receiver) -> None:
    send(sim, mail("ooo@example.com"))
    sim.flush()

    [post] = _inbound_posts(receiver)
    fields = form_fields(post)
    headers = email.message_from_string(fields["headers"], policy=email.policy.default)
    assert headers["Auto-Submitted"] == "auto-replied"
    assert headers["In-Reply-To"] == "<om-1@seller.example>"
    assert fields["subject"].startswith("Automatic reply")
    assert "out of the office" in fields["text"] or "away" in fields["text"]


def test_stop_reply_asks_to_stop(sim: SimulatorHandle, receiver: Receiver) -> None:
    send(sim, mail("stop@example.com"))
    sim.flush()

    [post] = _inbound_posts(receiver)
    text = form_fields(post)["text"].lower()
    assert "remove me" in text or "unsubscribe" in text


def test_raw_mode_posts_the_whole_mime_message(receiver: Receiver) -> None:
    sim = start_simulator(inbound_url=receiver.url + "/inbound/s3cret", auto_emit=False, inbound_raw=True)
    try:
        send(sim, mail("reply@example.com"))
        sim.flush()
    finally:
        sim.stop()
    [post] = _inbound_posts(receiver)
    fields = form_fields(post)
    mime = email.message_from_string(fields["email"], policy=email.policy.default)
    assert mime["In-Reply-To"] == "<om-1@seller.example>"
    assert mime.get_body(("plain",)).get_content().startswith(("Hi Sam", "Hello Sam"))
    assert set(fields) >= {"email", "to", "from", "subject", "envelope", "charsets", "dkim", "SPF"}


def test_oneclick_recipient_posts_rfc8058_unsubscribe(receiver: Receiver) -> None:
    sim = start_simulator(auto_emit=False)
    try:
        send(sim, mail("oneclick@example.com", headers={
            "List-Unsubscribe": f"<{receiver.url}/u/tok>, <mailto:u@app.example>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        }))
        sim.flush()
    finally:
        sim.stop()
    [post] = [p for p in receiver.posts if p["path"] == "/u/tok"]
    assert post["body"] == b"List-Unsubscribe=One-Click"


# --- control endpoints, signing helpers, command ---------------------------------------------------


def test_control_endpoints_configure_and_reset(sim: SimulatorHandle, receiver: Receiver) -> None:
    assert sim_http(sim, "GET", "/_sim/public_key") == {"public_key": sim.public_key_b64}
    config = sim_http(sim, "POST", "/_sim/config", {"overrides": {"vip@acme.com": "machine"}, "rates": {"click": 0.5}})
    assert config["overrides"] == {"vip@acme.com": "machine"} and config["rates"]["click"] == 0.5
    send(sim, mail("vip@acme.com"))
    sim_http(sim, "POST", "/_sim/flush", {})

    events = sim_http(sim, "GET", "/_sim/events?email=vip@acme.com")["events"]
    assert [e["event"]["event"] for e in events] == ["processed", "delivered", "open"]
    assert events[2]["event"]["sg_machine_open"] is True and events[2]["delivery_status"] == "delivered"

    status = sim_http(sim, "GET", "/_sim/status")
    assert status["messages"] == 1 and status["public_key"] == sim.public_key_b64
    assert sim_http(sim, "GET", "/_sim/inbound")["inbound"] == []
    sim_http(sim, "POST", "/_sim/reset", {})
    assert sim_http(sim, "GET", "/_sim/messages") == {"messages": []}
    assert sim_http(sim, "GET", "/_sim/events")["events"] == []
    with pytest.raises(urllib.error.HTTPError) as caught:
        sim_http(sim, "POST", "/_sim/config", {"nonsense": 1})
    assert caught.value.code == 400


def test_signing_helpers_match_sendgrids_scheme() -> None:
    private_key, public_b64 = generate_key_pair()
    body = b'[{"event":"delivered"}]'
    signature = sign_event_payload(private_key, "1700000000", body)

    assert public_b64.startswith("MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE")
    assert verify_event_payload(public_b64, "1700000000", body, signature)
    assert not verify_event_payload(public_b64, "1700000001", body, signature)
    key = serialization.load_der_public_key(base64.b64decode(public_b64))
    with pytest.raises(InvalidSignature):
        key.verify(base64.b64decode(signature), b"1700000000" + body + b" ", ec.ECDSA(hashes.SHA256()))


def test_command_prints_env_lines_serves_and_stops_on_sigterm(tmp_path: Path) -> None:
    key_file = tmp_path / "sim.pem"
    process = subprocess.Popen(
        [sys.executable, "manage.py", "sendgrid_simulator", "--port", "0", "--no-webhooks", "--any-sender",
         "--private-key-file", str(key_file)],
        cwd=Path(__file__).resolve().parents[2],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "CLOCK_SPEED": "1"},
    )
    # Generous, since a loaded 2-core box can take tens of seconds to start the command. The watchdog kills
    # a silent process, which ends the blocking readline; its stderr is read only once it has exited
    # (reading a live process's stderr would block the test forever).
    watchdog = threading.Timer(60, process.kill)
    watchdog.start()
    try:
        lines: dict[str, str] = {}
        while "SENDGRID_WEBHOOK_PUBLIC_KEY" not in lines:
            line = process.stdout.readline()
            if not line:
                process.kill()
                pytest.fail(f"the simulator exited before printing its env lines: {process.stderr.read()}")
            name, _, value = line.strip().partition("=")
            lines[name] = value
        base = lines["SENDGRID_API_HOST"]
        with urllib.request.urlopen(base + "/_sim/public_key", timeout=5) as response:
            assert json.loads(response.read())["public_key"] == lines["SENDGRID_WEBHOOK_PUBLIC_KEY"]
        api = sendgrid.SendGridAPIClient(lines["SENDGRID_API_KEY"], host=base)
        assert api.client.mail.send.post(request_body=mail("silent@example.com")).status_code == 202
        assert key_file.exists()
    finally:
        watchdog.cancel()
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=10) == 0
