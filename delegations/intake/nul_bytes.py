"""No text the portal is sent may hold a NUL character: PostgreSQL cannot store one (a query
with it fails, which was a 500), and no name, comment or certificate needs it. Refused for
every request at the door, with a clear answer, before any view or service sees it. Uploaded
files are not text and are left alone (a DER certificate holds NUL bytes)."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.multipartparser import MultiPartParserError

MESSAGE = (
    "The request holds a NUL character (\\0) in a text field. No field of the portal takes one: "
    "nothing was changed."
)


class RefuseNulMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if _holds_nul(request):
            if request.path.startswith("/api/"):
                return JsonResponse(
                    {"code": "invalid_input", "message": MESSAGE, "field": None}, status=400
                )
            return HttpResponse(MESSAGE, status=400, content_type="text/plain; charset=utf-8")
        return self.get_response(request)


def _holds_nul(request: HttpRequest) -> bool:
    if "\x00" in request.path or any(
        "\x00" in key or "\x00" in value for key, values in request.GET.lists() for value in values
    ):
        return True
    if request.method not in ("POST", "PUT", "PATCH"):
        return False
    if request.content_type == "application/json":
        # JSON spells NUL as \u0000 (or, invalid anyway, a raw byte).
        return b"\\u0000" in request.body.lower() or b"\x00" in request.body
    try:
        return any(
            "\x00" in key or "\x00" in value
            for key, values in request.POST.lists()
            for value in values
        )
    except MultiPartParserError:
        return False  # the view answers the malformed upload
