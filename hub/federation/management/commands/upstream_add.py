"""``manage.py upstream_add NAME URL``: configure an upstream hub for this hub to mirror."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from hub.federation import services
from hub.federation.filters import ReleaseFilter
from hub.federation.models import Upstream
from medigan_catalog.errors import CatalogError


def _csv(text: str) -> list[str]:
    return [part for part in text.split(",") if part.strip()]


class Command(BaseCommand):
    help = (
        "Mirror another hub: its URL, a read token, the key it must sign with, filters, mode "
        "(metadata or full) and policy (publish or review). See docs/federation.md."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", help="this hub's name for the upstream (a slug)")
        parser.add_argument("url", help="the upstream hub's base URL")
        parser.add_argument(
            "--token", default="", help="a read token on the upstream (sent to it only)"
        )
        parser.add_argument(
            "--key",
            action="append",
            default=[],
            metavar="KEY_ID",
            help="pin the upstream's signing key (ed25519:...); repeatable. Without it, the "
            "upstream's key set is pinned on the first sync (trust on first use)",
        )
        parser.add_argument(
            "--filter",
            action="append",
            default=[],
            metavar="KEY=VALUE[,VALUE...]",
            help="namespace=, model=, modality= or licence=; repeat to narrow (all must match)",
        )
        parser.add_argument("--namespaces", type=_csv, default=[], help="comma-separated")
        parser.add_argument("--modalities", type=_csv, default=[], help="comma-separated")
        parser.add_argument("--licences", type=_csv, default=[], help="comma-separated")
        parser.add_argument("--models", type=_csv, default=[], help="model ids, comma-separated")
        parser.add_argument("--mode", choices=Upstream.Mode.values, default="metadata")
        parser.add_argument("--policy", choices=Upstream.Policy.values, default="publish")
        parser.add_argument(
            "--revalidate",
            action="store_true",
            help="run this hub's own validation in the sandbox on each mirrored package first",
        )
        parser.add_argument("--interval", type=int, default=300, metavar="SECONDS")
        parser.add_argument(
            "--sync", action="store_true", help="sync it once now, before returning"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            chosen = ReleaseFilter.parse(
                [
                    *options["filter"],
                    *(f"namespace={name}" for name in options["namespaces"]),
                    *(f"model={model_id}" for model_id in options["models"]),
                    *(f"modality={modality}" for modality in options["modalities"]),
                    *(f"licence={licence}" for licence in options["licences"]),
                ]
            )
            upstream = services.upstream_add(
                name=options["name"],
                url=options["url"],
                token=options["token"],
                pinned_keys=options["key"],
                namespaces=chosen.namespaces,
                modalities=chosen.modalities,
                licences=chosen.licences,
                model_ids=chosen.model_ids,
                mode=options["mode"],
                policy=options["policy"],
                revalidate=options["revalidate"],
                interval_seconds=options["interval"],
            )
        except CatalogError as error:
            raise CommandError(str(error)) from error
        self.stdout.write(f"upstream {upstream.name}: {upstream.url} ({upstream.mode})")
        if options["sync"]:
            report = services.upstream_sync(upstream_id=upstream.pk)
            if not report.ok:
                raise CommandError(report.error)
            self.stdout.write(
                f"synced to serial {report.serial}: {len(report.mirrored)} mirrored, "
                f"{len(report.refused)} refused"
            )
