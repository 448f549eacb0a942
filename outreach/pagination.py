import binascii
import datetime as dt
import json
from base64 import b64decode, b64encode

from django.db.models import Q
from django.utils.dateparse import parse_datetime
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import BasePagination, CursorPagination
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param


class CreatedCursorPagination(CursorPagination):
    """Stable cursor pagination on (created_at, id): no OFFSET scans on large tables.

    Bad paging parameters are 400s naming the parameter, like every other query-string filter.
    """

    ordering = ("-created_at", "-id")
    page_size_query_param = "page_size"
    max_page_size = 500

    def get_page_size(self, request):
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        try:
            size = int(raw)
        except ValueError:
            size = 0
        if size < 1:
            raise ValidationError({self.page_size_query_param: [f"A whole number from 1 to {self.max_page_size}."]})
        return min(size, self.max_page_size)

    def decode_cursor(self, request):
        # DRF decodes the cursor but trusts its position; a forged one ("p=not-a-date") would reach the
        # queryset as created_at__lt="not-a-date" and fail with a 500. A cursor is ours or it is invalid.
        try:
            cursor = super().decode_cursor(request)
        except Exception as exc:  # DRF raises NotFound for an undecodable cursor
            raise ValidationError({self.cursor_query_param: [self.invalid_cursor_message]}) from exc
        if cursor is not None and cursor.position is not None:
            try:
                valid = parse_datetime(cursor.position) is not None
            except ValueError:  # well-formed but impossible, e.g. month 13
                valid = False
            if not valid:
                raise ValidationError({self.cursor_query_param: [self.invalid_cursor_message]})
        return cursor


class KeysetCursorPagination(BasePagination):
    """A change feed's pagination: oldest first on (time field, id), the cursor holds the last row's pair.

    The next page is `(time, id) > (last time, last id)`: rows inserted or updated meanwhile never shift a
    page (no offsets), and ties on the time are broken by id. `field` is the time column (created_at,
    updated_at); the cursor is opaque base64 JSON and a forged one is a 400 naming `cursor`.
    """

    page_size = 50
    max_page_size = 500
    cursor_query_param = "cursor"
    page_size_query_param = "page_size"
    invalid_cursor_message = "Invalid cursor"
    cursor_query_description = CursorPagination.cursor_query_description
    page_size_query_description = CursorPagination.page_size_query_description

    def __init__(self, field: str = "created_at") -> None:
        self.field = field

    def paginate_queryset(self, queryset, request, view=None):
        self.request = request
        size = CreatedCursorPagination.get_page_size(self, request)
        after = self._decode(request.query_params.get(self.cursor_query_param))
        queryset = queryset.order_by(self.field, "id")
        if after is not None:
            moment, last_id = after
            later = Q(**{f"{self.field}__gt": moment}) | Q(**{self.field: moment, "id__gt": last_id})
            queryset = queryset.filter(later)
        rows = list(queryset[:size + 1])
        self.has_next = len(rows) > size
        rows = rows[:size]
        self.last = (getattr(rows[-1], self.field), rows[-1].pk) if rows else None
        return rows

    def _decode(self, raw: str | None) -> tuple[dt.datetime, int] | None:
        if raw is None:
            return None
        try:
            data = json.loads(b64decode(raw.encode(), validate=True))
            moment = parse_datetime(data["t"])
            last_id = int(data["i"])
        except (ValueError, KeyError, TypeError, binascii.Error) as exc:
            raise ValidationError({self.cursor_query_param: [self.invalid_cursor_message]}) from exc
        if moment is None:
            raise ValidationError({self.cursor_query_param: [self.invalid_cursor_message]})
        return moment, last_id

    def get_next_link(self) -> str | None:
        if not self.has_next or self.last is None:
            return None
        token = b64encode(json.dumps({"t": self.last[0].isoformat(), "i": self.last[1]}).encode()).decode()
        return replace_query_param(self.request.build_absolute_uri(), self.cursor_query_param, token)

    def get_paginated_response(self, data):
        return Response({"next": self.get_next_link(), "previous": None, "results": data})

    def get_paginated_response_schema(self, schema):
        return CursorPagination.get_paginated_response_schema(self, schema)

    def get_schema_operation_parameters(self, view):
        return CursorPagination.get_schema_operation_parameters(self, view)


class ChangeFeedMixin:
    """Lists that take `created_since` / `updated_since`: with either, the list is a change feed, oldest
    first on (that time, id) with keyset cursors; without, the newest-first default."""

    @property
    def paginator(self):
        if not hasattr(self, "_paginator"):
            params = self.request.query_params if getattr(self, "request", None) is not None else {}
            if "updated_since" in params:
                self._paginator = KeysetCursorPagination("updated_at")
            elif "created_since" in params:
                self._paginator = KeysetCursorPagination("created_at")
            else:
                self._paginator = self.pagination_class() if self.pagination_class else None
        return self._paginator


def since_filters(queryset, filters: dict):
    """Apply `created_since` / `updated_since` (inclusive) from validated filters."""
    if filters.get("created_since") is not None:
        queryset = queryset.filter(created_at__gte=filters["created_since"])
    if filters.get("updated_since") is not None:
        queryset = queryset.filter(updated_at__gte=filters["updated_since"])
    return queryset
