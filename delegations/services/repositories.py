"""Registering repositories and setting up their trust data."""

from __future__ import annotations

import base64
import re
from datetime import datetime
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from django.db import transaction

from .. import clock, dtr, queueing, selectors, trust
from ..audit.chain import audit_record
from ..exceptions import InvalidInput, NotAllowed, ServiceUnavailable, TrustSetupError
from ..models import (
    MAX_DELEGATION_DAYS,
    AuditAction,
    KeyRole,
    Repository,
    RepositoryKey,
    UnreviewedPolicy,
)
from ..notary import (
    RepositoryNotInitialised,
)
from . import team_access
from .trust_anchors import notary_check, repository_trust_forget

if TYPE_CHECKING:
    from django.contrib.auth.models import User


def repository_register(
    *,
    dtr_host: str,
    namespace: str,
    name: str,
    notary_url: str,
    owners_group: str,
    approvals_required: int = 1,
    dtr_url: str = "",
    create_in_dtr: bool = False,
    check_notary: bool = True,
    acting_user: User | None = None,
    now: datetime | None = None,
) -> Repository:
    """Register a repository (a registrar's page, or an administrator's command without
    `acting_user`); with `create_in_dtr`, create it in DTR first, private, unless it exists.

    The Notary server must answer for it (`check_notary`, off only where none runs yet, as when
    the stack registers its demo before it starts the server), with no trust data yet or trust
    data whose root names this GUN."""
    now = now or clock.now()
    if acting_user is not None and not selectors.is_registrar(acting_user):
        raise NotAllowed("Only portal administrators and registrars register repositories.")
    _require_approvals(approvals_required)
    dtr_host = dtr_host.strip().lower()
    _require_names(dtr_host, namespace, name)
    if acting_user is not None and not acting_user.is_superuser:
        notary_url, dtr_url = _known_servers(dtr_host)
    if Repository.objects.filter(dtr_host=dtr_host, namespace=namespace, name=name).exists():
        raise InvalidInput(f"{dtr_host}/{namespace}/{name} is registered already.", field="name")
    if check_notary:
        notary_check(notary_url, f"{dtr_host}/{namespace}/{name}", now=now)
    created_in_dtr = create_in_dtr and repository_in_dtr_ensure(
        dtr_url or f"https://{dtr_host}", namespace, name
    )
    with transaction.atomic():
        repository = Repository.objects.create(
            dtr_host=dtr_host,
            namespace=namespace,
            name=name,
            notary_url=notary_url,
            dtr_url=dtr_url,
            owners_group=owners_group,
            approvals_required=approvals_required,
        )
        audit_record(
            action=AuditAction.REPOSITORY_REGISTERED,
            actor=acting_user,
            now=now,
            repository=repository,
            details={
                "gun": repository.gun,
                "notary_url": notary_url,
                "dtr_url": repository.dtr_api_url,
                "owners": owners_group,
                "approvals_required": approvals_required,
                "created_in_dtr": created_in_dtr,
            },
        )
    return repository


# Docker's repository name grammar (DTR documents no stricter one), and a host name.
_NAME = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_HOST = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?(?::[0-9]{1,5})?")


def _require_names(dtr_host: str, namespace: str, name: str) -> None:
    if not _HOST.fullmatch(dtr_host):
        raise InvalidInput(
            f"{dtr_host!r} is not a host name, e.g. dtr.example.org.", field="dtr_host"
        )
    for field, value in (("namespace", namespace), ("name", name)):
        if not _NAME.fullmatch(value):
            raise InvalidInput(
                f"{value!r} is not a repository {field} DTR accepts: lower-case letters and "
                "digits, separated by single dots, underscores or dashes.",
                field=field,
            )
    # DTR's limits: under 56 characters for namespace/name, 255 for the whole image name.
    if len(f"{namespace}/{name}") >= 56 or len(f"{dtr_host}/{namespace}/{name}") > 255:
        raise InvalidInput("DTR takes namespace/name under 56 characters.", field="name")


def _known_servers(dtr_host: str) -> tuple[str, str]:
    """The Notary server and DTR API of a DTR an administrator registered a repository on.

    The portal sends its service accounts' credentials to these servers, so a registrar who is
    not an administrator cannot name new ones: their repositories use the servers of a DTR the
    portal already knows."""
    known = Repository.objects.filter(dtr_host=dtr_host).order_by("pk").first()
    if known is None:
        raise InvalidInput(
            f"The portal knows no DTR at {dtr_host}: an administrator registers its first "
            "repository (manage.py repository_register), then registrars can add more.",
            field="dtr_host",
        )
    return known.notary_url, known.dtr_url


