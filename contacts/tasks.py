"""Celery adapters for contacts: ids in, one service call."""
from __future__ import annotations

import datetime as dt
import logging

from celery import shared_task
from django.conf import settings
from django.db import OperationalError

from contacts.services import import_job_run, import_jobs_requeue_stale

logger = logging.getLogger(__name__)


# acks_late: import_job_run resumes after the last committed batch and skips finished jobs, so a
# redelivery after a worker crash finishes the job instead of losing it or importing a row twice.
@shared_task(name="lead_analysis.import_contacts_csv", ignore_result=True, acks_late=True,
             autoretry_for=(OperationalError,), retry_backoff=5, max_retries=5)
def import_contacts_csv(import_job_id: int) -> None:
    job = import_job_run(import_job_id=import_job_id)
    if job is None:
        logger.info("import job %s is gone", import_job_id)
        return
    logger.info("import job %s: %s, %s imported, %s rows with errors", job.pk, job.status, job.imported_rows,
                job.error_rows)


@shared_task(name="lead_analysis.requeue_stale_imports", ignore_result=True)
def requeue_stale_imports() -> None:
    """Beat: import jobs still queued long after they were created get their job published again."""
    import_jobs_requeue_stale(older_than=dt.timedelta(seconds=settings.STALE_WORK_REQUEUE_AFTER_SECONDS))
