from django.core.management.base import BaseCommand, CommandError

from delegations import selectors
from delegations.notary import NotaryError
from delegations.services import repositories_reconcile, repository_reconcile


class Command(BaseCommand):
    help = (
        "Compare the delegations on the Notary server (a verified read) with the portal's, and "
        "report drift: keys the portal did not delegate, delegated keys missing from a role. "
        "New findings are audited and mailed to the repository's owners once; their page is "
        "/drift/. Without GUN, every repository with trust data."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("gun", nargs="?", help="e.g. dtr.example.org/dev/nginx")

    def handle(self, *args, gun: str | None = None, **options) -> None:
        if gun is None:
            reports = repositories_reconcile()
        else:
            repository = selectors.repository_by_gun(gun)
            if repository is None:
                raise CommandError(f"No repository {gun} is registered in the portal.")
            try:
                reports = [repository_reconcile(repository_id=repository.pk)]
            except NotaryError as error:
                raise CommandError(f"{gun}: the trust data cannot be read: {error}") from None
        for report in reports:
            self.stdout.write(report.summary())
            for finding in report.found:
                roles = ", ".join(finding.roles_present) or "no role"
                self.stdout.write(
                    f"  new: {finding.get_kind_display()}: {finding.canonical_key_id} "
                    f"({finding.subject or 'no certificate name'}) in {roles}"
                )