def repository_in_dtr_ensure(dtr_url: str, namespace: str, name: str) -> bool:
    """Create `namespace/name` in DTR (private) unless it exists; whether it was created."""
    if not team_access.team_access_managed():
        raise InvalidInput(
            "The portal has no DTR account (PORTAL_DTR_USERNAME): create the repository in DTR "
            "yourself, then register it here.",
            field="create_in_dtr",
        )
    client = team_access.dtr_client_for(dtr_url)
    try:
        if client.repository_get(namespace, name) is not None:
            return False
        client.repository_create(namespace, name, private=True)
    except dtr.TransientDtrError as error:
        raise ServiceUnavailable(
            f"DTR could not be asked ({error.message}); nothing was registered, try again."
        ) from None
    except dtr.PermanentDtrError as error:
        raise InvalidInput(
            f"DTR refused to create {namespace}/{name}: {error.message}", field="namespace"
        ) from None
    return True


def _checked_review_settings(
    interval_days: int | None, deadline_days: int, unreviewed: str
) -> tuple[int | None, int, str]:
    if interval_days is not None and not 1 <= interval_days <= MAX_DELEGATION_DAYS:
        raise InvalidInput("Review every 1 day or more.", field="review_interval_days")
    if not 1 <= deadline_days <= 365:
        raise InvalidInput("Give the owners 1 to 365 days.", field="review_deadline_days")
    if interval_days is not None and deadline_days > interval_days:
        raise InvalidInput(
            "A review must end before the next one is due: fewer days to finish it than "
            "between reviews.",
            field="review_deadline_days",
        )
    if unreviewed not in UnreviewedPolicy.values:
        raise InvalidInput("Keep or end them.", field="review_unreviewed")
    return interval_days, deadline_days, unreviewed


def _checked_lifetime(
    max_days: int | None, default_days: int | None
) -> tuple[int | None, int | None]:
    for days, field in (
        (max_days, "max_delegation_days"),
        (default_days, "default_delegation_days"),
    ):
        if days is not None and days < 1:
            raise InvalidInput("A delegation lasts at least a day.", field=field)
        if days is not None and days > MAX_DELEGATION_DAYS:
            raise InvalidInput(
                f"A delegation lasts at most {MAX_DELEGATION_DAYS} days: leave it empty for no "
                "limit.",
                field=field,
            )
    if max_days is not None and default_days is not None and default_days > max_days:
        raise InvalidInput(
            f"The default ({default_days} days) cannot be longer than the longest allowed "
            f"({max_days} days).",
            field="default_delegation_days",
        )
    return max_days, default_days


def _require_approvals(approvals_required: int) -> None:
    if approvals_required < 1:
        raise InvalidInput("At least one owner must approve a request.")


def repository_update(
    *,
    repository_id: int,
    notary_url: str,
    owners_group: str,
    approvals_required: int | None = None,
    dtr_url: str | None = None,
    lifetime_days: tuple[int | None, int | None] | None = None,
    review_settings: tuple[int | None, int, str] | None = None,
    confirm_notary_move: bool = False,
    acting_user: User | None = None,
    now: datetime | None = None,
) -> Repository:
    """Change where a repository's Notary server and DTR API are, which group owns it, how
    many of its owners must approve a request and how long its delegations may last (the
    longest and the form's default, in days, None for no limit; `lifetime_days` None leaves
    both). A new threshold applies to requests still pending; a new longest to requests and
    approvals from now on, not to delegations already granted.

    Moving the Notary server to another host, or to plain http, needs `confirm_notary_move`:
    the service account's password is sent to wherever it points."""
    now = now or clock.now()
    if acting_user is not None:
        selectors.repository_managed_by(acting_user, repository_id)  # 404 for anyone else
    if not owners_group.strip():
        raise InvalidInput("Name the group that owns the repository.", field="owners_group")
    with transaction.atomic():
        repository = Repository.objects.select_for_update().get(pk=repository_id)
        if not confirm_notary_move and notary_move_needs_confirming(
            repository.notary_url, notary_url
        ):
            raise InvalidInput(
                f"Moving the Notary server from {repository.notary_url} to {notary_url} sends the "
                "portal's service account and its password there: confirm the move to do it.",
                field="notary_url",
            )
        wanted: dict[str, object] = {"notary_url": notary_url, "owners_group": owners_group}
        if dtr_url is not None:
            wanted["dtr_url"] = dtr_url
        if approvals_required is not None:
            _require_approvals(approvals_required)
            wanted["approvals_required"] = approvals_required
        if review_settings is not None:
            (
                wanted["review_interval_days"],
                wanted["review_deadline_days"],
                wanted["review_unreviewed"],
            ) = _checked_review_settings(*review_settings)
        if lifetime_days is not None:
            wanted["max_delegation_days"], wanted["default_delegation_days"] = _checked_lifetime(
                *lifetime_days
            )
        changes = {
            field: {"from": getattr(repository, field), "to": value}
            for field, value in wanted.items()
            if getattr(repository, field) != value
        }
        if not changes:
            return repository
        Repository.objects.filter(pk=repository_id).update(
            **{field: change["to"] for field, change in changes.items()}
        )
        repository.refresh_from_db()
        audit_record(
            action=AuditAction.REPOSITORY_UPDATED,
            actor=acting_user,
            now=now,
            repository=repository,
            details=changes,
        )
    return repository


