"""The audit log through the API: the same events, filters and exports as the Audit page, for
repository owners (their repositories' events) and administrators."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from ...audit import log as audit_log
from ...exceptions import InvalidInput
from ...forms import AuditFilterForm
from ...models import AuditEvent
from ..audit import csv_export, json_export
from .auth import user_of
from .members import ERRORS
from .paging import Paging, paginated
from .serializers import AuditEventSerializer

_FILTERS = [
    OpenApiParameter("repository", OpenApiTypes.INT, description="A repository's id"),
    OpenApiParameter("actor", OpenApiTypes.STR, description="Who acted (a username)"),
    OpenApiParameter("action", OpenApiTypes.STR, description="e.g. request.approved"),
    OpenApiParameter("request", OpenApiTypes.INT, description="A request's number"),
    OpenApiParameter("date_from", OpenApiTypes.DATE),
    OpenApiParameter("date_to", OpenApiTypes.DATE),
]


def _events(request: Request) -> QuerySet[AuditEvent]:
    if not audit_log.audit_access_allowed(user_of(request)):
        raise PermissionDenied(
            "The audit log is for repository owners (their repositories' events), "
            "auditors and administrators."
        )
    form = AuditFilterForm(request.query_params, user=user_of(request))
    if not form.is_valid():
        field, errors = next(iter(form.errors.items()))
        raise InvalidInput(str(errors[0]), field=field if field in form.fields else None)
    return audit_log.audit_events_for(user_of(request), **form.selector_filters())


@extend_schema(
    operation_id="audit_events",
    tags=["audit"],
    summary="Audit events, newest first, with the hashes that chain them",
    parameters=_FILTERS,
    responses={200: paginated(AuditEventSerializer), **ERRORS},
)
@api_view(["GET"])
def audit_events(request: Request) -> Response:
    paging = Paging()
    page = paging.paginate_queryset(_events(request).order_by("-id"), request) or []
    ids = [event.pk for event in page]
    records = {
        record["id"]: record
        for record in audit_log.export_records(AuditEvent.objects.filter(pk__in=ids))
    }
    data = AuditEventSerializer([records[pk] for pk in ids], many=True).data
    return paging.get_paginated_response(data)


@extend_schema(
    operation_id="audit_export_csv",
    tags=["audit"],
    summary="The filtered audit log as CSV (for spreadsheets)",
    parameters=_FILTERS,
    responses={(200, "text/csv"): OpenApiTypes.STR, **ERRORS},
)
@api_view(["GET"])
def audit_export_csv(request: Request) -> StreamingHttpResponse:
    return csv_export(_events(request))


@extend_schema(
    operation_id="audit_export_json",
    tags=["audit"],
    summary="The filtered audit log as JSON with the chain head (for audit_verify offline)",
    parameters=_FILTERS,
    responses={(200, "application/json"): OpenApiTypes.OBJECT, **ERRORS},
)
@api_view(["GET"])
def audit_export_json(request: Request) -> StreamingHttpResponse:
    return json_export(_events(request))
