"""Address normalisation: the one canonical form of an email address, a phone number and a domain.

Opt-outs, suppressions, contact uniqueness and lead matching are all keyed by these forms, so every app
normalises through this module and the same input always yields the same key.
"""
from __future__ import annotations

import re

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from outreach.channels import CHANNEL_EMAIL, CHANNEL_EMAIL_DOMAIN, CHANNEL_SMS, SUPPRESSION_CHANNELS
from outreach.errors import ApplicationError

_DOMAIN_RE = re.compile(r"^(?=.{1,253}$)(?!-)[a-z0-9-]{1,63}(?<!-)(\.(?!-)[a-z0-9-]{1,63}(?<!-))+$")
_URL_SCHEME_RE = re.compile(r"^[a-z][a-z0-9+.-]*://")
_PHONE_SEPARATORS_RE = re.compile(r"[\s().\-/]")


class InvalidAddress(ApplicationError):
    """An address that has no canonical form; a 400 naming `field`."""

    def __init__(self, message: str, *, field: str = "value") -> None:
        super().__init__(message, field=field)


def normalise_email(value: str, *, field: str = "value") -> str:
    email = (value or "").strip().lower()
    try:
        validate_email(email)
    except ValidationError as exc:
        raise InvalidAddress(f"{value!r} is not a valid email address.", field=field) from exc
    return email


def normalise_phone(value: str, *, default_country_code: str | None = None, field: str = "value") -> str:
    """E.164 without a phone library: strips separators, maps 00/011 prefixes, applies the default country.

    Numbers written without a country code get the configured default (PHONE_DEFAULT_COUNTRY_CODE); a
    national trunk 0 is dropped. This does not check number plans: a syntactically valid E.164 string is
    what the opt-out key needs, and the same input always yields the same key.
    """
    raw = _PHONE_SEPARATORS_RE.sub("", (value or "").strip())
    country = default_country_code or settings.PHONE_DEFAULT_COUNTRY_CODE.lstrip("+")
    if raw.startswith("+"):
        digits = raw[1:]
    elif raw.startswith("00"):
        digits = raw[2:]
    elif raw.startswith("011") and country == "1":
        digits = raw[3:]
    elif country == "1" and len(raw) == 11 and raw.startswith("1"):
        digits = raw
    else:
        digits = country + raw.lstrip("0")
    if not digits.isdigit() or digits.startswith("0") or not 8 <= len(digits) <= 15:
        raise InvalidAddress(f"{value!r} is not a valid phone number.", field=field)
    return "+" + digits


def normalise_domain(value: str, *, field: str = "value") -> str:
    """A bare, lower-cased, IDNA-encoded domain from what people type.

    Accepts "acme.com", "@acme.com", "acme.com.", a full address (takes its domain) and a URL
    ("https://www.Acme.com/about" -> "acme.com": scheme, path, port and a leading "www." go).
    """
    domain = _URL_SCHEME_RE.sub("", (value or "").strip().lower())
    domain = domain.split("/", 1)[0].split("?", 1)[0].rsplit("@", 1)[-1].split(":", 1)[0].rstrip(".")
    if domain.startswith("www."):
        domain = domain[4:]
    try:
        domain = domain.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise InvalidAddress(f"{value!r} is not a valid domain.", field=field) from exc
    if not _DOMAIN_RE.match(domain):
        raise InvalidAddress(f"{value!r} is not a valid domain.", field=field)
    return domain


def normalise_optional_domain(value: str, *, field: str = "domain") -> str:
    """`normalise_domain` for a field that may be left blank: blank (or only spaces) stays ""."""
    if not (value or "").strip():
        return ""
    return normalise_domain(value, field=field)


def normalise_address(channel: str, value: str) -> str:
    """The canonical key for an address: lower-cased email, E.164 phone, bare domain for email_domain."""
    if channel == CHANNEL_EMAIL:
        return normalise_email(value)
    if channel == CHANNEL_SMS:
        return normalise_phone(value)
    if channel == CHANNEL_EMAIL_DOMAIN:
        return normalise_domain(value)
    raise ApplicationError(
        f"Unknown channel {channel!r}; choose one of {', '.join(SUPPRESSION_CHANNELS)}.", field="channel"
    )
