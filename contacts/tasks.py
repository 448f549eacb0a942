"""Celery adapters for contacts: ids in, one service call."""
from __future__ import annotations

import datetime as dt
import logging

from celery import shared_task
from django.conf import settings
from django.db import OperationalError

from contacts.imports import import_job_run, import_jobs_requeue_stale
from outreach.queues import TaskName

logger = logging.getLogger(__name__)


# acks_late: import_job_run resumes after the last committed batch and skips finished jobs, so a
# redelivery after a worker crash finishes the job instead of losing it or importing a row twice.
# Limits: a job's batches of IMPORT_BATCH_SIZE rows commit one by one, so a 100k-row file (the maximum) is
# ~200 short batches; a run cut off by the limit resumes after its last committed batch on redelivery.
@shared_task(name=TaskName.IMPORT_CONTACTS_CSV, ignore_result=True, acks_late=True,
             autoretry_for=(OperationalError,), retry_backoff=5, max_retries=5,
             soft_time_limit=25 * 60, time_limit=30 * 60)
def import_contacts_csv(import_job_id: int) -> None:
    job = import_job_run(import_job_id=import_job_id)
    if job is None:
        logger.info("import job %s is gone", import_job_id)
        return
    logger.info("import job %s: %s, %s imported, %s rows with errors", job.pk, job.status, job.imported_rows,
                job.error_rows)


@shared_task(name=TaskName.REQUEUE_STALE_IMPORTS, ignore_result=True, soft_time_limit=60, time_limit=90)
def requeue_stale_imports() -> None:
    """Beat: import jobs still queued long after they were created get their job published again."""
    import_jobs_requeue_stale(older_than=dt.timedelta(seconds=settings.STALE_WORK_REQUEUE_AFTER_SECONDS))
