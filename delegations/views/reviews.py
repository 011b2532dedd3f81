"""Access reviews: the list, one review's page where owners keep or revoke each delegation, and
its record as CSV or JSON."""

from __future__ import annotations

import csv
import io
import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from .. import selectors, services
from ..audit.chain import utc_timestamp
from ..audit.log import spreadsheet_safe
from ..exceptions import PortalError
from ..forms import ReviewDecisionForm
from ..models import AccessReview, ReviewItem
from .signed_in import SignedInRequest

# The columns of a review's record, in the CSV's order (the JSON has the same keys).
RECORD_FIELDS = [
    "review",
    "repository",
    "member",
    "team",
    "canonical_key_id",
    "active_from",
    "until",
    "certificate_expires_at",
    "signs",
    "verdict",
    "decided_by",
    "decided_at",
    "comment",
    "outcome",
]


@login_required
def review_list(request: SignedInRequest) -> HttpResponse:
    reviews = selectors.reviews_visible_to(request.user)
    if not (
        selectors.is_auditor(request.user)
        or request.user.is_staff
        or selectors.repositories_owned_by(request.user).exists()
    ):
        raise PermissionDenied("Access reviews are for repository owners and auditors.")
    return render(request, "delegations/review_list.html", {"reviews": reviews})


@login_required
def review_detail(request: SignedInRequest, review_id: int) -> HttpResponse:
    review = selectors.review_for_viewer(request.user, review_id)
    context = {
        "review": review,
        "items": _items(review),
        "can_decide": review.is_open and selectors.is_owner(request.user, review.repository),
    }
    return render(request, "delegations/review_detail.html", context)


@login_required
@require_POST
def review_decide(request: SignedInRequest, review_id: int, item_id: int) -> HttpResponse:
    selectors.review_for_viewer(request.user, review_id)  # 404 for anyone who cannot see it
    form = ReviewDecisionForm(request.POST)
    if not form.is_valid():
        for field, errors in form.errors.items():
            for error in errors:
                messages.error(request, f"{form.fields[field].label}: {error}")
        return redirect("delegations:review_detail", review_id)
    try:
        item = services.review_decide(
            item_id=item_id,
            acting_user=request.user,
            verdict=form.cleaned_data["verdict"],
            comment=form.cleaned_data["comment"],
        )
    except PortalError as error:
        messages.error(request, error.message)
    else:
        messages.success(
            request,
            f"{item.delegation.member.get_username()}'s delegation as team "
            f"{item.delegation.team}: {item.get_verdict_display().lower()}.",
        )
    return redirect("delegations:review_detail", review_id)


@login_required
def review_export_csv(request: SignedInRequest, review_id: int) -> HttpResponse:
    review = selectors.review_for_viewer(request.user, review_id)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(RECORD_FIELDS)
    for record in _records(review):
        record["signs"] = json.dumps(record["signs"])
        writer.writerow(
            ["" if record[field] is None else _cell(record[field]) for field in RECORD_FIELDS]
        )
    response = HttpResponse(buffer.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{_name(review, "csv")}"'
    return response


@login_required
def review_export_json(request: SignedInRequest, review_id: int) -> HttpResponse:
    review = selectors.review_for_viewer(request.user, review_id)
    body = {
        "review": review.pk,
        "repository": review.repository.gun,
        "opened_at": utc_timestamp(review.opened_at),
        "deadline": utc_timestamp(review.deadline),
        "closed_at": utc_timestamp(review.closed_at) if review.closed_at else None,
        "unreviewed": review.unreviewed,
        "flagged": review.flagged,
        "items": list(_records(review)),
    }
    response = HttpResponse(
        json.dumps(body, ensure_ascii=False, indent=1), content_type="application/json"
    )
    response["Content-Disposition"] = f'attachment; filename="{_name(review, "json")}"'
    return response


def _items(review: AccessReview) -> list[ReviewItem]:
    return list(
        review.items.select_related("delegation__member", "delegation__request", "decided_by")
    )


def _records(review: AccessReview):
    for item in _items(review):
        delegation = item.delegation
        yield {
            "review": review.pk,
            "repository": review.repository.gun,
            "member": delegation.member.get_username(),
            "team": delegation.team,
            "canonical_key_id": delegation.canonical_key_id,
            "active_from": utc_timestamp(delegation.active_from),
            "until": delegation.until.isoformat() if delegation.until else None,
            "certificate_expires_at": utc_timestamp(delegation.certificate_expires_at),
            "signs": item.signs,
            "verdict": item.verdict or None,
            "decided_by": item.decided_by.get_username() if item.decided_by else None,
            "decided_at": utc_timestamp(item.decided_at) if item.decided_at else None,
            "comment": item.comment,
            "outcome": item.outcome or None,
        }


def _cell(value: object) -> object:
    return spreadsheet_safe(value) if isinstance(value, str) else value


def _name(review: AccessReview, extension: str) -> str:
    return f"access-review-{review.pk}-{timezone.now():%Y%m%dT%H%M%SZ}.{extension}"
