from django.core.management.base import BaseCommand, CommandError

from delegations import services
from delegations.exceptions import PortalError
from delegations.models import Repository
from delegations.notary import NotaryError


class Command(BaseCommand):
    help = "Register a DTR repository and, with --initialise, create and publish its trust data."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "gun", help="<dtr host>/<namespace>/<name>, e.g. dtr.example.org/dev/nginx"
        )
        parser.add_argument("--notary-url", required=True, help="e.g. https://dtr.example.org")
        parser.add_argument("--owners-group", required=True, help="the group that owns it")
        parser.add_argument("--initialise", action="store_true", help="initialise its trust data")

    def handle(
        self, *args, gun: str, notary_url: str, owners_group: str, initialise: bool, **options
    ):
        try:
            dtr_host, namespace, name = gun.split("/")
        except ValueError:
            raise CommandError(f"{gun!r} is not <dtr host>/<namespace>/<name>") from None
        repository = Repository.objects.filter(
            dtr_host=dtr_host, namespace=namespace, name=name
        ).first()
        if repository is None:
            repository = services.repository_register(
                dtr_host=dtr_host,
                namespace=namespace,
                name=name,
                notary_url=notary_url,
                owners_group=owners_group,
            )
            self.stdout.write(f"Registered {repository.gun}.")
        else:
            repository = services.repository_update(
                repository_id=repository.pk, notary_url=notary_url, owners_group=owners_group
            )
        if initialise:
            try:
                repository = services.repository_initialise_trust(repository_id=repository.pk)
            except (PortalError, NotaryError) as error:
                raise CommandError(f"Initialising trust of {gun} failed: {error}") from None
            self.stdout.write(f"Trust data of {repository.gun} is on {repository.notary_url}.")
