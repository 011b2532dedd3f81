"""What repository owners do through the API: the pending queue, a request's dry run, decisions
(one or in bulk), their repositories' delegations, and revoking one after its preview."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.views.decorators.debug import sensitive_variables
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from ... import selectors, services
from ...exceptions import NotAnOwner
from ...models import DelegationRequest, Verdict
from .auth import user_of
from .members import ERRORS, paged
from .paging import paginated
from .serializers import (
    ApprovalSerializer,
    BulkDecisionSerializer,
    BulkOutcomeSerializer,
    CommentSerializer,
    DelegationSerializer,
    DryRunSerializer,
    RequestSerializer,
    RevocationPreviewSerializer,
)

_QUEUE_FILTERS = [
    OpenApiParameter("repository", OpenApiTypes.INT, description="A repository's id"),
    OpenApiParameter("team", OpenApiTypes.STR),
    OpenApiParameter("requester", OpenApiTypes.STR, description="A username, in any case"),
]


def _require_owner(request: Request) -> None:
    if not selectors.repositories_owned_by(user_of(request)).exists():
        raise PermissionDenied("Only repository owners have an approval queue and delegations.")


@extend_schema(
    operation_id="queue",
    tags=["owners"],
    summary="Pending requests of the repositories you own, oldest first",
    parameters=_QUEUE_FILTERS,
    responses={200: paginated(RequestSerializer), **ERRORS},
)
@api_view(["GET"])
def queue(request: Request) -> Response:
    _require_owner(request)
    owned = selectors.repositories_owned_by(user_of(request))
    filters: dict[str, Any] = {
        "team": request.query_params.get("team", ""),
        "requester": request.query_params.get("requester", ""),
    }
    if repository_id := request.query_params.get("repository", ""):
        # An id that is not a number, or a repository the caller does not own, narrows to none.
        filters["repository"] = owned.filter(pk=_number(repository_id)).first()
        if filters["repository"] is None:
            return paged(request, DelegationRequest.objects.none(), RequestSerializer)
    shown = selectors.approval_queue_narrowed(
        selectors.approval_queue_for(user_of(request)), **filters
    ).prefetch_related("decisions__owner")
    return paged(request, shown, RequestSerializer)


def _number(text: str) -> int:
    return int(text) if text.isdigit() and len(text) < 10 else 0


def _owned_request(request: Request, request_id: int) -> DelegationRequest:
    """A request of a repository the caller owns: 404 for one they cannot see, 403 for their
    own request of a repository they do not own (as the pages answer)."""
    viewed = selectors.request_for_viewer(user_of(request), request_id)
    if not selectors.is_owner(user_of(request), viewed.repository):
        raise NotAnOwner()
    return viewed


@extend_schema(
    operation_id="request_dry_run",
    tags=["owners"],
    summary="What approving would change in targets.json, read from the live server",
    responses={200: DryRunSerializer, **ERRORS},
)
@api_view(["GET"])
def request_dry_run(request: Request, request_id: int) -> Response:
    dry_run = selectors.request_dry_run(_owned_request(request, request_id))
    plan = dry_run.plan
    body = {
        "error": dry_run.error,
        "changes": [
            {
                "role": change.name,
                "added": [key.canonical_id for key in change.added],
                "removed": [key.canonical_id for key in change.removed],
            }
            for change in (plan.role_changes if plan else [])
        ],
        "diff": plan.diff() if plan else "",
    }
    return Response(DryRunSerializer(body).data)


@extend_schema(
    operation_id="request_approve",
    tags=["owners"],
    summary="Approve a request (counted toward the repository's threshold)",
    request=ApprovalSerializer,
    responses={200: RequestSerializer, **ERRORS},
)
@api_view(["POST"])
@sensitive_variables("body")
def request_approve(request: Request, request_id: int) -> Response:
    return _decide(request, request_id, Verdict.APPROVE)


@extend_schema(
    operation_id="request_reject",
    tags=["owners"],
    summary="Reject a request, saying why",
    request=CommentSerializer,
    responses={200: RequestSerializer, **ERRORS},
)
@api_view(["POST"])
@sensitive_variables("body")
def request_reject(request: Request, request_id: int) -> Response:
    return _decide(request, request_id, Verdict.REJECT)


def _decide(request: Request, request_id: int, verdict: str) -> Response:
    try:
        selectors.request_for_viewer(user_of(request), request_id)
    except Http404:
        # As the pages: the same answer whether the request exists or not.
        raise NotAnOwner() from None
    if verdict == Verdict.APPROVE:
        approval = ApprovalSerializer(data=request.data)
        approval.is_valid(raise_exception=True)
        decided = services.request_approve(
            request_id=request_id,
            acting_user=user_of(request),
            comment=approval.validated_data["comment"],
            until=approval.validated_data["until"],
        )
    else:
        body = CommentSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        decided = services.request_reject(
            request_id=request_id,
            acting_user=user_of(request),
            comment=body.validated_data["comment"],
        )
    return Response(RequestSerializer(decided).data)


@extend_schema(
    operation_id="requests_decide",
    tags=["owners"],
    summary="Decide several requests alike; each is its own decision",
    request=BulkDecisionSerializer,
    responses={200: BulkOutcomeSerializer(many=True), **ERRORS},
)
@api_view(["POST"])
def requests_decide(request: Request) -> Response:
    _require_owner(request)
    body = BulkDecisionSerializer(data=request.data)
    body.is_valid(raise_exception=True)
    outcomes = services.requests_decide(
        request_ids=body.validated_data["request_ids"],
        acting_user=user_of(request),
        verdict=body.validated_data["verdict"],
        comment=body.validated_data["comment"],
    )
    rows = [
        {
            "request_id": outcome.request_id,
            "status": outcome.request.status if outcome.request is not None else None,
            "error": outcome.error or None,
        }
        for outcome in outcomes
    ]
    return Response(BulkOutcomeSerializer(rows, many=True).data)


@extend_schema(
    operation_id="repository_delegations",
    tags=["owners"],
    summary="The active delegations of a repository you own (any repository, for an auditor)",
    responses={200: paginated(DelegationSerializer), **ERRORS},
)
@api_view(["GET"])
def repository_delegations(request: Request, repository_id: int) -> Response:
    user = user_of(request)
    auditor = selectors.is_auditor(user)
    if not auditor:
        selectors.repository_managed_by(user, repository_id)  # 404 for anyone else
    delegations = selectors.active_delegations_visible_to(user, everything=auditor).filter(
        repository_id=repository_id
    )
    return paged(request, delegations, DelegationSerializer)


@extend_schema(
    operation_id="revocation_preview",
    tags=["owners"],
    summary="What revoking a delegation would do to the signed tags, read from the live server",
    responses={200: RevocationPreviewSerializer, **ERRORS},
)
@api_view(["GET"])
def revocation_preview(request: Request, delegation_id: int) -> Response:
    preview = selectors.revocation_preview(
        selectors.delegation_owned_by(user_of(request), delegation_id)
    )
    roles = preview.impact.roles if preview.impact else ()
    body = {
        "error": preview.error,
        "roles": [
            {
                "name": role.name,
                "has_file": role.has_file,
                "tags": list(role.tags),
                "verifies_now": role.verifies_now,
                "verifies_after": role.verifies_after,
                "problem": role.problem,
            }
            for role in roles
        ],
        "losing_roles": preview.losing_roles,
        "witness_command": preview.witness_command,
        "kept_in": preview.kept_in,
        "also_in": preview.also_in,
        "remaining_signers": preview.remaining_signers,
    }
    return Response(RevocationPreviewSerializer(body).data)


@extend_schema(
    operation_id="delegation_revoke",
    tags=["owners"],
    summary="Revoke a delegation: its key leaves both roles in one publish",
    request=CommentSerializer,
    responses={200: DelegationSerializer, **ERRORS},
)
@api_view(["POST"])
def delegation_revoke(request: Request, delegation_id: int) -> Response:
    delegation = selectors.delegation_owned_by(user_of(request), delegation_id)
    body = CommentSerializer(data=request.data)
    body.is_valid(raise_exception=True)
    revoked = services.delegation_revoke(
        delegation_id=delegation.pk,
        acting_user=user_of(request),
        comment=body.validated_data["comment"],
    )
    return Response(DelegationSerializer(revoked).data)
