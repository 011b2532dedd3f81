"""Periodic jobs, run by `manage.py rqcron delegations.cron` (RQ's cron scheduler)."""

from rq import cron

from .tasks import QUEUE, resume_stalled_requests

cron.register(resume_stalled_requests, QUEUE, interval=60, name="resume-stalled-requests")
