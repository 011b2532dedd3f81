"""Registering repositories and setting up their trust data."""

from __future__ import annotations

import base64
import re
from datetime import datetime
from typing import TYPE_CHECKING

from django.db import transaction

from .. import clock, dtr, keystore, queueing, selectors, trust
from ..audit.chain import audit_record
from ..exceptions import InvalidInput, NotAllowed, ServiceUnavailable, TrustSetupError
from ..models import AuditAction, KeyRole, Repository, RepositoryKey
from ..notary import (
    InvalidKey,
    NotaryError,
    PublicKey,
    RepositoryNotInitialised,
    SigningKey,
    canonical_id_or_none,
    load_key_file,
)
from . import team_access

if TYPE_CHECKING:
    from django.contrib.auth.models import User


# The portal signs targets (and, when the client signs snapshots, snapshot) with held keys; root
# keys stay with the people who hold them offline.
IMPORTABLE_KEY_ROLES = (KeyRole.TARGETS, KeyRole.SNAPSHOT)


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
    acting_user: User | None = None,
    now: datetime | None = None,
) -> Repository:
    """Register a repository (a registrar's page, or an administrator's command without
    `acting_user`); with `create_in_dtr`, create it in DTR first, private, unless it exists."""
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
    acting_user: User | None = None,
    now: datetime | None = None,
) -> Repository:
    """Change where a repository's Notary server and DTR API are, which group owns it and how
    many of its owners must approve a request (None: unchanged). A new threshold applies to
    requests still pending."""
    now = now or clock.now()
    if acting_user is not None:
        selectors.repository_managed_by(acting_user, repository_id)  # 404 for anyone else
    if not owners_group.strip():
        raise InvalidInput("Name the group that owns the repository.", field="owners_group")
    with transaction.atomic():
        repository = Repository.objects.select_for_update().get(pk=repository_id)
        wanted: dict[str, object] = {"notary_url": notary_url, "owners_group": owners_group}
        if dtr_url is not None:
            wanted["dtr_url"] = dtr_url
        if approvals_required is not None:
            _require_approvals(approvals_required)
            wanted["approvals_required"] = approvals_required
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
    root_key = repository.keys.get(role=KeyRole.ROOT)
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


def repository_keys_rewrap(*, acting_user: User | None = None, now: datetime | None = None) -> int:
    """Re-seal every repository key to the current sealing key (PORTAL_KEY_SEALING_KEY).

    Only the small data keys are re-encrypted; the signing keys themselves are never opened.
    Once this has run, older unsealing keys (and the format-1 PORTAL_KEY_ENCRYPTION_KEYS) can be
    removed from the worker's configuration.
    Returns how many keys were re-sealed.
    """
    now = now or clock.now()
    if not keystore.can_unseal_current():
        # A mistyped sealing key would leave every key sealed to a key nobody holds.
        raise keystore.KeystoreError(
            f"the sealing key {keystore.current_key_encryption_key_id()} has no private half in "
            "PORTAL_KEY_UNSEALING_KEYS here; run keys_rewrap where the worker's keys are, with "
            "the new unsealing key added"
        )
    rewrapped = 0
    with transaction.atomic():
        for stored in RepositoryKey.objects.select_for_update().select_related("repository"):
            sealed = keystore.SealedKey(
                stored.key_encryption_key_id, bytes(stored.sealed_private_key)
            )
            fresh = keystore.rewrap(
                sealed, context=trust.key_context(stored.repository, stored.role)
            )
            if fresh == sealed:
                continue
            RepositoryKey.objects.filter(pk=stored.pk).update(
                sealed_private_key=fresh.blob, key_encryption_key_id=fresh.key_encryption_key_id
            )
            audit_record(
                action=AuditAction.REPOSITORY_KEY_RESEALED,
                actor=acting_user,
                now=now,
                repository=stored.repository,
                details={
                    "role": stored.role,
                    "canonical_key_id": stored.canonical_key_id,
                    "from": stored.key_encryption_key_id,
                    "to": fresh.key_encryption_key_id,
                },
            )
            rewrapped += 1
    return rewrapped


def repository_key_import(
    *,
    repository_id: int,
    role: str,
    key_file: bytes,
    passphrase: str,
    acting_user: User | None = None,
    now: datetime | None = None,
) -> RepositoryKey:
    """Adopt the targets or snapshot key of a repository whose trust was set up elsewhere.

    `key_file` is a private key file from a notary trust directory (or a plain PEM key). The key
    is taken only if the repository's live root.json names it for `role`; it is then sealed
    under the portal's key-encryption key and replaces any key the portal held for that role.
    Neither the key nor the passphrase is ever logged or audited.
    """
    now = now or clock.now()
    if role not in IMPORTABLE_KEY_ROLES:
        raise InvalidInput(f"Only a targets or snapshot key can be imported, not a {role} key.")
    repository = Repository.objects.filter(pk=repository_id).first()
    if repository is None:
        raise InvalidInput("That repository is not registered in the portal.")
    try:
        loaded = load_key_file(key_file, passphrase or None)
    except InvalidKey as error:
        raise InvalidInput(error.message) from None
    root_version, named = _live_role_keys(repository, role, now=now)
    wanted = loaded.public.canonical_id
    published = next((k for k in named if canonical_id_or_none(k) == wanted), None)
    if published is None:
        expected = ", ".join(filter(None, map(canonical_id_or_none, named))) or "no key"
        raise TrustSetupError(
            f"The key {loaded.public.canonical_id} is not the {role} key of {repository.gun}: "
            f"its root.json names {expected} for {role}."
        )
    # Signatures must carry the key ID root publishes, so the key is kept in root's form.
    try:
        key = SigningKey.from_private_bytes(loaded.private_bytes(), published)
    except InvalidKey as error:
        raise TrustSetupError(
            f"The {role} key root.json names is unusable: {error.message}"
        ) from None
    with transaction.atomic():
        repository = Repository.objects.select_for_update().get(pk=repository_id)
        replaced = repository.keys.filter(role=role).first()
        if replaced is not None:
            replaced.delete()
        stored = RepositoryKey.objects.create(
            repository=repository, role=role, **trust.sealed_key_fields(repository, role, key)
        )
        # With the targets key the portal can publish delegations: the trust is set up.
        if role == KeyRole.TARGETS and repository.trust_initialised_at is None:
            Repository.objects.filter(pk=repository.pk).update(trust_initialised_at=now)
        audit_record(
            action=AuditAction.REPOSITORY_KEY_IMPORTED,
            actor=acting_user,
            now=now,
            repository=repository,
            details={
                "role": role,
                "canonical_key_id": stored.canonical_key_id,
                "tuf_key_id": stored.tuf_key_id,
                "replaced_canonical_key_id": replaced.canonical_key_id if replaced else None,
                "root_version": root_version,
            },
        )
    return stored


def _live_role_keys(
    repository: Repository, role: str, *, now: datetime
) -> tuple[int, list[PublicKey]]:
    """The version of the repository's root on its Notary server, and the keys it names for
    `role`."""
    try:
        state = trust.fetch(repository, now=now)
    except RepositoryNotInitialised:
        raise TrustSetupError(
            f"{repository.gun} has no trust data on {repository.notary_url}; initialise its "
            "trust instead of importing a key."
        ) from None
    except NotaryError as error:
        raise TrustSetupError(
            f"The trust data of {repository.gun} could not be read: {error.message}"
        ) from None
    return state.root.signed.version, state.root.signed.role_keys(role)
