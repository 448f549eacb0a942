"""Building blocks shared by every app's admin (the operator console).

Not an app's admin module (nothing registers here). The apps' ``admin.py`` files
import these so that the rules below hold everywhere:

- Tables with tens of millions of rows never run an exact ``COUNT(*)`` or a
  ``SELECT DISTINCT`` just to draw a changelist (``BigTableAdmin``).
- Rows the pipeline owns, or history that must not change, are read-only from the
  admin (``ReadOnlyAdmin``): no add, no change, no delete. Deleting their owner (a
  contact, a lead) still removes them (``OwnerDeletesHistoryMixin``), because an
  erasure request must be possible without a superuser running SQL.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from typing import Any

from django import forms
from django.contrib import admin
from django.core.paginator import Paginator
from django.db import DatabaseError, connections, transaction
from django.db.models import Model, QuerySet
from django.http import HttpRequest
from django.utils.functional import cached_property

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


def _table_row_estimate(db: str, table: str) -> int:
    with connections[db].cursor() as cursor:
        cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE oid = to_regclass(%s)", [table])
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
