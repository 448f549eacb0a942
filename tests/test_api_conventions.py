"""The API's conventions, across every app: one error shape, unknown inputs refused, JSON 404/405s,
and `Idempotency-Key` on POSTs (a retry never does the work twice)."""
from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.db import connection

from contacts.interface import Lead
from outreach import clock
from outreach.tenancy import idempotency
from outreach.tenancy.models import IdempotencyRecord, Role
from outreach.tenancy.tasks import prune_idempotency_records
from outreach.tenancy.tests.api_clients import api_client, error_fields

SHAPE = {"type", "code", "message", "errors"}


@pytest.fixture
def client(tenant):
    return api_client(tenant=tenant, role=Role.OWNER)


# --- one error shape ---------------------------------------------------------------------------------

@pytest.mark.django_db
@pytest.mark.parametrize("method, path, body, status", [
    ("post", "/api/v1/leads", {"name": ""}, 400),                    # a field error
    ("get", "/api/v1/leads/999999", None, 404),                      # DRF's 404
    ("delete", "/api/v1/campaigns/1", None, 405),                    # method not allowed
    ("get", "/api/v1/leads/", None, 404),                            # a trailing slash
    ("get", "/api/v1/no-such-thing", None, 404),                     # no route at all
    ("post", "/api/v1/campaigns/999999/enrol", {"contact_ids": [1]}, 404),
])
def test_every_error_has_the_one_json_shape(client, method, path, body, status):
    response = getattr(client, method)(path, body, format="json") if body else getattr(client, method)(path)
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    assert set(response.json()) >= SHAPE
    assert response.json()["type"] in ("validation_error", "client_error")


@pytest.mark.django_db
def test_a_trailing_slash_says_where_the_endpoint_is(client):
    body = client.get("/api/v1/leads/").json()
    assert body["code"] == "not_found" and "use /api/v1/leads" in body["message"]


def test_a_missing_key_is_a_401_in_the_shape(db):
    from rest_framework.test import APIClient

    response = APIClient().get("/api/v1/leads")
    assert response.status_code == 401 and response.json()["code"] == "not_authenticated"


@pytest.mark.django_db
def test_field_errors_carry_the_field_path_and_a_code(client):
    response = client.post("/api/v1/campaigns/1/enrol", {"contact_ids": [0]}, format="json")
    assert response.status_code in (400, 404)
    campaign = client.post("/api/v1/campaigns", {"name": "C", "goal": "g", "offer": "o"}, format="json").json()
    response = client.post(f"/api/v1/campaigns/{campaign['id']}/enrol", {"contact_ids": [0]}, format="json")
    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert error["field"] == "contact_ids.0" and error["code"] == "min_value"


@pytest.mark.django_db
@pytest.mark.parametrize("depth", [40, 1_000, 100_000])
def test_deeply_nested_json_is_a_400_naming_the_body_and_nothing_is_created(client, depth):
    body = '{"name": "Acme", "tags": ' + "[" * depth + "]" * depth + "}"
    response = client.post("/api/v1/leads", body, content_type="application/json")
    assert response.status_code == 400, response.content[:200]
    assert error_fields(response) == {"body"} and "nested deeper than" in response.json()["message"] + str(
        response.json()["errors"])
    assert not Lead.objects.exists()


@pytest.mark.django_db
def test_malformed_json_is_a_400_naming_the_body(client):
    response = client.post("/api/v1/leads", '{"name": ', content_type="application/json")
    assert response.status_code == 400
    assert error_fields(response) == {"body"} and response.json()["errors"][0]["code"] == "parse_error"


@pytest.mark.django_db
def test_an_unknown_body_field_is_a_400_naming_it_and_nothing_is_created(client):
    response = client.post("/api/v1/leads", {"name": "Acme", "domian": "acme.example"}, format="json")
    assert response.status_code == 400
    assert error_fields(response) == {"domian"}
    assert response.json()["errors"][0]["code"] == "unknown_field"
    assert not Lead.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/v1/leads", "/api/v1/contacts", "/api/v1/contact-campaigns",
                                  "/api/v1/unsubscribes", "/api/v1/leads/1"])
def test_an_unknown_query_parameter_is_a_400_naming_it(client, path):
    response = client.get(path, {"stauts": "active"})
    assert response.status_code == 400, response.content
    assert error_fields(response) == {"stauts"}


@pytest.mark.django_db
def test_paging_parameters_are_known_on_lists(client):
    assert client.get("/api/v1/leads", {"page_size": 5}).status_code == 200


def test_the_schema_documents_the_error_responses(db):
    from rest_framework.test import APIClient

    schema = APIClient().get("/api/schema/", HTTP_ACCEPT="application/json").json()
    assert "Error" in schema["components"]["schemas"]
    responses = schema["paths"]["/api/v1/leads"]["post"]["responses"]
    for code in ("400", "401", "403", "404", "409"):
        assert responses[code]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}


# --- idempotency ---------------------------------------------------------------------------------------

def _post_lead(client, key: str, name: str = "Acme", domain: str = "acme.example"):
    return client.post("/api/v1/leads", {"name": name, "domain": domain}, format="json", HTTP_IDEMPOTENCY_KEY=key)


