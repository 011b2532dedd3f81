from django.http import HttpRequest

from .. import selectors
from ..directory import DirectoryUnavailable


def navigation(request: HttpRequest) -> dict[str, object]:
    """What the navigation bar shows: owner links and the number of requests awaiting them."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    try:
        owns_repositories = selectors.repositories_owned_by(user).exists()
    except DirectoryUnavailable:
        return {}  # the page says so itself (DirectoryUnavailableMiddleware)
    return {
        "nav_is_owner": owns_repositories,
        "nav_pending_count": selectors.approval_queue_for(user).count() if owns_repositories else 0,
    }
