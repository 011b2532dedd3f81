"""The Django admin for portal administrators.

Requests, decisions, delegations, keys and audit events are read-only here: they change only
through the services' state machine. Repositories are registered and edited through services
too, so every change is audited.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils.decorators import method_decorator
from django.views.decorators.debug import sensitive_post_parameters

from . import queueing, services
from .exceptions import PortalError
from .forms import RepositoryAdminForm, RepositoryKeyImportForm
from .models import (
    AccessReview,
    ApiToken,
    AuditChainHead,
    AuditEvent,
    Decision,
    Delegation,
    DelegationRequest,
    DirectoryAccount,
    DriftFinding,
    Extension,
    ExtensionDecision,
    KeyRole,
    Notification,
    PublishLease,
    Repository,
    RepositoryKey,
    ReviewItem,
    RootKeyHandover,
    TeamAccessGrant,
    TrustFile,
)
from .notary import key_file_info

if TYPE_CHECKING:
    from django.contrib.auth.models import User


def _administrator(request: HttpRequest) -> User:
    # The admin site lets only signed-in staff in, so whoever acts here is a user.
    return cast("User", request.user)


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class RepositoryKeyInline(admin.TabularInline):
    model = RepositoryKey
    fields = ("role", "keytype", "canonical_key_id", "key_encryption_key_id", "created_at")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Repository)
class RepositoryAdmin(admin.ModelAdmin):
    list_display = [
        "gun",
        "owners_group",
        "approvals_required",
        "notary_url",
        "trust_initialised_at",
    ]
    search_fields = ["dtr_host", "namespace", "name", "owners_group"]
    form = RepositoryAdminForm
    readonly_fields = ["trust_initialised_at", "seen_versions", "created_at"]
    inlines = [RepositoryKeyInline]
    actions = ["initialise_trust", "import_key", "forget_trust_memory"]

    def get_readonly_fields(self, request: HttpRequest, obj: Repository | None = None) -> list:
        # The GUN names the trust data on the server; it cannot change once registered.
        identity = ["dtr_host", "namespace", "name"] if obj else []
        # The portal pins its own root key where it made the root; a certificate is configured
        # only for a repository whose trust was set up elsewhere.
        own_root = obj is not None and obj.keys.filter(role=KeyRole.ROOT).exists()
        return [*identity, *self.readonly_fields, *(["root_certificate_pem"] if own_root else [])]

    def save_model(self, request: HttpRequest, obj: Repository, form, change: bool) -> None:
        if change:
            services.repository_update(
                repository_id=obj.pk,
                acting_user=_administrator(request),
                # The form had the move confirmed (RepositoryAdminForm.clean).
                confirm_notary_move=True,
                notary_url=obj.notary_url,
                owners_group=obj.owners_group,
                approvals_required=obj.approvals_required,
            )
        else:
            registered = services.repository_register(
                dtr_host=obj.dtr_host,
                namespace=obj.namespace,
                name=obj.name,
                notary_url=obj.notary_url,
                owners_group=obj.owners_group,
                approvals_required=obj.approvals_required,
                acting_user=_administrator(request),
            )
            obj.pk = registered.pk
        if "root_certificate_pem" in form.changed_data:
            services.repository_root_pin(
                repository_id=obj.pk,
                root_certificate_pem=obj.root_certificate_pem,
                acting_user=_administrator(request),
            )

    @admin.action(
        description="Forget the remembered trust data (after a deliberate reset on the server)",
        permissions=["change"],
    )
    def forget_trust_memory(self, request: HttpRequest, queryset: QuerySet) -> None:
        for repository in queryset:
            services.repository_trust_forget(
                repository_id=repository.pk, acting_user=_administrator(request)
            )
        self.message_user(
            request,
            f"Forgot the remembered root and versions of {queryset.count()} repositories; the "
            "next read trusts the pinned root, or the served one on first use.",
            messages.SUCCESS,
        )

    # Actions are posted to the changelist, so that is where the key import's passphrase would
    # show up in an error report.
    @method_decorator(sensitive_post_parameters("passphrase"))
    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None):
        return super().changelist_view(request, extra_context)

    @admin.action(
        description="Initialise trust (new root and targets keys)", permissions=["change"]
    )
    def initialise_trust(self, request: HttpRequest, queryset: QuerySet) -> None:
        pending = queryset.filter(trust_initialised_at__isnull=True)
        for repository in pending:
            queueing.enqueue_repository_initialise_trust(repository.pk, request.user.pk)
        self.message_user(
            request,
            f"Trust initialisation queued for {pending.count()} repositories; the worker "
            "generates the keys and publishes.",
            messages.SUCCESS,
        )

    @admin.action(description="Import a key from a notary trust directory", permissions=["change"])
    def import_key(self, request: HttpRequest, queryset: QuerySet) -> TemplateResponse | None:
        if queryset.count() != 1:
            self.message_user(
                request, "Select exactly one repository to import a key for.", messages.WARNING
            )
            return None
        repository = queryset.get()
        # The action's first post (from the changelist) shows the form; its own post imports.
        submitted = "import" in request.POST
        form = RepositoryKeyImportForm(request.POST, request.FILES) if submitted else None
        if form is not None and form.is_valid():
            role, key_file = form.cleaned_data["role"], form.cleaned_data["key_file"]
            try:
                stored = services.repository_key_import(
                    repository_id=repository.pk,
                    role=role,
                    key_file=key_file,
                    passphrase=form.cleaned_data["passphrase"],
                    acting_user=_administrator(request),
                )
            except PortalError as error:
                self.message_user(request, f"Nothing was imported: {error.message}", messages.ERROR)
                # A fresh form: the passphrase and the file are never sent back.
                form = RepositoryKeyImportForm(initial={"role": role})
            else:
                for note in key_file_info(key_file).mismatches(gun=repository.gun, role=role):
                    self.message_user(request, note, messages.WARNING)
                self.message_user(
                    request,
                    f"Imported the {role} key {stored.canonical_key_id} of {repository.gun}.",
                    messages.SUCCESS,
                )
                return None
        context = {
            **self.admin_site.each_context(request),
            "title": f"Import a key for {repository.gun}",
            "opts": self.model._meta,
            "repository": repository,
            "form": form if form is not None else RepositoryKeyImportForm(),
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/delegations/repository/import_key.html", context)


@admin.register(DelegationRequest)
class DelegationRequestAdmin(ReadOnlyAdmin):
    list_display = ["id", "requester", "repository", "team", "status", "created_at"]
    list_filter = ["status", "repository", "team"]
    search_fields = ["requester__username", "canonical_key_id", "tuf_key_id", "subject"]
    date_hierarchy = "created_at"


@admin.register(Decision)
class DecisionAdmin(ReadOnlyAdmin):
    list_display = ["request", "owner", "verdict", "created_at"]
    list_filter = ["verdict"]


@admin.register(Delegation)
class DelegationAdmin(ReadOnlyAdmin):
    list_display = ["member", "repository", "team", "canonical_key_id", "active_from", "ended_at"]
    list_filter = ["repository", "team", "end_reason"]
    search_fields = ["member__username", "canonical_key_id"]


@admin.register(Extension)
class ExtensionAdmin(ReadOnlyAdmin):
    list_display = ["id", "delegation", "requested_by", "until", "status", "created_at"]
    list_filter = ["status"]


@admin.register(ExtensionDecision)
class ExtensionDecisionAdmin(ReadOnlyAdmin):
    list_display = ["extension", "owner", "verdict", "created_at"]
    list_filter = ["verdict"]


@admin.register(AccessReview)
class AccessReviewAdmin(ReadOnlyAdmin):
    list_display = ["id", "repository", "opened_at", "deadline", "closed_at", "flagged"]
    list_filter = ["flagged", "repository"]


@admin.register(ReviewItem)
class ReviewItemAdmin(ReadOnlyAdmin):
    list_display = ["review", "delegation", "verdict", "decided_by", "outcome"]
    list_filter = ["verdict", "outcome"]


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "actor_name", "action", "request", "repository"]
    list_filter = ["action"]
    search_fields = ["actor_name", "action"]


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdmin):
    list_display = [
        "kind",
        "occasion",
        "recipient",
        "request",
        "created_at",
        "sent_at",
        "attempts",
        "last_error",
    ]
    list_filter = ["kind", ("sent_at", admin.EmptyFieldListFilter)]
    search_fields = ["recipient__username", "recipient__email"]


@admin.register(RepositoryKey)
class RepositoryKeyAdmin(ReadOnlyAdmin):
    # The sealed private key is never shown, not even encrypted.
    list_display = ["repository", "role", "keytype", "canonical_key_id", "key_encryption_key_id"]
    fields = ["repository", "role", "keytype", "canonical_key_id", "tuf_key_id", "public"]
    list_filter = ["role"]


@admin.register(AuditChainHead)
class AuditChainHeadAdmin(ReadOnlyAdmin):
    """The newest hash of the audit chain, for comparing against an exported log."""

    list_display = ["last_hash"]


@admin.register(DirectoryAccount)
class DirectoryAccountAdmin(ReadOnlyAdmin):
    """Users who come from the LDAP directory; the directory, not the admin, changes them."""

    list_display = ["user", "dn", "seen_at", "disabled_at"]
    list_filter = [("disabled_at", admin.EmptyFieldListFilter)]
    search_fields = ["user__username", "dn"]


@admin.register(PublishLease)
class PublishLeaseAdmin(ReadOnlyAdmin):
    """Which worker publishes each repository now (none when `until` is empty or past)."""

    list_display = ["repository", "holder", "until", "fence", "wanted"]


@admin.register(TeamAccessGrant)
class TeamAccessGrantAdmin(ReadOnlyAdmin):
    """Teams' push access in DTR as the worker last made sure of it."""

    list_display = ["repository", "team", "status", "level", "attempts", "retry_at", "updated_at"]
    list_filter = ["status"]


