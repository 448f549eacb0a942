"""Sender identities: the From addresses a tenant sends from, verified through SendGrid's
Verified Senders API. Unverified or paused identities never send (delivery checks both at
send time); these services keep our copy of the verification status in step.
"""
from __future__ import annotations

import logging
from collections.abc import Iterable

from django.db import transaction
from django.db.models import Q
from django.db.models.functions import Lower

from messaging.inbound.reply_addresses import is_inbound_domain_address, tenant_reply_address
from messaging.models import EmailSenderIdentity
from messaging.sendgrid import client as sg
from messaging.sendgrid.errors import SendGridError, SendGridErrorKind
from outreach import clock
from outreach.errors import ApplicationError
from outreach.tenancy.services import audit_record

logger = logging.getLogger(__name__)


def _status_from_provider(record: dict) -> str:
    return EmailSenderIdentity.Status.VERIFIED if record.get("verified") is True else EmailSenderIdentity.Status.PENDING


def _reply_to_for(*, tenant, from_email: str, requested: str) -> str:
    """The identity's Reply-To: the tenant's system-issued reply address when INBOUND_REPLY_DOMAIN is set
    (a tenant cannot choose another), else the requested address or the from address. Never an address
    of the inbound domain that is not the tenant's own, nor another tenant's reply-to (its replies would
    be filed under this tenant)."""
    requested = (requested or "").strip().lower()
    if is_inbound_domain_address(from_email):
        raise ApplicationError("The from address cannot be at the inbound (reply) domain.", field="from_email")
    issued = tenant_reply_address(tenant_id=tenant.pk)
    if issued:
        if requested and requested != issued:
            raise ApplicationError("Reply addresses are issued by the system: leave reply_to empty.",
                                   field="reply_to")
        return issued
    value = requested or from_email
    taken = EmailSenderIdentity.objects.exclude(tenant_id=tenant.pk).annotate(
        reply_lower=Lower("reply_to"), from_lower=Lower("from_email"))
    if requested and requested != from_email:
        taken = taken.filter(Q(reply_lower=value) | Q(from_lower=value))
    else:
        taken = taken.filter(reply_lower=value)
    if taken.exists():
        raise ApplicationError("This reply address belongs to another tenant.", field="reply_to")
    return value


def sender_identity_create(
    *, tenant, from_email: str, from_name: str, reply_to: str, nickname: str = ""
) -> EmailSenderIdentity:
    """Register the address with SendGrid (which mails a verification link) and keep our row.

    A refusal by SendGrid (400, e.g. a malformed address) is the caller's to fix and raises
    ApplicationError with SendGrid's message. If SendGrid cannot be reached, the row is still
    created as pending without a provider id: ``sender_identity_sync`` registers it later through
    the create call (never by adopting a record with the same address: see ``_match``).
    """
    from_email = from_email.strip().lower()
    reply_to = _reply_to_for(tenant=tenant, from_email=from_email, requested=reply_to)
    nickname = (nickname or from_name or from_email)[:100]
    if EmailSenderIdentity.objects.filter(tenant=tenant, from_email=from_email).exists():
        raise ApplicationError("A sender identity with this address already exists.", field="from_email",
                               status_code=409)
    record: dict = {}
    try:
        record = sg.verified_sender_create(nickname=nickname, from_email=from_email, from_name=from_name,
                                           reply_to=reply_to)
    except SendGridError as exc:
        if exc.kind == SendGridErrorKind.PERMANENT:
            raise ApplicationError(f"SendGrid refused the sender: {exc.message}",
                                   field=exc.field or "from_email") from exc
        logger.warning("verified sender create for %s deferred to sync: %s", from_email, exc)
    identity = EmailSenderIdentity.objects.create(
        tenant=tenant,
        from_email=from_email,
        from_name=from_name,
        reply_to=reply_to,
        nickname=nickname,
        provider_sender_id=str(record.get("id") or ""),
        status=_status_from_provider(record) if record else EmailSenderIdentity.Status.PENDING,
        last_synced_at=clock.now() if record else None,
    )
    return identity


