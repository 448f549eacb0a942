"""classify_reply: the operator tool for checking how a reply is classified (raw RFC 822 or plain text)."""
from __future__ import annotations

import io
import json

import pytest
from django.core.management import CommandError, call_command

MULTIPART_OOO = (
    b"From: Dana Schmidt <dana@acme.example>\r\n"
    b"To: sam@shipfast.example\r\n"
    b"Subject: =?utf-8?q?Automatische_Antwort=3A_Kurze_Idee_f=C3=BCr_Acme?=\r\n"
    b"Date: Tue, 01 Dec 2026 10:00:00 +0100\r\n"
    b"Auto-Submitted: auto-replied\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: multipart/alternative; boundary=\"b1\"\r\n"
    b"\r\n"
    b"--b1\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: quoted-printable\r\n"
    b"\r\n"
    b"Vielen Dank f=C3=BCr Ihre Nachricht. Ich bin bis zum 14.12. nicht im B=C3=BCro.\r\n"
    b"--b1\r\n"
    b"Content-Type: text/html; charset=utf-8\r\n"
    b"\r\n"
    b"<p>Vielen Dank. Ich bin bis zum 14.12. nicht im B&uuml;ro.</p>\r\n"
    b"--b1--\r\n"
)


@pytest.fixture
def no_key(settings):
    settings.OPENAI_API_KEY = ""


def _classify(tmp_path, content: bytes | str, *extra) -> dict:
    path = tmp_path / "reply.eml"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    out = io.StringIO()
    call_command("classify_reply", str(path), *extra, stdout=out)
    return json.loads(out.getvalue())


def test_classify_reply_reads_a_raw_mime_message(no_key, tmp_path):
    assert _classify(tmp_path, MULTIPART_OOO) == {
        "label": "ooo", "confidence": 0.97, "stop_request": False, "return_date": "2026-12-15"}


def test_classify_reply_reads_plain_text(no_key, tmp_path):
    result = _classify(tmp_path, "Bitte nehmen Sie mich aus Ihrem Verteiler.\n")
    assert set(result) == {"label", "confidence", "stop_request", "return_date"}
    assert (result["label"], result["stop_request"], result["return_date"]) == ("negative", True, None)
    explained = _classify(tmp_path, "Sounds good, let's talk on Friday.", "--explain")
    assert explained["label"] == "positive" and explained["source"] == "rules"


def test_classify_reply_refuses_a_missing_or_empty_file(no_key, tmp_path):
    with pytest.raises(CommandError, match="no such file"):
        call_command("classify_reply", str(tmp_path / "nope.eml"))
    (tmp_path / "empty.txt").write_text("  \n")
    with pytest.raises(CommandError, match="empty"):
        call_command("classify_reply", str(tmp_path / "empty.txt"))
