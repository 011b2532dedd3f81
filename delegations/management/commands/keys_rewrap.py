from django.core.management.base import BaseCommand, CommandError

from delegations import keystore, services


class Command(BaseCommand):
    help = (
        "Re-seal every repository key under the first key of PORTAL_KEY_ENCRYPTION_KEYS, so the "
        "others can be retired. Put the new key first, keep the old ones, run this, then drop them."
    )

    def handle(self, *args, **options) -> None:
        try:
            count = services.repository_keys_rewrap()
        except keystore.KeystoreError as error:
            raise CommandError(f"Re-sealing stopped, nothing was changed: {error}") from None
        current = keystore.current_key_encryption_key_id()
        self.stdout.write(f"Re-sealed {count} repository keys under key-encryption key {current}.")
