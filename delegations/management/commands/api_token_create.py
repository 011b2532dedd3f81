from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from delegations import services
from delegations.exceptions import PortalError


class Command(BaseCommand):
    help = (
        "Make an API token for USER (a pipeline's account, say) and print it: it acts as that "
        "user, with the rights the directory gives them. The secret is shown this once."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("user", help="The username the token acts as")
        parser.add_argument("--name", required=True, help="What will use it")
        parser.add_argument(
            "--expires-days", type=int, default=None, help="Days until it expires (none: never)"
        )

    def handle(self, *args, **options) -> None:
        user = get_user_model().objects.filter(username=options["user"]).first()
        if user is None:
            raise CommandError(
                f"No account {options['user']!r} in the portal (directory users appear once "
                "they have logged in or the directory sync has seen them)."
            )
        try:
            token, secret = services.api_token_create(
                user=user, name=options["name"], expires_days=options["expires_days"]
            )
        except PortalError as error:
            raise CommandError(error.message) from None
        expiry = token.expires_at.isoformat() if token.expires_at else "never"
        self.stderr.write(f"Token {token.name} for {user.get_username()}, expires {expiry}.")
        self.stdout.write(secret)
