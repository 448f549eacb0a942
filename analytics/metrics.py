"""The metrics a response shows: counts by name, and the rates computed from them.

Rates follow what sales tools show: opens and clicks are human and unique (per message), over delivered;
replies over delivered, and positive replies as a share of replies; bounces over sent; spam complaints
and unsubscribes over delivered (mailbox providers' spam rate is per delivered message). A rate whose
denominator is zero is null, never 0.
"""
from __future__ import annotations

# Counted by the rollups (analytics.facts). meetings_booked and enrolments have no event source in the
# rollups yet: meetings are reported only as engine events, enrolments live in contact_campaigns.
COUNTS = ("sent", "delivered", "deferred", "bounced_hard", "bounced_soft", "dropped", "opens_human",
          "opens_machine", "unique_human_opens", "clicks_human", "clicks_scanner", "unique_clickers",
          "replies_positive", "replies_neutral", "replies_negative", "replies_ooo", "replies_unclassified",
          "unsubscribes", "spam_reports")
REPLY_CLASSES = ("replies_positive", "replies_neutral", "replies_negative", "replies_unclassified")
DERIVED = ("bounced", "replies")
RATES = ("human_open_rate", "click_rate", "reply_rate", "positive_reply_rate", "bounce_rate",
         "spam_complaint_rate", "unsubscribe_rate")


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 6) if whole else None


def metrics_block(counts: dict[str, int]) -> dict[str, int | float | None]:
    """Every count (0 when absent), the totals derived from them, and the rates."""
    block: dict[str, int | float | None] = {name: int(counts.get(name, 0)) for name in COUNTS}
    bounced = block["bounced_hard"] + block["bounced_soft"]
    replies = sum(block[name] for name in REPLY_CLASSES)  # out-of-office answers are not replies
    delivered = block["delivered"]
    block.update(bounced=bounced, replies=replies)
    block.update(
        human_open_rate=_rate(block["unique_human_opens"], delivered),
        click_rate=_rate(block["unique_clickers"], delivered),
        reply_rate=_rate(replies, delivered),
        positive_reply_rate=_rate(block["replies_positive"], replies),
        bounce_rate=_rate(bounced, block["sent"]),
        spam_complaint_rate=_rate(block["spam_reports"], delivered),
        unsubscribe_rate=_rate(block["unsubscribes"], delivered),
    )
    return block


COLUMNS = (*COUNTS, *DERIVED, *RATES)
