"""The API's extensions: a member asks for more time, the owners list and decide them."""

from __future__ import annotations

from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from ... import selectors, services
from ...exceptions import NotAnOwner
from .auth import user_of
from .members import ERRORS, paged
from .paging import paginated
from .serializers import CommentSerializer, ExtensionAskSerializer, ExtensionSerializer


@extend_schema(
    operation_id="delegation_extend",
    tags=["delegations"],
    summary="Ask for more time on your delegation (its owners decide; only the date changes)",
    request=ExtensionAskSerializer,
    responses={201: ExtensionSerializer, **ERRORS},
)
@api_view(["POST"])
def delegation_extend(request: Request, delegation_id: int) -> Response:
    delegation = selectors.delegation_of_member(user_of(request), delegation_id)
    body = ExtensionAskSerializer(data=request.data)
    body.is_valid(raise_exception=True)
    extension = services.extension_request(
        delegation_id=delegation.pk,
        acting_user=user_of(request),
        until=body.validated_data["until"],
        reason=body.validated_data["reason"],
    )
    return Response(ExtensionSerializer(extension).data, status=status.HTTP_201_CREATED)


@extend_schema(
    operation_id="extension_queue",
    tags=["owners"],
    summary="Extensions waiting for your decision, oldest first",
    responses={200: paginated(ExtensionSerializer), **ERRORS},
)
@api_view(["GET"])
def extension_queue(request: Request) -> Response:
    return paged(request, selectors.extensions_waiting_for(user_of(request)), ExtensionSerializer)


@extend_schema(
    operation_id="extension_approve",
    tags=["owners"],
    summary="Approve an extension (counted toward the repository's threshold)",
    request=CommentSerializer,
    responses={200: ExtensionSerializer, **ERRORS},
)
@api_view(["POST"])
def extension_approve(request: Request, extension_id: int) -> Response:
    return _decide(request, extension_id, approve=True)


@extend_schema(
    operation_id="extension_reject",
    tags=["owners"],
    summary="Reject an extension, saying why",
    request=CommentSerializer,
    responses={200: ExtensionSerializer, **ERRORS},
)
@api_view(["POST"])
def extension_reject(request: Request, extension_id: int) -> Response:
    return _decide(request, extension_id, approve=False)


def _decide(request: Request, extension_id: int, *, approve: bool) -> Response:
    try:
        selectors.extension_for_viewer(user_of(request), extension_id)
    except Http404:
        raise NotAnOwner() from None
    body = CommentSerializer(data=request.data)
    body.is_valid(raise_exception=True)
    decide = services.extension_approve if approve else services.extension_reject
    extension = decide(
        extension_id=extension_id,
        acting_user=user_of(request),
        comment=body.validated_data["comment"],
    )
    return Response(ExtensionSerializer(extension).data)