@admin.register(ApiToken)
class ApiTokenAdmin(ReadOnlyAdmin):
    """People's API tokens (they make and revoke them on their API tokens page). Only a hash
    of each secret is stored, and it is not shown here."""

    list_display = [
        "user",
        "name",
        "prefix",
        "created_at",
        "expires_at",
        "last_used_at",
        "revoked_at",
    ]
    list_filter = ["revoked_at"]
    fields = ["user", "name", "prefix", "created_at", "expires_at", "last_used_at", "revoked_at"]


@admin.register(RootKeyHandover)
class RootKeyHandoverAdmin(ReadOnlyAdmin):
    """Root keys on their way to their owners (the owners' repository page runs them). The
    passphrase and the key file are never shown: they are not fields here."""

    list_display = ["repository", "status", "canonical_key_id", "requested_by", "created_at"]
    list_filter = ["status"]
    fields = [
        "repository",
        "requested_by",
        "status",
        "canonical_key_id",
        "failure",
        "created_at",
        "ready_at",
        "downloaded_at",
        "finished_at",
    ]


@admin.register(TrustFile)
class TrustFileAdmin(ReadOnlyAdmin):
    """The snapshot and targets files the Notary client last verified, reused when the server
    still lists their hashes. Public trust data; "Forget the remembered trust data" on the
    repository clears them with the rest of the memory."""

    list_display = ["repository", "role", "size"]
    exclude = ["data"]
    readonly_fields = ["size"]

    @admin.display(description="bytes")
    def size(self, trust_file: TrustFile) -> int:
        return len(trust_file.data)


@admin.register(DriftFinding)
class DriftFindingAdmin(ReadOnlyAdmin):
    """What the reconciler found; owners act on it from the drift page."""

    list_display = ["repository", "kind", "canonical_key_id", "subject", "first_seen_at"]
    list_display += ["action", "resolution", "resolved_at"]
    list_filter = ["kind", "resolution", ("resolved_at", admin.EmptyFieldListFilter)]
