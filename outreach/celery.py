"""The one Celery app. Queues and routes come from settings (CELERY_TASK_QUEUES / _ROUTES).

Task naming convention: "<queue>.<action>", so the prefix route sends each task
to its workload's queue without a per-task table.
"""
import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "outreach.settings.base")

app = Celery("outreach")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# AI work (lead analysis, plan generation) lives in `ai_tasks.py` modules of each app.
app.autodiscover_tasks(related_name="ai_tasks")
# The project package is not an installed app: name it so its diagnostics (outreach/tasks.py) register.
app.autodiscover_tasks(["outreach"])
# ... and its storage upkeep (outreach/storage_tasks.py: partitions ahead, retention).
app.autodiscover_tasks(["outreach"], related_name="storage_tasks")
