"""Start-up checks (`manage.py check`, run by runserver, migrate and the worker's start)."""

from __future__ import annotations

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured

from . import keystore
from .intake.identity import client_ca_certificates


@checks.register(checks.Tags.security)
def ucp_ca_bundle_readable(app_configs, **kwargs) -> list[checks.CheckMessage]:
    """A UCP CA bundle that cannot be read would refuse every request; say so before serving."""
    try:
        client_ca_certificates()
    except ImproperlyConfigured as error:
        return [checks.Error(str(error), id="delegations.E001")]
    return []


@checks.register()
def publish_lease_outlives_a_notary_call(app_configs, **kwargs) -> list[checks.CheckMessage]:
    """A lease shorter than one Notary call would pass to another worker while its holder is
    merely waiting for an answer: every slow publish would be abandoned half-way."""
    stalled, timeout = settings.PORTAL_STALLED_AFTER_SECONDS, settings.PORTAL_NOTARY_TIMEOUT
    if stalled <= timeout:
        return [
            checks.Error(
                f"PORTAL_STALLED_AFTER_SECONDS ({stalled}) must exceed PORTAL_NOTARY_TIMEOUT "
                f"({timeout:g}): a worker waiting on Notary would be taken for dead.",
                id="delegations.E002",
            )
        ]
    return []


@checks.register(checks.Tags.security)
def sealing_key_opens_here(app_configs, **kwargs) -> list[checks.CheckMessage]:
    """A process that opens keys (the worker) must seal to a key it can open: otherwise a typo in
    PORTAL_KEY_SEALING_KEY would seal every new repository key to a key nobody holds."""
    if settings.PORTAL_KEY_UNSEALING_KEYS and not keystore.can_unseal_current():
        return [
            checks.Error(
                "PORTAL_KEY_SEALING_KEY is not the public half of any key in "
                "PORTAL_KEY_UNSEALING_KEYS: keys sealed here could not be opened.",
                id="delegations.E003",
            )
        ]
    return []
