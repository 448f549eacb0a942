"""The provider registry: one transport per channel."""
from __future__ import annotations

import pytest

from messaging.delivery import Transport, transport_for, transport_register
from messaging.delivery.transports import _TRANSPORTS, EmailTransport


def test_email_goes_through_the_sendgrid_transport():
    assert isinstance(transport_for("email"), EmailTransport)


def test_a_channel_without_a_transport_cannot_send():
    with pytest.raises(KeyError, match="no transport registered for channel 'pigeon'"):
        transport_for("pigeon")


def test_a_registered_transport_serves_its_channel(monkeypatch):
    monkeypatch.setattr("messaging.delivery.transports._TRANSPORTS", dict(_TRANSPORTS))

    class Pigeon(Transport):
        channel = "pigeon"

    pigeon = transport_register(Pigeon())
    assert transport_for("pigeon") is pigeon
    assert isinstance(transport_for("email"), EmailTransport)
