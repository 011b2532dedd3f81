from django.core.management.base import BaseCommand

from delegations import services
from delegations.audit.checkpoints import checkpoint_line


class Command(BaseCommand):
    help = (
        "Make a signed checkpoint of the audit chain now (as the cron does every "
        "PORTAL_AUDIT_CHECKPOINT_HOURS), log and mail it, and print it: keep it somewhere the "
        "portal's database is not, for audit_verify --checkpoint."
    )

    def handle(self, *args, **options) -> None:
        self.stdout.write(checkpoint_line(services.audit_checkpoint_issue()))
