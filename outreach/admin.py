"""Building blocks shared by every app's admin (the operator console).

Not an app's admin module (nothing registers here). The apps' ``admin.py`` files
import these so that the rules below hold everywhere:

- Tables with tens of millions of rows never run an exact ``COUNT(*)`` or a
  ``SELECT DISTINCT`` just to draw a changelist (``BigTableAdmin``).
- Rows the pipeline owns, or history that must not change, are read-only from the
  admin (``ReadOnlyAdmin``): no add, no change, no delete. Deleting their owner (a
  contact, a lead) still removes them (``OwnerDeletesHistoryMixin``), because an
  erasure request must be possible without a superuser running SQL.
- Every operator control (global stop, tenant / campaign / sender pauses, cancels)
  is a ``Switch``: a button on the change page and a bulk action, both behind a
  POST confirmation page, both calling the owning service, which audits
  (``SwitchesAdminMixin``; see docs/operator-console.md).
"""
from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import quote, unquote
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db import DatabaseError, connections, transaction
from django.db.models import Model, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.functional import cached_property
from django.utils.text import capfirst

from outreach.db_router import replica_reads
from outreach.errors import ApplicationError
from outreach.extensions import Listeners

logger = logging.getLogger(__name__)


class EstimatedCountPaginator(Paginator):
    """A paginator whose count never takes seconds.

    Unfiltered: the planner's row estimate (``pg_class.reltuples``) once a table is
    past ``exact_below`` rows. Filtered: an exact count under a short statement
    timeout, falling back to the planner's estimate for that query. The changelist
    then says "about N"; an operator narrows with filters and search anyway.
    """

    exact_below = 100_000
    count_timeout_ms = 300

    @cached_property
    def count(self) -> int:
        queryset = self.object_list
        if not isinstance(queryset, QuerySet):
            return super().count
        db = queryset.db
        if not queryset.query.where:
            estimate = _table_row_estimate(db, queryset.model._meta.db_table)
            if estimate >= self.exact_below:
                return estimate
            return super().count
        try:
            return _count_with_timeout(queryset, self.count_timeout_ms)
        except DatabaseError:
            logger.info("admin count of %s timed out; using the planner's estimate", queryset.model.__name__)
            return _query_row_estimate(queryset)


_ROW_ESTIMATE_SQL = """
SELECT CASE WHEN c.relkind = 'p' THEN
         (SELECT sum(GREATEST(p.reltuples, 0))::bigint FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhrelid
          WHERE i.inhparent = c.oid)
       ELSE c.reltuples::bigint END
FROM pg_class c WHERE c.oid = to_regclass(%s)
"""


def _table_row_estimate(db: str, table: str) -> int:
    # A partitioned table's own reltuples stays -1 (autovacuum analyses its partitions, not the parent):
    # its estimate is the sum of its partitions'.
    with connections[db].cursor() as cursor:
        cursor.execute(_ROW_ESTIMATE_SQL, [table])
        row = cursor.fetchone()
    # -1 means "never analysed": treat it as small so the exact count runs.
    return max(int(row[0]), 0) if row and row[0] is not None else 0


def _count_with_timeout(queryset: QuerySet, timeout_ms: int) -> int:
    # A (nested) transaction: when the count is cancelled, rolling it back also undoes the timeout and
    # leaves the surrounding transaction usable. On success the previous timeout is put back, because
    # SET LOCAL would otherwise outlive a released savepoint.
    connection = connections[queryset.db]
    with transaction.atomic(using=queryset.db):
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_setting('statement_timeout')")
            previous = cursor.fetchone()[0]
            cursor.execute("SELECT set_config('statement_timeout', %s, true)", [str(timeout_ms)])
        count = queryset.count()
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('statement_timeout', %s, true)", [previous])
    return count


