"""Management commands an administrator runs."""

import pytest
from django.core.management import CommandError, call_command

from delegations import keystore, services, trust
from delegations.models import AuditEvent, Repository, RequestStatus
from tests.factories import submit_request


@pytest.mark.services
def test_registering_with_initialise_has_the_worker_publish_trust(
    rq_worker, notary_url, notary_cli, capsys
):
    call_command(
        "repository_register",
        "dtr.example.org/ops/api",
        notary_url=notary_url,
        owners_group="owners:ops/api",
        initialise=True,
        wait=60,
    )
    repository = Repository.objects.get(namespace="ops", name="api")
    assert repository.trust_initialised_at is not None
    assert repository.keys.count() == 2
    assert "Trust data of dtr.example.org/ops/api is on" in capsys.readouterr().out
    assert "No targets present" in notary_cli.run("list", repository.gun).stdout
    assert trust.fetch(repository, now=repository.trust_initialised_at).targets.signed.version == 1


@pytest.mark.services
def test_without_a_worker_the_command_says_what_is_missing(transactional_db, rq_queue, notary_url):
    with pytest.raises(CommandError, match=r"is `manage\.py rqworker` running"):
        call_command(
            "repository_register",
            "dtr.example.org/ops/web",
            notary_url=notary_url,
            owners_group="owners:ops/web",
            initialise=True,
            wait=1,
        )
    assert not Repository.objects.get(name="web").keys.exists()


def test_a_malformed_name_is_refused(db):
    with pytest.raises(CommandError, match="is not <dtr host>/<namespace>/<name>"):
        call_command("repository_register", "nginx", notary_url="https://x", owners_group="o")


def test_rotating_the_sealing_key_keeps_repositories_usable(repository, people, settings, capsys):
    old = settings.PORTAL_KEY_UNSEALING_KEYS[0]
    new = keystore.generate_key_pair()
    settings.PORTAL_KEY_SEALING_KEY = new.sealing_key
    with pytest.raises(CommandError, match="no private half"):
        call_command("keys_rewrap")  # sealing to a key nobody here holds is refused
    settings.PORTAL_KEY_UNSEALING_KEYS = [old, new.unsealing_key]

    call_command("keys_rewrap")
    assert "Re-sealed 2 repository keys" in capsys.readouterr().out
    assert AuditEvent.objects.filter(action="repository.key_resealed").count() == 2
    call_command("keys_rewrap")
    assert "Re-sealed 0 repository keys" in capsys.readouterr().out

    settings.PORTAL_KEY_UNSEALING_KEYS = [new.unsealing_key]  # the old key is retired
    request = submit_request(repository, people["bob"])
    services.request_approve(request_id=request.pk, acting_user=people["alice"])
    assert services.request_apply(request_id=request.pk).status == RequestStatus.DELEGATED
