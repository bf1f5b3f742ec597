"""Django app configuration of evaluations."""

from django.apps import AppConfig


class EvaluationsConfig(AppConfig):
    """Reference sets, evaluations and leaderboards."""

    name = "hub.evaluations"
    label = "evaluations"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Publishing a release queues its evaluations; the registry only announces the event.
        from hub.evaluations import receivers  # noqa: F401
