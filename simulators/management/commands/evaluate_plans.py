"""`python manage.py evaluate_plans [--contacts CSV] [--fault-rate R] [--seed N] [--built-in-only]`.

Prints, for the built-in planner and for the AI path against the model-like stub, how many plans are
valid and pass the copy checks, their touches and span, language match, personalisation and distinct
bodies (simulators/plan_evaluation.py). A CSV that cannot be used: one line on stderr, exit 2.
"""
from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from simulators.plan_evaluation import (
    DEFAULT_CONTACTS,
    ContactsFileError,
    contacts_from_csv,
    evaluate_ai,
    evaluate_built_in,
)


def _rate(value: str) -> float:
    rate = float(value)
    if not 0.0 <= rate <= 1.0:
        raise ValueError(value)
    return rate


class Command(BaseCommand):
    help = "Score the built-in planner's and the AI path's plans for a set of contacts."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--contacts", type=Path, default=DEFAULT_CONTACTS, help="CSV of contacts")
        parser.add_argument("--fault-rate", type=_rate, default=0.3,
                            help="share of first answers the model-like stub gets wrong (0..1)")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--built-in-only", action="store_true", help="skip the AI path")

    def handle(self, *args, **options) -> None:
        try:
            contacts = contacts_from_csv(options["contacts"])
        except ContactsFileError as exc:
            raise CommandError(str(exc), returncode=2) from exc
        for line in evaluate_built_in(contacts).lines("built-in planner"):
            self.stdout.write(line)
        if options["built_in_only"]:
            return
        run = evaluate_ai(contacts, fault_rate=options["fault_rate"], seed=options["seed"])
        for line in run.figures.lines(f"AI path (model-like stub, fault rate {options['fault_rate']:g}, "
                                      f"seed {options['seed']})"):
            self.stdout.write(line)
        sources = ", ".join(f"{name} {count}" for name, count in sorted(run.sources.items()))
        self.stdout.write(f"  sources: {sources}")
