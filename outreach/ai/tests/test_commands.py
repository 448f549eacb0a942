"""classify_reply: the operator tool for checking replies (draft_plan's tests: campaigns/tests/test_draft_plan.py)."""
from __future__ import annotations

import io
import json

import pytest
from django.core.management import CommandError, call_command

from outreach.ai.tests.test_commands_data import MULTIPART_OOO


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
