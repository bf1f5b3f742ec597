"""Django app configuration of accounts."""

from django.apps import AppConfig


class AccountsConfig(AppConfig):
    """Users, reviewers and API tokens."""

    name = "hub.accounts"
    label = "accounts"
    default_auto_field = "django.db.models.BigAutoField"
