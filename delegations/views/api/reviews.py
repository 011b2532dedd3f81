"""The API's access reviews: owners and auditors read them, owners decide their items."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from drf_spectacular.utils import extend_schema
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from ... import selectors, services
from ...exceptions import NotAnOwner
from ...models import ReviewItem
from .auth import user_of
from .members import ERRORS, paged
from .paging import paginated
from .serializers import (
    ReviewDecisionSerializer,
    ReviewDetailSerializer,
    ReviewItemSerializer,
    ReviewSerializer,
)


@extend_schema(
    operation_id="review_list",
    tags=["reviews"],
    summary="Access reviews of the repositories you own (of every repository, for an auditor)",
    responses={200: paginated(ReviewSerializer), **ERRORS},
)
@api_view(["GET"])
def review_list(request: Request) -> Response:
    user = user_of(request)
    if not (
        user.is_staff
        or selectors.is_auditor(user)
        or selectors.repositories_owned_by(user).exists()
    ):
        raise PermissionDenied("Access reviews are for repository owners and auditors.")
    return paged(request, selectors.reviews_visible_to(user), ReviewSerializer)


@extend_schema(
    operation_id="review_detail",
    tags=["reviews"],
    summary="One access review: each delegation, what its key signs, and who decided what",
    responses={200: ReviewDetailSerializer, **ERRORS},
)
@api_view(["GET"])
def review_detail(request: Request, review_id: int) -> Response:
    review = selectors.review_for_viewer(user_of(request), review_id)
    return Response(ReviewDetailSerializer(review).data)


@extend_schema(
    operation_id="review_decide",
    tags=["reviews"],
    summary="Keep or revoke one delegation of an open review (a comment is required to revoke)",
    request=ReviewDecisionSerializer,
    responses={200: ReviewItemSerializer, **ERRORS},
)
@api_view(["POST"])
def review_decide(request: Request, review_id: int, item_id: int) -> Response:
    selectors.review_for_viewer(user_of(request), review_id)
    if not ReviewItem.objects.filter(pk=item_id, review_id=review_id).exists():
        raise NotAnOwner("Only the owners of the repository review its delegations.")
    body = ReviewDecisionSerializer(data=request.data)
    body.is_valid(raise_exception=True)
    item = services.review_decide(
        item_id=item_id,
        acting_user=user_of(request),
        verdict=body.validated_data["verdict"],
        comment=body.validated_data["comment"],
    )
    return Response(ReviewItemSerializer(item).data)
