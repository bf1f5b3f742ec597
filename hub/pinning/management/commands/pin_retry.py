"""``manage.py pin_retry NS/NAME@VERSION``: queue the pin of an approved release again.

A pin that failed (Zenodo unreachable through every attempt, a refusal an operator has since
fixed) leaves its release approved and unpublished; this queues its pin task once more.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from hub.pinning import selectors, services
from hub.pinning.models import DoiPin
from medigan_catalog.errors import CatalogError


class Command(BaseCommand):
    help = "Queue the DOI pin of an approved release again (after it failed)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("release", help="namespace/name@version")

    def handle(self, *args: Any, **options: Any) -> None:
        release = selectors.release_get_by_ref(options["release"])
        if release is None:
            raise CommandError(f"no release {options['release']}")
        try:
            services.pin_retry(release_id=release.pk)
        except DoiPin.DoesNotExist as error:
            raise CommandError(f"{release.release_id} has no pin to retry") from error
        except CatalogError as error:
            raise CommandError(error.message) from error
        self.stdout.write(f"{release.release_id}: pin queued again")
