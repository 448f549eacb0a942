"""SendGrid's Verified Senders API (create, list, resend, delete) and the Email Address Validation API."""
from __future__ import annotations

import json
from typing import Any

from simulators.sendgrid import validation
from simulators.sendgrid.responses import Response, error_response, json_response
from simulators.sendgrid.state import SimState

_INVALID = object()  # the body was not JSON


def _parse_json(body: bytes) -> Any:
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return _INVALID


class SenderApi:
    def __init__(self, state: SimState) -> None:
        self.state = state

    def verified(self, sender: dict[str, Any]) -> bool:
        if "unverified" in sender["from_email"].lower():
            return False
        delay = self.state.config.sender_verify_delay_seconds
        return sender["_forced"] or delay <= 0 or self.state.clock.now() >= sender["_created_at"] + delay

    def allowed(self, from_email: str) -> bool:
        """May mail go out from this address (lock held)? Any sender, a verified domain or a verified sender."""
        config = self.state.config
        if config.any_sender:
            return True
        address = from_email.lower()
        if address.rsplit("@", 1)[-1] in {d.lower() for d in config.verified_domains}:
            return True
        return any(s["from_email"].lower() == address and self.verified(s) for s in self.state.senders.values())

    def _view(self, sender: dict[str, Any]) -> dict[str, Any]:
        view = {k: v for k, v in sender.items() if not k.startswith("_")}
        view["verified"] = self.verified(sender)
        return view

    def create(self, body: bytes, rate: dict[str, str]) -> Response:
        data = _parse_json(body)
        if data is _INVALID or not isinstance(data, dict):
            return error_response(400, "invalid JSON", None, rate)
        for field in ("nickname", "from_email", "reply_to"):
            if not isinstance(data.get(field), str) or not data[field].strip():
                return error_response(400, f"{field} is required", field, rate)
        for field in ("from_email", "reply_to"):
            if not validation.is_valid_email(data[field]):
                return error_response(400, "Invalid email address", field, rate)
        with self.state.lock:
            sender = {
                "id": next(self.state.sender_ids),
                "nickname": data["nickname"],
                "from_email": data["from_email"],
                "from_name": data.get("from_name", ""),
                "reply_to": data["reply_to"],
                "reply_to_name": data.get("reply_to_name", ""),
                "address": data.get("address", ""),
                "address2": data.get("address2", ""),
                "state": data.get("state", ""),
                "city": data.get("city", ""),
                "zip": data.get("zip", ""),
                "country": data.get("country", ""),
                "verified": False,
                "locked": False,
                "_created_at": self.state.clock.now(),
                "_forced": False,
                "_resends": 0,
            }
            self.state.senders[sender["id"]] = sender
            return json_response(201, self._view(sender), rate)

    def list(self, rate: dict[str, str]) -> Response:
        with self.state.lock:
            return json_response(200, {"results": [self._view(s) for s in self.state.senders.values()]}, rate)

    def resend(self, raw_id: str, rate: dict[str, str]) -> Response:
        with self.state.lock:
            sender = self.state.senders.get(int(raw_id)) if raw_id.isdigit() else None
            if sender is None:
                return error_response(404, "resource not found", "id", rate)
            sender["_resends"] += 1
            return Response(204, b"", rate)

    def delete(self, raw_id: str, rate: dict[str, str]) -> Response:
        with self.state.lock:
            if not raw_id.isdigit() or self.state.senders.pop(int(raw_id), None) is None:
                return error_response(404, "resource not found", "id", rate)
            return Response(204, b"", rate)

    def force_verify(self, sender_id: int) -> dict[str, Any] | None:
        with self.state.lock:
            sender = self.state.senders.get(sender_id)
            if sender is None:
                return None
            sender["_forced"] = True
            return self._view(sender)

    def validate_email(self, body: bytes, rate: dict[str, str]) -> Response:
        data = _parse_json(body)
        if data is _INVALID:
            return error_response(400, "invalid JSON", None, rate)
        if not isinstance(data, dict) or not isinstance(data.get("email"), str) or not data["email"].strip():
            return error_response(400, "email is required", "email", rate)
        source = data.get("source") if isinstance(data.get("source"), str) else None
        return json_response(200, {"result": validation.validate_address(data["email"], source)}, rate)
