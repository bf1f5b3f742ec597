"""``manage.py pin_recheck``: re-fetch pinned Zenodo records now and flag what changed.

What the beat task does on its schedule, at once and in this process: every pin (or the pins of
the releases named), whatever its last check. A file changed or gone, or the record deleted,
flags the release as ``pin_broken``; ``--download`` also compares the bytes' sha256.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from hub.pinning import selectors, services
from hub.pinning.models import DoiPin


class Command(BaseCommand):
    help = "Re-check pinned Zenodo records now; flag releases whose record changed."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("releases", nargs="*", help="namespace/name@version (default: all)")
        parser.add_argument(
            "--download", action="store_true", help="download the files and compare sha256 too"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["releases"]:
            pin_ids = []
            for ref in options["releases"]:
                release = selectors.release_get_by_ref(ref)
                pin = DoiPin.objects.filter(release=release).first() if release else None
                if pin is None:
                    raise CommandError(f"no pin of {ref}")
                pin_ids.append(pin.pk)
        else:
            pin_ids = selectors.pins_all_kept()
        outcomes: dict[str, int] = {}
        for pin_id in pin_ids:
            outcome = services.pin_recheck(pin_id=pin_id, download=options["download"] or None)
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
            pin = DoiPin.objects.select_related("release").get(pk=pin_id)
            self.stdout.write(f"{pin.release}: {pin.doi}: {outcome}")
        summary = ", ".join(f"{count} {outcome}" for outcome, count in sorted(outcomes.items()))
        self.stdout.write(f"{len(pin_ids)} pins re-checked" + (f": {summary}" if summary else ""))
