"""``manage.py upstream_sync [NAME ...]``: sync upstreams now, and print where each stands."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from hub.federation import services
from hub.federation.models import Upstream


class Command(BaseCommand):
    help = "Sync the named upstreams (every enabled one without names) and report each."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("names", nargs="*")
        parser.add_argument("--max-pages", type=int, default=None)

    def handle(self, *args: Any, **options: Any) -> None:
        upstreams = Upstream.objects.filter(enabled=True)
        if options["names"]:
            upstreams = Upstream.objects.filter(name__in=options["names"])
            unknown = set(options["names"]) - {u.name for u in upstreams}
            if unknown:
                raise CommandError(f"no upstream named {', '.join(sorted(unknown))}")
        failed = []
        for upstream in upstreams:
            report = services.upstream_sync(upstream_id=upstream.pk, max_pages=options["max_pages"])
            line = (
                f"{report.upstream}: serial {report.serial} of {report.latest}, "
                f"{len(report.mirrored)} mirrored, {len(report.retired)} retired, "
                f"{len(report.refused)} refused, {len(report.fetched)} artifacts fetched"
            )
            if report.skipped:
                line = f"{report.upstream}: skipped ({report.skipped})"
            self.stdout.write(line)
            for refused in report.refused:
                self.stdout.write(f"  refused {refused}")
            if not report.ok:
                self.stderr.write(f"{report.upstream}: {report.error}")
                failed.append(report.upstream)
        if failed:
            raise CommandError(f"sync failed for {', '.join(failed)}")
