"""Issue 11 item 8: `manage.py evaluate_replies` on the labelled corpus, with floors the suite enforces."""
from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from simulators.openai_stub.testing import ai_stub_fixture, clean_ai_redis_fixture  # noqa: F401 - pytest fixtures

CORPUS = Path(__file__).resolve().parents[1] / "inbound" / "corpus" / "replies.jsonl"

# The floors. The rules were tuned on this corpus (it measures regressions, not accuracy on unseen mail);
# stop recall and bounce recall are exact because missing either is the expensive mistake (mail after an
# opt-out; a bounce counted as a reply). Other classes get a little room for future cases.
RULE_FLOORS = ["--min-accuracy", "0.95", "--min-stop-recall", "1.0", "--min-recall", "bounce=1.0",
               "--min-recall", "ooo=0.95", "--min-recall", "negative=0.9"]


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("evaluate_replies", *args, stdout=out)
    return out.getvalue()


def test_the_rule_path_meets_the_floors_on_the_corpus_and_prints_the_matrix(settings):
    settings.OPENAI_API_KEY = "sk-would-be-used-without-the-rule-path"  # the rule path ignores it
    output = run(str(CORPUS), *RULE_FLOORS)
    assert "reply reading (rules): 142 cases" in output
    assert "confusion (rows expected, columns got):" in output
    stop_line = next(line for line in output.splitlines() if line.startswith("stop "))
    assert stop_line.split()[2] == "1.000"  # stop recall


def test_the_corpus_covers_every_class_several_languages_and_the_hard_cases():
    cases = [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines() if line.strip()]
    kinds = {c["expected"]["kind"] for c in cases}
    assert kinds == {"reply", "auto_reply", "bounce"}
    assert {"en", "de", "fr", "es", "it", "nl", "pt"} <= {c["lang"] for c in cases}
    assert any(c["expected"]["kind"] == "auto_reply" and c["expected"]["stop_request"] for c in cases)
    assert any(c["text"] is None and c["html"] for c in cases)  # HTML-only


def test_a_missed_stop_request_fails_the_floor(tmp_path):
    cases = [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines() if line.strip()]
    stop = next(c for c in cases if c["id"] == "en-stop-01")
    stop["text"] = "Thanks for reaching out."  # still labelled a stop request: the rules cannot find it
    path = tmp_path / "corpus.jsonl"
    path.write_text("\n".join(json.dumps(c) for c in cases), encoding="utf-8")
    with pytest.raises(CommandError, match=r"stop recall 0\.977 < 1\.0 \(missed: en-stop-01\)"):
        run(str(path), *RULE_FLOORS)


@pytest.mark.parametrize("args, message", [
    (["/nope.jsonl"], "no such file"),
    (["CORPUS", "--min-recall", "maybe=1"], "unknown class 'maybe'"),
])
def test_bad_arguments_are_a_readable_error(args, message):
    args = [str(CORPUS) if a == "CORPUS" else a for a in args]
    with pytest.raises(CommandError, match=message):
        run(*args)


def test_ai_without_a_key_is_a_readable_error(settings):
    settings.OPENAI_API_KEY = ""
    with pytest.raises(CommandError, match="--ai needs OPENAI_API_KEY"):
        run(str(CORPUS), "--ai")


@pytest.mark.django_db
def test_the_ai_path_goes_through_the_stub_and_keeps_every_stop_request(stub):
    output = run(str(CORPUS), "--ai", "--min-stop-recall", "1.0", "--min-accuracy", "0.85")
    assert "reply reading (ai): 142 cases" in output
    # Auto-replies and bounces skip the model; every person's reply went to it.
    assert len(stub.requests) >= 90
