"""Rebuild the rollups of a range from raw events."""
from __future__ import annotations

from django.core.management.base import BaseCommand, CommandParser

from analytics.management.commands._ranges import add_range_arguments, day_range
from analytics.recount import rollups_rebuild


class Command(BaseCommand):
    help = "Replace the rollup rows of --from..--to (UTC dates) by a recount from raw events."

    def add_arguments(self, parser: CommandParser) -> None:
        add_range_arguments(parser)

    def handle(self, *args, first: str | None, last: str | None, **options) -> None:
        days = day_range(first, last)
        written = rollups_rebuild(days=days)
        self.stdout.write(f"rebuilt {days.first}..{days.last}: {written} rollup row(s)")
