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
