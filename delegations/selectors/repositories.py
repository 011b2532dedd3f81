"""Repositories by name, those open for requests, and who may register and manage them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.conf import settings
from django.db.models import Exists, OuterRef, QuerySet
from django.http import Http404

from ..exceptions import InvalidInput
from ..models import (
    OPEN_HANDOVER_STATUSES,
    KeyRole,
    Repository,
    RepositoryKey,
    RootKeyHandover,
)
from ..trust import certificate_key
from .people import group_names_of, repositories_owned_by

if TYPE_CHECKING:
    from django.contrib.auth.models import User


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


def is_registrar(user: User, *, groups: frozenset[str] | None = None) -> bool:
    """Whether `user` may register repositories: a superuser, or a member of
    PORTAL_REGISTRAR_GROUP (`groups`: the user's group names, if read already)."""
    if user.is_superuser:
        return True
    return settings.PORTAL_REGISTRAR_GROUP in (group_names_of(user) if groups is None else groups)


def repositories_managed_by(user: User) -> QuerySet[Repository]:
    """The repositories whose page `user` sees: those they own (every one, for a superuser),
    each with `root_key_held`: whether the portal still holds its root key."""
    repositories = Repository.objects.all() if user.is_superuser else repositories_owned_by(user)
    return repositories.annotate(
        root_key_held=Exists(
            RepositoryKey.objects.filter(repository=OuterRef("pk"), role=KeyRole.ROOT)
        )
    )


def repository_managed_by(user: User, repository_id: int) -> Repository:
    """The repository, if `user` manages it; 404 otherwise, so that others cannot even tell
    which repositories exist."""
    repository = repositories_managed_by(user).filter(pk=repository_id).first()
    if repository is None:
        raise Http404("No repository of yours has this number.")
    return repository


def root_key_id(repository: Repository) -> str:
    """The canonical ID of the repository's root key (what `notary key list` shows), from the
    key the portal holds or else the pinned root certificate; empty when neither is known."""
    held = repository.keys.filter(role=KeyRole.ROOT).values_list("canonical_key_id", flat=True)
    if held:
        return held[0]
    if repository.root_certificate_pem:
        return certificate_key(repository.root_certificate_pem).canonical_id
    return ""


def root_key_handover_open(repository: Repository) -> RootKeyHandover | None:
    """The root key file being prepared for, or waiting for, the repository's owners."""
    return repository.root_key_handovers.filter(status__in=OPEN_HANDOVER_STATUSES).first()
