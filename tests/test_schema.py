"""The OpenAPI schema of the whole project generates without a warning or an error; its docs page works offline."""
from __future__ import annotations

import re

import pytest
from django.conf import settings
from django.contrib.staticfiles import finders
from django.core.management import call_command


@pytest.mark.django_db
def test_the_schema_validates_without_warnings(tmp_path):
    # --fail-on-warn turns every drf-spectacular warning (an unresolvable serializer, a guessed path
    # parameter, an enum naming clash) into a failure; --validate checks the result against OpenAPI 3.
    target = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target))
    text = target.read_text()
    assert "/api/v1/contacts/{contact_id}/campaigns:" in text
    assert "apiKeyAuth:" in text


@pytest.mark.django_db
def test_the_schema_is_served_to_anonymous_callers(client):
    response = client.get("/api/schema/")
    assert response.status_code == 200
    assert b"openapi: 3" in response.content
    assert client.get("/api/docs/").status_code == 200


@pytest.mark.django_db
def test_the_docs_page_loads_its_scripts_from_our_own_static_files_and_names_no_other_host(client):
    page = client.get("/api/docs/").content.decode()

    # Every absolute URL on the page (attributes and inline script alike) would be a host we depend on.
    assert re.findall(r"(?:https?:)?//[\w.-]+\.[a-z]{2,}[^\s\"'<>]*", page) == []
    assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", page)
    scripts = [url for url in assets if url.endswith(".js")]
    assert scripts and all(url.startswith(settings.STATIC_URL) or url.startswith("/" + settings.STATIC_URL)
                           for url in scripts)
    for url in assets:  # each one is a file of this installation (collectstatic ships it)
        if "static/" in url:
            assert finders.find(url.split("static/", 1)[1]), url
