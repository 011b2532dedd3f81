"""Turns a directory outage met while drawing a page into a page that says so."""

from __future__ import annotations

import logging

from django.shortcuts import render

from .connection import DirectoryUnavailable

logger = logging.getLogger(__name__)


class DirectoryUnavailableMiddleware:
    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not isinstance(exception, DirectoryUnavailable):
            return None
        logger.warning("directory unavailable for %s: %s", request.path, exception)
        return render(request, "directory_unavailable.html", status=503)
