"""HTML bodies to text: inscriptis (fast, keeps the words people wrote), Python's html.parser when it fails.

inscriptis builds an lxml tree; lxml silently drops text nested 255+ levels deep, so a hostile (or badly
generated) HTML reply could hide an "unsubscribe me" from it. When inscriptis yields nothing, or much less
than a plain tag-stripping pass finds, the tag-stripping text is used instead.
"""
from __future__ import annotations

import html as html_lib
from html.parser import HTMLParser

from inscriptis import get_text

# Bodies are capped before classification (issue 11: linear time on hostile input).
MAX_HTML_CHARS = 256 * 1024
_SKIPPED = {"script", "style", "head", "title"}


class _TextCollector(HTMLParser):
    """A flat text extraction: every text node, block tags as line breaks, script/style dropped."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.chunks: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs) -> None:  # noqa: ANN001 - HTMLParser's signature
        if tag in _SKIPPED:
            self._skip += 1
        elif tag in ("br", "p", "div", "tr", "li", "blockquote", "h1", "h2", "h3"):
            self.chunks.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIPPED and self._skip:
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.chunks.append(data)


def _plain_extract(markup: str) -> str:
    collector = _TextCollector()
    try:
        collector.feed(markup)
        collector.close()
    except (AssertionError, ValueError):  # html.parser on truncated markup
        pass
    return html_lib.unescape("".join(collector.chunks))


def html_to_text(markup: str) -> str:
    """The readable text of an HTML body (capped at MAX_HTML_CHARS of markup)."""
    markup = (markup or "")[:MAX_HTML_CHARS]
    if not markup.strip():
        return ""
    try:
        text = get_text(markup) or ""
    except (ValueError, RecursionError, TypeError):
        text = ""
    plain = _plain_extract(markup)
    if len("".join(text.split())) < 0.8 * len("".join(plain.split())):
        return plain.strip()
    return text.strip()
