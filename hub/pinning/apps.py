"""Django app configuration of DOI pinning (Zenodo), and its configuration check."""

from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.core import checks


class PinningConfig(AppConfig):
    """Pins DOIs with Zenodo: hub-minted, contributor-provided and imported; re-checks them."""

    name = "hub.pinning"
    label = "pinning"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The registry knows no Zenodo: it asks the gate registered here whether an approved
        # release waits for a DOI, reads an imported package's DOI through the resolver, and
        # serves a pinned package it does not hold yet through the fetcher.
        from hub.pinning import services
        from hub.registry import services as registry_services

        registry_services.publication_gate_register(services.ZenodoPublicationGate())
        registry_services.external_doi_resolver_register(services.external_package_doi)
        registry_services.artifact_fetcher_register(services.pinned_artifact_fetch)
        checks.register(zenodo_settings_check)


def zenodo_settings_check(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """``MEDIGAN_ZENODO_MINT=always`` needs a token: every approval would wait for a deposit
    that cannot be made."""
    if settings.MEDIGAN_ZENODO_MINT == "always" and not settings.MEDIGAN_ZENODO_TOKEN:
        return [
            checks.Error(
                "MEDIGAN_ZENODO_MINT=always without MEDIGAN_ZENODO_TOKEN: no approved release "
                "could be published",
                hint="set MEDIGAN_ZENODO_TOKEN (a token with deposit:write and deposit:actions) "
                "or MEDIGAN_ZENODO_MINT=on_request",
                id="pinning.E001",
            )
        ]
    return []
