from django.core.management.base import BaseCommand

from delegations.services import reminders_send


class Command(BaseCommand):
    help = (
        "Owe the reminders due now: certificates of active delegations expiring within "
        "PORTAL_CERTIFICATE_REMINDER_DAYS (to the member and the owners), and pending requests "
        "expiring within PORTAL_REQUEST_EXPIRY_REMINDER_HOURS (to the requester). Each is owed "
        "once, however often this runs; the worker sends them."
    )

    def handle(self, *args, **options) -> None:
        owed = len(reminders_send())
        emails = "email" if owed == 1 else "emails"
        self.stdout.write(f"{owed} reminder {emails} owed; the worker sends them.")