@pytest.mark.django_db
def test_the_same_key_and_body_returns_the_first_response_and_creates_one_lead(client):
    first = _post_lead(client, "k-1")
    second = _post_lead(client, "k-1")
    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert second["Idempotent-Replayed"] == "true"
    assert Lead.objects.count() == 1


@pytest.mark.django_db
def test_the_same_key_with_another_body_is_a_409_naming_the_key(client):
    _post_lead(client, "k-2")
    response = _post_lead(client, "k-2", name="Globex", domain="globex.example")
    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "idempotency_key_reused" and "'k-2'" in body["message"]
    assert error_fields(response) == {"Idempotency-Key"}
    assert Lead.objects.count() == 1


@pytest.mark.django_db
def test_keys_are_per_tenant(client, other_tenant):
    _post_lead(client, "shared")
    other = _post_lead(api_client(tenant=other_tenant), "shared")
    assert other.status_code == 201 and Lead.objects.count() == 2


@pytest.mark.django_db
def test_without_a_key_two_posts_are_two_requests(client):
    assert _post_lead(client, "a").status_code == 201
    assert client.post("/api/v1/leads", {"name": "B"}, format="json").status_code == 201
    assert client.post("/api/v1/leads", {"name": "B"}, format="json").status_code == 201


@pytest.mark.django_db
def test_a_4xx_answer_is_replayed_too(client):
    first = client.post("/api/v1/leads", {"name": ""}, format="json", HTTP_IDEMPOTENCY_KEY="bad")
    again = client.post("/api/v1/leads", {"name": ""}, format="json", HTTP_IDEMPOTENCY_KEY="bad")
    assert first.status_code == again.status_code == 400 and again["Idempotent-Replayed"] == "true"


@pytest.mark.django_db
def test_a_request_still_running_with_the_key_is_a_409_and_does_not_run(client, tenant):
    fingerprint = idempotency.fingerprint(method="POST", path="/api/v1/leads",
                                          data={"name": "Acme", "domain": "acme.example"})
    IdempotencyRecord.objects.create(tenant=tenant, key="busy", fingerprint=fingerprint, method="POST",
                                     path="/api/v1/leads", expires_at=clock.now() + idempotency.TTL)
    response = _post_lead(client, "busy")
    assert response.status_code == 409 and response.json()["code"] == "idempotency_key_in_use"
    assert not Lead.objects.exists()


@pytest.mark.django_db
def test_a_crash_releases_the_key_so_the_retry_runs(client, monkeypatch):
    from contacts import services

    def boom(**kwargs):
        raise RuntimeError("database fell over")

    monkeypatch.setattr(services, "lead_create", boom)
    client.raise_request_exception = True
    with pytest.raises(RuntimeError):
        _post_lead(client, "retry-me")
    assert not IdempotencyRecord.objects.filter(key="retry-me").exists()
    monkeypatch.undo()
    assert _post_lead(client, "retry-me").status_code == 201


@pytest.mark.django_db
def test_an_api_key_post_refuses_the_header_as_its_secret_is_never_stored(client):
    response = client.post("/api/v1/api-keys", {"role": "viewer"}, format="json", HTTP_IDEMPOTENCY_KEY="x")
    assert response.status_code == 400 and error_fields(response) == {"Idempotency-Key"}


@pytest.mark.django_db
def test_an_upload_is_fingerprinted_by_its_content(client):
    from django.core.files.uploadedfile import SimpleUploadedFile

    def upload(content: bytes):
        return client.post("/api/v1/imports", {"file": SimpleUploadedFile("c.csv", content)}, format="multipart",
                           HTTP_IDEMPOTENCY_KEY="csv")

    first = upload(b"company,email\nAcme,a@acme.example\n")
    assert upload(b"company,email\nAcme,a@acme.example\n").json() == first.json()
    assert upload(b"company,email\nAcme,b@acme.example\n").status_code == 409


@pytest.mark.django_db
def test_expired_records_are_pruned_and_the_key_can_be_used_again(client, tenant):
    _post_lead(client, "old")
    IdempotencyRecord.objects.update(expires_at=clock.now() - dt.timedelta(seconds=1))
    assert prune_idempotency_records() == 1
    assert _post_lead(client, "old", name="Other", domain="other.example").status_code == 201


@pytest.mark.django_db(transaction=True)
def test_concurrent_duplicates_do_not_both_execute(tenant):
    # Two threads, two connections, one key: the unique row lets exactly one create the lead.
    clients = [api_client(tenant=tenant) for _ in range(2)]
    barrier = threading.Barrier(2)
    statuses: list[int] = []

    def send(c):
        try:
            barrier.wait()
            statuses.append(_post_lead(c, "race").status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=send, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert Lead.objects.count() == 1
    assert sorted(statuses) in ([201, 201], [201, 409])


@pytest.mark.django_db
def test_a_post_to_an_unknown_api_path_is_a_json_404_not_a_csrf_page(client):
    response = client.post("/api/v1/contact-campaigns/-1.5/events", {"type": "reply"})
    assert response.status_code == 404 and response.json()["code"] == "not_found"
