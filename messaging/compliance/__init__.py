"""Opt-outs and suppressions: who we must never contact, and the checks every send path makes.

Two tables hold the policy (see docs/compliance.md and docs/internal-interfaces/messaging-compliance.md):

- `contact_unsubscribes`: a person said stop (opt_outs);
- `communication_suppressions`: the system or an operator decided not to contact an address or a whole
  domain (suppressions).

Modules, one idea each: `opt_outs`, `suppressions`, `send_checks` (send_block_reasons), `links` (unsubscribe
tokens, URL, List-Unsubscribe mailto and headers), `do_not_contact` (the CSV import and export), `selectors`
(reads), `audit` (audited deletes), `validation`. Address normalisation and the channel names are the base
layer's (outreach.addresses, outreach.channels): import them from there.

Every public function is keyword-only and tenant-scoped. `tenant` arguments accept a Tenant or its id so
that callers holding only ids (webhook processing) need no extra query.
"""
from __future__ import annotations

from messaging.compliance.do_not_contact import (
    EXPORT_HEADER,
    MAX_IMPORT_BYTES,
    ImportReport,
    ImportRowError,
    do_not_contact_export_rows,
    suppressions_import_csv,
)
from messaging.compliance.links import (
    UNSUBSCRIBE_TOKEN_SALT,
    UnsubscribeTarget,
    list_unsubscribe_headers,
    unsubscribe_mailto,
    unsubscribe_mailto_local_part,
    unsubscribe_mailto_tenant_id,
    unsubscribe_target_from_mail,
    unsubscribe_token,
    unsubscribe_token_read,
    unsubscribe_url,
)
from messaging.compliance.opt_outs import unsubscribe_record, unsubscribe_remove
from messaging.compliance.send_checks import (
    BLOCK_INVALID_ADDRESS,
    BLOCK_UNSUBSCRIBED,
    send_block_reason,
    send_block_reasons,
)
from messaging.compliance.suppressions import (
    PERMANENT_REASONS,
    UPSERT_BATCH_SIZE,
    domain_suppression_add,
    suppression_add,
    suppression_remove,
)

__all__ = [
    "BLOCK_INVALID_ADDRESS",
    "BLOCK_UNSUBSCRIBED",
    "EXPORT_HEADER",
    "MAX_IMPORT_BYTES",
    "PERMANENT_REASONS",
    "UNSUBSCRIBE_TOKEN_SALT",
    "UPSERT_BATCH_SIZE",
    "ImportReport",
    "ImportRowError",
    "UnsubscribeTarget",
    "do_not_contact_export_rows",
    "domain_suppression_add",
    "list_unsubscribe_headers",
    "send_block_reason",
    "send_block_reasons",
    "suppression_add",
    "suppression_remove",
    "suppressions_import_csv",
    "unsubscribe_mailto",
    "unsubscribe_mailto_local_part",
    "unsubscribe_mailto_tenant_id",
    "unsubscribe_record",
    "unsubscribe_remove",
    "unsubscribe_target_from_mail",
    "unsubscribe_token",
    "unsubscribe_token_read",
    "unsubscribe_url",
]
