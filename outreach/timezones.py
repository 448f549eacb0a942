"""Which time-zone names the system accepts: one rule for contacts, plans and tenants.

A contact's zone decides when its plan sends; the plan language refuses the same names, so a contact
can never carry a zone its plan would silently replace with UTC.
"""
from __future__ import annotations

import zoneinfo
from functools import lru_cache

# On the system tz path, but not zones a person could mean: the host's own setting, a tzcode helper file,
# and the "-00" placeholder zone.
NOT_PLACE_ZONES = frozenset({"localtime", "posixrules", "Factory"})


@lru_cache(maxsize=1)
def iana_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones()) - NOT_PLACE_ZONES


def is_iana_timezone(name: str) -> bool:
    """True for a key of the IANA database (`Europe/Berlin`, `UTC`); false for paths, 'localtime', offsets."""
    return name in iana_zones()


def timezone_problem(name: str) -> str | None:
    """None for an accepted zone name, else the message that says why and what to write instead."""
    if is_iana_timezone(name):
        return None
    return f"{name!r} is not an IANA time zone name such as 'Europe/Berlin' or 'America/New_York'"
