"""Compare the rollups of a range with a recount from raw events; exit non-zero on any difference."""
from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser

from analytics.management.commands._ranges import add_range_arguments, day_range
from analytics.recount import rollups_verify


class Command(BaseCommand):
    help = "Recount the rollups of --from..--to from message_events and inbound_messages; exit 1 on a difference."

    def add_arguments(self, parser: CommandParser) -> None:
        add_range_arguments(parser)
        parser.add_argument("--max-lines", type=int, default=20, help="How many differences to print")

    def handle(self, *args, first: str | None, last: str | None, max_lines: int, **options) -> None:
        days = day_range(first, last)
        differences = rollups_verify(days=days)
        for d in differences[:max_lines]:
            self.stderr.write(f"{d.table} {d.key} {d.metric}: rollup {d.rollup}, recount {d.recount}")
        if differences:
            raise CommandError(f"{len(differences)} rollup row(s) differ from raw in {days.first}..{days.last} "
                               "(manage.py analytics_rebuild restores them)")
        self.stdout.write(f"rollups match raw events for {days.first}..{days.last}")
