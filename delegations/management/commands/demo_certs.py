from pathlib import Path

from django.core.management.base import BaseCommand

from delegations import clock
from delegations.demo.tls import demo_server_certificates


class Command(BaseCommand):
    help = (
        "Write a demo CA (ca.pem) and a server certificate and key for --name (server.pem, "
        "server-key.pem) into DIRECTORY, unless there: the compose stack's directory serves "
        "StartTLS with them. For trying the stack only; at work, mount your PKI's."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("directory", type=Path)
        parser.add_argument("--name", action="append", required=True, help="A DNS name to serve")

    def handle(self, *args, **options) -> None:
        wrote = demo_server_certificates(
            options["directory"], names=options["name"], now=clock.now()
        )
        where = options["directory"]
        self.stdout.write(f"Wrote demo certificates to {where}." if wrote else f"{where} has them.")
