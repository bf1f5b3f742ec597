"""``manage.py storage_check``: every stored artifact against its row, and every file with no row.

Works through Django's storage API, so the same command audits the filesystem and S3. Exits with
status 1 when problems remain (a missing or altered file, an orphan not deleted), so it can run
from cron or CI.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from hub.registry.services import storage_check


class Command(BaseCommand):
    help = (
        "Verify every stored artifact's sha256 and size against its row and list stored files "
        "that no row names (orphans); --delete-orphans removes them."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--delete-orphans",
            action="store_true",
            help="delete orphan files older than --min-age",
        )
        parser.add_argument(
            "--min-age",
            type=float,
            default=None,
            metavar="SECONDS",
            help="only delete orphans last modified longer ago than this; a younger one may be "
            "a push whose row is about to commit (default: MEDIGAN_REQUEUE_AFTER_SECONDS)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        min_age = options["min_age"]
        if min_age is None:
            min_age = float(settings.MEDIGAN_REQUEUE_AFTER_SECONDS)
        report = storage_check(
            delete_orphans=options["delete_orphans"], orphan_min_age_seconds=min_age
        )
        for line in report.missing:
            self.stdout.write(f"missing: {line}")
        for line in report.mismatched:
            self.stdout.write(f"mismatch: {line}")
        deleted = set(report.deleted)
        for name in report.orphans:
            verb = "deleted" if name in deleted else "orphan"
            self.stdout.write(f"{verb}: {name}: no row names this file")
        self.stdout.write(
            f"{report.checked} files checked; {len(report.missing)} missing, "
            f"{len(report.mismatched)} mismatched, {len(report.orphans)} orphans "
            f"({len(report.deleted)} deleted)"
        )
        if report.problems:
            raise CommandError(f"storage_check found {report.problems} problem(s)", returncode=1)
