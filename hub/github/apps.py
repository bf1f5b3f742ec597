"""Django app configuration of GitHub-linked submissions."""

from django.apps import AppConfig


class GithubConfig(AppConfig):
    """Links of models to GitHub repositories, their webhooks, submissions and statuses."""

    name = "hub.github"
    label = "github"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The commit status follows the release's state changes, which the registry announces.
        from hub.github import receivers  # noqa: F401
