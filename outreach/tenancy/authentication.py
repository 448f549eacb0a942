"""`Authorization: Bearer <key>` authentication for tenant API keys."""
from __future__ import annotations

from dataclasses import dataclass

from rest_framework import authentication, exceptions

from outreach.tenancy.models import ApiKey, Tenant
from outreach.tenancy.selectors import api_key_get_active
from outreach.tenancy.services import api_key_mark_used

# Where outreach.tenancy.api.tenant_context caches a request's tenant and role (the throttles read it there:
# they cannot import the api module, which DRF's views import through the settings).
TENANT_CONTEXT_ATTRIBUTE = "_tenant_context"


@dataclass
class ApiKeyPrincipal:
    """The caller behind an API key: acts for one tenant with one role."""

    api_key: ApiKey

    is_authenticated = True
    is_anonymous = False
    is_staff = False
    pk = None

    @property
    def tenant(self) -> Tenant:
        return self.api_key.tenant

    @property
    def role(self) -> str:
        return self.api_key.role

    def __str__(self) -> str:
        return f"api-key:{self.api_key.prefix}"


class ApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        scheme, _, raw_key = header.partition(" ")
        if scheme != self.keyword:
            return None
        raw_key = raw_key.strip()
        if not raw_key:
            raise exceptions.AuthenticationFailed("Empty API key.")
        api_key = api_key_get_active(raw_key=raw_key)
        if api_key is None:
            raise exceptions.AuthenticationFailed("Invalid or revoked API key.")
        api_key_mark_used(api_key=api_key)
        return ApiKeyPrincipal(api_key=api_key), api_key

    def authenticate_header(self, request) -> str:
        return self.keyword
