from django.core.management.base import BaseCommand

from delegations import keystore


class Command(BaseCommand):
    help = (
        "Print a new sealing key pair: PORTAL_KEY_UNSEALING_KEYS (private, the worker's only) and "
        "PORTAL_KEY_SEALING_KEY (public, for the web process and the worker)."
    )

    def handle(self, *args, **options) -> None:
        pair = keystore.generate_key_pair()
        # The private half goes to stdout only, for the operator to put into the worker's
        # secret store; it is never logged or kept.
        self.stdout.write(f"PORTAL_KEY_UNSEALING_KEYS={pair.unsealing_key}")
        self.stdout.write(f"PORTAL_KEY_SEALING_KEY={pair.sealing_key}")
        self.stdout.write(f"# sealing key ID {keystore.sealing_key_id_of(pair.sealing_key)}")
