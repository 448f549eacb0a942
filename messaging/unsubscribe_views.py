"""Public unsubscribe endpoints: the link in every mail and the RFC 8058 one-click POST.

No login, no session, no cookies: the signed token is the only credential. Only a POST records the opt-out
(through messaging.compliance, idempotent, which also stops the address's active campaigns): the RFC 8058
one-click POST of a mail client, or the button of the confirmation page a GET shows. A GET records nothing:
link scanners of mail gateways fetch every link of a mail (RFC 8058 section 1).
"""
from __future__ import annotations

import logging

from django.core import signing
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from messaging.compliance.links import UnsubscribeTarget, unsubscribe_token_read
from messaging.compliance.opt_outs import unsubscribe_record
from messaging.models import UnsubscribeSource
from outreach.tenancy.models import Tenant

logger = logging.getLogger(__name__)

ONE_CLICK_BODY = "List-Unsubscribe=One-Click"


def _target(request: HttpRequest) -> tuple[UnsubscribeTarget, Tenant] | None:
    token = request.GET.get("token", "")
    try:
        target = unsubscribe_token_read(token)
    except signing.BadSignature:
        return None
    tenant = Tenant.objects.filter(pk=target.tenant_id).first()
    return (target, tenant) if tenant is not None else None


def _invalid(request: HttpRequest) -> HttpResponse:
    logger.info("unsubscribe: invalid token (%s)", request.method)
    if request.method == "POST":
        return HttpResponse("Invalid unsubscribe token.\n", status=400, content_type="text/plain; charset=utf-8")
    return render(request, "messaging/unsubscribe_invalid.html", status=400)


def _user_agent(request: HttpRequest) -> str:
    return request.headers.get("User-Agent", "")[:300]


@csrf_exempt  # RFC 8058: mail clients POST without any token or cookie; the signed URL is the credential.
@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def unsubscribe(request: HttpRequest) -> HttpResponse:
    found = _target(request)
    if found is None:
        return _invalid(request)
    target, tenant = found
    if request.method == "HEAD":
        # Link checkers probe with HEAD; only a GET or POST is someone's act, so nothing is recorded.
        return HttpResponse(status=200)
    if request.method == "GET":
        return render(request, "messaging/unsubscribe_confirm.html",
                      {"tenant_name": tenant.name, "address": target.value, "channel": target.channel})
    if request.POST.get("List-Unsubscribe") == "One-Click":
        unsubscribe_record(tenant=tenant.pk, channel=target.channel, value=target.value,
                           source=UnsubscribeSource.ONE_CLICK,
                           detail=f"RFC 8058 one-click POST; user agent: {_user_agent(request)}")
        return HttpResponse("Unsubscribed.\n", content_type="text/plain; charset=utf-8")
    # A POST is never a prefetch: the confirmation page's button, or a deliberate POST without the body.
    confirmed = request.POST.get("confirm") == "yes"
    unsubscribe_record(
        tenant=tenant.pk, channel=target.channel, value=target.value, source=UnsubscribeSource.LINK_CLICK,
        detail=("confirmed on the unsubscribe page" if confirmed else "POST without the one-click body")
        + f"; user agent: {_user_agent(request)}",
    )
    if tenant.unsubscribe_redirect_url:
        return HttpResponseRedirect(tenant.unsubscribe_redirect_url)
    return render(request, "messaging/unsubscribe_done.html",
                  {"tenant_name": tenant.name, "address": target.value, "channel": target.channel})
