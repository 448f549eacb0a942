"""Local stand-ins for the services the product talks to: SendGrid (`simulators.sendgrid`) and an
OpenAI-compatible model (`simulators.openai_stub`).

They are not part of the product: no app imports them, and production settings never install this app
(outreach/settings/production.py drops it). It is a Django app only so that `manage.py sendgrid_simulator`
and `manage.py ai_stub` exist in development, the demo and the tests.
"""
