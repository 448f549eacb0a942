"""What a newcomer opens after the run, opened through the real web server: the admin, a contact
campaign's page, the API docs and the campaign's metrics.

Imports the apps' models: import it after django.setup().
"""
from __future__ import annotations

import http.cookiejar
import re
import urllib.error
import urllib.request
from urllib.parse import urlencode

from campaigns.interface import ContactCampaign


def check_pages(*, web_url: str, username: str, password: str, api_key: str, campaign_id: int) -> tuple[list[str],
                                                                                                    list[str]]:
    """Open what a newcomer opens after the run, through the real web server: the admin (logged in through
    its login form), a contact campaign's page, the API docs and the campaign's metrics. Returns (pages that
    answered 200, problems)."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), urllib.request.HTTPCookieProcessor(jar))
    ok: list[str] = []
    problems: list[str] = []

    def fetch(path: str, *, data: bytes | None = None, headers: dict[str, str] | None = None) -> str:
        request = urllib.request.Request(f"{web_url}{path}", data=data, headers=headers or {})
        try:
            with opener.open(request, timeout=60) as response:
                body = response.read().decode("utf-8", "replace")
                ok.append(path)
                return body
        except urllib.error.HTTPError as exc:
            problems.append(f"GET {path} answered {exc.code}")
        except (OSError, ValueError) as exc:
            problems.append(f"GET {path} failed: {exc}")
        return ""

    login = fetch("/admin/login/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login)
    if token is None:
        return ok, problems + ["the admin login page has no CSRF token"]
    fetch("/admin/login/?next=/admin/", data=urlencode({
        "csrfmiddlewaretoken": token.group(1), "username": username, "password": password, "next": "/admin/",
    }).encode(), headers={"Referer": f"{web_url}/admin/login/", "Content-Type": "application/x-www-form-urlencoded"})
    if not any(cookie.name == "sessionid" for cookie in jar):
        return ok, problems + ["logging in to the admin failed"]
    interesting = (ContactCampaign.objects.filter(campaign_id=campaign_id).exclude(stop_reason="completed")
                   .exclude(stop_reason="").order_by("id").values_list("id", "contact_id").first()
                   or ContactCampaign.objects.filter(campaign_id=campaign_id).values_list("id", "contact_id").first())
    pages = ["/admin/", "/admin/campaigns/campaign/", "/admin/campaigns/contactcampaign/",
             "/admin/messaging/outboundmessage/", "/admin/messaging/messageevent/",
             "/admin/messaging/inboundmessage/", "/api/docs/"]
    if interesting:
        pages.insert(3, f"/admin/campaigns/contactcampaign/{interesting[0]}/change/")
    for page in pages:
        fetch(page)
    auth = {"Authorization": f"Bearer {api_key}"}
    fetch(f"/api/v1/campaigns/{campaign_id}/metrics", headers=auth)
    if interesting:
        fetch(f"/api/v1/contacts/{interesting[1]}/campaigns", headers=auth)
    return ok, problems
