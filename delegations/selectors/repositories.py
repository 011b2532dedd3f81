"""Repositories by name, and those open for requests."""

from __future__ import annotations

from django.db.models import QuerySet

from ..exceptions import InvalidInput
from ..models import Repository


def split_gun(gun: str) -> tuple[str, str, str]:
    """(dtr host, namespace, name) of `<dtr host>/<namespace>/<name>`; InvalidInput otherwise."""
    parts = gun.split("/")
    if len(parts) != 3 or not all(parts):
        raise InvalidInput(f"{gun!r} is not <dtr host>/<namespace>/<name>")
    return parts[0], parts[1], parts[2]


def repository_by_gun(gun: str) -> Repository | None:
    dtr_host, namespace, name = split_gun(gun)
    return Repository.objects.filter(dtr_host=dtr_host, namespace=namespace, name=name).first()


def repositories_open_for_requests() -> QuerySet[Repository]:
    """Repositories whose trust is initialised, so a delegation can be applied."""
    return Repository.objects.filter(trust_initialised_at__isnull=False)
