"""Periodic jobs, run by `manage.py rqcron delegations.cron` (RQ's cron scheduler)."""

from django.conf import settings
from rq import cron

from .tasks import (
    QUEUE,
    expire_pending_requests,
    resend_unsent_notifications,
    resume_stalled_endings,
    resume_stalled_requests,
    send_reminders,
    sync_directory,
)

cron.register(resume_stalled_requests, QUEUE, interval=60, name="resume-stalled-requests")
cron.register(resend_unsent_notifications, QUEUE, interval=60, name="resend-unsent-notifications")
cron.register(expire_pending_requests, QUEUE, interval=3600, name="expire-pending-requests")
cron.register(resume_stalled_endings, QUEUE, interval=60, name="resume-stalled-endings")
cron.register(send_reminders, QUEUE, interval=3600, name="send-reminders")
if settings.PORTAL_LDAP_URI:
    cron.register(
        sync_directory,
        QUEUE,
        interval=settings.PORTAL_DIRECTORY_SYNC_SECONDS,
        name="directory-sync",
    )
