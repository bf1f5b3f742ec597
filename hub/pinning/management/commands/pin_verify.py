"""``manage.py pin_verify``: verify the DOIs imported releases name, and serve their packages.

medigan's catalogue (``seed_demo``) records each model's Zenodo DOI, unpinned. Where the Zenodo
instance (``MEDIGAN_ZENODO_URL``) is reachable, this downloads each package from its record,
checks it against Zenodo's md5 and size, records its sha256 and size, stores the bytes so the
hub serves them to clients that cannot reach Zenodo (a verified proxy; ``--no-store`` leaves
them on Zenodo until a first download fetches them), and pins the DOI. Releases named on the
command line are verified whatever their state of pinning; without any, every catalogue release
with an unverified DOI is (``--namespace`` narrows it, ``--all`` verifies pinned ones again).
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from hub.pinning import selectors, services
from medigan_catalog.errors import CatalogError


class Command(BaseCommand):
    help = "Verify imported releases' Zenodo DOIs (download, md5 and sha256), store and pin them."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("releases", nargs="*", help="namespace/name@version (default: all)")
        parser.add_argument("--namespace", default=None, help="only releases of this namespace")
        parser.add_argument(
            "--all", action="store_true", help="verify releases whose DOI is pinned already too"
        )
        parser.add_argument(
            "--no-store",
            action="store_true",
            help="record the checksums only; the hub fetches the bytes on first download",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["releases"]:
            releases = []
            for ref in options["releases"]:
                release = selectors.release_get_by_ref(ref)
                if release is None:
                    raise CommandError(f"no release {ref}")
                releases.append(release)
        else:
            releases = selectors.releases_with_unverified_dois(
                namespace=options["namespace"], include_pinned=options["all"]
            )
        failed = 0
        for release in releases:
            try:
                outcome = services.release_pin_imported(
                    release_id=release.pk, store=not options["no_store"]
                )
            except CatalogError as error:
                failed += 1
                self.stderr.write(f"{release.release_id}: not verified: {error.message}")
                continue
            self.stdout.write(
                f"{outcome.release_id}: DOI {outcome.doi} pinned: {outcome.key}, "
                f"{outcome.size} bytes, md5 {outcome.md5}, sha256 {outcome.sha256}"
                + ("; served by this hub" if outcome.stored else "")
            )
        self.stdout.write(f"{len(releases) - failed} of {len(releases)} releases verified")
        if failed:
            raise CommandError(f"{failed} of {len(releases)} releases could not be verified")
