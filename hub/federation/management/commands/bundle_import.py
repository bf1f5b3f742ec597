"""``manage.py bundle_import FILE``: verify a bundle whole, then apply it as a mirror would."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from hub.federation.bundles import bundle_import
from medigan_catalog.errors import CatalogError


class Command(BaseCommand):
    help = (
        "Import a bundle made by bundle_export on another hub. Everything is verified (the "
        "manifest's signature against the exporting hub's pinned key, every file's sha256) "
        "before the database is touched; a bundle that fails is refused whole. Importing the "
        "same bundle again changes nothing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument(
            "--upstream",
            default=None,
            help="the upstream the releases are recorded under (default: the exporting hub's name)",
        )
        parser.add_argument(
            "--key",
            action="append",
            default=[],
            metavar="KEY_ID",
            help="the exporting hub's key id, confirmed out of band; needed the first time",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            report = bundle_import(
                options["file"], upstream_name=options["upstream"], keys=options["key"]
            )
        except CatalogError as error:
            raise CommandError(f"{error.code.value}: {error}") from error
        self.stdout.write(
            f"{report.upstream}: serial {report.serial}, {len(report.mirrored)} mirrored, "
            f"{len(report.retired)} retired, {len(report.stored)} artifacts stored, "
            f"{len(report.refused)} refused"
        )
        for line in report.refused:
            self.stdout.write(f"  refused {line}")
