"""The address a request came from, behind a known number of reverse proxies (TRUSTED_PROXY_COUNT).

Behind a load balancer REMOTE_ADDR is the balancer's: django-axes would then lock every operator out
together after one person's wrong passwords. Each proxy appends the address it saw to X-Forwarded-For, so
with N trusted proxies the client is the N-th entry from the right; entries further left are whatever the
client sent and are never believed (a forged header cannot pick another address). With no proxy
configured the header is ignored altogether.
"""
from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest


def client_ip(request: HttpRequest) -> str | None:
    proxies = settings.TRUSTED_PROXY_COUNT
    remote = request.META.get("REMOTE_ADDR")
    if proxies <= 0:
        return remote
    forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
    if not forwarded:
        return remote
    # Fewer entries than proxies: the request skipped a proxy; the left-most is the nearest we know of.
    return forwarded[-min(proxies, len(forwarded))]
