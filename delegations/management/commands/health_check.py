from django.core.management.base import BaseCommand, CommandError

from delegations.monitoring import health


class Command(BaseCommand):
    help = (
        "Run /readyz's checks (database, Redis, a live worker; --notary adds the Notary servers) "
        "and exit non-zero when one fails: the compose healthcheck of the worker and cron."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--notary", action="store_true", help="Ask the Notary servers too")
        parser.add_argument(
            "--skip", action="append", default=[], help="A check to leave out, e.g. worker"
        )

    def handle(self, *args, **options) -> None:
        checks = [
            check
            for check in health.readiness(notary=options["notary"])
            if check.name not in options["skip"]
        ]
        for check in checks:
            self.stdout.write(f"{'ok ' if check.ok else 'FAIL'} {check.name}: {check.detail}")
        failing = [check.name for check in checks if not check.ok]
        if failing:
            raise CommandError(f"Not ready: {', '.join(failing)}")
