"""The audit log page and its exports, for repository owners and administrators.

The exports stream: rows are read from the database in chunks and written out as they come, so
exporting the whole log takes neither the time nor the memory of loading it.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpResponse, HttpResponseBadRequest, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.utils import timezone

from ..audit import log as audit_log
from ..audit.chain import chain_head
from ..forms import AuditFilterForm
from ..models import AuditEvent
from .paging import page_of, query_without_page
from .signed_in import SignedInRequest

EXPORT_CHUNK = 2000


def _filtered(request: SignedInRequest) -> tuple[AuditFilterForm, QuerySet[AuditEvent] | None]:
    """The filter form and the events it selects (None when the filters are invalid)."""
    if not audit_log.audit_access_allowed(request.user):
        raise PermissionDenied(
            "The audit log is for repository owners (their repositories' events), "
            "auditors and administrators."
        )
    form = AuditFilterForm(request.GET, user=request.user)
    if not form.is_valid():
        return form, None
    return form, audit_log.audit_events_for(request.user, **form.selector_filters())


@login_required
def audit_log_page(request: SignedInRequest) -> HttpResponse:
    form, events = _filtered(request)
    page = page_of(request, events if events is not None else [])
    context = {
        "form": form,
        "page": page,
        "rows": [
            (
                event,
                *audit_log.headline_and_rest(audit_log.details_lines(event.action, event.details)),
            )
            for event in page.object_list
        ],
        "filters": query_without_page(request),
    }
    return render(
        request, "delegations/audit_log.html", context, status=400 if form.errors else 200
    )


def _export_name(extension: str) -> str:
    return f"audit-log-{timezone.now():%Y%m%dT%H%M%SZ}.{extension}"


def _batched(lines: Iterator[str], size: int = 200) -> Iterator[str]:
    """Lines joined in batches: one write per line would cost more than making the line."""
    batch: list[str] = []
    for line in lines:
        batch.append(line)
        if len(batch) == size:
            yield "".join(batch)
            batch = []
    if batch:
        yield "".join(batch)


class _Echo:
    """A file whose write returns what it is given, so csv.writer makes strings to stream."""

    def write(self, value: str) -> str:
        return value


@login_required
def audit_export_csv(request: SignedInRequest) -> HttpResponseBase:
    form, events = _filtered(request)
    if events is None:
        return HttpResponseBadRequest(_errors_text(form), content_type="text/plain")
    return csv_export(events)


def csv_export(events: QuerySet[AuditEvent]) -> StreamingHttpResponse:
    """`events` as a streamed CSV download (the page's export and the API's)."""
    writer = csv.writer(_Echo())

    def rows() -> Iterator[str]:
        yield writer.writerow(audit_log.EXPORT_FIELDS)
        for record in audit_log.export_records(events, chunk_size=EXPORT_CHUNK):
            record["details"] = json.dumps(record["details"], sort_keys=True, ensure_ascii=False)
            yield writer.writerow([_csv_cell(record[field]) for field in audit_log.EXPORT_FIELDS])

    response = StreamingHttpResponse(_batched(rows()), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{_export_name("csv")}"'
    return response


def _csv_cell(value: object) -> object:
    if value is None:
        return ""
    return audit_log.spreadsheet_safe(value) if isinstance(value, str) else value


@login_required
def audit_export_json(request: SignedInRequest) -> HttpResponseBase:
    form, events = _filtered(request)
    if events is None:
        return HttpResponseBadRequest(_errors_text(form), content_type="text/plain")
    return json_export(events)


def json_export(events: QuerySet[AuditEvent]) -> StreamingHttpResponse:
    """`events` as a streamed JSON download with the chain head (the page's and the API's)."""

    def chunks() -> Iterator[str]:
        head = chain_head()
        yield f'{{"chain_head": {json.dumps(head)},\n"events": ['
        separator = "\n"
        for record in audit_log.export_records(events, chunk_size=EXPORT_CHUNK):
            yield separator + json.dumps(record, ensure_ascii=False)
            separator = ",\n"
        yield "\n]}\n"

    response = StreamingHttpResponse(
        _batched(chunks()), content_type="application/json; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="{_export_name("json")}"'
    return response


def _errors_text(form: AuditFilterForm) -> str:
    lines = [
        f"{form[name].label if name in form.fields else 'Filters'}: {error}"
        for name, errors in form.errors.items()
        for error in errors
    ]
    return "Nothing was exported; fix the filters.\n" + "\n".join(lines) + "\n"
