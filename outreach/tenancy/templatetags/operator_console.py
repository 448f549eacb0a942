"""Template tags of the operator console (the admin): the global stop banner, the index panel, Flower's URL.

Tags rather than a custom AdminSite, so the stock ``admin.site`` (and every app's registration on it) stays.
"""
from __future__ import annotations

from typing import Any

from django import template
from django.conf import settings

from outreach.admin import global_stop_state, operator_console_state

register = template.Library()


@register.inclusion_tag("admin/operator_console/global_banner.html", takes_context=True)
def global_stop_banner(context: template.Context) -> dict[str, Any]:
    """A red banner on every admin page while all sending is stopped (staff pages only; one query)."""
    if not context.get("has_permission"):
        return {"state": None}
    return {"state": global_stop_state()}


@register.simple_tag
def operator_console() -> dict[str, Any]:
    return operator_console_state()


@register.simple_tag
def flower_url() -> str:
    return settings.FLOWER_URL