def repository_trust_initialise_request(
    *, repository_id: int, acting_user: User, now: datetime | None = None
) -> Repository:
    """An owner asks for the repository's trust data to be set up: the worker makes the keys
    (they are unsealed only there) once this has committed."""
    now = now or clock.now()
    repository = selectors.repository_managed_by(acting_user, repository_id)
    if repository.trust_initialised_at is not None:
        raise InvalidInput(f"The trust data of {repository.gun} is initialised already.")
    if repository.root_certificate_pem or repository.keys.exists():
        # Someone else initialised it (the root is pinned) or keys were imported for it: new
        # keys would only collide with the repository's own.
        raise InvalidInput(
            f"{repository.gun} has a pinned root or imported keys: its trust data is set up "
            "outside the portal, so the portal does not make new keys for it."
        )
    with transaction.atomic():
        audit_record(
            action=AuditAction.REPOSITORY_TRUST_INITIALISATION_REQUESTED,
            actor=acting_user,
            now=now,
            repository=repository,
            details={"gun": repository.gun},
        )
        acting_user_id = acting_user.pk
        queueing.enqueue_after_commit(
            lambda pk: queueing.enqueue_repository_initialise_trust(pk, acting_user_id),
            repository.pk,
        )
    return repository


def repository_initialise_trust(
    *, repository_id: int, acting_user: User | None = None, now: datetime | None = None
) -> Repository:
    """Make sure the Notary server holds trust data for the repository made with our keys.

    Creates the root and targets keys if the portal has none, and publishes the first root and
    targets if the server has no trust data (a new repository, or a memory-backed server that
    restarted). The keys are sealed and committed before anything is published, so a crash in
    between leaves keys to retry with rather than a repository whose keys were lost.
    """
    now = now or clock.now()
    with transaction.atomic():
        repository = Repository.objects.select_for_update().get(pk=repository_id)
        if not repository.keys.exists():
            keys = trust.new_repository_keys(repository, now=now)
            for role, key in keys.items():
                RepositoryKey.objects.create(
                    repository=repository,
                    role=role,
                    **trust.sealed_key_fields(repository, role, key),
                )
            audit_record(
                action=AuditAction.REPOSITORY_KEYS_GENERATED,
                actor=acting_user,
                now=now,
                repository=repository,
                details={role: key.public.canonical_id for role, key in keys.items()},
            )
    try:
        state = trust.fetch(repository, now=now)
        published = False
    except RepositoryNotInitialised:
        if (repository.trusted_root or repository.seen_versions) and repository.keys.filter(
            role=KeyRole.ROOT
        ).exists():
            # The server lost what the portal remembers of it (a memory-backed server that
            # restarted): publishing again starts a new history, which the old memory would
            # refuse as a replay.
            repository = repository_trust_forget(
                repository_id=repository.pk, acting_user=acting_user, now=now
            )
        state = trust.initialise(repository, now=now)
        published = True
    # No targets key when only a snapshot key was imported: the trust data is someone else's.
    targets_key = repository.keys.filter(role=KeyRole.TARGETS).first()
    if targets_key is None or targets_key.tuf_key_id not in {
        k.tuf_id for k in state.root.signed.role_keys(KeyRole.TARGETS)
    }:
        raise TrustSetupError(
            f"{repository.gun} already has trust data signed with other keys; import its "
            "targets key instead of initialising it"
        )
    if not published and repository.trust_initialised_at is not None:
        return repository
    root_key = repository.keys.filter(role=KeyRole.ROOT).first()
    if root_key is None:  # handed to the owners; the trust data is as they left it
        return repository
    with transaction.atomic():
        Repository.objects.filter(pk=repository.pk).update(
            trust_initialised_at=repository.trust_initialised_at or now,
            root_certificate_pem=base64.b64decode(root_key.public).decode("ascii"),
        )
        audit_record(
            action=AuditAction.REPOSITORY_TRUST_INITIALISED
            if published
            else AuditAction.REPOSITORY_TRUST_ADOPTED,
            actor=acting_user,
            now=now,
            repository=repository,
            details={
                "root_version": state.root.signed.version,
                "targets_version": state.targets.signed.version,
                "root_key_id": root_key.canonical_key_id,
            },
        )
    repository.refresh_from_db()
    return repository


def notary_move_needs_confirming(old_url: str, new_url: str) -> bool:
    """Whether a new Notary URL points at another host, or gives up https."""
    old, new = urlsplit(old_url), urlsplit(new_url)
    return (old.hostname or "").lower() != (new.hostname or "").lower() or (
        old.scheme == "https" and new.scheme != "https"
    )
