"""Settings for the processes `make demo` and the end-to-end test start: the base settings on a fast clock.

Everything the system times (a claim's lease, a webhook signature's age, a hold's recheck) is read from
outreach.clock, so on the demo's fast clock (DEMO_CLOCK_SPEED, demo/scenario.py) a 10-minute lease lasts a
fraction of a real second. The margins
that protect against real-world slowness (a busy worker, a slow HTTP round trip) must keep their real
length, so they are scaled here by the clock speed. Business time (waits, quiet hours, suppression
expiry) is not touched: it is meant to run fast.

Production refuses CLOCK_SPEED != 1 (outreach/settings/production.py), so none of this can leak there.
"""
from __future__ import annotations

import datetime as dt

from outreach.settings.base import *  # noqa: F401,F403
from outreach.settings.base import CAMPAIGN_ACTION_LEASE_SECONDS as _BASE_ACTION_LEASE
from outreach.settings.base import CLOCK_SPEED, env
from outreach.settings.base import SENDING_LEASE as _BASE_SENDING_LEASE

# Margins in real seconds, turned into virtual seconds below: by default the real length production has,
# so a killed worker's work comes back in the demo and the chaos run as soon as it would in production.
_REAL_ACTION_LEASE = env.float("DEMO_ACTION_LEASE_REAL_SECONDS", default=float(_BASE_ACTION_LEASE), minimum=1)
_REAL_SENDING_LEASE = env.float("DEMO_SENDING_LEASE_REAL_SECONDS", default=_BASE_SENDING_LEASE.total_seconds(),
                                minimum=1)
_REAL_SIGNATURE_AGE = env.float("DEMO_SIGNATURE_AGE_REAL_SECONDS", default=60.0, minimum=1)
_SPEED = max(1.0, float(CLOCK_SPEED))

# campaigns.dispatcher: a claimed scheduled action is dispatched again after this (virtual) lease.
CAMPAIGN_ACTION_LEASE_SECONDS = int(max(300, _REAL_ACTION_LEASE * _SPEED))
# messaging.delivery: a message left `sending` this long is re-queued or marked unknown.
SENDING_LEASE = dt.timedelta(seconds=max(600, _REAL_SENDING_LEASE * _SPEED))
# messaging.webhooks.views: the replay window of signed event webhooks (timestamps are virtual).
SENDGRID_WEBHOOK_MAX_AGE_SECONDS = int(max(600, _REAL_SIGNATURE_AGE * _SPEED))
SENDGRID_WEBHOOK_MAX_FUTURE_SECONDS = int(max(300, 5 * _SPEED))

# The demo's admin is served by runserver on 127.0.0.1 over plain http.
DEBUG = env.bool("DEBUG", default=False)

# The admin's CSS and JS come from the apps' static folders through WhiteNoise (base settings), so gunicorn
# alone is the web tier, as in production.
