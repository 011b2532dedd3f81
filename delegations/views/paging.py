"""Long lists shown a page at a time, the same way on every page that has one."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.core.paginator import Page, Paginator
from django.db.models import QuerySet
from django.http import HttpRequest

PAGE_SIZE = 50


def page_of(request: HttpRequest, items: QuerySet[Any] | Sequence[Any]) -> Page:
    """The page of `items` that `?page=` asks for (the last one when past the end)."""
    return Paginator(items, PAGE_SIZE).get_page(request.GET.get("page"))


def query_without_page(request: HttpRequest) -> str:
    """The page's query string (its filters) without `page`, for the pager's links to keep."""
    query = request.GET.copy()
    query.pop("page", None)
    return query.urlencode()
