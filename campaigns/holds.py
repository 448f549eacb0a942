"""The held-send rule, stated once: is this send held right now?

A send is held (kept, not dropped: it goes out once the hold lifts) while any of these is true
(architecture rule 5, "policy beats plans"):

- the global stop is on (the operator's switch in `global_sending_switch`, or settings.OUTREACH_SENDING_STOPPED);
- its tenant is paused (`tenants.sending_paused`);
- its campaign is not `active`;
- its campaign's sender identity is missing, paused, or not `verified`.

- its contact campaign is not `active` (paused by an operator, or done with the plan): the engine's own
  state, so the forms over scheduled actions leave it to the engine's node/visit check, while the forms for
  one message (`send_hold_reason`, `contact_campaign_send_allowed_sql`) include it.

Opt-outs and suppressions are not holds: they cancel or suppress a message (messaging decides).

Four forms of the one rule, for the places that ask:

- `send_holds()` -> `SendHolds`: a snapshot of every hold (the sets are tiny next to the due actions they
  filter), with `.holds(tenant_id=, campaign_id=)` in Python and `HELD_SEND_SQL` + `.sql_params` in SQL for
  `scheduled_actions` rows (the dispatcher's claim, release and lease sweep, the timers' re-hand-off);
- `CONTACT_CAMPAIGN_HELD_SQL`: the same rule as a column expression over a contact campaign's tenant `t`,
  campaign `c` and sender `s` (the engine's send hand-off);
- `send_hold_reason(...)`: the rule for one message in Python, with the reason string delivery records;
- `send_allowed_sql(...)` and `contact_campaign_send_allowed_sql(...)`: the rule as WHERE fragments keyed by
  literal ids, for the statement that marks a send's request start (delivery's last re-check, no gap
  between check and mark); the second also requires the contact campaign to still be at the send's node
  visit.

`settings.OUTREACH_SENDING_STOPPED` is not in the database: the SQL forms leave the setting to the caller
(`global_sending_stopped()` reads both).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from django.db import connection

from outreach.tenancy.selectors import global_sending_stopped

ACTIVE_CAMPAIGN = "active"
VERIFIED_SENDER = "verified"

# A campaign (aliased `c`, LEFT JOIN email_sender_identities `s` on c.sender_identity_id) that holds its sends.
CAMPAIGN_HELD_SQL = (
    f"(c.status <> '{ACTIVE_CAMPAIGN}' OR s.id IS NULL OR s.is_paused OR s.status <> '{VERIFIED_SENDER}')"
)

# A contact campaign's send is held by its tenant (aliased `t`) or its campaign (`c`, `s` as above).
CONTACT_CAMPAIGN_HELD_SQL = f"(t.sending_paused OR {CAMPAIGN_HELD_SQL})"

# SQL predicate (for scheduled_actions aliased `sa`) that is true for a send held by `SendHolds.sql_params`.
HELD_SEND_SQL = (
    "(sa.kind = 'send' AND (%(global_stop)s OR sa.tenant_id = ANY(%(held_tenants)s::bigint[]) "
    "OR sa.campaign_id = ANY(%(held_campaigns)s::bigint[])))"
)


@dataclass(frozen=True)
class SendHolds:
    """What holds due sends right now: the global stop, paused tenants, held campaigns."""

    global_stop: bool
    tenant_ids: frozenset[int]
    campaign_ids: frozenset[int]  # campaign not active, or its sender identity missing, paused or unverified

    def holds(self, *, tenant_id: int, campaign_id: int | None) -> bool:
        return self.global_stop or tenant_id in self.tenant_ids or campaign_id in self.campaign_ids

    @property
    def sql_params(self) -> dict[str, Any]:
        return {"global_stop": self.global_stop, "held_tenants": sorted(self.tenant_ids),
                "held_campaigns": sorted(self.campaign_ids)}


def send_holds() -> SendHolds:
    """Two small queries (plus the global switch): the sets are tiny next to the due actions they filter."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT id FROM tenants WHERE sending_paused")
        tenant_ids = frozenset(row[0] for row in cursor.fetchall())
        cursor.execute(
            "SELECT c.id FROM campaigns c LEFT JOIN email_sender_identities s ON s.id = c.sender_identity_id "
            f"WHERE {CAMPAIGN_HELD_SQL}"
        )
        campaign_ids = frozenset(row[0] for row in cursor.fetchall())
    return SendHolds(global_stop=global_sending_stopped(), tenant_ids=tenant_ids, campaign_ids=campaign_ids)


class Sender(Protocol):
    """What the rule reads of a sender identity (messaging's EmailSenderIdentity has both)."""

    is_paused: bool
    status: str


def send_hold_reason(*, global_stop: bool, tenant_sending_paused: bool, campaign_status: str | None,
                     contact_campaign_status: str | None, sender: Sender | None) -> str | None:
    """Why one message's send is held now, or None when nothing holds it.

    `campaign_status` / `contact_campaign_status` are None for a message outside any campaign (then they
    hold nothing); `sender` is None when the message has no sender identity. The reasons, in the order
    checked: global_stop, tenant_paused, campaign_<status>, contact_campaign_<status>, no_sender_identity,
    sender_paused, sender_<status>.
    """
    if global_stop:
        return "global_stop"
    if tenant_sending_paused:
        return "tenant_paused"
    if campaign_status is not None and campaign_status != ACTIVE_CAMPAIGN:
        return f"campaign_{campaign_status}"
    if contact_campaign_status is not None and contact_campaign_status != ACTIVE_CAMPAIGN:
        return f"contact_campaign_{contact_campaign_status}"
    if sender is None:
        return "no_sender_identity"
    if sender.is_paused:
        return "sender_paused"
    if sender.status != VERIFIED_SENDER:
        return f"sender_{sender.status}"
    return None


def send_allowed_sql(*, tenant_param: str = "tenant_id", sender_param: str = "sender_id") -> str:
    """WHERE fragment, true when neither the global switch, the tenant nor the sender holds the send.

    Keyed by literal ids (`%(tenant_id)s`, `%(sender_id)s` by default), so each sub-select is a stand-alone
    key probe PostgreSQL runs once. The campaign's status is the caller's to check (it is read with the row).
    """
    return (
        "NOT EXISTS (SELECT 1 FROM global_sending_switch WHERE id = 1 AND sending_stopped) "
        f"AND NOT EXISTS (SELECT 1 FROM tenants WHERE id = %({tenant_param})s AND sending_paused) "
        f"AND EXISTS (SELECT 1 FROM email_sender_identities WHERE id = %({sender_param})s "
        f"AND NOT is_paused AND status = '{VERIFIED_SENDER}')"
    )


def contact_campaign_send_allowed_sql(*, contact_campaign_param: str = "contact_campaign_id",
                                      campaign_param: str = "campaign_id", node_param: str = "node_id",
                                      visit_param: str = "node_visit") -> str:
    """WHERE fragment for a message of a contact campaign: the contact campaign is active and still at the
    message's node visit, and its campaign is active. Keyed by literal ids, like `send_allowed_sql`."""
    return (
        f"EXISTS (SELECT 1 FROM contact_campaigns WHERE id = %({contact_campaign_param})s "
        f"AND status = '{ACTIVE_CAMPAIGN}' AND current_node_id = %({node_param})s "
        f"AND node_visit = %({visit_param})s) "
        f"AND EXISTS (SELECT 1 FROM campaigns WHERE id = %({campaign_param})s AND status = '{ACTIVE_CAMPAIGN}')"
    )
