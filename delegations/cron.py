"""Periodic jobs, run by `manage.py rqcron delegations.cron` (RQ's cron scheduler, which writes
them as JSON: `job_format`)."""

from django.conf import settings
from rq import cron

from . import tasks
from .queueing import QUEUE

# Often: a worker that died mid-publish is found by its lease running out
# (PORTAL_STALLED_AFTER_SECONDS), and its repository must be publishing again within 30 s.
cron.register(
    tasks.waiting_publishes_resume_job,
    QUEUE,
    interval=settings.PORTAL_SWEEP_SECONDS,
    name="resume-waiting-publishes",
)
cron.register(tasks.team_access_resume_job, QUEUE, interval=60, name="resume-team-access")
cron.register(
    tasks.root_key_handovers_sweep_job, QUEUE, interval=300, name="sweep-root-key-handovers"
)
cron.register(
    tasks.audit_checkpoint_job,
    QUEUE,
    interval=settings.PORTAL_AUDIT_CHECKPOINT_HOURS * 3600,
    name="audit-checkpoint",
)
cron.register(
    tasks.unsent_notifications_resend_job, QUEUE, interval=60, name="resend-unsent-notifications"
)
cron.register(
    tasks.repositories_reconcile_job,
    QUEUE,
    interval=settings.PORTAL_RECONCILE_SECONDS,
    name="reconcile-repositories",
)
cron.register(tasks.requests_expire_job, QUEUE, interval=3600, name="expire-pending-requests")
# A delegation ends within a minute of its last day or its certificate.
cron.register(tasks.delegations_expire_job, QUEUE, interval=60, name="expire-delegations")
cron.register(tasks.reminders_send_job, QUEUE, interval=3600, name="send-reminders")
cron.register(tasks.reviews_run_job, QUEUE, interval=3600, name="run-access-reviews")
if settings.PORTAL_LDAP_URI:
    cron.register(
        tasks.directory_sync_job,
        QUEUE,
        interval=settings.PORTAL_DIRECTORY_SYNC_SECONDS,
        name="directory-sync",
    )
