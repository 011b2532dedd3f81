from django.apps import AppConfig


class DelegationsConfig(AppConfig):
    name = "delegations"
    verbose_name = "Signing delegations"

    def ready(self) -> None:
        from . import checks  # noqa: F401 - registers the start-up checks
        from .audit import admin_changes  # noqa: F401 - records admin changes to accounts
