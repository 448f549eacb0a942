#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""
import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "outreach.settings.base")
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    from outreach.settings.local_secrets import allow_throwaway_secrets_for

    allow_throwaway_secrets_for(sys.argv[1] if len(sys.argv) > 1 else "")
    try:
        execute_from_command_line(sys.argv)
    except ImproperlyConfigured as exc:  # settings that refuse to load (a missing secret): one readable line
        sys.exit(f"manage.py: {exc}")


if __name__ == "__main__":
    main()
