"""The mail-reading libraries loaded when a Celery worker starts, not on the first reply it reads.

lingua builds its language models (~1 s), dateparser imports and loads its language data (~1 s), and
quotequail, mail-parser-reply, inscriptis and flufl.bounce compile their patterns on first use. Paid lazily,
that lands on the first reply of every new worker process, on the `webhooks` queue that also carries
opt-outs and bounces. Connected in messaging's AppConfig to Celery's `worker_init` (the main process: a
prefork pool's children inherit what it loaded, and a solo or threads pool runs in it) and
`worker_process_init` (each pool process; what was inherited is cached, so this is quick). Web processes
never load them.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from email.message import EmailMessage

from messaging.inbound import language, return_dates
from messaging.inbound.bounces import bounce_detect
from messaging.inbound.html_text import html_to_text
from messaging.inbound.quotes import new_text

logger = logging.getLogger(__name__)

_QUOTED = "Thanks, sounds good.\n\nOn Mon, 2 Mar 2026 at 10:14, Mara <mara@example.com> wrote:\n> Hi Dana,\n> hello"


def _bounce_notice() -> EmailMessage:
    notice = EmailMessage()
    notice["From"] = "MAILER-DAEMON@mx.example.com"
    notice["Subject"] = "Undelivered Mail Returned to Sender"
    notice.set_content("550 5.1.1 <dana@example.com>: Recipient address rejected: User unknown")
    return notice


def _bounces() -> None:
    notice = _bounce_notice()
    bounce_detect(message=notice, from_email="mailer-daemon@mx.example.com", subject=str(notice["Subject"]),
                  text=notice.get_content())


LOADERS: dict[str, Callable[[], None]] = {
    "lingua": language.warm_up,
    "dateparser": return_dates.warm_up,
    "quotequail+mail-parser-reply": lambda: new_text(_QUOTED),
    "inscriptis": lambda: html_to_text("<div><p>Hello <b>there</b></p></div>"),
    "flufl.bounce": _bounces,
}


def inbound_readers_warm_up() -> list[str]:
    """Run every loader; returns the names of those that loaded. A loader that fails is logged and skipped:
    the library then loads on first use as before, and the worker still starts."""
    loaded = []
    for name, loader in LOADERS.items():
        try:
            loader()
        except Exception:  # noqa: BLE001 - a warm-up must never stop a worker from starting
            logger.exception("warming up %s failed; it will load on first use", name)
            continue
        loaded.append(name)
    return loaded


def on_worker_start(**_signal_kwargs: object) -> None:
    """Receiver of Celery's worker_init / worker_process_init signals."""
    loaded = inbound_readers_warm_up()
    logger.info("mail-reading libraries loaded: %s", ", ".join(loaded))
