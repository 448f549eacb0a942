"""Fixtures (data) for test_commands.py."""

AI_PLAN = {
    "version": "1.0", "timezone": "Europe/Berlin", "quietHours": None, "sendDays": None, "startNodeId": "intro",
    "nodes": [
        {"id": "intro", "type": "send", "channel": "email",
         "message": {"subject": "Onboarding at Acme", "text": "Hi Dana,\n\nA short idea on onboarding. Demo?\n\nSam",
                     "html": None},
         "transitions": [{"on": "no_reply", "after": "P4D", "to": "done", "within": None}]},
        {"id": "done", "type": "stop", "reason": "completed"},
    ],
}
