"""Django app configuration of the registry."""

from django.apps import AppConfig


class RegistryConfig(AppConfig):
    """Generative models, releases, artifacts and their lifecycle."""

    name = "hub.registry"
    label = "registry"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # A finished evaluation bumps the serial; evaluations only announce the event.
        from hub.registry import receivers  # noqa: F401
