"""Show what retention keeps and what goes next (per partition); with --apply, drop what is due."""
from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from outreach import clock
from outreach.retention import DROP, PartitionFate, retention_plan, retention_run


def fate_line(fate: PartitionFate) -> str:
    span = f"{fate.start:%Y-%m-%d} .. {fate.end:%Y-%m-%d}" if fate.start and fate.end else "default"
    return (f"{fate.table:<20} {fate.partition:<34} {span:<24} ~{fate.rows:>11,} rows "
            f"{fate.megabytes:>10.1f} MB  {fate.fate:<4}  {fate.reason}")


class Command(BaseCommand):
    help = ("List every time partition with what the next retention run does with it (keep, drop, held "
            "and why). --apply drops the partitions that are due, as the daily task does.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--apply", action="store_true", help="Drop the partitions marked drop")

    def handle(self, *args, apply: bool, **options) -> None:
        now = clock.now()
        for table, days in settings.RETENTION_DAYS.items():
            self.stdout.write(f"{table}: kept {days} days")
        plan = retention_plan(now=now)
        for fate in plan:
            self.stdout.write(fate_line(fate))
        if not apply:
            due = sum(1 for fate in plan if fate.fate == DROP)
            self.stdout.write(f"{due} partition(s) would be dropped; run with --apply to drop them.")
            return
        dropped = retention_run(now=now)
        self.stdout.write(f"dropped {len(dropped)} partition(s): {', '.join(f.partition for f in dropped) or '-'}")
