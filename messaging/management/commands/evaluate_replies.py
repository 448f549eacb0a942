"""`python manage.py evaluate_replies CORPUS [--ai]`: how well the inbound path reads a labelled corpus.

Prints accuracy, per-class precision and recall, stop-request precision and recall, return-date and
bounce-type accuracy and the confusion matrix. The rule classifier by default; `--ai` the model path (needs
OPENAI_API_KEY / OPENAI_BASE_URL, e.g. the OpenAI stub of simulators/openai_stub). With `--min-accuracy` /
`--min-stop-recall` / `--min-recall CLASS=R` it exits non-zero below those floors (the tests and CI use them).
The corpus format: messaging/inbound/corpus/README.md.
"""
from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.test import override_settings

from messaging.inbound.evaluation import CLASSES, Evaluation, evaluate, load_corpus


def _floor(value: str) -> float:
    number = float(value)
    if not 0.0 <= number <= 1.0:
        raise ValueError(value)
    return number


class Command(BaseCommand):
    help = "Evaluate the reply reading (rules, or --ai) on a labelled corpus (JSON lines)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("corpus", help="path to the corpus (.jsonl), e.g. messaging/inbound/corpus/replies.jsonl")
        parser.add_argument("--ai", action="store_true", help="classify through the model (OPENAI_* settings)")
        parser.add_argument("--min-accuracy", type=_floor, default=None, help="fail below this accuracy (0..1)")
        parser.add_argument("--min-stop-recall", type=_floor, default=None, help="fail below this stop recall")
        parser.add_argument("--min-recall", action="append", default=[], metavar="CLASS=R",
                            help="fail when CLASS's recall is below R (repeatable)")

    def _class_floors(self, values: list[str]) -> dict[str, float]:
        floors = {}
        for value in values:
            name, _, number = value.partition("=")
            if name not in CLASSES:
                raise CommandError(f"--min-recall {value}: unknown class {name!r} (one of {', '.join(CLASSES)})")
            try:
                floors[name] = _floor(number)
            except ValueError as exc:
                raise CommandError(f"--min-recall {value}: the floor must be a number from 0 to 1") from exc
        return floors

    def handle(self, *args, **options) -> None:
        path = Path(options["corpus"])
        if not path.is_file():
            raise CommandError(f"{path}: no such file")
        floors = self._class_floors(options["min_recall"])
        try:
            cases = load_corpus(path)
        except ValueError as exc:
            raise CommandError(f"{path}: {exc}") from exc
        if not cases:
            raise CommandError(f"{path}: the corpus is empty")
        if options["ai"] and not settings.OPENAI_API_KEY:
            raise CommandError("--ai needs OPENAI_API_KEY (and OPENAI_BASE_URL for the stub)")
        # The rule path is the rule path whatever the environment says (no key: classify_reply's rules).
        key = settings.OPENAI_API_KEY if options["ai"] else ""
        try:
            with override_settings(OPENAI_API_KEY=key):
                result = evaluate(cases)
        except (KeyError, TypeError) as exc:
            raise CommandError(f"{path}: a case lacks a field ({exc})") from exc
        self._print(result, "ai" if options["ai"] else "rules")
        self._check(result, options, floors)

    def _print(self, result: Evaluation, path: str) -> None:
        out = self.stdout.write
        out(f"reply reading ({path}): {len(result.results)} cases, accuracy {result.accuracy:.3f}")
        out(f"{'class':<12}{'precision':>10}{'recall':>8}{'support':>9}")
        for cls in CLASSES:
            precision, recall, support = result.precision_recall(cls)
            out(f"{cls:<12}{precision:>10.3f}{recall:>8.3f}{support:>9}")
        precision, recall, support = result.stop_precision_recall()
        out(f"{'stop':<12}{precision:>10.3f}{recall:>8.3f}{support:>9}")
        out(f"return dates {result.date_accuracy():.3f}, bounce types {result.bounce_type_accuracy():.3f}")
        confusion = result.confusion()
        out("confusion (rows expected, columns got):")
        out(" " * 12 + "".join(f"{cls[:10]:>11}" for cls in CLASSES))
        for expected in CLASSES:
            out(f"{expected:<12}" + "".join(f"{confusion.get((expected, got), 0):>11}" for got in CLASSES))
        misses = [f"{r.case_id} {r.expected}->{r.got}" for r in result.results if r.expected != r.got]
        missed_stops = result.stop_misses()
        if misses:
            out("misclassified: " + ", ".join(misses))
        if missed_stops:
            out("missed stop requests: " + ", ".join(missed_stops))

    def _check(self, result: Evaluation, options: dict, floors: dict[str, float]) -> None:
        failures = []
        if options["min_accuracy"] is not None and result.accuracy < options["min_accuracy"]:
            failures.append(f"accuracy {result.accuracy:.3f} < {options['min_accuracy']}")
        stop_recall = result.stop_precision_recall()[1]
        if options["min_stop_recall"] is not None and stop_recall < options["min_stop_recall"]:
            failures.append(f"stop recall {stop_recall:.3f} < {options['min_stop_recall']} "
                            f"(missed: {', '.join(result.stop_misses())})")
        for cls, floor in floors.items():
            recall = result.precision_recall(cls)[1]
            if recall < floor:
                failures.append(f"{cls} recall {recall:.3f} < {floor}")
        if failures:
            raise CommandError("below the floor: " + "; ".join(failures))
