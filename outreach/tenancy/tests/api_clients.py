"""Test helpers for the REST API: clients that authenticate with a real API key of a given role."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from rest_framework.test import APIClient

from outreach.tenancy.models import Role, Tenant
from outreach.tenancy.services import api_key_create, api_key_mark_used

ROLES_LOW_TO_HIGH = [Role.VIEWER, Role.MEMBER, Role.ADMIN, Role.OWNER]


def role_below(role: str) -> str | None:
    index = ROLES_LOW_TO_HIGH.index(Role(role))
    return ROLES_LOW_TO_HIGH[index - 1] if index else None


def api_client(*, tenant: Tenant, role: str = Role.OWNER) -> APIClient:
    """A client that sends `Authorization: Bearer <key>` for a fresh key of `tenant` with `role`."""
    issued = api_key_create(tenant=tenant, role=role, name=f"test {role}")
    # A key in use, as an integration's is: its last-use stamp is fresh, so the first request does not write
    # it (api_key_mark_used writes at most once a minute) and pinned query counts measure a request's steady
    # cost. The stamp's own write is pinned in test_api_keys.py.
    api_key_mark_used(api_key=issued.api_key)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {issued.raw_key}")
    client.api_key = issued.api_key  # type: ignore[attr-defined]
    return client


@dataclass(frozen=True)
class Endpoint:
    """One operation for the access matrix: who may call it, and what a valid call sends."""

    method: str
    path: str  # may hold {id}
    min_role: str
    body: dict[str, Any] | Callable[[], dict[str, Any]] | None = None  # a callable builds a fresh one
    ok: tuple[int, ...] = (200,)
    detail: bool = True  # names one object, so another tenant must get a 404
    format: str = "json"

    def __str__(self) -> str:
        return f"{self.method} {self.path}"

    def url(self, **ids: Any) -> str:
        return "/api/v1/" + self.path.format(**ids)

    def call(self, client: APIClient, **ids: Any):
        send = getattr(client, self.method.lower())
        if self.method not in ("POST", "PUT", "PATCH"):
            return send(self.url(**ids))
        body = self.body() if callable(self.body) else (self.body or {})
        return send(self.url(**ids), body, format=self.format)


def access_matrix_tests(endpoints: list[Endpoint]) -> tuple[Callable[..., None], ...]:
    """The four access tests every endpoint gets: the least role allowed, the role below it (403),
    another tenant's owner key (404 on objects), and no key (401).

    A test module binds them to test_ names: `(test_a, test_b, test_c, test_d) = access_matrix_tests(ENDPOINTS)`.
    Each needs the module's `ids` fixture, which creates the objects the paths name.
    """
    lower = [e for e in endpoints if role_below(e.min_role)]
    detail = [e for e in endpoints if e.detail]

    @pytest.mark.django_db
    @pytest.mark.parametrize("endpoint", endpoints, ids=str)
    def test_the_least_role_allowed_succeeds(endpoint, tenant, ids):
        response = endpoint.call(api_client(tenant=tenant, role=endpoint.min_role), **ids)
        assert response.status_code in endpoint.ok, response.content

    @pytest.mark.django_db
    @pytest.mark.parametrize("endpoint", lower, ids=str)
    def test_a_lower_role_is_refused_with_403(endpoint, tenant, ids):
        response = endpoint.call(api_client(tenant=tenant, role=role_below(endpoint.min_role)), **ids)
        assert response.status_code == 403, response.content

    @pytest.mark.django_db
    @pytest.mark.parametrize("endpoint", detail, ids=str)
    def test_another_tenants_owner_key_gets_404(endpoint, other_tenant, ids):
        response = endpoint.call(api_client(tenant=other_tenant, role=Role.OWNER), **ids)
        assert response.status_code == 404, response.content

    @pytest.mark.django_db
    @pytest.mark.parametrize("endpoint", endpoints, ids=str)
    def test_no_key_gets_401(endpoint, ids):
        response = endpoint.call(APIClient(), **ids)
        assert response.status_code == 401
        assert response["WWW-Authenticate"] == "Bearer"

    return (test_the_least_role_allowed_succeeds, test_a_lower_role_is_refused_with_403,
            test_another_tenants_owner_key_gets_404, test_no_key_gets_401)


def error_fields(response) -> set[str]:
    """The field paths an error response names (one error shape, outreach.errors), with their prefixes:
    an error at "detail.return_date" names "detail" too."""
    body = response.json()
    assert set(body) >= {"type", "code", "message", "errors"}, body
    names: set[str] = set()
    for error in body["errors"]:
        parts = (error["field"] or "").split(".")
        names.update(".".join(parts[:i]) for i in range(1, len(parts) + 1) if parts[0])
    return names
