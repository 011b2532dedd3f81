"""`manage.py directory_sync`: run the directory sync now (it also runs on its schedule)."""

from django.core.management.base import BaseCommand, CommandError

from delegations import directory, services


class Command(BaseCommand):
    help = (
        "End the delegations of members who left a team or whose account is disabled in the "
        "LDAP directory, and disable those accounts in the portal."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--force",
            action="store_true",
            help="End them even when there are more than PORTAL_DIRECTORY_SYNC_MAX_ENDINGS.",
        )

    def handle(self, *args, force: bool, **options):
        if not directory.configured():
            raise CommandError("No directory is set up (PORTAL_LDAP_URI is empty).")
        try:
            report = services.directory_sync(force=force)
        except directory.DirectoryUnavailable as error:
            raise CommandError(f"The directory cannot be read, nothing changed: {error}") from None
        for ending in report.endings:
            self.stdout.write(
                f"{'would end' if report.held else 'ending'}: {ending.member}'s delegation on "
                f"{ending.repository} (team {ending.team}): {ending.reason}"
            )
        self.stdout.write(report.summary())
        if report.held:
            raise CommandError("Held; look at the list above, then run again with --force.")
