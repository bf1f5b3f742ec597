"""``manage.py bundle_export FILE``: this hub's public releases in one archive for an air gap."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from hub.federation.bundles import bundle_export
from hub.federation.filters import ReleaseFilter
from medigan_catalog.errors import CatalogError


def _csv(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


class Command(BaseCommand):
    help = (
        "Write a bundle: the selected public releases' cards and stored artifacts, the signed "
        "feed segment and a signed manifest of sha256s (docs/federation.md)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument(
            "--filter",
            action="append",
            default=[],
            metavar="KEY=VALUE[,VALUE...]",
            help="namespace=, model=, modality= or licence=; repeat to narrow (all must match)",
        )
        parser.add_argument("--namespaces", type=_csv, default=[], help="comma-separated")
        parser.add_argument("--models", type=_csv, default=[], help="model ids, comma-separated")
        parser.add_argument(
            "--since",
            type=int,
            default=0,
            help="the first serial: a bundle that follows an earlier one starts at its serial",
        )
        parser.add_argument(
            "--hub-url",
            default=settings.MEDIGAN_PUBLIC_URL,
            help="this hub's URL as its users reach it (default MEDIGAN_PUBLIC_URL)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            chosen = ReleaseFilter.parse(
                [
                    *options["filter"],
                    *(f"namespace={name}" for name in options["namespaces"]),
                    *(f"model={model_id}" for model_id in options["models"]),
                ]
            )
            report = bundle_export(
                options["file"],
                chosen=chosen,
                since=options["since"],
                base_url=options["hub_url"],
            )
        except CatalogError as error:
            raise CommandError(str(error)) from error
        self.stdout.write(
            f"{report.path}: {len(report.releases)} releases, {len(report.artifacts)} "
            f"artifacts, serials {options['since']}..{report.serial}"
        )
        for line in report.not_included:
            self.stdout.write(f"  not included: {line}")
