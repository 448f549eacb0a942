"""The demo's scenario, without Django: its data's names, its clock speed, and the real-to-virtual clock mapping.

Importable before django.setup() (demo/run_demo.py reads it to parse its arguments); demo/seeding.py
creates these rows through the apps' services once Django is set up.
"""
from __future__ import annotations

import csv
import datetime as dt
import io
import time
from dataclasses import dataclass, field
from pathlib import Path

# The demo's clock speed: virtual seconds per real second (three virtual hours a second, a day in 8 s).
# The one place this default is stated: run_demo's --speed, DemoConfig and the docs read it from here.
DEMO_CLOCK_SPEED = 10_800.0

BASE_DIR = Path(__file__).resolve().parent.parent
CONTACTS_CSV = BASE_DIR / "demo" / "contacts.csv"

# The scripted recipients a short run (the end-to-end test, each chaos scenario) takes one of each.
SCRIPTED = ("reply", "stop", "unsub", "bounce", "spam", "ooo", "machine")
# ooo@ answers every mail with an out-of-office whose return date (2-14 days on) delays the next follow-up;
# with this seed the simulator draws 4, 2 and 3 days, so that contact does not stretch a short run to 5 weeks.
SHORT_RUN_SIMULATOR_SEED = 38
# A short run's clock: one virtual day in ~1.7 real seconds, so a plan's 4 + 5 + 5 days of waits and two
# weekends take ~35 s when nothing breaks.
SHORT_RUN_CLOCK_SPEED = 50_000.0

DEMO_TENANT_NAME = "Demo Sales Team"
DEMO_ADMIN_USERNAME = "admin"
DEMO_ADMIN_EMAIL = "admin@demo-outreach.example"
DEMO_SENDER_EMAIL = "alex@demo-outreach.example"
DEMO_SENDER_NAME = "Alex from Northwind"
DEMO_CAMPAIGN = {
    "name": "Q3 ops automation outreach",
    "goal": "book a 20-minute demo call",
    "offer": "Northwind automates the repetitive operations work your team does by hand, live in two weeks",
    "ai_instructions": "Friendly and brief, no hype, at most 120 words per email, one clear question.",
    "allowed_link_domains": ["northwind.example"],
}


# The virtual clock starts at least this far ahead of the wall clock. Then the two never overlap during a run,
# so any stored timestamp says by itself which clock wrote it: Django's auto_now_add columns hold wall-clock
# time, the business columns virtual time (see ClockAnchor.as_virtual).
MIN_VIRTUAL_LEAD_SECONDS = 86400.0


@dataclass
class ClockAnchor:
    """The mapping between real and virtual time that every demo process shares."""

    real_start: float
    virtual_start: float
    speed: float

    def to_virtual(self, real: dt.datetime) -> dt.datetime:
        seconds = self.virtual_start + (real.timestamp() - self.real_start) * self.speed
        return dt.datetime.fromtimestamp(seconds, dt.UTC)

    def as_virtual(self, stamp: dt.datetime) -> dt.datetime:
        """A stored timestamp on the virtual clock, whichever clock wrote it: anything before the virtual
        start was written by the wall clock (an auto_now_add column) and is converted."""
        if stamp.timestamp() >= self.virtual_start or self.speed == 1.0:
            return stamp
        return self.to_virtual(stamp)

    def virtual_now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.virtual_start + (time.time() - self.real_start) * self.speed, dt.UTC)


@dataclass
class SeedResult:
    tenant_id: int
    tenant_slug: str
    campaign_id: int
    sender_identity_id: int
    sender_status: str
    admin_username: str
    admin_password: str
    api_key: str
    import_job_id: int
    imported_rows: int
    error_rows: int
    leads: int
    contact_ids: list[int] = field(default_factory=list)
    contact_campaign_ids: list[int] = field(default_factory=list)
    emails: dict[str, int] = field(default_factory=dict)  # email -> contact id


def next_monday_morning(now: float | None = None, *, hour: int = 6) -> float:
    """Epoch seconds of the coming Monday at `hour`:00 UTC: a predictable start inside the send window."""
    moment = dt.datetime.fromtimestamp(now if now is not None else time.time(), dt.UTC)
    days = (7 - moment.weekday()) % 7 or 7
    start = (moment + dt.timedelta(days=days)).replace(hour=hour, minute=0, second=0, microsecond=0)
    return start.timestamp()


def virtual_start_before_monday(*, speed: float, setup_real_seconds: float, hour: int = 6) -> float:
    """A virtual start such that the campaign, once the processes are up and the contacts seeded (about
    `setup_real_seconds` of real time, which the fast clock turns into hours or days), starts near a Monday
    `hour`:00 UTC: the first mails go out on a Monday instead of waiting out a weekend.

    Always more than a day ahead of the wall clock (see ClockAnchor.as_virtual), so a week later if needed.
    """
    start = next_monday_morning(hour=hour) - setup_real_seconds * speed
    while start < time.time() + MIN_VIRTUAL_LEAD_SECONDS:
        start += 7 * 86400
    return start


def write_sample_contacts(path: Path, *, count: int = 20) -> dict[str, str]:
    """`count` rows of demo/contacts.csv written to `path`: one of each scripted address, then random
    recipients. Returns {scripted behaviour: email}."""
    with CONTACTS_CSV.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    chosen: list[dict[str, str]] = []
    scripted: dict[str, str] = {}
    for behaviour in SCRIPTED:
        row = next(r for r in rows if r["email"].split("@")[0] == behaviour)
        chosen.append(row)
        scripted[behaviour] = row["email"].lower()
    plain = [r for r in rows if "." in r["email"].split("@")[0]]
    chosen += plain[: count - len(chosen)]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(chosen)
    path.write_text(out.getvalue(), encoding="utf-8")
    return scripted