def _query_row_estimate(queryset: QuerySet) -> int:
    sql, params = queryset.order_by().query.sql_with_params()
    with connections[queryset.db].cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        plan = cursor.fetchone()[0]
    if isinstance(plan, str):
        plan = json.loads(plan)
    return int(plan[0]["Plan"]["Plan Rows"])


class BigTableAdmin(admin.ModelAdmin):
    """For tables that grow to millions of rows (contacts, outbox, events, timers...).

    Subclasses must keep list filters to choices, booleans, dates and small foreign
    keys (a filter on a free-text column runs SELECT DISTINCT over the whole table),
    prefer exact-match search fields (``field__exact`` can use an index, ``icontains``
    scans), and use ``raw_id_fields`` for foreign keys to big tables.
    """

    paginator = EstimatedCountPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    list_per_page = 50
    ordering = ("-id",)

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        # A list may lag a few seconds: read it from the replica when there is one (outreach/db_router.py).
        # A POST here runs a bulk action (a write path that reads what it changes): always the primary.
        if request.method != "GET":
            return super().changelist_view(request, extra_context)
        with replica_reads():
            response = super().changelist_view(request, extra_context)
            if hasattr(response, "render"):
                response.render()  # the page's queries run here, inside the block
        return response


def _all_field_names(model: type[Model]) -> list[str]:
    return [f.name for f in model._meta.get_fields() if f.concrete and not f.many_to_many]


class ReadOnlyAdmin(admin.ModelAdmin):
    """Append-only history and pipeline-owned rows: visible, never edited from the admin.

    The services that own these rows keep their invariants (a transition records what
    the engine did; an event is what the provider said); an edit here would be a lie.
    """

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def get_readonly_fields(self, request: HttpRequest, obj: Model | None = None) -> Sequence[str]:
        return [*_all_field_names(self.model), *super().get_readonly_fields(request, obj)]


class OwnerDeletesHistoryMixin:
    """Lets deleting an owner (lead, contact, ...) cascade over read-only rows.

    Django refuses a delete when any cascaded model's admin denies deletion; for
    ``ReadOnlyAdmin`` models that denial is about deleting them one by one, not about
    their owner going away.
    """

    def get_deleted_objects(self, objs: Iterable[Model], request: HttpRequest) -> tuple[Any, ...]:
        deleted, model_count, perms_needed, protected = super().get_deleted_objects(objs, request)
        exempt = {
            str(model._meta.verbose_name)
            for model, model_admin in self.admin_site._registry.items()
            if isinstance(model_admin, ReadOnlyAdmin)
        }
        perms_needed = {name for name in perms_needed if str(name) not in exempt}
        return deleted, model_count, perms_needed, protected


class StaticChoicesFilter(admin.SimpleListFilter):
    """A filter over a free-text column with a known set of values, without SELECT DISTINCT.

    Subclass with ``title``, ``parameter_name`` (the field) and ``values`` (value, label) pairs.
    """

    values: Sequence[tuple[str, str]] = ()

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> Sequence[tuple[str, str]]:
        return self.values

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value()
        if value is None:
            return queryset
        return queryset.filter(**{self.parameter_name: value})


def static_choices_filter(field: str, choices: Sequence[tuple[str, str]] | Sequence[str],
                          title: str | None = None) -> type[StaticChoicesFilter]:
    """Build a ``StaticChoicesFilter`` for ``field``; choices may be plain values."""
    pairs = [(c, c) if isinstance(c, str) else (c[0], c[1]) for c in choices]
    return type(
        f"{field.title().replace('_', '')}Filter",
        (StaticChoicesFilter,),
        {"title": title or field.replace("_", " "), "parameter_name": field, "values": pairs},
    )


class TenantConsistentForm(forms.ModelForm):
    """Refuses a foreign key to another tenant's row (raw-id and autocomplete widgets show every tenant's).

    Subclass and name the foreign keys in ``tenant_scoped_fields``; the row's own tenant is its ``tenant``.
    """

    tenant_scoped_fields: tuple[str, ...] = ()

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        tenant_id = cleaned["tenant"].pk if cleaned.get("tenant") else self.instance.tenant_id
        for name in self.tenant_scoped_fields:
            related = cleaned.get(name)
            if related is not None and tenant_id is not None and related.tenant_id != tenant_id:
                self.add_error(name, f"{related} belongs to another tenant.")
        return cleaned


