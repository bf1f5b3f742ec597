"""Django app configuration of accounts."""

from django.apps import AppConfig


class AccountsConfig(AppConfig):
    """Users, reviewers, organisations, namespaces and API tokens."""

    name = "hub.accounts"
    label = "accounts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Failed password sign-ins count towards the per-address limit.
        from hub.accounts import receivers  # noqa: F401
