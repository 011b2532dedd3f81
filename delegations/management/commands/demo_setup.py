"""The demo of `make run`: accounts, teams, one repository with its trust initialised, and a UCP
client bundle per account, issued by a demo UCP client CA."""

from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.core.management.base import BaseCommand

from delegations import clock
from delegations.demo.bundles import ClientCA, write_demo_bundles

DEMO_PASSWORD = "demo"  # noqa: S105 - the documented password of the demo accounts
DEMO_GUN = "dtr.example.org/dev/nginx"
DEMO_OWNERS = "owners:dev/nginx"
# username → (teams, owns the demo repository)
DEMO_PEOPLE = {
    "alice": (["it-ops"], True),
    "bob": (["qa"], False),
    "carol": (["qa"], False),
    "dave": (["dev"], False),
}


class Command(BaseCommand):
    help = "Create the demo accounts (password 'demo') and the demo repository. Idempotent."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--notary-url", default="http://127.0.0.1:4443")
        parser.add_argument("--dtr-url", help="DTR's API (make run's stand-in) for the repository")
        parser.add_argument(
            "--bundles",
            type=Path,
            help="Write a UCP-like client bundle zip per account here, issued by the demo UCP "
            "client CA (ca.pem beside it); PORTAL_UCP_CA_BUNDLE should name that ca.pem.",
        )

    def handle(
        self, *args, notary_url: str, dtr_url: str | None, bundles: Path | None, **options
    ) -> None:
        if not settings.DEBUG:
            self.stderr.write("Demo accounts with a known password are only made in debug mode.")
            return
        # Accounts and groups belong to Django's auth, not to the portal's domain, so this seeding
        # writes them directly rather than through a service.
        users = get_user_model()
        prefix = settings.PORTAL_TEAM_GROUP_PREFIX
        owners, _ = Group.objects.get_or_create(name=DEMO_OWNERS)
        for username, (teams, is_owner) in DEMO_PEOPLE.items():
            user, created = users.objects.get_or_create(
                username=username,
                defaults={"email": f"{username}@example.org", "first_name": username.title()},
            )
            if created:
                user.set_password(DEMO_PASSWORD)
                user.save(update_fields=["password"])
            for team in teams:
                user.groups.add(Group.objects.get_or_create(name=f"{prefix}{team}")[0])
            if is_owner:
                user.groups.add(owners)
        call_command(
            "repository_register",
            DEMO_GUN,
            notary_url=notary_url,
            dtr_url=dtr_url,
            owners_group=DEMO_OWNERS,
            initialise=True,
            stdout=self.stdout,
        )
        if bundles is not None:
            self._write_bundles(bundles)

    def _write_bundles(self, directory: Path) -> None:
        now = clock.now()
        ca, _ = ClientCA.load_or_create(directory / "ca", now=now)
        paths = write_demo_bundles(directory, ca, list(DEMO_PEOPLE), now=now)
        self.stdout.write(f"Demo client bundles: {', '.join(path.name for path in paths)}")
