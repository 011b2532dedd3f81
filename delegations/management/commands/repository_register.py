import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from rq.job import JobStatus

from delegations import queueing, selectors, services
from delegations.exceptions import InvalidInput, PortalError
from delegations.models import Repository

_DONE = {JobStatus.FINISHED, JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED}


class Command(BaseCommand):
    help = (
        "Register a DTR repository and, with --initialise, have the worker create and publish "
        "its trust data (repository keys are only ever unsealed by the worker)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "gun", help="<dtr host>/<namespace>/<name>, e.g. dtr.example.org/dev/nginx"
        )
        parser.add_argument("--notary-url", required=True, help="e.g. https://dtr.example.org")
        parser.add_argument("--owners-group", required=True, help="the group that owns it")
        parser.add_argument(
            "--approvals-required",
            type=int,
            help="how many different owners must approve a request (default 1)",
        )
        parser.add_argument(
            "--dtr-url",
            help="DTR's API when not https://<dtr host> (a proxy, another port, a stand-in)",
        )
        parser.add_argument("--initialise", action="store_true", help="initialise its trust data")
        parser.add_argument(
            "--root-certificate",
            type=Path,
            help="PEM file of the root certificate to pin, for trust set up outside the portal "
            "(without it, the first read trusts the served root)",
        )
        parser.add_argument(
            "--wait", type=float, default=120, help="seconds to wait for the worker (default 120)"
        )

    def handle(self, *args, gun: str, notary_url: str, owners_group: str, **options) -> None:
        try:
            repository = selectors.repository_by_gun(gun)
        except InvalidInput as error:
            raise CommandError(error.message) from None
        approvals = options["approvals_required"]
        try:
            if repository is None:
                dtr_host, namespace, name = selectors.split_gun(gun)
                repository = services.repository_register(
                    dtr_host=dtr_host,
                    namespace=namespace,
                    name=name,
                    notary_url=notary_url,
                    owners_group=owners_group,
                    approvals_required=approvals or 1,
                    dtr_url=options["dtr_url"] or "",
                )
                self.stdout.write(f"Registered {repository.gun}.")
            else:
                repository = services.repository_update(
                    repository_id=repository.pk,
                    notary_url=notary_url,
                    owners_group=owners_group,
                    approvals_required=approvals,
                    dtr_url=options["dtr_url"],
                )
        except InvalidInput as error:
            raise CommandError(error.message) from None
        if options["root_certificate"]:
            self._pin_root(repository, options["root_certificate"])
        if options["initialise"]:
            self._initialise(repository, wait=options["wait"])

    def _pin_root(self, repository: Repository, path: Path) -> None:
        try:
            pem = path.read_text(encoding="ascii")
        except (OSError, UnicodeDecodeError) as error:
            raise CommandError(f"Cannot read the root certificate {path}: {error}") from None
        try:
            services.repository_root_pin(repository_id=repository.pk, root_certificate_pem=pem)
        except PortalError as error:
            raise CommandError(f"The root was not pinned: {error.message}") from None
        self.stdout.write(f"Pinned the root certificate of {repository.gun}.")

    def _initialise(self, repository: Repository, *, wait: float) -> None:
        job = queueing.enqueue_repository_initialise_trust(repository.pk, None)
        deadline = time.monotonic() + wait
        while job.get_status(refresh=True) not in _DONE:
            if time.monotonic() > deadline:
                raise CommandError(
                    f"No worker initialised {repository.gun} within {wait:g}s; is "
                    "`manage.py rqworker` running? The job stays queued."
                )
            time.sleep(0.2)
        if job.get_status() != JobStatus.FINISHED:
            result = job.latest_result()
            reason = (
                result.exc_string.strip().splitlines()[-1] if result and result.exc_string else ""
            )
            raise CommandError(f"Initialising trust of {repository.gun} failed: {reason}")
        self.stdout.write(f"Trust data of {repository.gun} is on {repository.notary_url}.")
