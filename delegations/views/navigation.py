from django.http import HttpRequest

from .. import selectors
from ..directory import DirectoryUnavailable


def navigation(request: HttpRequest) -> dict[str, object]:
    """What the navigation bar shows: owner links, the number of requests awaiting them, and
    the drift found on their repositories."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    try:
        groups = selectors.group_names_of(user)
        owned = selectors.repositories_owned_by(user, groups=groups)
        owns_repositories = owned.exists()
    except DirectoryUnavailable:
        return {}  # the page says so itself (DirectoryUnavailableMiddleware)
    return {
        "nav_is_owner": owns_repositories,
        "nav_is_auditor": selectors.is_auditor(user, groups=groups),
        "nav_is_registrar": selectors.is_registrar(user, groups=groups),
        "nav_pending_count": selectors.approval_queue_for(user).count() if owns_repositories else 0,
        "nav_drift_count": (
            selectors.drift_open_for(user, owned=owned).count() if owns_repositories else 0
        ),
    }
