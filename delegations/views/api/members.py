"""What any member does through the API: see the repositories, get a challenge, ask for a
delegation (and renew or give up their own), follow and withdraw their requests."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import QuerySet
from django.urls import reverse
from django.views.decorators.debug import sensitive_variables
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from ... import clock, selectors, services
from ...exceptions import InvalidInput
from ...intake.certificates import CertificateInfo, inspect_certificate
from ...intake.possession import PossessionProof, challenge_issue, openssl_command
from ...models import Delegation, DelegationRequest, Repository
from .auth import user_of
from .errors import ErrorSerializer
from .paging import Paging, paginated
from .serializers import (
    ChallengeSerializer,
    CommentSerializer,
    DelegationSerializer,
    RenewalSerializer,
    RepositorySerializer,
    RequestSerializer,
    SubmissionSerializer,
)

ERRORS = {
    400: ErrorSerializer,
    401: ErrorSerializer,
    403: ErrorSerializer,
    404: ErrorSerializer,
    409: ErrorSerializer,
    429: ErrorSerializer,
    503: ErrorSerializer,
}


def paged(request: Request, items: QuerySet[Any], serializer: type, **context: object) -> Response:
    paging = Paging()
    page = paging.paginate_queryset(items, request)
    data = serializer(page, many=True, context={"request": request, **context}).data
    return paging.get_paginated_response(data)


@extend_schema(
    operation_id="repository_list",
    tags=["repositories"],
    summary="Repositories you may ask for delegations on, or own",
    responses={200: paginated(RepositorySerializer), **ERRORS},
)
@api_view(["GET"])
def repository_list(request: Request) -> Response:
    owned = selectors.repositories_owned_by(user_of(request))
    repositories = (selectors.repositories_open_for_requests() | owned).distinct().order_by("id")
    groups = set(owned.values_list("owners_group", flat=True))
    return paged(request, repositories, RepositorySerializer, owned_groups=groups)


@extend_schema(
    operation_id="challenge_create",
    tags=["requests"],
    summary="A one-time challenge to sign with your certificate's key",
    request=None,
    responses={201: ChallengeSerializer, **ERRORS},
)
@api_view(["POST"])
def challenge_create(request: Request) -> Response:
    challenge = challenge_issue(user_of(request), now=clock.now())
    body = {
        "challenge": challenge,
        "expires_in_seconds": settings.PORTAL_POSSESSION_CHALLENGE_SECONDS,
        "openssl_command": openssl_command(challenge),
    }
    return Response(ChallengeSerializer(body).data, status=status.HTTP_201_CREATED)


@extend_schema(
    methods=["GET"],
    operation_id="request_list",
    tags=["requests"],
    summary="Your requests, newest first",
    responses={200: paginated(RequestSerializer), **ERRORS},
)
@extend_schema(
    methods=["POST"],
    operation_id="request_submit",
    tags=["requests"],
    summary="Ask for a delegation",
    request=SubmissionSerializer,
    responses={201: RequestSerializer, **ERRORS},
)
@api_view(["GET", "POST"])
@sensitive_variables("submission")
def request_list(request: Request) -> Response:
    if request.method == "GET":
        mine = selectors.requests_of(user_of(request)).prefetch_related("decisions__owner")
        return paged(request, mine.order_by("-created_at", "-id"), RequestSerializer)
    submission = SubmissionSerializer(data=request.data)
    submission.is_valid(raise_exception=True)
    data = submission.validated_data
    created = services.request_submit(
        requester=user_of(request),
        repository=_open_repository(data["repository"]),
        team=data["team"],
        certificate=_certificate(data["certificate"]),
        reason=data["reason"],
        proof=_proof(data),
        until=data["until"],
    )
    return _created(created)


@extend_schema(
    operation_id="request_detail",
    tags=["requests"],
    summary="One request",
    responses={200: RequestSerializer, **ERRORS},
)
@api_view(["GET"])
def request_detail(request: Request, request_id: int) -> Response:
    return Response(
        RequestSerializer(selectors.request_for_viewer(user_of(request), request_id)).data
    )


@extend_schema(
    operation_id="request_withdraw",
    tags=["requests"],
    summary="Withdraw your pending request",
    request=None,
    responses={200: RequestSerializer, **ERRORS},
)
@api_view(["POST"])
def request_withdraw(request: Request, request_id: int) -> Response:
    selectors.request_for_viewer(user_of(request), request_id)
    withdrawn = services.request_withdraw(request_id=request_id, acting_user=user_of(request))
    return Response(RequestSerializer(withdrawn).data)


@extend_schema(
    operation_id="delegation_give_up",
    tags=["delegations"],
    summary="Give up your own delegation",
    request=CommentSerializer,
    responses={200: DelegationSerializer, **ERRORS},
)
@api_view(["POST"])
def delegation_give_up(request: Request, delegation_id: int) -> Response:
    body = CommentSerializer(data=request.data)
    body.is_valid(raise_exception=True)
    given_up: Delegation = services.delegation_give_up(
        delegation_id=delegation_id,
        acting_user=user_of(request),
        comment=body.validated_data["comment"],
    )
    return Response(DelegationSerializer(given_up).data)


@extend_schema(
    operation_id="delegation_renew",
    tags=["delegations"],
    summary="Renew your delegation with a reissued certificate (a new request)",
    request=RenewalSerializer,
    responses={201: RequestSerializer, **ERRORS},
)
@api_view(["POST"])
@sensitive_variables("renewal")
def delegation_renew(request: Request, delegation_id: int) -> Response:
    renewing = selectors.delegation_of_member(user_of(request), delegation_id)
    renewal = RenewalSerializer(data=request.data)
    renewal.is_valid(raise_exception=True)
    data = renewal.validated_data
    created = services.request_submit(
        requester=user_of(request),
        repository=renewing.repository,
        team=renewing.team,
        certificate=_certificate(data["certificate"]),
        reason=data["reason"],
        proof=_proof(data),
        renews=renewing,
    )
    return _created(created)


def _open_repository(gun: str) -> Repository:
    try:
        repository = selectors.repository_by_gun(gun)
    except InvalidInput as error:
        raise InvalidInput(error.message, field="repository") from None
    if repository is None:
        raise InvalidInput(f"No repository {gun} is registered in the portal.", field="repository")
    return repository


def _proof(data: dict[str, Any]) -> PossessionProof:
    return PossessionProof(challenge=data.get("challenge", ""), signature=data.get("signature", ""))


def _certificate(pem: str) -> CertificateInfo:
    try:
        return inspect_certificate(pem.encode("utf-8", "replace"), now=clock.now())
    except DjangoValidationError as error:
        raise InvalidInput(" ".join(error.messages), field="certificate") from None


def _created(created: DelegationRequest) -> Response:
    response = Response(RequestSerializer(created).data, status=status.HTTP_201_CREATED)
    response["Location"] = reverse("delegations:api_request_detail", args=[created.pk])
    return response
