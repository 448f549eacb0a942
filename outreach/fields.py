"""Model fields shared by the apps."""
from __future__ import annotations

from django.db import models

from outreach import clock


class ClockDateTimeField(models.DateTimeField):
    """A DateTimeField whose auto_now / auto_now_add read `outreach.clock`, not the wall clock.

    Every timestamp the system writes then comes from one clock, so the demo's fast virtual clock never
    mixes with wall time in a comparison (an opt-out's `created_at` against a message's `sent_at`).
    """

    def pre_save(self, model_instance, add):
        if self.auto_now or (self.auto_now_add and add):
            value = clock.now()
            setattr(model_instance, self.attname, value)
            return value
        return super().pre_save(model_instance, add)