# --- operator switches: pause / resume / cancel / stop, each behind a confirmation page -------------------------

MAX_BULK_SWITCH = 500  # rows one bulk action may flip (~170 contact campaigns/s: ~3 s); for more, pause the
# campaign or the tenant, which holds any number of rows in one statement
CONFIRM_TEMPLATE = "admin/operator_console/confirm.html"
CONFIRM_LISTED = 20  # objects named on a confirmation page; the rest are counted


@dataclass(frozen=True)
class Switch:
    """One operator control (pause, resume, cancel...) of a model, offered as a change-page button and,
    unless ``bulk`` is false, as a changelist action. Both ask for confirmation on a POST form.

    ``run(obj, actor=..., reason=...)`` calls the owning service (which writes the audit entry); it may raise
    ``ApplicationError`` to refuse. ``applies(obj)`` says whether the switch makes sense in the object's state.
    """

    name: str  # URL segment and action name
    label: str  # "Pause sending"
    done: str  # past tense for the result message: "paused"
    applies: Callable[[Any], bool]
    run: Callable[..., Any]
    explanation: str = ""
    skipped_note: str = ""  # why a selected row was not touched: "not active"
    danger: bool = False
    reason_required: bool = False
    bulk: bool = True
    removes: bool = False  # the object is gone afterwards (a lifted suppression): go back to the list


def confirm_page(request: HttpRequest, *, model_admin: admin.ModelAdmin | None, title: str, question: str,
                 explanation: str, submit_label: str, cancel_url: str, objects: Sequence[Any] = (),
                 total: int | None = None, skipped: int = 0, skipped_note: str = "", danger: bool = False,
                 reason_required: bool = False, hidden: Sequence[tuple[str, Any]] = (),
                 error: str = "") -> TemplateResponse:
    """The one confirmation page of the console: a POST form (CSRF-protected) with an optional reason."""
    site = model_admin.admin_site if model_admin is not None else admin.site
    request.current_app = site.name
    listed = list(objects[:CONFIRM_LISTED])
    total = len(objects) if total is None else total
    context = {
        **site.each_context(request),
        "opts": model_admin.model._meta if model_admin is not None else None,
        "title": title,
        "question": question,
        "explanation": explanation,
        "submit_label": submit_label,
        "cancel_url": cancel_url,
        "objects": listed,
        "more": max(0, total - len(listed)),
        "skipped": skipped,
        "skipped_note": skipped_note,
        "danger": danger,
        "reason_required": reason_required,
        "reason": request.POST.get("reason", ""),
        "hidden": list(hidden),
        "error": error,
    }
    return TemplateResponse(request, CONFIRM_TEMPLATE, context)


def _reason(request: HttpRequest) -> str:
    return request.POST.get("reason", "").strip()[:300]


