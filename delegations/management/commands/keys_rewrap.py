from django.core.management.base import BaseCommand, CommandError

from delegations import keystore, services


class Command(BaseCommand):
    help = (
        "Re-seal every repository key to PORTAL_KEY_SEALING_KEY, so older unsealing keys (and "
        "PORTAL_KEY_ENCRYPTION_KEYS from before sealing became asymmetric) can be retired. Run it "
        "with the worker's settings: the old and the new unsealing keys both configured."
    )

    def handle(self, *args, **options) -> None:
        try:
            count = services.repository_keys_rewrap()
        except keystore.KeystoreError as error:
            raise CommandError(f"Re-sealing stopped, nothing was changed: {error}") from None
        current = keystore.current_key_encryption_key_id()
        if count or options["verbosity"]:
            self.stdout.write(f"Re-sealed {count} repository keys to sealing key {current}.")
