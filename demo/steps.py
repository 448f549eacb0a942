"""`python -m demo.steps anchor-clock | seed ...`: one step of the demo's set-up, in a process of its own.

The end-to-end test uses it, because its own process is bound to the test suite's Redis broker while the
processes under test use a Redis database of their own. Prints its result as JSON on the last line.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import asdict
from pathlib import Path

import django

from demo.scenario import BASE_DIR, CONTACTS_CSV


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m demo.steps")
    sub = parser.add_subparsers(dest="command", required=True)
    anchor = sub.add_parser("anchor-clock", help="anchor the shared virtual clock; prints the anchor as JSON")
    anchor.add_argument("--virtual-start", type=float, default=None, help="epoch seconds (default: now)")
    anchor.add_argument("--real-start", type=float, default=None,
                        help="wall-clock epoch seconds of an existing anchor to write back (default: now)")
    seed = sub.add_parser("seed", help="seed tenant, sender, contacts, campaign and enrol; prints JSON")
    seed.add_argument("--csv", type=Path, default=CONTACTS_CSV)
    seed.add_argument("--admin-password", default=None)
    seed.add_argument("--no-enrol", action="store_true")
    return parser


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "demo.settings")
    sys.path.insert(0, str(BASE_DIR))
    django.setup()
    # demo.seeding imports the apps' models and services: only after django.setup().
    from demo import seeding

    if args.command == "anchor-clock":
        print(json.dumps(asdict(seeding.clock_anchor(virtual_start=args.virtual_start,
                                                                real_start=args.real_start))))
        return 0
    result = seeding.demo_seed(csv_text=args.csv.read_text(encoding="utf-8"), admin_password=args.admin_password,
                               enrol=not args.no_enrol)
    print(json.dumps(asdict(result)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
