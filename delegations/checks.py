"""Start-up checks (`manage.py check`, run by runserver, migrate and the worker's start)."""

from __future__ import annotations

from django.core import checks
from django.core.exceptions import ImproperlyConfigured

from .intake.identity import client_ca_certificates


@checks.register(checks.Tags.security)
def ucp_ca_bundle_readable(app_configs, **kwargs) -> list[checks.CheckMessage]:
    """A UCP CA bundle that cannot be read would refuse every request; say so before serving."""
    try:
        client_ca_certificates()
    except ImproperlyConfigured as error:
        return [checks.Error(str(error), id="delegations.E001")]
    return []
