from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from delegations.audit.chain import audit_chain_verify
from delegations.audit.checkpoints import checkpoint_problem, checkpoints_in


class Command(BaseCommand):
    help = (
        "Check the audit log's keyed hash chain: every event still matches its hash under "
        "PORTAL_AUDIT_KEY and follows the one before it, and the chain head names the newest "
        "event. With --checkpoint FILE (logs or saved mails holding signed checkpoints), also "
        "check that the chain still holds what each checkpoint saw: a rewrite or a cut-off tail "
        "is found even if the chain head was edited too. Exits 1 on the first problem."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--checkpoint",
            action="append",
            default=[],
            type=Path,
            help="A file holding checkpoints (JSON lines, as logged or mailed); repeatable",
        )

    def handle(self, *args, **options) -> None:
        verification = audit_chain_verify()
        if verification.broken is not None:
            raise CommandError(
                f"Audit chain broken. {verification.broken} "
                f"({verification.events} events before it are intact)"
            )
        checked = 0
        for path in options["checkpoint"]:
            try:
                checkpoints = checkpoints_in(path.read_text(errors="replace"))
            except OSError as error:
                raise CommandError(f"Cannot read {path}: {error.strerror}") from None
            if not checkpoints:
                raise CommandError(f"{path} holds no audit checkpoint.")
            for checkpoint in checkpoints:
                problem = checkpoint_problem(checkpoint)
                if problem is not None:
                    raise CommandError(
                        f"Audit log does not match the checkpoint of {checkpoint.get('time')} "
                        f"in {path}: {problem}"
                    )
                checked += 1
        against = f", and matches {checked} checkpoints" if checked else ""
        self.stdout.write(
            f"Audit chain intact: {verification.events} events, last hash "
            f"{verification.last_hash}{against}"
        )