class SwitchesAdminMixin:
    """Adds ``switches`` to a ModelAdmin: buttons on the change page (``<pk>/switch/<name>/``) and bulk actions.

    GET on a switch URL shows the confirmation page and changes nothing; the change happens on the POST it
    submits. Who may flip: ``has_operate_permission`` (the model's change permission by default, so a
    view-only staff user sees the controls' state but cannot flip them).
    """

    switches: Sequence[Switch] = ()
    change_form_template = "admin/operator_console/change_form.html"
    max_bulk_switch = MAX_BULK_SWITCH

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        extra = [self._bulk_action(switch) for switch in self.switches if switch.bulk]
        if extra:
            self.actions = [*(self.actions or ()), *extra]

    def has_operate_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        opts = self.model._meta
        return request.user.has_perm(f"{opts.app_label}.change_{opts.model_name}")

    def switch_url(self, obj: Model, switch: Switch) -> str:
        opts = self.model._meta
        return reverse(f"admin:{opts.app_label}_{opts.model_name}_switch", args=[quote(obj.pk), switch.name],
                       current_app=self.admin_site.name)

    def _change_url(self, obj: Model) -> str:
        opts = self.model._meta
        return reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[quote(obj.pk)],
                       current_app=self.admin_site.name)

    def _changelist_url(self) -> str:
        opts = self.model._meta
        return reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist", current_app=self.admin_site.name)

    def get_urls(self) -> list:
        opts = self.model._meta
        own = [path("<path:object_id>/switch/<slug:name>/", self.admin_site.admin_view(self.switch_view),
                    name=f"{opts.app_label}_{opts.model_name}_switch")]
        # Before the ModelAdmin's own patterns: its "<path:object_id>/" catch-all would swallow ours.
        return own + super().get_urls()

    def console_switches(self, request: HttpRequest, obj: Model) -> list[dict[str, Any]]:
        """The buttons to draw on ``obj``'s change page (only those that apply to its state)."""
        if not self.has_operate_permission(request, obj):
            return []
        return [{"label": s.label, "url": self.switch_url(obj, s), "danger": s.danger}
                for s in self.switches if s.applies(obj)]

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "",
                    extra_context: dict[str, Any] | None = None) -> HttpResponse:
        response = super().change_view(request, object_id, form_url, extra_context)
        context = getattr(response, "context_data", None)
        if context is not None and context.get("original") is not None:
            context["console_switches"] = self.console_switches(request, context["original"])
        return response

    def switch_view(self, request: HttpRequest, object_id: str, name: str) -> HttpResponse:
        switch = next((s for s in self.switches if s.name == name), None)
        if switch is None:
            raise Http404(f"No switch {name!r}.")
        obj = self.get_object(request, unquote(object_id))
        if obj is None:
            raise Http404("No such object.")
        if not self.has_operate_permission(request, obj):
            raise PermissionDenied
        change_url = self._change_url(obj)
        if not switch.applies(obj):
            self.message_user(request, f"{switch.label}: not possible now ({switch.skipped_note or 'state'}).",
                              messages.WARNING)
            return HttpResponseRedirect(change_url)
        page = {"model_admin": self, "title": f"{switch.label}: {obj}", "question": f"{switch.label}: {obj}?",
                "explanation": switch.explanation, "submit_label": f"Yes, {switch.label.lower()}",
                "cancel_url": change_url, "objects": [obj], "danger": switch.danger,
                "reason_required": switch.reason_required}
        if request.method != "POST":
            return confirm_page(request, **page)
        reason = _reason(request)
        if switch.reason_required and not reason:
            return confirm_page(request, **page, error="Say why (it is kept in the audit trail).")
        try:
            switch.run(obj, actor=request.user, reason=reason)
        except ApplicationError as exc:
            self.message_user(request, f"{switch.label} refused: {exc.message}", messages.ERROR)
            return HttpResponseRedirect(change_url)
        self.message_user(request, f"{capfirst(str(self.model._meta.verbose_name))} “{obj}” {switch.done}.",
                          messages.SUCCESS)
        return HttpResponseRedirect(self._changelist_url() if switch.removes else change_url)

    def _bulk_action(self, switch: Switch) -> Callable[..., HttpResponse | None]:
        def action(model_admin: SwitchesAdminMixin, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
            return model_admin.run_bulk_switch(request, queryset, switch)

        action.__name__ = switch.name
        action.short_description = f"{switch.label} (the selected {self.model._meta.verbose_name_plural})"
        action.allowed_permissions = ("operate",)
        return action

    def run_bulk_switch(self, request: HttpRequest, queryset: QuerySet, switch: Switch) -> HttpResponse | None:
        """Confirm, then flip each selected row through the service; the message counts what changed."""
        opts = self.model._meta
        rows = list(queryset[: self.max_bulk_switch + 1])
        if len(rows) > self.max_bulk_switch:
            self.message_user(request, f"Select at most {self.max_bulk_switch:,} {opts.verbose_name_plural} at a "
                                       f"time (pause the campaign or the tenant to stop more at once).",
                              messages.ERROR)
            return None
        eligible = [obj for obj in rows if switch.applies(obj)]
        skipped = len(rows) - len(eligible)
        counted = f"{len(eligible)} {opts.verbose_name if len(eligible) == 1 else opts.verbose_name_plural}"
        page = {"model_admin": self, "title": f"{switch.label}: {counted}", "question": f"{switch.label}: {counted}?",
                "explanation": switch.explanation, "submit_label": f"Yes, {switch.label.lower()}",
                "cancel_url": request.get_full_path(), "objects": eligible, "skipped": skipped,
                "skipped_note": switch.skipped_note, "danger": switch.danger,
                "reason_required": switch.reason_required,
                "hidden": [("action", switch.name), ("post", "yes"),
                           *((helpers.ACTION_CHECKBOX_NAME, obj.pk) for obj in rows)]}
        if request.POST.get("post") != "yes":
            return confirm_page(request, **page)
        reason = _reason(request)
        if switch.reason_required and not reason:
            return confirm_page(request, **page, error="Say why (it is kept in the audit trail).")
        changed, refused = 0, []
        for obj in eligible:
            try:
                switch.run(obj, actor=request.user, reason=reason)
            except ApplicationError as exc:
                refused.append(f"{obj}: {exc.message}")
            else:
                changed += 1
        text = f"{capfirst(switch.done)} {changed} {opts.verbose_name if changed == 1 else opts.verbose_name_plural}."
        if skipped:
            text += f" {skipped} skipped ({switch.skipped_note or 'not applicable'})."
        if refused:
            text += f" {len(refused)} refused: " + "; ".join(refused[:5]) + ("…" if len(refused) > 5 else "")
        self.message_user(request, text, messages.WARNING if refused else messages.SUCCESS)
        return None


# --- the console's state, for the index panel and the stop banner on every page ----------------------------------

def global_stop_state() -> dict[str, Any]:
    """Whether sending is stopped everywhere, by whom and why (one query)."""
    from django.conf import settings

    from outreach.tenancy.models import GlobalSendingSwitch

    switch = GlobalSendingSwitch.objects.select_related("updated_by").filter(id=1).first()
    by_environment = bool(settings.OUTREACH_SENDING_STOPPED)
    return {
        "stopped": by_environment or bool(switch and switch.sending_stopped),
        "by_switch": bool(switch and switch.sending_stopped),
        "by_environment": by_environment,
        "reason": switch.reason if switch else "",
        "updated_at": switch.updated_at if switch else None,
        "updated_by": switch.updated_by if switch else None,
    }


PAUSED_TENANTS_LISTED = 10


# What else an operator can find held on the console's index: each app's admin connects a function returning
# its counts, keyed as templates/admin/index.html reads them (campaigns: "paused_campaigns"; messaging:
# "paused_senders"), so the base layer lists them without importing the apps.
operator_console_counts: Listeners[Callable[[], dict[str, int]]] = Listeners("outreach.operator_console_counts")


def operator_console_state() -> dict[str, Any]:
    """Everything the admin index shows about what is held: a few small queries (small tables)."""
    from outreach.tenancy.models import Tenant

    paused = Tenant.objects.filter(sending_paused=True)
    listed = list(paused.order_by("name").values_list("pk", "name")[:PAUSED_TENANTS_LISTED])
    state: dict[str, Any] = {
        "global": global_stop_state(),
        "paused_tenants": listed,
        "paused_tenants_count": len(listed) if len(listed) < PAUSED_TENANTS_LISTED else paused.count(),
    }
    for counts in operator_console_counts.send():
        state.update(counts)
    return state
