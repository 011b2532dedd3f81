"""What the API reads and writes. Inputs check shapes and sizes only; the rules are the
services'. Outputs are explicit, field by field, so the schema says exactly what comes back."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from ...instructions import signing_steps
from ...intake.certificates import PRIVATE_KEY_MESSAGE
from ...intake.possession import MAX_SIGNATURE_CHARACTERS
from ...intake.private_keys import holds_private_key
from ...models import (
    MAX_COMMENT_CHARACTERS,
    Delegation,
    DelegationRequest,
    ExtensionStatus,
    RequestStatus,
    ReviewVerdict,
    UnreviewedPolicy,
    Verdict,
)

# Paths of more than a few hundred IDs in one bulk decision are a mistake, not a queue.
MAX_BULK_REQUESTS = 500


def _without_private_key(text: str) -> str:
    if holds_private_key(text.encode("utf-8", "replace")):
        raise serializers.ValidationError(PRIVATE_KEY_MESSAGE)
    return text


class CommentField(serializers.CharField):
    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", MAX_COMMENT_CHARACTERS)
        kwargs.setdefault("allow_blank", True)
        kwargs.setdefault("trim_whitespace", True)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> str:
        return _without_private_key(super().to_internal_value(data))


# -- inputs ---------------------------------------------------------------------------------------


class RenewalSerializer(serializers.Serializer):
    """A reissued certificate (cert.pem's text) and the signature of a challenge from
    `POST /api/v1/challenges/` made with its key."""

    certificate = serializers.CharField(
        max_length=settings.PORTAL_CERTIFICATE_MAX_BYTES,
        trim_whitespace=False,
        help_text="cert.pem of the UCP client bundle (PEM). Never key.pem.",
    )
    reason = CommentField(allow_blank=False)
    challenge = serializers.CharField(max_length=200, required=False, allow_blank=True)
    signature = serializers.CharField(
        max_length=MAX_SIGNATURE_CHARACTERS,
        required=False,
        allow_blank=True,
        help_text="base64 of the signature over the challenge: "
        "printf '%s' CHALLENGE | openssl dgst -sha256 -sign key.pem | openssl base64 -A",
    )

    def validate_signature(self, value: str) -> str:
        return _without_private_key(value)


class SubmissionSerializer(RenewalSerializer):
    """A request as a program sends it: the repository and team, and what a renewal sends."""

    repository = serializers.CharField(
        max_length=800, help_text="The repository's GUN, e.g. dtr.example.org/dev/nginx"
    )
    team = serializers.CharField(max_length=64)
    until = serializers.DateField(
        required=False,
        allow_null=True,
        default=None,
        help_text="The delegation's last day; null for as long as the certificate is valid, "
        "where the repository allows it (max_delegation_days)",
    )


class CommentSerializer(serializers.Serializer):
    comment = CommentField(required=False, default="")


class ExtensionAskSerializer(serializers.Serializer):
    until = serializers.DateField(help_text="The new last day, later than the delegation's")
    reason = CommentField(allow_blank=False)


class ApprovalSerializer(CommentSerializer):
    until = serializers.DateField(
        required=False,
        allow_null=True,
        default=None,
        help_text="An earlier last day than the request's, to shorten it; never later",
    )


class BulkDecisionSerializer(serializers.Serializer):
    request_ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=2**31 - 1),
        min_length=1,
        max_length=MAX_BULK_REQUESTS,
    )
    verdict = serializers.ChoiceField(choices=Verdict.choices)
    comment = CommentField(required=False, default="")


# -- outputs --------------------------------------------------------------------------------------


class ChallengeSerializer(serializers.Serializer):
    challenge = serializers.CharField()
    expires_in_seconds = serializers.IntegerField()
    openssl_command = serializers.CharField()


class RepositorySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    gun = serializers.CharField()
    dtr_host = serializers.CharField()
    namespace = serializers.CharField()
    name = serializers.CharField()
    notary_url = serializers.CharField()
    owners_group = serializers.CharField()
    approvals_required = serializers.IntegerField()
    max_delegation_days = serializers.IntegerField(allow_null=True)
    default_delegation_days = serializers.IntegerField(allow_null=True)
    trust_initialised = serializers.SerializerMethodField()
    owned = serializers.SerializerMethodField()

    def get_trust_initialised(self, repository: Any) -> bool:
        return repository.trust_initialised_at is not None

    def get_owned(self, repository: Any) -> bool:
        return repository.owners_group in self.context.get("owned_groups", ())


class DecisionSerializer(serializers.Serializer):
    owner = serializers.CharField(source="owner.username")
    verdict = serializers.CharField()
    comment = serializers.CharField()
    until = serializers.DateField(allow_null=True, help_text="The earlier last day it set")
    created_at = serializers.DateTimeField()


class StepSerializer(serializers.Serializer):
    explanation = serializers.CharField()
    command = serializers.CharField()


class DelegationSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    request_id = serializers.IntegerField()
    repository = serializers.CharField(source="repository.gun")
    member = serializers.CharField(source="member.username")
    team = serializers.CharField()
    canonical_key_id = serializers.CharField()
    tuf_key_id = serializers.CharField()
    roles = serializers.ListField(child=serializers.CharField())
    active_from = serializers.DateTimeField()
    certificate_expires_at = serializers.DateTimeField()
    until = serializers.DateField(
        allow_null=True, help_text="Its last day; null: the certificate's"
    )
    expires_at = serializers.DateTimeField(help_text="When it ends by itself")
    active = serializers.BooleanField(source="is_active")
    ending = serializers.CharField(help_text="Why it is being ended, while it is; else empty")
    ended_at = serializers.DateTimeField(allow_null=True)
    end_reason = serializers.CharField()


class ExtensionDecisionSerializer(serializers.Serializer):
    owner = serializers.CharField(source="owner.username")
    verdict = serializers.CharField()
    comment = serializers.CharField()
    created_at = serializers.DateTimeField()


class ExtensionSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    delegation_id = serializers.IntegerField()
    request_id = serializers.IntegerField(source="delegation.request_id")
    repository = serializers.CharField(source="delegation.repository.gun")
    member = serializers.CharField(source="requested_by.username")
    team = serializers.CharField(source="delegation.team")
    until = serializers.DateField()
    previous_until = serializers.DateField(allow_null=True)
    reason = serializers.CharField()
    status = serializers.ChoiceField(choices=ExtensionStatus.choices)
    approvals_required = serializers.IntegerField(source="delegation.repository.approvals_required")
    decisions = ExtensionDecisionSerializer(many=True)
    created_at = serializers.DateTimeField()
    decided_at = serializers.DateTimeField(allow_null=True)


class ReviewDecisionSerializer(serializers.Serializer):
    verdict = serializers.ChoiceField(choices=ReviewVerdict.choices)
    comment = CommentField(required=False, default="")


class SignedRoleSerializer(serializers.Serializer):
    role = serializers.CharField()
    version = serializers.IntegerField(allow_null=True)


class ReviewItemSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    delegation_id = serializers.IntegerField()
    member = serializers.CharField(source="delegation.member.username")
    team = serializers.CharField(source="delegation.team")
    canonical_key_id = serializers.CharField(source="delegation.canonical_key_id")
    active_from = serializers.DateTimeField(source="delegation.active_from")
    until = serializers.DateField(source="delegation.until", allow_null=True)
    certificate_expires_at = serializers.DateTimeField(source="delegation.certificate_expires_at")
    signs = SignedRoleSerializer(
        many=True,
        allow_null=True,
        help_text="The roles whose current file its key signs; null: the server was not read",
    )
    verdict = serializers.CharField(help_text="keep, revoke, or empty while undecided")
    decided_by = serializers.CharField(source="decided_by.username", allow_null=True)
    decided_at = serializers.DateTimeField(allow_null=True)
    comment = serializers.CharField()
    outcome = serializers.CharField(help_text="What the deadline did, when nobody decided")


class ReviewSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    repository = serializers.CharField(source="repository.gun")
    repository_id = serializers.IntegerField()
    opened_at = serializers.DateTimeField()
    deadline = serializers.DateTimeField()
    closed_at = serializers.DateTimeField(allow_null=True)
    unreviewed = serializers.ChoiceField(choices=UnreviewedPolicy.choices)
    flagged = serializers.BooleanField()


class ReviewDetailSerializer(ReviewSerializer):
    items = ReviewItemSerializer(many=True)


class RequestSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    repository = serializers.CharField(source="repository.gun")
    repository_id = serializers.IntegerField()
    requester = serializers.CharField(source="requester.username")
    team = serializers.CharField()
    status = serializers.ChoiceField(choices=RequestStatus.choices)
    reason = serializers.CharField()
    roles = serializers.ListField(child=serializers.CharField(), source="role_names")
    canonical_key_id = serializers.CharField()
    tuf_key_id = serializers.CharField()
    certificate_subject = serializers.CharField(source="subject")
    certificate_issuer = serializers.CharField(source="issuer")
    certificate_not_after = serializers.DateTimeField(source="not_after")
    certificate_sha256 = serializers.CharField(source="certificate_fingerprint")
    requested_until = serializers.DateField(allow_null=True, help_text="The last day asked for")
    until = serializers.DateField(
        allow_null=True, help_text="The last day, once owners shortened it; null: the certificate's"
    )
    approvals_required = serializers.IntegerField(source="repository.approvals_required")
    decisions = DecisionSerializer(many=True)
    failure_reason = serializers.CharField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    renews_delegation_id = serializers.IntegerField(source="renews_id", allow_null=True)
    delegation = serializers.SerializerMethodField()
    signing_steps = serializers.SerializerMethodField(
        help_text="What to run to sign, once the request is delegated"
    )

    @extend_schema_field(DelegationSerializer(allow_null=True))
    def get_delegation(self, request: DelegationRequest) -> dict[str, Any] | None:
        delegation: Delegation | None = getattr(request, "delegation", None)
        return DelegationSerializer(delegation).data if delegation is not None else None

    @extend_schema_field(StepSerializer(many=True))
    def get_signing_steps(self, request: DelegationRequest) -> list[dict[str, Any]]:
        if request.status != RequestStatus.DELEGATED:
            return []
        return list(StepSerializer(signing_steps(request), many=True).data)


class BulkOutcomeSerializer(serializers.Serializer):
    request_id = serializers.IntegerField()
    status = serializers.CharField(allow_null=True)
    error = serializers.CharField(allow_null=True)


class RoleChangeSerializer(serializers.Serializer):
    role = serializers.CharField()
    added = serializers.ListField(child=serializers.CharField())
    removed = serializers.ListField(child=serializers.CharField())


class DryRunSerializer(serializers.Serializer):
    error = serializers.CharField(help_text="Why the live trust data could not be read; else empty")
    changes = RoleChangeSerializer(many=True)
    diff = serializers.CharField()


class RoleImpactSerializer(serializers.Serializer):
    name = serializers.CharField()
    has_file = serializers.BooleanField()
    tags = serializers.ListField(child=serializers.CharField())
    verifies_now = serializers.BooleanField()
    verifies_after = serializers.BooleanField()
    problem = serializers.CharField()


class RevocationPreviewSerializer(serializers.Serializer):
    error = serializers.CharField()
    roles = RoleImpactSerializer(many=True)
    losing_roles = serializers.ListField(child=serializers.CharField())
    witness_command = serializers.CharField()
    kept_in = serializers.ListField(child=serializers.CharField())
    also_in = serializers.ListField(child=serializers.CharField())
    remaining_signers = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField())
    )


class AuditEventSerializer(serializers.Serializer):
    """An event as the audit export writes it, with the hashes that chain it."""

    id = serializers.IntegerField()
    created_at = serializers.CharField()
    actor = serializers.CharField()
    action = serializers.CharField()
    request_id = serializers.IntegerField(allow_null=True)
    repository_id = serializers.IntegerField(allow_null=True)
    repository = serializers.CharField(allow_null=True)
    details = serializers.DictField()
    previous_hash = serializers.CharField()
    hash = serializers.CharField()
