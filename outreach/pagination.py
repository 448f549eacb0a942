from django.utils.dateparse import parse_datetime
from rest_framework.exceptions import NotFound
from rest_framework.pagination import CursorPagination


class CreatedCursorPagination(CursorPagination):
    """Stable cursor pagination on (created_at, id): no OFFSET scans on large tables."""

    ordering = ("-created_at", "-id")
    page_size_query_param = "page_size"
    max_page_size = 500

    def decode_cursor(self, request):
        # DRF decodes the cursor but trusts its position; a forged one ("p=not-a-date") would reach the
        # queryset as created_at__lt="not-a-date" and fail with a 500. A cursor is ours or it is invalid.
        cursor = super().decode_cursor(request)
        if cursor is not None and cursor.position is not None:
            try:
                valid = parse_datetime(cursor.position) is not None
            except ValueError:  # well-formed but impossible, e.g. month 13
                valid = False
            if not valid:
                raise NotFound(self.invalid_cursor_message)
        return cursor
