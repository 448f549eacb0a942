from django.utils.dateparse import parse_datetime
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import CursorPagination


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
