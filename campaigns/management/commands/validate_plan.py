"""`python manage.py validate_plan FILE`: check a plan file against the DSL (docs/plan-dsl.md).

Exit codes: 0 valid (prints `OK`); 1 invalid (one JSON object per problem per line on stdout);
2 the file cannot be read or is not JSON (one line on stderr). `--schema` prints the JSON Schema instead.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from campaigns.dsl import plan_json_schema, validate_plan

EXIT_INVALID = 1
EXIT_UNREADABLE = 2


class Command(BaseCommand):
    help = "Validate a campaign plan JSON file; prints OK or one JSON problem per line ('-' reads stdin)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", nargs="?", help="path of the plan JSON file, or - for stdin")
        parser.add_argument("--schema", action="store_true", help="print the plan's JSON Schema and exit")
        parser.add_argument(
            "--strict-schema",
            action="store_true",
            help="with --schema: the variant for OpenAI strict structured outputs",
        )

    def handle(self, *args, file: str | None = None, schema: bool = False, strict_schema: bool = False, **options):
        if schema:
            self.stdout.write(json.dumps(plan_json_schema(strict=strict_schema), indent=2))
            return
        if not file:
            raise CommandError("give a plan FILE (or --schema)", returncode=EXIT_UNREADABLE)
        try:
            text = sys.stdin.read() if file == "-" else Path(file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            self._exit(EXIT_UNREADABLE, f"cannot read {file}: {exc.strerror if isinstance(exc, OSError) else exc}")
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            self._exit(EXIT_UNREADABLE, f"{file} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}")

        problems = validate_plan(data)
        if not problems:
            self.stdout.write("OK")
            return
        for problem in problems:
            self.stdout.write(json.dumps(problem, ensure_ascii=False))
        self._exit(EXIT_INVALID)

    def _exit(self, code: int, message: str | None = None) -> None:
        # SystemExit rather than CommandError: CommandError prefixes "CommandError:" and the exit code
        # must be exact for scripts; call_command callers see SystemExit.code.
        if message:
            self.stderr.write(message)
        self.stdout.flush()
        raise SystemExit(code)
