"""What a delegated member runs to start signing, shown on the request page and in the email.

Every value placed in a command is shell-quoted: a name from the directory or a server URL
could hold a character the shell would act on, and these lines are copied into terminals."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from shlex import quote

from .models import DelegationRequest, Repository
from .notary import RELEASES


@dataclass(frozen=True)
class Step:
    explanation: str
    command: str


def notary_cli(repository: Repository) -> str:
    """The notary CLI aimed at the repository's server, sharing Docker's trust directory (where
    `docker trust key load` put the key)."""
    return f"notary -s {quote(repository.notary_url)} -d ~/.docker/trust"


def witness_command(repository: Repository, role_names: Iterable[str]) -> str:
    """What a remaining signer runs to re-sign role files as they stand, vouching for their tags
    again: after a key leaves, files it alone signed stop verifying."""
    roles = " ".join(quote(role) for role in role_names)
    return f"{notary_cli(repository)} witness -p {quote(repository.gun)} {roles}"


def signing_steps(request: DelegationRequest) -> list[Step]:
    repository = request.repository
    gun = quote(repository.gun)
    notary = notary_cli(repository)
    roles = " ".join(f"--roles {quote(role)}" for role in request.role_names)
    # Docker finds a registry's Notary at https://<registry host>, which is where DTR serves it;
    # any other server has to be named.
    docker_server = (
        ""
        if repository.notary_url.rstrip("/") == f"https://{repository.dtr_host}"
        else f"DOCKER_CONTENT_TRUST_SERVER={quote(repository.notary_url)} "
    )
    steps = [
        Step(
            "Load the private key of your client bundle (key.pem) into Docker's trust store:",
            f"docker trust key load key.pem --name {quote(request.requester.get_username())}",
        ),
        Step(
            f"Sign a tag; Docker signs into {RELEASES} and targets/{request.team} for you:",
            f"{docker_server}docker trust sign {gun}:<tag>",
        ),
        Step("Or, with the notary CLI, import the same key:", f"{notary} key import key.pem"),
        Step(
            "and sign an image manifest by its size and SHA-256 (hex) into both roles:",
            f"{notary} addhash -p {gun} <tag> <manifest-size> --sha256 <manifest-sha256-hex> "
            f"{roles}",
        ),
    ]
    if request.renews_id is not None:
        # Role files last signed by the old key stop verifying once it leaves; the new key
        # must vouch for them before anyone can sign into those roles again.
        steps.insert(
            1,
            Step(
                "Your old key has left the roles: first re-sign what it signed, with the new key:",
                witness_command(repository, request.role_names),
            ),
        )
    return steps
