from django.core.management.base import BaseCommand, CommandError

from delegations.audit.chain import audit_chain_verify


class Command(BaseCommand):
    help = (
        "Check the audit log's hash chain: every event still matches its hash and follows the "
        "one before it, and the chain head names the newest event. Prints the first broken "
        "link and exits 1 if there is one. Keep the printed last hash: a later run that does "
        "not reach it means the log was rewritten."
    )

    def handle(self, *args, **options) -> None:
        verification = audit_chain_verify()
        if verification.broken is not None:
            raise CommandError(
                f"Audit chain broken. {verification.broken} "
                f"({verification.events} events before it are intact)"
            )
        self.stdout.write(
            f"Audit chain intact: {verification.events} events, last hash {verification.last_hash}"
        )
