"""Django app configuration of federation: upstream hubs this hub mirrors, and bundles."""

from django.apps import AppConfig


class FederationConfig(AppConfig):
    """Upstreams, the mirror's sync, and air-gapped bundles."""

    name = "hub.federation"
    label = "federation"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The registry serves a mirrored release's artifacts before it holds them: it asks the
        # fetchers registered with it, and this app is the one that knows the upstreams.
        from hub.federation import services
        from hub.registry import services as registry_services

        registry_services.artifact_fetcher_register(services.mirrored_artifact_fetch)
        registry_services.mirror_validated_hook_register(services.mirrored_release_validated)
