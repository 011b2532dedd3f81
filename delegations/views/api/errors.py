"""Every API error as JSON: a stable `code` for programs, a `message` for people, and the
`field` it is about (or null), with the status that says what kind of error it is."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

from ...exceptions import (
    IllegalTransition,
    InvalidInput,
    NotAllowed,
    PortalError,
    ServiceUnavailable,
    TrustSetupError,
)

_STATUS_OF = [
    (NotAllowed, status.HTTP_403_FORBIDDEN),
    (InvalidInput, status.HTTP_400_BAD_REQUEST),
    (IllegalTransition, status.HTTP_409_CONFLICT),
    (TrustSetupError, status.HTTP_409_CONFLICT),
    (ServiceUnavailable, status.HTTP_503_SERVICE_UNAVAILABLE),
]


class ErrorSerializer(serializers.Serializer):
    """The body of every error (for the schema)."""

    code = serializers.CharField()
    message = serializers.CharField()
    field = serializers.CharField(allow_null=True)


def error(code: str, message: str, *, field: str | None = None, http_status: int) -> Response:
    return Response({"code": code, "message": message, "field": field}, status=http_status)


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, PortalError):
        http_status = next(
            (code for kind, code in _STATUS_OF if isinstance(exc, kind)),
            status.HTTP_400_BAD_REQUEST,
        )
        return error(exc.code, exc.message, field=exc.field, http_status=http_status)
    if isinstance(exc, DjangoValidationError):
        # From the certificate checks the form shares: the message says what to do.
        return error(
            "invalid_input",
            " ".join(exc.messages),
            field=context.get("validation_field"),
            http_status=status.HTTP_400_BAD_REQUEST,
        )
    if isinstance(exc, exceptions.ValidationError):
        field, message = _first_problem(exc.detail)
        return error("invalid_input", message, field=field, http_status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, Http404):
        message = str(exc) or "Not found."
        return error("not_found", message, http_status=status.HTTP_404_NOT_FOUND)
    if isinstance(exc, PermissionDenied):
        message = str(exc) or "You may not do this."
        return error("not_allowed", message, http_status=status.HTTP_403_FORBIDDEN)
    response = exception_handler(exc, context)  # DRF's: 401, 405, 406, 415, 429 with headers
    if response is not None and isinstance(exc, exceptions.APIException):
        codes = exc.get_codes()
        response.data = {
            "code": codes if isinstance(codes, str) else exc.default_code,
            "message": str(exc.detail),
            "field": None,
        }
    return response


def _first_problem(detail: Any, field: str | None = None) -> tuple[str | None, str]:
    """The first field and message of DRF's nested validation errors."""
    if isinstance(detail, dict):
        name, value = next(iter(detail.items()))
        nested = name if name != "non_field_errors" else None
        return _first_problem(value, f"{field}.{nested}" if field and nested else field or nested)
    if isinstance(detail, list) and detail:
        return _first_problem(detail[0], field)
    return field, str(detail)


@csrf_exempt  # it changes nothing, and a CSRF refusal would be an HTML page
def api_not_found(request: HttpRequest, path: str = "") -> JsonResponse:
    """Any /api/ path no operation matches (a negative id, a typo): JSON, like every other
    answer of the API, never the site's HTML page."""
    return JsonResponse(
        {"code": "not_found", "message": "No API operation has this path.", "field": None},
        status=status.HTTP_404_NOT_FOUND,
    )
