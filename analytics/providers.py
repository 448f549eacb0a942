"""How analytics plugs into the lower apps: the listeners and extension points they declare."""
from __future__ import annotations

import messaging.interface
from analytics import listeners


def connect() -> None:
    # Counted inside the transaction that stores the event or reply (analytics/listeners.py).
    messaging.interface.events_stored.connect(listeners.events_stored)
    messaging.interface.reply_stored.connect(listeners.reply_stored)