def _apply_provider_state(identity: EmailSenderIdentity, record: dict | None) -> list[str]:
    """Update our row from SendGrid's record (None: SendGrid does not know it). Returns changed fields."""
    changed: list[str] = []
    if record is None:
        if identity.provider_sender_id and identity.status != EmailSenderIdentity.Status.FAILED:
            # Deleted at SendGrid: mail from it would now be refused with 403.
            identity.status = EmailSenderIdentity.Status.FAILED
            changed.append("status")
    else:
        provider_id = str(record.get("id") or "")
        if provider_id and provider_id != identity.provider_sender_id:
            identity.provider_sender_id = provider_id
            changed.append("provider_sender_id")
        status = _status_from_provider(record)
        if status != identity.status:
            identity.status = status
            changed.append("status")
    identity.last_synced_at = clock.now()
    changed.append("last_synced_at")
    return changed


def _match(identity: EmailSenderIdentity, by_id: dict[str, dict]) -> dict | None:
    """SendGrid's record for this identity: by the provider id we stored, and only by that.

    All tenants share one SendGrid account, so the Verified Senders listing holds every tenant's
    senders. Matching by address would let an identity adopt another tenant's (verified) record for
    the same address and send as it without anyone at that address ever clicking a link for it.
    """
    if identity.provider_sender_id:
        return by_id.get(identity.provider_sender_id)
    return None


def _already_registered(exc: SendGridError) -> bool:
    return exc.kind == SendGridErrorKind.PERMANENT and "already exist" in (exc.message or "").lower()


def sender_identities_sync(*, identities: Iterable[EmailSenderIdentity] | None = None) -> int:
    """Refresh many identities from one Verified Senders listing. Returns how many changed status.

    Identities never registered (SendGrid was unreachable at creation) are registered now, with the
    create call, which gives them their own record and verification mail. If SendGrid refuses that
    because the address is already registered in the account (another tenant's record, or an orphan
    of our own ambiguous first attempt: we cannot tell which), the identity is marked ``failed`` and
    never takes that record over; an operator removes the orphan at SendGrid (the next sync then
    registers it) or settles the conflict.
    """
    rows = list(identities) if identities is not None else list(EmailSenderIdentity.objects.all())
    if not rows:
        return 0
    records = sg.verified_senders_list()
    by_id = {str(r.get("id")): r for r in records if r.get("id") is not None}
    status_changes = 0
    for identity in rows:
        before = identity.status
        record = _match(identity, by_id)
        if record is None and not identity.provider_sender_id:
            try:
                record = sg.verified_sender_create(
                    nickname=identity.nickname or identity.from_email, from_email=identity.from_email,
                    from_name=identity.from_name, reply_to=identity.reply_to or identity.from_email,
                )
            except SendGridError as exc:
                if _already_registered(exc):
                    logger.warning("verified sender %s (identity %s, tenant %s) is already registered at "
                                   "SendGrid under a record that is not ours to adopt: marked failed (%s)",
                                   identity.from_email, identity.pk, identity.tenant_id, exc.message)
                else:
                    logger.warning("verified sender create for %s failed: %s", identity.from_email, exc)
                if exc.kind == SendGridErrorKind.PERMANENT:
                    identity.status = EmailSenderIdentity.Status.FAILED
                    identity.last_synced_at = clock.now()
                    identity.save(update_fields=["status", "last_synced_at"])
                    status_changes += before != identity.status
                continue
        changed = _apply_provider_state(identity, record)
        identity.save(update_fields=changed)
        status_changes += before != identity.status
    return status_changes


def sender_identity_sync(*, identity: EmailSenderIdentity) -> EmailSenderIdentity:
    sender_identities_sync(identities=[identity])
    return identity


def sender_identity_set_paused(*, identity: EmailSenderIdentity, paused: bool, actor=None,
                               reason: str = "") -> EmailSenderIdentity:
    """Pause or resume sending from an identity, with an audit entry. Held messages are re-armed by
    their own timers (delivery re-checks at send time), so resuming needs no sweep here."""
    with transaction.atomic():
        locked = EmailSenderIdentity.objects.select_for_update().select_related("tenant").get(pk=identity.pk)
        if locked.is_paused != paused:
            locked.is_paused = paused
            locked.save(update_fields=["is_paused"])
            audit_record(tenant=locked.tenant, actor=actor, action="sender.pause" if paused else "sender.resume",
                         target=locked, detail={"reason": reason})
    identity.is_paused = paused
    return identity


def sender_identity_resend_verification(*, identity: EmailSenderIdentity) -> None:
    if not identity.provider_sender_id:
        raise ApplicationError("This sender is not registered with SendGrid yet.", field="provider_sender_id")
    try:
        sg.verified_sender_resend(sender_id=identity.provider_sender_id)
    except SendGridError as exc:
        raise ApplicationError(f"SendGrid refused: {exc.message}") from exc
