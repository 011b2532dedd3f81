import getpass
import os
import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from delegations import selectors, services
from delegations.exceptions import InvalidInput, PortalError
from delegations.models import KeyRole, Repository
from delegations.notary import InvalidKey, key_file_info
from delegations.notary.keyfiles import MAX_KEY_FILE_BYTES

# The variables the notary CLI reads, so an owner's existing environment just works.
PASSPHRASE_VARIABLES = {
    KeyRole.TARGETS.value: "NOTARY_TARGETS_PASSPHRASE",
    KeyRole.SNAPSHOT.value: "NOTARY_SNAPSHOT_PASSPHRASE",
}


class Command(BaseCommand):
    help = (
        "Import the targets (or snapshot) key of a repository whose trust was set up with the "
        "notary CLI or docker trust, from its trust directory (~/.notary/private/<id>.key). "
        "The passphrase is read from the environment or asked for, never from the command line."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("gun", help="the registered repository, e.g. dtr.example.org/dev/nginx")
        parser.add_argument("file", help="the private key file, e.g. ~/.notary/private/<id>.key")
        parser.add_argument(
            "--role", choices=list(PASSPHRASE_VARIABLES), default=KeyRole.TARGETS.value
        )
        parser.add_argument(
            "--passphrase-env",
            metavar="NAME",
            help="the environment variable holding the passphrase (default "
            "NOTARY_TARGETS_PASSPHRASE or NOTARY_SNAPSHOT_PASSPHRASE, by role); without it the "
            "passphrase is asked for",
        )

    def handle(self, *args, gun: str, file: str, role: str, **options) -> None:
        repository = self._repository(gun)
        key_file = self._read(Path(file).expanduser())
        try:
            info = key_file_info(key_file)
        except InvalidKey as error:
            raise CommandError(f"{file}: {error.message}") from None
        variable = options["passphrase_env"] or PASSPHRASE_VARIABLES[role]
        passphrase = self._passphrase(variable, file) if info.encrypted else ""
        for note in info.mismatches(gun=repository.gun, role=role):
            self.stderr.write(f"Warning: {note}")
        try:
            stored = services.repository_key_import(
                repository_id=repository.pk, role=role, key_file=key_file, passphrase=passphrase
            )
        except PortalError as error:
            raise CommandError(f"Nothing was imported: {error.message}") from None
        self.stdout.write(
            f"Imported the {role} key {stored.canonical_key_id} of {repository.gun}, sealed "
            f"under key-encryption key {stored.key_encryption_key_id}."
        )

    def _repository(self, gun: str) -> Repository:
        try:
            repository = selectors.repository_by_gun(gun)
        except InvalidInput as error:
            raise CommandError(error.message) from None
        if repository is None:
            raise CommandError(
                f"{gun} is not registered in the portal; run `manage.py repository_register` first"
            )
        return repository

    def _read(self, path: Path) -> bytes:
        try:
            with path.open("rb") as handle:
                data = handle.read(MAX_KEY_FILE_BYTES + 1)
        except OSError as error:
            raise CommandError(f"Cannot read {path}: {error.strerror or error}") from None
        return data

    def _passphrase(self, variable: str, file: str) -> str:
        passphrase = os.environ.get(variable)
        if passphrase:
            return passphrase
        if not sys.stdin.isatty():
            raise CommandError(
                f"{file} is encrypted: set its passphrase in {variable} or run the command in a "
                "terminal to be asked for it"
            )
        try:
            return getpass.getpass(f"Passphrase for {file}: ")
        except (EOFError, KeyboardInterrupt):
            raise CommandError("No passphrase given; nothing was imported") from None
