"""What a delegated member runs to start signing, shown on the request page and in the email."""

from __future__ import annotations

from dataclasses import dataclass

from .models import DelegationRequest
from .notary import RELEASES


@dataclass(frozen=True)
class Step:
    explanation: str
    command: str


def signing_steps(request: DelegationRequest) -> list[Step]:
    repository = request.repository
    gun = repository.gun
    notary = f"notary -s {repository.notary_url} -d ~/.docker/trust"
    roles = " ".join(f"--roles {role}" for role in request.role_names)
    steps = [
        Step(
            "Load the private key of your client bundle (key.pem) into Docker's trust store:",
            f"docker trust key load key.pem --name {request.requester.get_username()}",
        ),
        Step(
            f"Sign a tag; Docker signs into {RELEASES} and targets/{request.team} for you:",
            f"docker trust sign {gun}:<tag>",
        ),
        Step("Or, with the notary CLI, import the same key:", f"{notary} key import key.pem"),
        Step(
            "and sign an image manifest by its size and digest into both roles:",
            f"{notary} addhash -p {gun} <tag> <manifest-size> --sha256 <manifest-digest> {roles}",
        ),
    ]
    if request.renews_id is not None:
        # Role files last signed by the old key stop verifying once it leaves; the new key
        # must vouch for them before anyone can sign into those roles again.
        steps.insert(
            1,
            Step(
                "Your old key has left the roles: first re-sign what it signed, with the new key:",
                f"{notary} witness -p {gun} {' '.join(request.role_names)}",
            ),
        )
    return steps
