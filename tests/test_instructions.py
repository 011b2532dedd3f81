"""The commands a delegated member is given: right for DTR, and right for any other server."""

from __future__ import annotations

import pytest

from delegations.instructions import signing_steps, witness_command
from delegations.models import DelegationRequest, Repository
from tests.factories import make_user

pytestmark = pytest.mark.django_db


def request_on(notary_url: str) -> DelegationRequest:
    repository = Repository(
        dtr_host="dtr.example.org", namespace="dev", name="nginx", notary_url=notary_url
    )
    return DelegationRequest(repository=repository, requester=make_user("bob"), team="qa")


def commands(request: DelegationRequest) -> list[str]:
    return [step.command for step in signing_steps(request)]


def test_on_dtr_docker_finds_the_notary_server_itself():
    steps = commands(request_on("https://dtr.example.org/"))
    assert steps[0] == "docker trust key load key.pem --name bob"
    assert steps[1] == "docker trust sign dtr.example.org/dev/nginx:<tag>"
    assert steps[2] == "notary -s https://dtr.example.org/ -d ~/.docker/trust key import key.pem"
    assert steps[3] == (
        "notary -s https://dtr.example.org/ -d ~/.docker/trust addhash -p dtr.example.org/dev/nginx"
        " <tag> <manifest-size> --sha256 <manifest-sha256-hex>"
        " --roles targets/releases --roles targets/qa"
    )


def test_another_notary_server_is_named_for_docker():
    steps = commands(request_on("http://127.0.0.1:4443"))
    assert steps[1] == (
        "DOCKER_CONTENT_TRUST_SERVER=http://127.0.0.1:4443 "
        "docker trust sign dtr.example.org/dev/nginx:<tag>"
    )


def test_the_witness_command_goes_to_the_repositorys_server_and_docker_s_trust_directory():
    repository = request_on("https://notary.example.org").repository
    assert witness_command(repository, ["targets/releases", "targets/qa"]) == (
        "notary -s https://notary.example.org -d ~/.docker/trust "
        "witness -p dtr.example.org/dev/nginx targets/releases targets/qa"
    )
